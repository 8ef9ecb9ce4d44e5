"""The generate stage: documents -> chunks -> requests -> backend -> parsed records on disk.

Writes into the run directory (see ARCHITECTURE.md): documents.jsonl, cache.sqlite,
generated/<strategy>.jsonl, failures.jsonl, stats.json and run.json. Replies are cached as they
arrive and records are appended in request order, so a killed run, re-run with the same command,
makes no call for what it already received and ends with the same files as an unbroken run.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from augment import __version__
from augment.backends import Backend, get_backend
from augment.config import RunConfig
from augment.errors import AugmentError
from augment.ingest import SUPPORTED, Chunker, IngestResult, ReadStore, Skipped, SkippedTypes, ingest
from augment.io import dumps, run_lock, sha256_hex, write_json, write_jsonl
from augment.pipeline.cache import ReadCache, ResponseCache
from augment.pipeline.deep import DeepWork, chunk_budgets
from augment.pipeline.limits import Limits
from augment.pipeline.parts import Shard, check_unsharded, part_dir, prepare_part, write_manifest
from augment.pipeline.runner import Budget, Outcome, Runner, RunState
from augment.pipeline.writer import OrderedJsonlWriter, Writer
from augment.strategies import Strategy, load_strategies
from augment.strategies.deep import DeepStrategy
from augment.strategies.parsers import answer_of
from augment.tokens import Tokenizer
from augment.types import Chunk, Document, GenRequest, GenResult

__all__ = ["GenerateSummary", "Hooks", "RunState", "Work", "generate", "versions"]


@dataclass
class Hooks:
    """Callbacks for the UI; the pipeline itself never prints."""

    on_skip: Callable[[Skipped | SkippedTypes], None] = lambda s: None
    on_read: Callable[[int, int], None] = lambda done, total: None  # files read of the inputs
    on_start: Callable[[RunState], None] = lambda state: None
    on_advance: Callable[[Outcome], None] = lambda outcome: None


@dataclass
class GenerateSummary:
    run_dir: Path
    files: int
    documents: int
    skipped: list[Skipped]
    chunks: int
    requests: int
    failed_requests: int = 0
    unanswered: int = 0  # failed in the backend (not cached: a re-run sends them again)
    not_sent: int = 0  # requests left out because the budget was spent
    records: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    prompt_tokens: int = 0  # of every reply the records came from, cached or new
    completion_tokens: int = 0
    state: RunState = field(default_factory=RunState)
    complete: bool = False
    cost: float | None = None
    seconds: float = 0.0
    # multi-step strategies: chunks, tasks available, tasks sent, tokens spent and budgeted
    multi_step: dict[str, dict[str, int]] = field(default_factory=dict)
    # requests answered (new or cached) and their tokens, per strategy (what `augment plan` estimates)
    by_strategy: dict[str, Counter[str]] = field(default_factory=dict)
    # what the server refused and this run stopped sending (the openai backend's `adjusted`)
    adjusted: list[str] = field(default_factory=list)
    # reading the inputs: files whose reading was kept from an earlier run (reads.sqlite), seconds
    files_kept: int = 0
    read_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        s = self.state
        return {
            "complete": self.complete,
            "budget_stopped": s.budget_stopped,
            "files": self.files,
            "documents": self.documents,
            "skipped": [x.to_dict() for x in self.skipped],
            "chunks": self.chunks,
            "requests": self.requests,
            "failed_requests": self.failed_requests,
            "unanswered": self.unanswered,
            "not_sent": self.not_sent,
            "records": dict(self.records),
            "failures": dict(self.failures),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost": self.cost,
            "multi_step": self.multi_step,
            "by_strategy": {k: dict(v) for k, v in self.by_strategy.items()},
            "this_run": {
                "model_calls": s.calls,
                "from_cache": s.cached,
                "retries": s.retries,
                "timeouts": s.timeouts,
                "reasks": s.reasks,
                "prompt_tokens": s.prompt_tokens,
                "completion_tokens": s.completion_tokens,
                "adjusted": self.adjusted,
                "files_read_earlier": self.files_kept,
                "read_s": round(self.read_seconds, 3),
            },
            "seconds": round(self.seconds, 3),
        }


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"augment": __version__, "python": platform.python_version()}
    for pkg in ("datasets", "pyarrow", "openai", "aiohttp", "semantic-text-splitter"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


def run_record(
    inputs: list[str],
    config: RunConfig,
    strategies: list[Strategy],
    corpus: list[Document],
    backend: str,
    model: str | None,
) -> dict[str, Any]:
    """run.json's fields that every engine writes (then `complete` and `timings` when it ends)."""
    return {
        "inputs": inputs,
        "config": config.model_dump(mode="json"),
        "backend": backend,
        "model": model,
        "strategies": {
            s.name: {"version": s.version, "sha256": s.sha256, "path": str(s.path)} for s in strategies
        },
        "source_fingerprint": sha256_hex("".join(sorted(d.sha256 for d in corpus))),
        "versions": versions(),
        "argv": sys.argv[1:],
        "complete": False,
    }


def cost(config: RunConfig, prompt_tokens: int, completion_tokens: int) -> float | None:
    if config.price_prompt_per_m is None and config.price_completion_per_m is None:
        return None
    return round(
        prompt_tokens / 1e6 * (config.price_prompt_per_m or 0.0)
        + completion_tokens / 1e6 * (config.price_completion_per_m or 0.0),
        6,
    )


def prompt_style(config: RunConfig, backend: Backend) -> str:
    """chat or completion: as configured, else what the model takes (base models: completion)."""
    if config.prompt_style != "auto":
        return config.prompt_style
    return "chat" if getattr(backend, "chat", True) else "completion"


class Work:
    """Every chunk of every document x every strategy x its variants and samples, in that order,
    built as it is sent: a run's prompts take ~20x its documents' text, so they are never all
    held at once. `len` and `counts` are counted on first use (each strategy's `count`, no
    prompt rendered).

    `backend` is the backend's identity (name and endpoint): it is part of every request key.
    """

    def __init__(
        self,
        chunks: list[Chunk],
        strategies: list[Strategy],
        config: RunConfig,
        backend: str,
        model: str,
        style: str = "chat",
    ):
        self.chunks, self.config, self.given = chunks, config, strategies
        self.backend, self.model, self.style = backend, model, style

    @functools.cached_property
    def counts(self) -> Counter[str]:
        """Requests per strategy."""
        out: Counter[str] = Counter()
        for chunk in self.chunks:
            for strategy in self.given:
                out[strategy.name] += strategy.count(chunk, self.config.samples)
        return out

    @property
    def strategies(self) -> list[Strategy]:
        """The strategies with a request, in the configured order (each gets its output files)."""
        return [s for s in self.given if self.counts[s.name]]

    def __len__(self) -> int:
        return sum(self.counts.values())

    def __iter__(self) -> Iterator[tuple[Chunk, Strategy, GenRequest]]:
        c = self.config
        for chunk in self.chunks:
            for strategy in self.given:
                for req in strategy.build(
                    chunk,
                    backend=self.backend,
                    model=self.model,
                    seed=c.seed,
                    samples=c.samples,
                    temperature=c.temperature,
                    max_tokens=c.max_tokens,
                    style=self.style,
                ):
                    yield chunk, strategy, req


def read_documents(
    inputs: list[str],
    config: RunConfig,
    on_skip: Callable[[Skipped | SkippedTypes], None],
    on_read: Callable[[int, int], None] | None = None,
    store: ReadStore | None = None,
) -> IngestResult:
    """The documents `inputs` name, or a one-line error when there are none."""
    ingested = ingest(
        inputs,
        patterns=config.glob,
        text_field=config.text_field,
        title_field=config.title_field,
        on_skip=on_skip,
        on_read=on_read,
        workers=config.read_workers,
        store=store,
    )
    if not ingested.documents:
        looked = ", ".join(config.glob or [f"*{s}" for s in SUPPORTED])
        raise AugmentError(
            f"no documents in {', '.join(inputs)} (looked for {looked}; {sum(s.files for s in ingested.skipped)} skipped)."
            " Use --glob to change what is read."
        )
    return ingested


def generate(
    inputs: list[str],
    run_dir: Path,
    config: RunConfig,
    hooks: Hooks | None = None,
    backend: Backend | None = None,
    shard: Shard | None = None,
) -> GenerateSummary:
    """Ingest, chunk and generate every configured strategy into `run_dir` (resumable).

    With `shard`, only the documents of that part, into RUN/parts/<part>/ (see pipeline.parts).
    """
    hooks = hooks or Hooks()
    t0 = time.perf_counter()
    strategies = load_strategies(config.strategies, config.prompts_dir)
    tokenizer = Tokenizer(config.tokenizer)
    # what slow files read to is kept beside the replies (a part's, in its own folder)
    reads = ReadCache((run_dir if shard is None else part_dir(run_dir, shard)) / "reads.sqlite")
    t_read = time.perf_counter()
    try:
        ingested = read_documents(inputs, config, hooks.on_skip, hooks.on_read, reads)
    finally:
        reads.close()  # until this process holds the run's lock, its folder is left as it was
    read_seconds = time.perf_counter() - t_read
    corpus = ingested.documents
    if shard is None:
        check_unsharded(run_dir)
        documents, positions = corpus, list(range(len(corpus)))
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        run_dir = prepare_part(run_dir, shard)
        positions = [i for i, d in enumerate(corpus) if shard.owns(d.doc_id)]
        documents = [corpus[i] for i in positions]
    if backend is None:  # after the input checks: loading a model takes a while
        backend = get_backend(config)
        if hasattr(backend, "check_served"):  # a server: is --model one it serves?
            backend.check_served()
    run_dir.mkdir(parents=True, exist_ok=True)
    with run_lock(run_dir):  # a second augment writing this run stops here, with one line
        reads.save()
        write_jsonl(run_dir / "documents.jsonl", (d.to_dict() for d in documents))

        chunker = Chunker(tokenizer, config.chunk_tokens, config.chunk_overlap)
        chunks = list(chunker.chunk_all(documents))
        # a corpus-wide budget is shared over the chunks of every part, so a part needs them all
        corpus_chunks = (
            list(chunker.chunk_all(corpus))
            if shard is not None
            and config.budget_scope == "corpus"
            and any(isinstance(s, DeepStrategy) for s in strategies)
            else chunks
        )
        style = prompt_style(config, backend)
        work = Work(chunks, strategies, config, backend.identity, backend.model, style)

        summary = GenerateSummary(
            run_dir=run_dir,
            files=ingested.files,
            documents=len(documents),
            skipped=ingested.skipped,
            chunks=len(chunks),
            requests=len(work),
            files_kept=ingested.from_store,
            read_seconds=read_seconds,
        )
        run_info = run_record(inputs, config, strategies, corpus, backend.name, backend.model)
        run_info["prompt_style"] = style
        if shard is not None:
            run_info["shard"] = str(shard)
        write_json(run_dir / "run.json", run_info)
        budgets = deep_budgets(corpus_chunks, strategies, config)
        cache = ResponseCache(run_dir / "cache.sqlite")

        def open_file(name: str) -> OrderedJsonlWriter:
            return OrderedJsonlWriter(run_dir / name)

        try:
            asyncio.run(
                _generate_records(backend, work, open_file, cache, config, summary, hooks, style, budgets)
            )
        finally:
            summary.seconds = time.perf_counter() - t0
            summary.cost = cost(config, summary.prompt_tokens, summary.completion_tokens)
            summary.adjusted = list(getattr(backend, "adjusted", []))
            write_json(run_dir / "stats.json", summary.to_dict())
            run_info["complete"] = summary.complete
            if summary.adjusted:  # the records' params are what was asked, not all of it was sent
                run_info["adjusted"] = summary.adjusted
            run_info["timings"] = {"generate_s": round(summary.seconds, 3)}
            write_json(run_dir / "run.json", run_info)
        if shard is not None and summary.complete:
            write_manifest(run_dir, shard, positions, run_info)
        return summary


# a request of a round: its chunk, strategy, the multi-step work it belongs to, its worst-case tokens
_Item = tuple[Chunk, Strategy, GenRequest, DeepWork | None, int]


async def _generate_records(
    backend: Backend,
    work: Work,
    open_file: Callable[[str], Writer],
    cache: ResponseCache,
    config: RunConfig,
    summary: GenerateSummary,
    hooks: Hooks,
    style: str,
    budgets: dict[str, dict[str, int]],
    close_backend: bool = True,
) -> None:
    """Send `work` (and the waves of multi-step strategies), write records, first steps and
    failures in request order to the files `open_file` opens (paths relative to the run directory)."""
    by_name = {s.name: s for s in work.strategies}

    def parse(req: GenRequest, result: GenResult):
        text = answer_of(result.text)  # a reasoning model's thoughts are not training data
        for stop in req.stop:  # where the server does not stop there (or was not asked to: adjusted)
            text = text.split(stop, 1)[0]
        return by_name[req.strategy].parse_request(req, req.primer + text, result.finish_reason)

    state = summary.state
    limits = Limits.of(backend, config)
    runner = Runner(
        backend,
        cache=cache,
        parse=parse,
        limits=limits,
        budget=Budget(
            config.max_requests, config.max_tokens_total, state, count_tokens=config.tpm is not None
        ),
        state=state,
        max_retries=config.max_retries,
        max_parse_retries=config.max_parse_retries,
    )
    names = [s.name for s in work.strategies]
    writers = {name: open_file(f"generated/{name}.jsonl") for name in names}
    deep_names = [n for n in names if isinstance(by_name[n], DeepStrategy)]
    step_writers = {name: open_file(f"steps/{name}.jsonl") for name in deep_names}
    failures = open_file("failures.jsonl")
    deep = _deep_work(work, config, budgets)

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
        if req.step:
            row["step"] = req.step
            row["wave"] = state.round
        if raw is not None:
            row["raw"] = raw[:2000]
        failures.write_line(dumps(row) + "\n")

    def first_step(dw: DeepWork, req: GenRequest, outcome: Outcome) -> None:
        parsed = outcome.parsed
        tasks = dw.strategy.tasks(dw.chunk, parsed, config.seed, config.samples) if parsed else []
        dw.start(req, outcome.result, tasks)
        if parsed is not None:
            row = {
                "chunk_id": dw.chunk.chunk_id,
                "strategy": dw.strategy.name,
                "step": req.step,
                "request": req.key[:16],
                "items": parsed.items,
                **parsed.meta,
                "tasks": len(tasks),
                "budget_tokens": dw.budget,
                "usage": {
                    "prompt_tokens": outcome.result.usage.prompt_tokens if outcome.result else 0,
                    "completion_tokens": outcome.result.usage.completion_tokens if outcome.result else 0,
                },
            }
            step_writers[dw.strategy.name].write_line(dumps(row) + "\n")

    def task_request(dw: DeepWork):
        return lambda task: dw.strategy.task_request(
            dw.chunk,
            task,
            backend=backend.identity,
            model=backend.model,
            seed=config.seed,
            temperature=config.temperature,
            max_tokens=config.max_tokens,
            style=style,
        )

    # each round: (chunk, strategy, request, the multi-step work it belongs to, its worst-case tokens);
    # the first is built as the runner takes it, and what it took is held until its outcome is out
    first = (
        (chunk, strategy, req, deep.get((chunk.chunk_id, strategy.name)), 0) for chunk, strategy, req in work
    )
    current: Iterable[_Item] = first
    size = len(work)
    held: dict[int, _Item] = {}

    def hold(
        items: Iterable[_Item],
    ) -> Iterator[GenRequest]:
        for i, item in enumerate(items):
            held[i] = item
            yield item[2]

    summary.requests = 0
    try:
        while size:
            state.round += 1
            state.total += size
            summary.requests += size
            if state.round == 1:
                hooks.on_start(state)
            held.clear()
            async for outcome in runner.run(hold(current)):
                chunk, strategy, req, dw, worst = held.pop(outcome.index)
                state.done += 1
                if outcome.skipped:
                    summary.not_sent += 1
                    hooks.on_advance(outcome)
                    continue
                state.cached += outcome.cached
                if outcome.result is not None:
                    usage = outcome.result.usage
                    summary.prompt_tokens += usage.prompt_tokens
                    summary.completion_tokens += usage.completion_tokens
                    summary.by_strategy.setdefault(strategy.name, Counter()).update(
                        requests=1,
                        prompt_tokens=usage.prompt_tokens,
                        completion_tokens=usage.completion_tokens,
                    )
                if dw is not None:
                    if req.step == dw.strategy.steps[0]:
                        first_step(dw, req, outcome)
                    else:
                        dw.spend(outcome.result, worst)
                if outcome.parsed is None:
                    summary.failed_requests += 1
                    state.failed += 1
                    summary.unanswered += outcome.result is None
                    raw = outcome.result.text if outcome.result is not None else None
                    fail(outcome.error or "backend_error", chunk, strategy, req, raw)
                    hooks.on_advance(outcome)
                    continue
                for reason in outcome.parsed.rejected:
                    fail(f"parse_error: {reason}", chunk, strategy, req, None)
                parents = dw.parents if dw is not None and req.step != dw.strategy.steps[0] else None
                records = strategy.records(
                    chunk,
                    req,
                    outcome.result,
                    outcome.parsed,
                    backend=backend.name,
                    model=backend.model,
                    parents=parents,
                )
                out = writers[strategy.name]
                for rec in records:
                    if dw is not None:
                        rec["wave"] = state.round  # the order a merge of sharded parts restores
                    out.write_line(dumps(rec) + "\n")
                summary.records[strategy.name] += len(records)
                hooks.on_advance(outcome)
            if state.budget_stopped:
                break  # the run stops here; a re-run recomputes the next waves from the cache
            # later waves are built whole: each multi-step chunk's tasks depend on what it spent
            wave = [
                (dw.chunk, dw.strategy, req, dw, worst)
                for dw in deep.values()
                for req, worst in dw.wave(task_request(dw))
            ]
            current, size = wave, len(wave)
        summary.complete = summary.not_sent == 0 and not state.budget_stopped and summary.unanswered == 0
    finally:
        summary.multi_step = _multi_step_summary(deep)
        try:
            for w in (*writers.values(), *step_writers.values(), failures):
                w.close(complete=summary.complete)
            # replies to prompts the server cut, received before that was seen (openai backend)
            runner.cache.forget(list(getattr(backend, "cut_keys", ())))
            runner.cache.close()
        finally:
            if close_backend:
                await backend.aclose()


def deep_budgets(
    chunks: list[Chunk], strategies: list[Strategy], config: RunConfig
) -> dict[str, dict[str, int]]:
    """strategy -> chunk_id -> tokens, for the multi-step strategies. `chunks` are every chunk the
    budget is shared over: with --budget-scope corpus, all of the corpus's, even when this process
    generates only part of it."""
    return {
        s.name: chunk_budgets(chunks, config.budget_tokens or s.budget_tokens, config.budget_scope)
        for s in strategies
        if isinstance(s, DeepStrategy)
    }


def _deep_work(
    work: Work, config: RunConfig, budgets: dict[str, dict[str, int]]
) -> dict[tuple[str, str], DeepWork]:
    """A DeepWork (budget, tasks, spending) for every chunk of every multi-step strategy."""
    count = Tokenizer(config.tokenizer).count
    out = {}
    for strategy in work.strategies:
        if not isinstance(strategy, DeepStrategy):
            continue
        for c in work.chunks:
            out[(c.chunk_id, strategy.name)] = DeepWork(
                c, strategy, budgets[strategy.name][c.chunk_id], count
            )
    return out


def _multi_step_summary(deep: dict[tuple[str, str], DeepWork]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for (_, name), dw in deep.items():
        agg = out.setdefault(
            name, {"chunks": 0, "tasks": 0, "sent": 0, "spent_tokens": 0, "budget_tokens": 0}
        )
        agg["chunks"] += 1
        for k, v in dw.summary().items():
            agg[k] += v
    return out
