"""Peak memory of `augment generate` and `augment curate` (mock backend) as the corpus grows.

    python bench/memory.py [--docs 500,2000,8000] [--strategies qa,paraphrase,inferences,notes] [--judge]

Each size is generated in a fresh process (no curate, no export), then curated in another, and
each reports its peak resident memory. The table shows, per size: documents, their text in MB,
chunks, requests, records, generate's peak RSS in MB and the peak above the smallest run's per MB
of added text (what each MB of documents costs), then the records' size on disk and curate's
peak and its growth per MB of added records. The documents themselves, and their chunks, are
held whole (about 2-3x the text as Python strings); the rest is what each stage keeps besides.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
from pipeline import make_corpus  # noqa: E402  (the throughput bench's corpus)

CHILD = """
import json, resource, sys
from pathlib import Path
from augment.config import load_config
from augment.pipeline import generate
docs, run, strategies = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
cfg = load_config(None, {"backend": "mock", "chunk_tokens": 256, "strategies": strategies,
                         "curate": False, "export": False})
s = generate([docs], Path(run), cfg)
text = sum(p.stat().st_size for p in Path(docs).iterdir())
print(json.dumps({"documents": s.documents, "text": text, "chunks": s.chunks, "requests": s.requests,
                  "records": sum(s.records.values()), "complete": s.complete,
                  "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

CURATE = """
import json, resource, sys
from pathlib import Path
from augment.config import load_config
from augment.curate import curate
run, strategies, judge = Path(sys.argv[1]), sys.argv[2].split(","), sys.argv[3] == "judge"
values = {"backend": "mock", "chunk_tokens": 256, "strategies": strategies, "judge": judge}
s = curate(run, load_config(None, values))
size = sum(p.stat().st_size for p in (run / "generated").glob("*.jsonl"))
print(json.dumps({"bytes": size, "kept": sum(s.kept.values()),
                  "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", default="500,2000,8000")
    ap.add_argument("--strategies", default="qa,paraphrase,inferences,notes")
    ap.add_argument("--judge", action="store_true", help="curate with the model judge (the mock's)")
    args = ap.parse_args()
    rows = []
    for n in (int(x) for x in args.docs.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            docs = Path(tmp) / "docs"
            docs.mkdir()
            make_corpus(docs, n)
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(docs), str(Path(tmp) / "run"), args.strategies],
                capture_output=True,
                text=True,
                check=True,
            )
            row = json.loads(out.stdout.strip().splitlines()[-1])
            out = subprocess.run(
                [sys.executable, "-c", CURATE, str(Path(tmp) / "run"), args.strategies, "judge" * args.judge],
                capture_output=True,
                text=True,
                check=True,
            )
            cur = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row | {"curate_kb": cur["peak_kb"], "bytes": cur["bytes"]})
    judged = ", curate with the judge" if args.judge else ""
    table = Table(title=f"peak memory of generate and curate (mock; {args.strategies}{judged})")
    cols = (
        "documents",
        "text MB",
        "chunks",
        "requests",
        "records",
        "generate peak MB",
        "per MB of text added",
        "records MB",
        "curate peak MB",
        "per MB of records added",
    )
    for col in cols:
        table.add_column(col, justify="right")
    first = rows[0]
    for r in rows:
        added = (r["text"] - first["text"]) / 1e6
        per = (r["peak_kb"] - first["peak_kb"]) / 1e3 / added if added else None
        added_records = (r["bytes"] - first["bytes"]) / 1e6
        per_record = (r["curate_kb"] - first["curate_kb"]) / 1e3 / added_records if added_records else None
        assert r["complete"], r
        table.add_row(
            str(r["documents"]),
            f"{r['text'] / 1e6:.1f}",
            str(r["chunks"]),
            str(r["requests"]),
            str(r["records"]),
            f"{r['peak_kb'] / 1e3:.0f}",
            "-" if per is None else f"{per:.1f}",
            f"{r['bytes'] / 1e6:.0f}",
            f"{r['curate_kb'] / 1e3:.0f}",
            "-" if per_record is None else f"{per_record:.2f}",
        )
    Console(file=sys.stdout).print(table)


if __name__ == "__main__":
    main()
