"""`--engine ray`: the generate stage as a Ray Data job (optional extra `ray`).

The driver reads the documents with the same readers as the local engine (same doc ids) and
hands them to Ray as a dataset. `map_batches` runs `_Generate` actors, each owning one backend
for its lifetime — an in-process vLLM engine per GPU actor, a client of an OpenAI-compatible
server (point actors at a pool with a load balancer's URL), or the mock — and each batch of whole
documents goes through the local engine's own request loop (chunking, strategies, multi-step
waves and budgets, parsing), so requests, records and ids are those of a local run. Lines come
back with the key that puts them in the local engine's order; records are written as Parquet
(RUN/ray/generated/) and, sorted, as the run directory's usual JSONL files, so curate, export,
stats and train read a Ray run like any other.

Replies are cached in RUN/ray/cache/, one SQLite file per batch of documents (a batch is the
same documents on a re-run), so a stopped job re-run with the same command resumes with no new
call for what was answered. On a cluster, RUN must be on a filesystem every node sees for that.

What is per node and what is global: generation is per actor (no shared state); ordering the
output is a distributed sort; the only all-to-all step in curation is the groupby on band hashes
in `curate.ray_dedup`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from augment.config import RunConfig
from augment.errors import AugmentError, ConfigError
from augment.io import atomic_write, dumps, sha256_hex, write_json, write_jsonl
from augment.ray_cluster import init_ray
from augment.types import Document

_KEYS = ["file", "wave", "group", "pos", "chunk", "seq"]
_COLUMNS = [*_KEYS, "record", "line"]


class _Lines:
    """Writers that keep lines in memory with the key that orders them as the local engine does."""

    def __init__(self, positions: dict[str, int], order: dict[str, int]):
        self.positions = positions
        self.order = order
        self.rows: list[dict[str, Any]] = []

    def open(self, name: str) -> _Lines.File:
        return _Lines.File(self, name)

    class File:
        def __init__(self, owner: _Lines, name: str):
            self.owner, self.name = owner, name

        def write_line(self, line: str) -> None:
            row = json.loads(line)
            doc_id, _, chunk = row["chunk_id"].rpartition(":")
            wave = row.get("wave", 1)
            # failures of later waves go strategy by strategy, as the local engine sends them
            group = (
                self.owner.order.get(row["strategy"], 0) if self.name == "failures.jsonl" and wave > 1 else 0
            )
            rows = self.owner.rows
            rows.append(
                {
                    "file": self.name,
                    "wave": wave,
                    "group": group,
                    "pos": self.owner.positions[doc_id],
                    "chunk": int(chunk),
                    "seq": len(rows),
                    "record": self.name.startswith("generated/"),
                    "line": line,
                }
            )

        def close(self, complete: bool = True) -> None:
            pass


class _Progress:
    """A Ray actor that adds up the batches' counts, for the driver's progress lines."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, counts: dict[str, int]) -> None:
        self.counts.update(counts)

    def get(self) -> dict[str, int]:
        return dict(self.counts)


def _run_with_progress(ray: Any, job: Any, progress: Any, total: int, hooks: Any, every: float = 1.0) -> Any:
    """Run `job()` (which blocks on Ray) in a thread; meanwhile report documents done, as the local
    engine reports requests (a bar on a terminal, plain lines in a log)."""
    from concurrent.futures import ThreadPoolExecutor

    from augment.pipeline.runner import RunState

    state = RunState(total=total)
    hooks.on_start(state)

    def poll() -> None:
        c = ray.get(progress.get.remote())
        state.done = state.answered = c.get("documents", 0)
        state.calls, state.failed, state.retries = c.get("calls", 0), c.get("failed", 0), c.get("retries", 0)
        state.prompt_tokens, state.completion_tokens = (
            c.get("prompt_tokens", 0),
            c.get("completion_tokens", 0),
        )
        hooks.on_advance(None)

    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(job)
        while True:
            try:
                result = future.result(timeout=every)
                break
            except TimeoutError:
                poll()
            except Exception as e:
                raise _user_error(e) from None
    poll()
    return result


def _user_error(e: BaseException) -> AugmentError:
    """The AugmentError an actor raised (a dead server, a bad prompt file), out of Ray's wrapping, so
    the CLI prints its one line; anything else as one line naming the Ray job.

    Ray sends an actor's exception to the driver as text (its traceback inside a RayTaskError), so
    the error is found by its qualified name in that text."""
    from augment import errors

    text = str(e)
    for name, message in re.findall(r"augment\.errors\.(\w+): (.+)", text):
        cls = getattr(errors, name, None)
        if isinstance(cls, type) and issubclass(cls, AugmentError):
            try:
                return cls(message.strip())
            except TypeError:
                return AugmentError(message.strip())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith(" ")]
    return AugmentError(f"the Ray job failed: {lines[-1] if lines else type(e).__name__}")


class _Generate:
    """A Ray actor: one backend for its lifetime, the local request loop for each batch of documents."""

    def __init__(self, config: dict[str, Any], cache_dir: str, progress: Any = None):
        from augment.backends import get_backend
        from augment.ingest import Chunker
        from augment.pipeline import prompt_style
        from augment.strategies import load_strategies
        from augment.tokens import Tokenizer

        self.config = RunConfig(**config)
        self.progress = progress  # a _Progress actor: what the driver's progress lines count
        self.cache_dir = Path(cache_dir)
        self.strategies = load_strategies(self.config.strategies, self.config.prompts_dir)
        self.order = {s.name: i for i, s in enumerate(self.strategies)}
        self.backend = get_backend(self.config)
        self.style = prompt_style(self.config, self.backend)
        self.chunker = Chunker(
            Tokenizer(self.config.tokenizer), self.config.chunk_tokens, self.config.chunk_overlap
        )
        self.loop = asyncio.new_event_loop()  # one loop per actor: a server client's session outlives a batch

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        from augment.pipeline import GenerateSummary, Hooks, Work, _generate_records, deep_budgets
        from augment.pipeline.cache import ResponseCache

        docs = [Document(**json.loads(d)) for d in batch["document"]]
        chunks = list(self.chunker.chunk_all(docs))
        work = Work(
            chunks, self.strategies, self.config, self.backend.identity, self.backend.model, self.style
        )
        budgets = deep_budgets(chunks, self.strategies, self.config)
        for given in batch["budgets"]:  # --budget-scope corpus: shares computed over the whole corpus
            for name, shares in json.loads(given).items():
                budgets[name].update(shares)
        lines = _Lines({d.doc_id: int(p) for d, p in zip(docs, batch["pos"], strict=True)}, self.order)
        summary = GenerateSummary(
            run_dir=Path("."),
            files=0,
            documents=len(docs),
            skipped=[],
            chunks=len(chunks),
            requests=len(work),
        )
        # one cache file per batch of documents (the batches are the same on a re-run), so a job that
        # was stopped resumes without asking again, and no two actors write the same file
        key = sha256_hex("\x1f".join(d.doc_id for d in docs))[:16]
        cache = ResponseCache(self.cache_dir / f"{key}.sqlite")
        self.loop.run_until_complete(
            _generate_records(
                self.backend,
                work,
                lines.open,
                cache,
                self.config,
                summary,
                Hooks(),
                self.style,
                budgets,
                close_backend=False,
            )
        )
        summary.adjusted = list(getattr(self.backend, "adjusted", []))  # what the server refused so far
        if self.progress is not None:
            s = summary.state
            self.progress.add.remote(
                {
                    "documents": len(docs),
                    "requests": summary.requests,
                    "calls": s.calls,
                    "failed": s.failed,
                    "retries": s.retries,
                    "prompt_tokens": s.prompt_tokens,
                    "completion_tokens": s.completion_tokens,
                }
            )
        rows = lines.rows
        # the batch's counts, for the run's stats.json
        rows.append(dict.fromkeys(_KEYS, 0) | {"file": "", "record": False, "line": dumps(summary.to_dict())})
        return {k: [r[k] for r in rows] for k in _COLUMNS}


def generate_ray(
    inputs: list[str],
    run_dir: Path,
    config: RunConfig,
    hooks: Any = None,
    *,
    address: str | None = None,
    actors: int | None = None,
    docs_per_batch: int = 8,
) -> Any:
    """Generate into `run_dir` on a Ray cluster; the same files (and ids) as `pipeline.generate`."""
    from augment.backends.base import backend_name
    from augment.ingest import Chunker
    from augment.pipeline import GenerateSummary, Hooks, cost, deep_budgets, read_documents, run_record
    from augment.pipeline.cache import ReadCache
    from augment.pipeline.parts import check_unsharded, sum_stats
    from augment.strategies import load_strategies
    from augment.strategies.deep import DeepStrategy
    from augment.tokens import Tokenizer

    hooks = hooks or Hooks()
    for name in ("max_requests", "max_tokens_total"):
        if getattr(config, name) is not None:
            raise ConfigError(
                f"--{name.replace('_', '-')} counts one process's requests; with --engine ray use --budget-tokens"
            )
    t0 = time.perf_counter()
    strategies = load_strategies(config.strategies, config.prompts_dir)
    reads = ReadCache(run_dir / "reads.sqlite")
    try:
        ingested = read_documents(inputs, config, hooks.on_skip, hooks.on_read, reads)
    finally:
        reads.close()
    documents = ingested.documents
    check_unsharded(run_dir)
    if backend_name(config) == "openai":
        from augment.backends.openai import OpenAIBackend

        OpenAIBackend.from_config(config).check_served()  # here: each actor builds its own backend
    run_dir.mkdir(parents=True, exist_ok=True)
    reads.save()
    write_jsonl(run_dir / "documents.jsonl", (d.to_dict() for d in documents))
    given: list[dict[str, dict[str, int]]] = [{} for _ in documents]
    if config.budget_scope == "corpus" and any(isinstance(s, DeepStrategy) for s in strategies):
        chunker = Chunker(Tokenizer(config.tokenizer), config.chunk_tokens, config.chunk_overlap)
        index = {d.doc_id: i for i, d in enumerate(documents)}
        for name, shares in deep_budgets(list(chunker.chunk_all(documents)), strategies, config).items():
            for chunk_id, tokens in shares.items():
                given[index[chunk_id.rpartition(":")[0]]].setdefault(name, {})[chunk_id] = tokens

    ray = init_ray(address)
    gpus = 1 if config.backend == "vllm" else 0
    if actors is None:
        actors = max(1, int(ray.cluster_resources().get("GPU", 0))) if gpus else 2
    items = [
        {"document": dumps(d.to_dict()), "pos": i, "budgets": dumps(given[i])}
        for i, d in enumerate(documents)
    ]
    ds = ray.data.from_items(items, override_num_blocks=max(1, min(len(items), actors * 4)))
    progress = ray.remote(num_cpus=0)(_Progress).remote()
    job = ds.map_batches(
        _Generate,
        fn_constructor_kwargs={
            "config": config.model_dump(mode="json"),
            "cache_dir": str((run_dir / "ray" / "cache").resolve()),
            "progress": progress,
        },
        batch_size=docs_per_batch,
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_gpus=gpus,
        num_cpus=0 if gpus else 1,
    ).materialize
    out = _run_with_progress(ray, job, progress, len(documents), hooks)

    from ray.data.expressions import col

    lines = out.filter(expr=col("file") != "")
    records = lines.filter(expr=col("record"))
    records.map_batches(_parquet_rows, batch_format="pandas").write_parquet(
        str(run_dir / "ray" / "generated")
    )
    parts = [json.loads(r["line"]) for r in out.filter(expr=col("file") == "").take_all()]
    stats = sum_stats(parts) if parts else {}
    # the files the local engine writes (empty ones too), each written whole or not at all
    names = ["failures.jsonl"]
    if stats.get("chunks"):
        names += [f"generated/{s.name}.jsonl" for s in strategies]
        names += [f"steps/{s.name}.jsonl" for s in strategies if isinstance(s, DeepStrategy)]
    with contextlib.ExitStack() as stack:
        writers = {name: stack.enter_context(atomic_write(run_dir / name)) for name in names}
        for batch in lines.sort(_KEYS).iter_batches(batch_size=4096, batch_format="numpy"):
            for name, line in zip(batch["file"], batch["line"], strict=True):
                writers[str(name)].write(str(line))
    summary = GenerateSummary(
        run_dir=run_dir,
        files=ingested.files,
        documents=len(documents),
        skipped=ingested.skipped,
        chunks=stats.get("chunks", 0),
        requests=stats.get("requests", 0),
        failed_requests=stats.get("failed_requests", 0),
        unanswered=stats.get("unanswered", 0),
        records=Counter(stats.get("records", {})),
        failures=Counter(stats.get("failures", {})),
        prompt_tokens=stats.get("prompt_tokens", 0),
        completion_tokens=stats.get("completion_tokens", 0),
        multi_step=stats.get("multi_step", {}),
        by_strategy={k: Counter(v) for k, v in stats.get("by_strategy", {}).items()},
    )
    this_run = stats.get("this_run", {})
    summary.state.calls = this_run.get("model_calls", 0)
    summary.state.cached = this_run.get("from_cache", 0)
    summary.state.retries = this_run.get("retries", 0)
    summary.state.reasks = this_run.get("reasks", 0)
    summary.state.prompt_tokens = this_run.get("prompt_tokens", 0)
    summary.state.completion_tokens = this_run.get("completion_tokens", 0)
    summary.state.timeouts = this_run.get("timeouts", 0)
    summary.files_kept = ingested.from_store
    summary.adjusted = list(this_run.get("adjusted", []))  # every actor's, each said once
    summary.complete = summary.unanswered == 0
    summary.seconds = time.perf_counter() - t0
    summary.cost = cost(config, summary.prompt_tokens, summary.completion_tokens)
    write_json(run_dir / "stats.json", summary.to_dict())
    info = run_record(inputs, config, strategies, documents, config.backend, config.model)
    info |= {
        "engine": "ray",
        "ray": {"actors": actors, "gpus_per_actor": gpus},
        "complete": summary.complete,
        "timings": {"generate_s": round(summary.seconds, 3)},
    }
    if summary.adjusted:  # as the local engine: the records' params are what was asked
        info["adjusted"] = summary.adjusted
    write_json(run_dir / "run.json", info)
    return summary


def _parquet_rows(df: Any) -> Any:
    import pandas as pd

    recs = [json.loads(line) for line in df["line"]]
    return pd.DataFrame(
        {
            "id": [r["id"] for r in recs],
            "doc_id": [r["doc_id"] for r in recs],
            "chunk_id": [r["chunk_id"] for r in recs],
            "strategy": [r["strategy"] for r in recs],
            "text": [r["text"] for r in recs],
            "record": list(df["line"].str.rstrip("\n")),
        }
    )
