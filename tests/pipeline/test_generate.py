from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from pathlib import Path
from typing import ClassVar

import pytest
from datasets import load_dataset

from augment.backends.mock import MockBackend
from augment.config import load_config
from augment.errors import FatalBackendError
from augment.io import read_jsonl
from augment.pipeline import generate
from augment.pipeline.cache import ResponseCache
from augment.pipeline.limits import Limits
from augment.pipeline.runner import Budget, Runner, RunState
from augment.shards import export
from augment.strategies.parsers import Parsed
from augment.types import GenRequest, GenResult


def run(examples: Path, run_dir: Path, **overrides) -> object:
    cfg = load_config(examples / "augment.toml", overrides)
    return generate([str(examples / "docs")], run_dir, cfg)


def files(run_dir: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted((run_dir / "generated").glob("*.jsonl"))}


def test_examples_end_to_end_every_chunk_used(examples: Path, tmp_path: Path):
    summary = run(examples, tmp_path / "run")
    assert summary.documents == 7 and not summary.skipped
    docs = {d["doc_id"]: d for d in read_jsonl(tmp_path / "run" / "documents.jsonl")}
    records = [r for p in sorted((tmp_path / "run" / "generated").glob("*.jsonl")) for r in read_jsonl(p)]
    assert Counter(r["strategy"] for r in records) == summary.records
    # every chunk of every document produced records for every strategy (4 styles for paraphrase)
    by_chunk: dict[str, Counter] = {}
    for r in records:
        by_chunk.setdefault(r["chunk_id"], Counter())[r["strategy"] + r["variant"]] += 1
    assert len(by_chunk) == summary.chunks
    assert all(len(c) == 7 for c in by_chunk.values())
    assert {cid.split(":")[0] for cid in by_chunk} == set(docs)
    for r in records:
        start, end = r["span"]
        source = docs[r["doc_id"]]["text"][start:end]
        if r["strategy"] == "qa":
            assert r["fields"]["evidence"] in " ".join(source.split())
        assert r["prompt"]["name"] == r["strategy"] and r["backend"] == "mock"
    assert len({r["id"] for r in records}) == len(records)
    stats = json.loads((tmp_path / "run" / "stats.json").read_text())
    assert stats["requests"] == summary.requests == summary.chunks * 7
    run_json = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run_json["config"]["chunk_tokens"] == 256 and run_json["strategies"]["qa"]["version"] == "2"


def test_ids_and_files_are_identical_across_runs_and_concurrency(examples: Path, tmp_path: Path):
    run(examples, tmp_path / "a")
    run(examples, tmp_path / "b", concurrency=1)
    assert files(tmp_path / "a") == files(tmp_path / "b")
    run(examples, tmp_path / "c", seed=7)
    assert files(tmp_path / "a") != files(tmp_path / "c")


def test_failures_are_retried_then_recorded_and_the_run_goes_on(examples: Path, tmp_path: Path):
    summary = run(
        examples,
        tmp_path / "run",
        mock_fail_rate=0.3,
        mock_malformed_rate=0.3,
        max_retries=8,
        max_parse_retries=0,
    )
    assert summary.state.retries > 10  # injected 503s were retried until they went through
    failures = list(read_jsonl(tmp_path / "run" / "failures.jsonl"))
    reasons = Counter(f["reason"] for f in failures)
    assert not any(r.startswith("backend_error") for r in reasons)
    # the malformed replies were recorded with the parser's reason, the raw reply kept
    assert (
        reasons["parse_error: no JSON list or labelled fields found"] + reasons["parse_error: empty response"]
        > 0
    )
    assert all("raw" in f for f in failures if f["reason"].startswith("parse_error"))
    assert summary.failed_requests == sum(reasons.values()) > 5
    assert sum(summary.records.values()) > 100

    # re-asking after an unparsable reply (a new sample) recovers most of them
    again = run(examples, tmp_path / "reask", mock_malformed_rate=0.3, max_parse_retries=3)
    assert again.state.reasks > 10 and again.failed_requests < summary.failed_requests / 3

    # a backend that always fails stops the run after a few requests instead of failing thousands
    with pytest.raises(FatalBackendError, match="20 requests in a row failed"):
        run(examples, tmp_path / "hopeless", mock_fail_rate=1.0, max_retries=1, concurrency=4)
    run_json = json.loads((tmp_path / "hopeless" / "run.json").read_text())
    assert run_json["complete"] is False


def test_shards_load_with_datasets_in_both_formats(examples: Path, tmp_path: Path):
    run(examples, tmp_path / "run")
    records = {r["id"]: r for p in (tmp_path / "run" / "generated").glob("*.jsonl") for r in read_jsonl(p)}
    shards = tmp_path / "run" / "shards"
    for fmt in ("cpt", "chat"):
        export(tmp_path / "run", fmt=fmt, val_fraction=0.1)
        manifest = json.loads((shards / "manifest.json").read_text())
        assert manifest["format"] == fmt
        for ext in ("jsonl", "parquet"):
            builder = "json" if ext == "jsonl" else "parquet"
            ds = load_dataset(
                builder,
                data_files={
                    "train": str(shards / f"train-*.{ext}"),
                    "validation": str(shards / f"val-*.{ext}"),
                },
            )
            assert (
                len(ds["train"]) == manifest["counts"]["train"]
                and len(ds["validation"]) == manifest["counts"]["val"]
            )
            assert len(ds["train"]) + len(ds["validation"]) == len(records)
            row = ds["train"][0]
            if fmt == "cpt":
                assert set(ds["train"].column_names) == {"id", "text"}
                assert row["text"] == records[row["id"]]["text"]
            else:
                assert set(ds["train"].column_names) == {"id", "messages"}
                assert row["messages"] == records[row["id"]]["messages"]


class SlowBackend(MockBackend):
    """Random latency, so requests finish out of order."""

    name: ClassVar[str] = "slow"

    async def generate(self, req: GenRequest) -> GenResult:
        await asyncio.sleep(random.random() * 0.01)
        return await super().generate(req)


def test_runner_keeps_request_order_and_the_concurrency_bound(tmp_path: Path):
    reqs = [
        GenRequest(f"k{i}", f"prompt {i}", 0.0, 16, 0, source=f"Sentence number {i} is here.")
        for i in range(300)
    ]
    in_flight = peak = 0

    class Counting(SlowBackend):
        async def generate(self, req):
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                return await super().generate(req)
            finally:
                in_flight -= 1

    def runner(backend: MockBackend, state: RunState) -> Runner:
        return Runner(
            backend,
            cache=ResponseCache(tmp_path / "cache.sqlite"),
            parse=lambda req, res: Parsed(items=[{"text": res.text}]),
            limits=Limits(16),
            budget=Budget(None, None, state),
            state=state,
        )

    async def collect(r: Runner):
        return [o async for o in r.run(reqs)]

    backend = Counting()
    outcomes = asyncio.run(collect(runner(backend, RunState())))
    assert [o.request.key for o in outcomes] == [r.key for r in reqs]
    assert peak == 16 and backend.calls == 300
    # a second pass is served from the cache: no call at all, the same replies
    again = Counting()
    state = RunState()
    replay = asyncio.run(collect(runner(again, state)))
    assert again.calls == 0 and all(o.cached for o in replay)
    assert [o.result.text for o in replay] == [o.result.text for o in outcomes]


def test_runner_reads_a_generator_only_a_window_ahead(tmp_path: Path):
    """generate hands the runner its requests as they are built, so a corpus's prompts (~20x its
    text) are never all in memory: the runner takes no more than its window past the oldest
    request whose outcome is not out yet."""
    n, taken, ahead = 12000, 0, []

    def requests():
        nonlocal taken
        for i in range(n):
            taken += 1
            yield GenRequest(f"k{i}", f"prompt {i}", 0.0, 16, 0, source=f"Sentence number {i} is here.")

    async def collect() -> list:
        state = RunState()
        runner = Runner(
            MockBackend(),
            cache=ResponseCache(tmp_path / "cache.sqlite"),
            parse=lambda req, res: Parsed(items=[{"text": res.text}]),
            limits=Limits(16),
            budget=Budget(None, None, state),
            state=state,
        )
        out = []
        async for o in runner.run(requests()):
            ahead.append(taken - o.index)
            out.append(o)
        return out

    outcomes = asyncio.run(collect())
    assert [o.index for o in outcomes] == list(range(n)) and taken == n
    assert [o.request.key for o in outcomes[:3]] == ["k0", "k1", "k2"]
    assert max(ahead) <= 4096 + 1  # the window (64 x 16 slots is less than its floor of 4096)


def test_each_strategy_counts_the_requests_it_builds(examples: Path):
    """Work's length (the progress total and summary.requests) is counted without rendering a
    prompt; it must match what is then built, for every shipped strategy and sample count."""
    from augment.ingest import Chunker, ingest
    from augment.pipeline import Work
    from augment.strategies import discover_prompts, load_strategies
    from augment.tokens import Tokenizer

    names = list(discover_prompts())
    assert {"qa-spans", "entigraph", "paraphrase"} <= set(names)
    strategies = load_strategies(names, None)
    chunks = list(Chunker(Tokenizer(), 256, 32).chunk_all(ingest([str(examples / "docs")]).documents))
    for samples in (None, 2):
        cfg = load_config(None, {"samples": samples} if samples else {})
        work = Work(chunks, strategies, cfg, "mock", "m")
        built = Counter(s.name for _, s, _ in work)
        assert built == work.counts and len(work) == sum(built.values()) > len(chunks) * len(names)
        assert [s.name for s in work.strategies] == [s for s in names if built[s]]


@pytest.mark.parametrize("strategies", [["qa"], ["notes", "qa"]])
def test_strategies_subset(examples: Path, tmp_path: Path, strategies: list[str]):
    summary = run(examples, tmp_path / "run", strategies=strategies)
    assert set(summary.records) == set(strategies)
    assert sorted(files(tmp_path / "run")) == sorted(f"{s}.jsonl" for s in strategies)


def test_a_rerun_with_fewer_strategies_does_not_export_the_old_ones(examples: Path, tmp_path: Path):
    run(examples, tmp_path / "run", strategies=["qa", "notes"])
    summary = run(examples, tmp_path / "run", strategies=["notes"])
    assert (tmp_path / "run" / "generated" / "qa.jsonl").is_file()  # kept on disk, not deleted
    exported = export(tmp_path / "run", val_fraction=0)
    assert exported.counts["train"] == summary.records["notes"]


def test_completion_style_end_to_end_and_in_the_cli(examples: Path, tmp_path: Path, cli):
    chat = run(examples, tmp_path / "chat")
    summary = run(examples, tmp_path / "run", prompt_style="completion")
    assert json.loads((tmp_path / "run" / "run.json").read_text())["prompt_style"] == "completion"
    assert summary.complete and summary.failed_requests == 0 and summary.requests == chat.requests
    assert set(summary.records) == {"qa", "paraphrase", "inferences", "notes"}
    qa = list(read_jsonl(tmp_path / "run" / "generated" / "qa.jsonl"))
    # the few-shot form asks for question and answer only; the primer "Q:" was put back before parsing
    assert qa and all(set(r["fields"]) == {"question", "answer"} for r in qa)
    assert all(r["fields"]["question"].startswith("Which word or phrase") for r in qa)
    # the same command through the CLI: every completion-style reply comes from the cache
    r = cli(
        "generate",
        examples / "docs",
        "-o",
        tmp_path / "run",
        "-c",
        examples / "augment.toml",
        "--prompt-style",
        "completion",
        "-q",
    )
    assert (
        r.code == 0
        and json.loads((tmp_path / "run" / "stats.json").read_text())["this_run"]["model_calls"] == 0
    )
    r = cli(
        "generate",
        examples / "docs",
        "-o",
        tmp_path / "run",
        "-c",
        examples / "augment.toml",
        "--prompt-style",
        "verse",
    )
    assert r.code == 2 and "error: --prompt-style: input should be" in r.err
