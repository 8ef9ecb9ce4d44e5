"""The client's cost of `--batch-api` against the same requests sent live, on the same server.

    python bench/batch.py [--docs 300]

Starts tests/fake_openai.py (fixed short replies) in its own process for each mode, builds a
corpus (7 requests a document) and runs `augment generate --no-curate` once live and once with
`--batch-api` (batch_poll 0.2 s). The fake server runs a batch by sending each line to its own
endpoint, so the batch's wall time is the server's and says nothing of OpenAI's; what the table
compares is the client's CPU (augment's process: building, sending, parsing, writing), per request
and against the live run. Both runs must write the same records.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import AUGMENT, free_port, make_corpus, start_server, timed  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=300)
    args = ap.parse_args()
    table = Table(title="augment generate: live requests against --batch-api, same server (client CPU)")
    for col in ("mode", "requests", "batches", "wall s", "client CPU s", "CPU ms a request", "CPU / live"):
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
            server = start_server(port, 0.0, faults=False)
            out = tmp_path / mode
            cmd = [AUGMENT, "generate", str(docs), "-o", str(out), "-c", str(config), "--backend", "openai"]
            cmd += ["--base-url", f"http://127.0.0.1:{port}/v1", "--model", "fake-model"]
            cmd += ["--no-curate", "--no-export", "--quiet"] + (["--batch-api"] if mode == "batch" else [])
            try:
                wall, cpu = timed(cmd, env={**os.environ, "OPENAI_API_KEY": "x"})
            finally:
                server.terminate()
                server.wait()
            stats = json.loads((out / "stats.json").read_text())
            assert stats["complete"], stats
            ledger = out / "batches.jsonl"
            batches = len(ledger.read_text().splitlines()) if ledger.exists() else 0
            records[mode] = {p.name: p.read_bytes() for p in sorted((out / "generated").glob("*.jsonl"))}
            rows.append((mode, stats["requests"], batches, wall, cpu))
        assert records["live"] == records["batch"], "the two modes wrote different records"
    live_cpu = rows[0][4]
    for mode, n, batches, wall, cpu in rows:
        table.add_row(
            mode,
            str(n),
            str(batches),
            f"{wall:.1f}",
            f"{cpu:.1f}",
            f"{cpu / n * 1000:.2f}",
            f"{cpu / live_cpu:.2f}",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
