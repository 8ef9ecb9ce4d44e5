"""Memory of the curation judge as the records it scores grow (mock backend).

    python bench/judge_memory.py [--records 20000,80000]

Each size runs `judge_records` in a fresh process on synthetic records, each with its own chunk
of ~1.2 KB (as curate slices one from the record's document), and reports how far the process's
peak resident memory rose during the judge and per record. The judge's requests are built as
they go out (a window ahead of the oldest unanswered one) and only the verdicts are kept, so the
rise should stay near flat; holding every prompt and reply cost ~5 KB a record.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

from rich.console import Console
from rich.table import Table

CHILD = """
import json, resource, sys, time
from pathlib import Path
from augment.backends import get_backend
from augment.config import load_config
from augment.curate.judge import judge_records
n, out = int(sys.argv[1]), Path(sys.argv[2])
base = "The lighthouse at Cape Merrow was completed in 1862 and is 31 metres tall. " * 16

def records():
    for i in range(n):
        rec = {"id": f"r{i}", "doc_id": "d", "strategy": "notes",
               "text": f"- The lighthouse was completed in 1862 ({i})."}
        yield rec, "Cape Merrow", f"{i} {base}"

config = load_config(None, {"backend": "mock"})
backend = get_backend(config)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
verdicts = judge_records(records(), n, backend, out, config)
print(json.dumps({"seconds": time.perf_counter() - t, "verdicts": len(verdicts), "before_kb": before,
                  "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", default="20000,80000")
    args = ap.parse_args()
    table = Table(title="the curation judge's memory (mock backend)")
    for col in ("records", "seconds", "peak rise MB", "KB per record"):
        table.add_column(col, justify="right")
    for n in (int(x) for x in args.records.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(n), tmp], capture_output=True, text=True, check=True
            )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        assert r["verdicts"] == n, r
        rise = (r["peak_kb"] - r["before_kb"]) / 1e3
        table.add_row(str(n), f"{r['seconds']:.1f}", f"{rise:.0f}", f"{rise * 1e3 / n:.2f}")
    Console(file=sys.stdout).print(table)


if __name__ == "__main__":
    main()
