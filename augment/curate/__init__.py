"""Curate: keep the generated records worth training on, and say why each other one was dropped.

Reads RUN/generated/ (the strategies of the last generate), writes RUN/curated/kept.jsonl (each
record with the `checks` it passed) and RUN/curated/rejected.jsonl (each with its `reason` and,
for duplicates, `dup_of`), and RUN/curated/stats.json. Every input record ends in exactly one of
the two files.

Order: decontamination, then the cheap per-record filters (length, boilerplate, repetition,
grounding, copying, the few-shot example's names, names and numbers the source does not have) and
exact duplicates, then (optionally) questions that one document's records answer two ways, then
near-duplicate removal among the survivors — so that the member of a duplicate cluster that is
kept is one that passed the filters — then the optional judge, which costs a model call per
record and so sees only what is left.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from augment.config import RunConfig
from augment.curate.dedup import ExactDedup, MinHashDedup, Verdict
from augment.curate.filters import (
    BoilerplateFilter,
    ConflictingAnswers,
    CopyFilter,
    Decontaminator,
    ExampleCopyFilter,
    GroundingFilter,
    LengthFilter,
    RepetitionFilter,
    UnsupportedTermsFilter,
    load_eval_items,
)
from augment.errors import AugmentError
from augment.io import atomic_write, dumps, locks_run, read_jsonl, write_json
from augment.shards import generated_files
from augment.tokens import Tokenizer

__all__ = ["CurateSummary", "build_steps", "curate"]


@dataclass
class CurateSummary:
    run_dir: Path
    total: int = 0
    kept: Counter[str] = field(default_factory=Counter)  # per strategy
    rejected: Counter[tuple[str, str]] = field(default_factory=Counter)  # (strategy, reason)
    seconds: float = 0.0

    @property
    def by_reason(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for (_, reason), n in self.rejected.items():
            out[reason] += n
        return out

    def to_dict(self) -> dict[str, Any]:
        strategies = sorted({s for s in self.kept} | {s for s, _ in self.rejected})
        return {
            "total": self.total,
            "kept": sum(self.kept.values()),
            "rejected": sum(self.rejected.values()),
            "by_reason": dict(self.by_reason.most_common()),
            "by_strategy": {
                s: {
                    "kept": self.kept[s],
                    "rejected": {r: n for (st, r), n in sorted(self.rejected.items()) if st == s},
                }
                for s in strategies
            },
            "seconds": round(self.seconds, 3),
        }


def build_steps(config: RunConfig, decontaminate: list[Path] | None = None) -> list[Any]:
    steps: list[Any] = []
    files = list(decontaminate or []) + list(config.decontaminate)
    if files:
        items = [
            item
            for f in dict.fromkeys(files)
            for item in load_eval_items(Path(f), answers=config.decontaminate_answers)
        ]
        steps.append(Decontaminator(items, ngram=config.decontaminate_ngram))
    steps.append(
        LengthFilter(Tokenizer(config.tokenizer), config.min_record_tokens, config.max_record_tokens)
    )
    if config.boilerplate_filter:
        steps.append(BoilerplateFilter())
    if config.repetition_filter:
        steps.append(RepetitionFilter(config.repetition_max_share))
    if config.grounding:
        steps.append(GroundingFilter(config.grounding_min_score))
    strategies = []
    if config.copy_filter or config.example_filter:
        from augment.strategies import load_strategies

        strategies = load_strategies(config.strategies, config.prompts_dir)
    if config.copy_filter:
        # a spans strategy's answers are spans of the chunk by construction (qa-spans, a user's own)
        spans = [s.name for s in strategies if s.header.kind == "spans"]
        steps.append(CopyFilter(config.copy_ngram, config.copy_threshold, [*config.copy_exempt, *spans]))
    if config.example_filter:
        steps.append(ExampleCopyFilter({s.name: s.example_text() for s in strategies}))
    if config.unsupported_filter:  # after the example filter: that diagnosis is the more specific one
        steps.append(UnsupportedTermsFilter(config.unsupported_max_share, exempt=config.unsupported_exempt))
    if config.exact_dedup:
        steps.append(ExactDedup())
    return steps


def _reject(rec: dict[str, Any], verdict: Verdict) -> dict[str, Any]:
    out = {**rec, "reason": verdict.reason}
    if verdict.dup_of is not None:
        out["dup_of"] = verdict.dup_of
    if verdict.detail is not None:
        out["reason_detail"] = verdict.detail
    return out


def _slim_keys(config: RunConfig) -> tuple[str, ...]:
    """What the steps after the per-record ones read of a record (near and semantic duplicates:
    the text; conflicting answers: the fields; the judge: the chunk's span and the messages); the
    rest is read again from its file when the record is written."""
    keys = ("id", "doc_id", "strategy", "text")
    if config.conflict_filter:
        keys += ("fields",)
    if config.judge:
        keys += ("messages", "span")
    return keys


@dataclass
class _Survivor:
    """A record that passed the per-record steps: what the later steps read, where the whole
    record is (file, byte offset), and the checks it passed."""

    rec: dict[str, Any]
    title: str
    at: tuple[int, int]
    checks: dict[str, Any]


class _Records:
    """The generated files, read in order with each record's byte offset, and read again by
    offset: a run's records are held whole only while each is checked and written."""

    def __init__(self, files: list[Path]):
        self.files = files
        self._open: dict[int, Any] = {}

    def __iter__(self) -> Iterator[tuple[Path, tuple[int, int], dict[str, Any]]]:
        for i, path in enumerate(self.files):
            with open(path, "rb") as f:
                offset = 0
                for line in f:
                    at, offset = offset, offset + len(line)
                    if not line.strip():
                        continue
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError:
                        if line.endswith(b"\n"):
                            raise
                        continue  # a torn last line (a killed generate), as read_jsonl skips it
                    yield path, (i, at), rec

    def load(self, at: tuple[int, int]) -> dict[str, Any]:
        f = self._open.get(at[0])
        if f is None:
            f = self._open[at[0]] = open(self.files[at[0]], "rb")  # noqa: SIM115 - closed in close()
        f.seek(at[1])
        return json.loads(f.readline())

    def close(self) -> None:
        for f in self._open.values():
            f.close()


def _drop_matches(
    survivors: list[_Survivor],
    matches: list[tuple[int, float] | None],
    reason: str,
    reject: Callable[[_Survivor, Verdict], None],
) -> list[_Survivor]:
    """Survivors without the duplicates `matches` found (each match: index of the kept one, similarity)."""
    verdicts = [
        None
        if match is None
        else Verdict(reason, dup_of=survivors[match[0]].rec["id"], detail=round(match[1], 3))
        for match in matches
    ]
    return _drop_verdicts(survivors, verdicts, reject)


def _drop_verdicts(
    survivors: list[_Survivor], verdicts: list[Verdict | None], reject: Callable[[_Survivor, Verdict], None]
) -> list[_Survivor]:
    """Survivors whose verdict is None; each other one is rejected (without its checks)."""
    kept = []
    for item, verdict in zip(survivors, verdicts, strict=True):
        if verdict is None:
            kept.append(item)
        else:
            reject(item, verdict)
    return kept


@locks_run
def curate(
    run_dir: Path,
    config: RunConfig,
    *,
    decontaminate: list[Path] | None = None,
    backend: Any = None,
    on_judge_start: Callable[[Any], None] = lambda state: None,
    on_judge: Callable[[Any], None] = lambda outcome: None,
    engine: str = "local",
) -> CurateSummary:
    """Filter and deduplicate RUN/generated/ into RUN/curated/{kept,rejected}.jsonl.

    engine "ray": near duplicates are found by Ray Data transforms (same answer, many machines).
    """
    t0 = time.perf_counter()
    files = generated_files(run_dir)
    if not files:
        raise AugmentError(
            f"{run_dir}: no generated records (run 'augment generate DOCS -o {run_dir}' first)"
        )
    docs_path = run_dir / "documents.jsonl"
    if not docs_path.is_file():
        raise AugmentError(f"{run_dir}: documents.jsonl is missing; re-run 'augment generate'")
    docs = {d["doc_id"]: d for d in read_jsonl(docs_path)}
    steps = build_steps(config, decontaminate)

    summary = CurateSummary(run_dir)
    records = _Records(files)
    out = run_dir / "curated"
    out.mkdir(parents=True, exist_ok=True)
    survivors: list[_Survivor] = []
    slim_keys = _slim_keys(config)
    with atomic_write(out / "rejected.jsonl") as rejected, contextlib.closing(records):

        def reject(item: _Survivor, verdict: Verdict, with_checks: bool = False) -> None:
            """A record rejected after the per-record steps: written whole, without its checks
            (the judge's rejections with them, and its verdict)."""
            rec = records.load(item.at)
            if with_checks:
                rec = {**rec, "checks": item.checks}
            rejected.write(dumps(_reject(rec, verdict)) + "\n")
            summary.rejected[(rec["strategy"], verdict.reason)] += 1

        for path, at, rec in records:
            summary.total += 1
            doc = docs.get(rec.get("doc_id"))
            if doc is None:
                raise AugmentError(
                    f"{path}: record {rec.get('id')} names document {rec.get('doc_id')}, "
                    "which documents.jsonl does not have; re-run 'augment generate'"
                )
            start, end = rec.get("span", [0, len(doc["text"])])
            chunk = doc["text"][start:end]
            checks: dict[str, Any] = {}
            for step in steps:
                if getattr(step, "uses_title", False):
                    result = step.check(rec, chunk, doc.get("title", ""))
                else:
                    result = step.check(rec, chunk)
                if isinstance(result, Verdict):
                    rejected.write(dumps(_reject(rec, result)) + "\n")
                    summary.rejected[(rec["strategy"], result.reason)] += 1
                    break
                if result is not None:
                    checks[step.name] = result
            else:
                slim = {k: rec[k] for k in slim_keys if k in rec}
                survivors.append(_Survivor(slim, doc["title"], at, checks))

        if config.conflict_filter and survivors:
            verdicts = ConflictingAnswers().find([item.rec for item in survivors])
            survivors = _drop_verdicts(survivors, verdicts, reject)

        if config.near_dedup and survivors:
            texts = [item.rec["text"] for item in survivors]
            if engine == "ray":
                from augment.curate.ray_dedup import ray_near_duplicates

                matches = ray_near_duplicates(
                    texts,
                    threshold=config.near_threshold,
                    ngram=config.near_ngram,
                    num_perm=config.near_num_perm,
                    bands=config.near_bands,
                    seed=config.seed,
                )
            else:
                dedup = MinHashDedup(
                    config.near_threshold,
                    config.near_ngram,
                    config.near_num_perm,
                    config.near_bands,
                    config.seed,
                )
                matches = dedup.find(texts)
            del texts
            survivors = _drop_matches(survivors, matches, "near_duplicate", reject)

        if config.semantic_dedup and survivors:
            from augment.curate.semantic import embed, semantic_duplicates

            vectors = embed([item.rec["text"] for item in survivors])
            matches = semantic_duplicates(
                vectors,
                [item.rec["doc_id"] for item in survivors],
                config.semantic_threshold,
                config.semantic_scope,
            )
            survivors = _drop_matches(survivors, matches, "semantic_duplicate", reject)

        if config.judge and survivors:
            from augment.curate.judge import judge_records

            if backend is None:
                from augment.backends import get_backend

                judge_config = config.model_copy(update={"model": config.judge_model or config.model})
                backend = get_backend(judge_config)

            def judged() -> Iterator[tuple[dict[str, Any], str, str]]:  # each as its request goes out
                for item in survivors:
                    doc_text = docs[item.rec["doc_id"]]["text"]
                    start, end = item.rec.get("span", [0, len(doc_text)])
                    yield item.rec, item.title, doc_text[start:end]

            verdicts = judge_records(
                judged(),
                len(survivors),
                backend,
                run_dir,
                config,
                on_start=on_judge_start,
                on_advance=on_judge,
            )
            passed = []
            for item, verdict in zip(survivors, verdicts, strict=True):
                if isinstance(verdict, str):
                    reject(item, Verdict("judge_failed", detail=verdict), with_checks=True)
                    continue
                item.checks = {**item.checks, "judge": verdict.to_dict()}
                if verdict.faithfulness < config.judge_min_faithfulness:
                    reject(item, Verdict("judge_unfaithful", detail=verdict.reason), with_checks=True)
                elif verdict.usefulness < config.judge_min_usefulness:
                    reject(item, Verdict("judge_not_useful", detail=verdict.reason), with_checks=True)
                else:
                    passed.append(item)
            survivors = passed

        with atomic_write(out / "kept.jsonl") as kept:
            for item in survivors:
                rec = records.load(item.at)
                kept.write(dumps({**rec, "checks": item.checks}) + "\n")
                summary.kept[rec["strategy"]] += 1

    summary.seconds = time.perf_counter() - t0
    write_json(out / "stats.json", summary.to_dict())
    return summary
