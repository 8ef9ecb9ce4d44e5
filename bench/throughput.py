"""Throughput of `augment generate` against an OpenAI-compatible server with a fixed latency.

    python bench/throughput.py [--requests 2400] [--latency 0.2] [--concurrency 64 256]

Starts tests/fake_openai.py in its own process (200 ms per request, short replies), builds a
corpus that yields at least --requests requests, and for each concurrency runs, each as its own
process and against the same server:

- `augment generate` (render, send, parse, cache, write: the whole command, start-up included);
- the peer: a plain `openai.AsyncOpenAI` loop over the same prompts (semaphore, no retries);
- a bare aiohttp loop over the same prompts (the ceiling for a Python client);
- `augment generate` again with 10 % of requests answered 429 or 500 with Retry-After: 1.

The limit is concurrency / latency requests per second. The table gives requests/s, its ratio to
the limit and to the bare aiohttp loop measured in the same run, and CPU seconds (user + system of
the client process) per 1,000 requests: for the whole process, and without the fixed start-up
cost (interpreter, imports, one-document ingest: measured as `augment generate` on one short
document against the same server).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
AUGMENT = str(Path(sys.executable).parent / "augment")

PEER = r"""
import asyncio, json, sys, time
import {client}
prompts = json.load(open(sys.argv[1])); url = sys.argv[2]; conc = int(sys.argv[3])
async def main():
    sem = asyncio.Semaphore(conc)
    {setup}
    async def one(p):
        async with sem:
            {call}
    await asyncio.gather(*(one(p) for p in prompts))
    {close}
asyncio.run(main())
"""

SDK = dict(
    client="openai",
    setup="cl = openai.AsyncOpenAI(base_url=url, api_key='x', max_retries=0)",
    call="r = await cl.chat.completions.create(model='fake-model', messages=[{'role': 'user', 'content': p}], "
    "max_tokens=256, temperature=0.7); r.choices[0].message.content",
    close="await cl.close()",
)
AIOHTTP = dict(
    client="aiohttp",
    setup="s = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), "
    "headers={'Authorization': 'Bearer x', 'Content-Type': 'application/json'})",
    call="r = await s.post(url + '/chat/completions', data=json.dumps({'model': 'fake-model', "
    "'messages': [{'role': 'user', 'content': p}], 'max_tokens': 256})); "
    "json.loads(await r.read())['choices'][0]['message']['content']",
    close="await s.close()",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def start_server(
    port: int, latency: float, faults: bool, serial: bool = False, reply_pad: int = 0
) -> subprocess.Popen:
    cmd = [
        sys.executable,
        str(REPO / "tests" / "fake_openai.py"),
        "--port",
        str(port),
        "--latency",
        str(latency),
        "--fast",
    ]
    if faults:
        cmd += ["--rate-429", "0.05", "--rate-500", "0.05", "--retry-after", "1"]
    if serial:
        cmd.append("--serial")  # one request at a time (bench/serial.py)
    if reply_pad:
        cmd += ["--reply-pad", str(reply_pad)]  # prose replies as long as a model's (bench/batch.py)
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(REPO)})
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("fake server did not start")


def make_corpus(folder: Path, n_docs: int) -> None:
    folder.mkdir(parents=True)
    for i in range(n_docs):
        text = " ".join(f"Station {i} logged {(i * 31 + s) % 997} storms in {1850 + s}." for s in range(40))
        (folder / f"doc{i:05d}.txt").write_text(f"Station {i}\n\n{text}\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2400)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[64, 256])
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        # one chunk per document, 7 requests per chunk (qa, 4 paraphrase styles, inferences, notes)
        docs = tmp_path / "docs"
        make_corpus(docs, -(-args.requests // 7))
        one = tmp_path / "one"
        one.mkdir()
        (one / "a.txt").write_text("Station 1 logged 3 storms in 1850.", encoding="utf-8")
        rows = []
        startup: tuple[float, float] | None = None
        for faults in (False, True):
            port = free_port()
            server = start_server(port, args.latency, faults)
            url = f"http://127.0.0.1:{port}/v1"
            env = {**os.environ, "OPENAI_API_KEY": "x"}
            try:
                if startup is None:
                    startup = timed(
                        [
                            AUGMENT,
                            "generate",
                            str(one),
                            "-o",
                            str(tmp_path / "startup"),
                            "--backend",
                            "openai",
                            "--model",
                            "fake-model",
                            "--base-url",
                            url,
                            "-q",
                            "--no-export",
                        ],
                        env,
                    )
                for conc in args.concurrency:
                    limit = conc / args.latency
                    run_dir = tmp_path / f"run-{conc}-{faults}"
                    cmd = [
                        AUGMENT,
                        "generate",
                        str(docs),
                        "-o",
                        str(run_dir),
                        "--backend",
                        "openai",
                        "--model",
                        "fake-model",
                        "--base-url",
                        url,
                        "--concurrency",
                        str(conc),
                        "--chunk-tokens",
                        "2000",
                        "-q",
                        "--no-export",
                        "--max-retries",
                        "10",
                    ]
                    wall, cpu = timed(cmd, env)
                    stats = json.loads((run_dir / "stats.json").read_text())
                    n = stats["requests"]
                    assert stats["complete"] and stats["failed_requests"] == 0, stats
                    name = "augment generate" + (" (10 % 429/500, Retry-After 1 s)" if faults else "")
                    rows.append((name, conc, n, wall, limit, cpu))
                    if faults:
                        continue
                    prompts = tmp_path / "prompts.json"
                    prompts.write_text(json.dumps(list(_prompts(run_dir))))
                    for peer, spec in (
                        ("openai.AsyncOpenAI loop (peer)", SDK),
                        ("bare aiohttp loop", AIOHTTP),
                    ):
                        script = tmp_path / "peer.py"
                        script.write_text(PEER.format(**spec))
                        wall, cpu = timed([sys.executable, str(script), str(prompts), url, str(conc)])
                        rows.append((peer, conc, n, wall, limit, cpu))
            finally:
                server.terminate()
                server.wait()

    assert startup is not None
    bare = {conc: n / wall for name, conc, n, wall, _, _ in rows if name == "bare aiohttp loop"}
    table = Table(
        title=f"OpenAI-compatible stub, {args.latency * 1000:.0f} ms per request, 2 cores, one process per row "
        f"(augment start-up: {startup[0]:.2f} s wall, {startup[1]:.2f} s CPU)"
    )
    columns = [
        "client",
        "in flight",
        "requests",
        "wall s",
        "req/s",
        "limit req/s",
        "ratio to limit",
        "ratio to bare aiohttp",
        "CPU s / 1000 req",
        "same, less start-up",
    ]
    for col in columns:
        table.add_column(col, justify="left" if col == "client" else "right")
    for name, conc, n, wall, limit, cpu in rows:
        steady = (cpu - startup[1]) / n * 1000 if name.startswith("augment") else None
        table.add_row(
            name,
            str(conc),
            str(n),
            f"{wall:.2f}",
            f"{n / wall:.0f}",
            f"{limit:.0f}",
            f"{n / wall / limit:.2f}",
            f"{n / wall / bare[conc]:.2f}",
            f"{cpu / n * 1000:.2f}",
            "-" if steady is None else f"{steady:.2f}",
        )
    Console(file=sys.stdout, width=200).print(table)


def _prompts(run_dir: Path):
    import sqlite3  # the prompts are not stored; rebuild them the way generate does

    from augment.config import load_config
    from augment.ingest import Chunker, ingest
    from augment.pipeline import Work
    from augment.strategies import load_strategies
    from augment.tokens import Tokenizer

    del sqlite3
    run = json.loads((run_dir / "run.json").read_text())
    cfg = load_config(None, {k: v for k, v in run["config"].items() if k in ("chunk_tokens", "strategies")})
    docs = ingest(run["inputs"]).documents
    chunks = list(Chunker(Tokenizer(), cfg.chunk_tokens, cfg.chunk_overlap).chunk_all(docs))
    for _, _, req in Work(chunks, load_strategies(cfg.strategies), cfg, "openai/chat", "fake-model"):
        yield req.prompt


if __name__ == "__main__":
    main()
