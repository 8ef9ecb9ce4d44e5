"""The generate stage: documents -> chunks -> requests -> backend -> parsed records on disk.

Writes into the run directory (see ARCHITECTURE.md): documents.jsonl, generated/<strategy>.jsonl,
failures.jsonl, stats.json and run.json. Every file is written to a temporary name and renamed
when complete, so a killed run never leaves a torn file behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from augment import __version__
from augment.backends import get_backend
from augment.config import RunConfig
from augment.errors import AugmentError, ParseError
from augment.ingest import SUPPORTED, Chunker, Skipped, ingest
from augment.io import atomic_path, dumps, sha256_hex, write_json, write_jsonl
from augment.pipeline.runner import run_requests
from augment.strategies import Strategy, load_strategies
from augment.tokens import Tokenizer
from augment.types import Chunk, GenRequest


@dataclass
class Hooks:
    """Callbacks for the UI; the pipeline itself never prints."""

    on_skip: Callable[[Skipped], None] = lambda s: None
    on_start: Callable[[int], None] = lambda total: None
    on_advance: Callable[[bool], None] = lambda ok: None
    on_retry: Callable[[], None] = lambda: None


@dataclass
class GenerateSummary:
    run_dir: Path
    files: int
    documents: int
    skipped: list[Skipped]
    chunks: int
    requests: int
    failed_requests: int
    records: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "documents": self.documents,
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "chunks": self.chunks,
            "requests": self.requests,
            "failed_requests": self.failed_requests,
            "records": dict(self.records),
            "failures": dict(self.failures),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "retries": self.retries,
            "seconds": round(self.seconds, 3),
        }


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"augment": __version__, "python": platform.python_version()}
    for pkg in ("datasets", "pyarrow", "openai", "semantic-text-splitter"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


def build_requests(
    chunks: list[Chunk], strategies: list[Strategy], config: RunConfig, backend: str, model: str
) -> list[tuple[Chunk, Strategy, GenRequest]]:
    """Every chunk of every document x every strategy x its variants and samples."""
    out = []
    for chunk in chunks:
        for strategy in strategies:
            for req in strategy.build(
                chunk,
                backend=backend,
                model=model,
                seed=config.seed,
                samples=config.samples,
                temperature=config.temperature,
                max_tokens=config.max_tokens,
            ):
                out.append((chunk, strategy, req))
    return out


def generate(
    inputs: list[str], run_dir: Path, config: RunConfig, hooks: Hooks | None = None
) -> GenerateSummary:
    """Ingest, chunk and generate every configured strategy into `run_dir`."""
    hooks = hooks or Hooks()
    t0 = time.perf_counter()
    strategies = load_strategies(config.strategies, config.prompts_dir)
    tokenizer = Tokenizer(config.tokenizer)
    backend = get_backend(config)

    ingested = ingest(
        inputs,
        patterns=config.glob,
        text_field=config.text_field,
        title_field=config.title_field,
        on_skip=hooks.on_skip,
    )
    if not ingested.documents:
        looked = ", ".join(config.glob or [f"*{s}" for s in SUPPORTED])
        raise AugmentError(
            f"No documents in {', '.join(inputs)} (looked for {looked}; {len(ingested.skipped)} skipped)."
            " Use --glob to change what is read."
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(run_dir / "documents.jsonl", (d.to_dict() for d in ingested.documents))

    chunker = Chunker(tokenizer, config.chunk_tokens, config.chunk_overlap)
    chunks = list(chunker.chunk_all(ingested.documents))
    work = build_requests(chunks, strategies, config, backend.name, backend.model)

    summary = GenerateSummary(
        run_dir=run_dir,
        files=ingested.files,
        documents=len(ingested.documents),
        skipped=ingested.skipped,
        chunks=len(chunks),
        requests=len(work),
        failed_requests=0,
    )

    def on_retry() -> None:
        summary.retries += 1
        hooks.on_retry()

    hooks.on_start(len(work))
    asyncio.run(_generate_records(backend, work, run_dir, config, summary, on_retry, hooks))
    summary.seconds = time.perf_counter() - t0

    write_json(run_dir / "stats.json", summary.to_dict())
    write_json(
        run_dir / "run.json",
        {
            "inputs": inputs,
            "config": config.model_dump(mode="json"),
            "backend": backend.name,
            "model": backend.model,
            "strategies": {
                s.name: {"version": s.version, "sha256": s.sha256, "path": str(s.path)} for s in strategies
            },
            "source_fingerprint": sha256_hex("".join(sorted(d.sha256 for d in ingested.documents))),
            "versions": versions(),
            "argv": sys.argv[1:],
            "timings": {"generate_s": round(summary.seconds, 3)},
        },
    )
    return summary


async def _generate_records(
    backend: Any,
    work: list[tuple[Chunk, Strategy, GenRequest]],
    run_dir: Path,
    config: RunConfig,
    summary: GenerateSummary,
    on_retry: Callable[[], None],
    hooks: Hooks,
) -> None:
    gen_dir = run_dir / "generated"
    gen_dir.mkdir(parents=True, exist_ok=True)
    names = list(dict.fromkeys(s.name for _, s, _ in work)) or list(config.strategies)
    with contextlib.ExitStack() as stack:
        files: dict[str, IO[str]] = {}
        for name in names:
            tmp = stack.enter_context(atomic_path(gen_dir / f"{name}.jsonl"))
            files[name] = stack.enter_context(open(tmp, "w", encoding="utf-8"))
        fail_tmp = stack.enter_context(atomic_path(run_dir / "failures.jsonl"))
        failures = stack.enter_context(open(fail_tmp, "w", encoding="utf-8"))

        def fail(reason: str, chunk: Chunk, strategy: Strategy, req: GenRequest, raw: str | None) -> None:
            summary.failures[reason] += 1
            row = {
                "reason": reason,
                "request": req.key[:16],
                "chunk_id": chunk.chunk_id,
                "strategy": strategy.name,
                "variant": req.variant,
                "sample": req.sample,
            }
            if raw is not None:
                row["raw"] = raw[:2000]
            failures.write(dumps(row) + "\n")

        requests = [req for _, _, req in work]
        try:
            async for outcome in run_requests(
                backend,
                requests,
                concurrency=config.concurrency,
                max_retries=config.max_retries,
                on_retry=on_retry,
            ):
                chunk, strategy, req = work[outcome.index]
                if outcome.result is None:
                    summary.failed_requests += 1
                    fail(outcome.error or "backend_error", chunk, strategy, req, None)
                    hooks.on_advance(False)
                    continue
                summary.prompt_tokens += outcome.result.usage.prompt_tokens
                summary.completion_tokens += outcome.result.usage.completion_tokens
                try:
                    parsed = strategy.parse(outcome.result.text)
                except ParseError as e:
                    summary.failed_requests += 1
                    fail(f"parse_error: {e}", chunk, strategy, req, outcome.result.text)
                    hooks.on_advance(False)
                    continue
                for reason in parsed.rejected:
                    fail(f"parse_error: {reason}", chunk, strategy, req, None)
                records = strategy.records(
                    chunk, req, outcome.result, parsed, backend=backend.name, model=backend.model
                )
                out = files[strategy.name]
                for rec in records:
                    out.write(dumps(rec) + "\n")
                summary.records[strategy.name] += len(records)
                hooks.on_advance(True)
        finally:
            await backend.aclose()
