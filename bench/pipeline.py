"""Throughput of the whole generate path with the mock backend, against the backend alone.

    python bench/pipeline.py [--docs 200] [--concurrency 64]

Prints one table: requests, records, wall seconds, requests/s for (a) the backend called in a
plain loop (the peer: no ingest, chunking, prompts, parsing or writing) and (b) `augment generate`
end to end (ingest + chunk + render + backend + parse + write + export), and (b)'s share of (a)'s
rate. The mock answers instantly, so this measures augment's own overhead per request.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from augment.backends.mock import MockBackend
from augment.config import load_config
from augment.ingest import Chunker, ingest
from augment.pipeline import Work, generate
from augment.shards import export
from augment.strategies import load_strategies
from augment.tokens import Tokenizer

WORDS = [
    "lighthouse",
    "keeper",
    "granite",
    "lantern",
    "paraffin",
    "harbour",
    "storm",
    "steamer",
    "signal",
    "gallery",
    "museum",
]


def make_corpus(folder: Path, n: int) -> None:
    for i in range(n):
        paras = []
        for p in range(6):
            sents = [
                f"In {1850 + (i * 7 + p * 3 + s) % 150} the {WORDS[(i + s) % len(WORDS)]} of Station {i} "
                f"recorded {(i * 31 + p * 17 + s) % 997} {WORDS[(p + s) % len(WORDS)]}s near Cape {chr(65 + (i + p) % 26)}."
                for s in range(5)
            ]
            paras.append(" ".join(sents))
        (folder / f"doc{i:05d}.md").write_text(f"# Station {i}\n\n" + "\n\n".join(paras), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=64)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp) / "docs"
        docs.mkdir()
        make_corpus(docs, args.docs)
        cfg = load_config(None, {"backend": "mock", "concurrency": args.concurrency, "chunk_tokens": 256})

        # (a) the peer: the same requests straight through the backend, nothing else
        documents = ingest([str(docs)]).documents
        chunks = list(Chunker(Tokenizer(), cfg.chunk_tokens, cfg.chunk_overlap).chunk_all(documents))
        work = list(Work(chunks, load_strategies(cfg.strategies), cfg, "mock", "mock"))
        backend = MockBackend()

        async def loop() -> None:
            for _, _, req in work:
                await backend.generate(req)

        t = time.perf_counter()
        asyncio.run(loop())
        peer_s = time.perf_counter() - t

        # (b) augment generate + export, end to end
        t = time.perf_counter()
        summary = generate([str(docs)], Path(tmp) / "run", cfg)
        export(Path(tmp) / "run")
        full_s = time.perf_counter() - t

    n = len(work)
    table = Table(
        title=f"mock generate, {args.docs} documents, {summary.chunks} chunks, concurrency {args.concurrency}"
    )
    for col in ("path", "requests", "records", "wall s", "requests/s", "ratio to backend alone"):
        table.add_column(col, justify="right" if col != "path" else "left")
    table.add_row("backend alone (peer)", str(n), "-", f"{peer_s:.2f}", f"{n / peer_s:.0f}", "1.00")
    table.add_row(
        "augment generate + export",
        str(summary.requests),
        str(sum(summary.records.values())),
        f"{full_s:.2f}",
        f"{summary.requests / full_s:.0f}",
        f"{(summary.requests / full_s) / (n / peer_s):.2f}",
    )
    Console(file=sys.stdout).print(table)


if __name__ == "__main__":
    main()
