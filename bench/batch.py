"""The client's cost of `--batch-api` against the same requests sent live, on the same server.

    python bench/batch.py [--docs 1500] [--reply-pad 2000]

Starts tests/fake_openai.py (fixed replies, the prose ones padded to `--reply-pad` characters, as
long as a model's) in its own process for each mode, builds a
corpus (7 requests a document) and runs `augment generate --no-curate` once live and once with
`--batch-api` (batch_poll 0.2 s). The fake server runs a batch by sending each line to its own
endpoint, so the batch's wall time is the server's and says nothing of OpenAI's; what the table
compares is the client's CPU (augment's process: building, sending, parsing, writing), per request
and against the live run, and its peak memory: a batch's requests are all out at once (the live run
holds 64), so the difference per request is what each request out costs. Both runs must write the
same records.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import AUGMENT, free_port, make_corpus, start_server  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=1500)
    ap.add_argument("--reply-pad", type=int, default=2000, help="characters added to each prose reply")
    args = ap.parse_args()
    table = Table(
        title="augment generate: live requests against --batch-api, same server (client CPU, peak memory)"
    )
    cols = ("mode", "requests", "batches", "wall s", "client CPU s", "CPU ms a request", "CPU / live")
    for col in (*cols, "peak MB", "peak / live"):
        table.add_column(col, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        docs = tmp_path / "docs"
        make_corpus(docs, args.docs)
        config = tmp_path / "batch.toml"
        config.write_text("batch_poll = 0.2\n")
        rows, records = [], {}
        for mode in ("live", "batch"):
            port = free_port()
            server = start_server(port, 0.0, faults=False, reply_pad=args.reply_pad)
            out = tmp_path / mode
            cmd = [AUGMENT, "generate", str(docs), "-o", str(out), "-c", str(config), "--backend", "openai"]
            cmd += ["--base-url", f"http://127.0.0.1:{port}/v1", "--model", "fake-model"]
            cmd += ["--no-curate", "--no-export", "--quiet"] + (["--batch-api"] if mode == "batch" else [])
            try:
                wall, cpu, peak = timed_peak(cmd, env={**os.environ, "OPENAI_API_KEY": "x"})
            finally:
                server.terminate()
                server.wait()
            stats = json.loads((out / "stats.json").read_text())
            assert stats["complete"], stats
            ledger = out / "batches.jsonl"
            batches = len(ledger.read_text().splitlines()) if ledger.exists() else 0
            records[mode] = {p.name: p.read_bytes() for p in sorted((out / "generated").glob("*.jsonl"))}
            rows.append((mode, stats["requests"], batches, wall, cpu, peak))
        assert records["live"] == records["batch"], "the two modes wrote different records"
    live_cpu, live_peak = rows[0][4], rows[0][5]
    for mode, n, batches, wall, cpu, peak in rows:
        table.add_row(
            mode,
            str(n),
            str(batches),
            f"{wall:.1f}",
            f"{cpu:.1f}",
            f"{cpu / n * 1000:.2f}",
            f"{cpu / live_cpu:.2f}",
            f"{peak:.0f}",
            f"{peak / live_peak:.2f}",
        )
    Console().print(table)
    (_, n, _, _, _, peak) = rows[1]
    print(f"memory a request out (batch - live) / requests: {(peak - live_peak) * 1024 / n:.1f} KB")


def timed_peak(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak resident MB of the child process alone."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


if __name__ == "__main__":
    main()
