"""`augment generate` against a server that answers one request at a time, with a short timeout.

    python bench/serial.py [--requests 700] [--latency 0.02] [--timeout 1.0] [--concurrency 64 1]

llama-cpp-python's server answers one request at a time and works through every request it was
sent, including those whose client stopped waiting. With more requests in flight than it answers
within `request_timeout`, the queued ones time out and are sent again. augment then cuts the
requests in flight (halving, once for the requests that timed out together, never growing back to
a number that timed out). This measures what that costs against the same command at
--concurrency 1, the setting that suits such a server, on the same server in the same run.

Starts tests/fake_openai.py --serial (--latency seconds a request, one at a time) in its own
process, builds a corpus of at least --requests requests (7 a document), and runs `augment
generate` once per concurrency with `request_timeout = --timeout`. The limit is the server's own
time, requests x latency. The table gives wall seconds, its ratio to the limit, the calls that
timed out, and the requests in flight at the end.
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
    ap.add_argument("--requests", type=int, default=700)
    ap.add_argument("--latency", type=float, default=0.02)
    ap.add_argument("--timeout", type=float, default=1.0)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[64, 1])
    args = ap.parse_args()

    table = Table(
        title=f"augment generate against a one-at-a-time server ({args.latency * 1000:g} ms a request)"
    )
    for col in (
        "concurrency",
        "requests",
        "wall s",
        "x the server's time",
        "timeouts",
        "in flight at the end",
    ):
        table.add_column(col, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        docs = tmp_path / "docs"
        make_corpus(docs, -(-args.requests // 7))
        config = tmp_path / "serial.toml"
        config.write_text(f"request_timeout = {args.timeout}\nmax_retries = 8\n")
        for conc in args.concurrency:
            port = free_port()  # a fresh server each: no queue left from the last run
            server = start_server(port, args.latency, faults=False, serial=True)
            out = tmp_path / f"run-c{conc}"
            cmd = [AUGMENT, "generate", str(docs), "-o", str(out), "-c", str(config), "--backend", "openai"]
            cmd += ["--base-url", f"http://127.0.0.1:{port}/v1", "--model", "fake-model"]
            cmd += ["--concurrency", str(conc), "--no-curate", "--quiet"]
            try:
                t = time.perf_counter()
                done = subprocess.run(
                    cmd, env={**os.environ, "OPENAI_API_KEY": "x"}, capture_output=True, text=True
                )
                wall = time.perf_counter() - t
            finally:
                server.terminate()
                server.wait()
            stats = json.loads((out / "stats.json").read_text())
            if done.returncode != 0:
                print(f"concurrency {conc}: exit {done.returncode}: {done.stdout[-500:]}{done.stderr[-500:]}")
            n = stats["requests"]
            limit = n * args.latency
            end = "" if done.returncode == 0 else f" (exit {done.returncode})"
            cut = (
                " ".join((done.stdout + done.stderr).split()).partition("were cut from ")[2].partition(":")[0]
            )
            table.add_row(
                str(conc),
                f"{n - stats['failed_requests']} of {n}",
                f"{wall:.1f}{end}",
                f"{wall / limit:.2f}",
                str(stats["this_run"].get("timeouts", "n/a")),
                cut.replace(" to ", " -> ") or str(conc),
            )
    Console().print(table)


if __name__ == "__main__":
    main()
