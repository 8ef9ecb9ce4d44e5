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

import time
from collections import Counter
from collections.abc import Callable
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
from augment.io import locks_run, read_jsonl, write_json, write_jsonl
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


def _drop_matches(
    survivors: list[tuple[dict[str, Any], str, str]],
    matches: list[tuple[int, float] | None],
    reason: str,
    rejected: list[dict[str, Any]],
    summary: CurateSummary,
) -> list[tuple[dict[str, Any], str, str]]:
    """Survivors without the duplicates `matches` found (each match: index of the kept one, similarity)."""
    verdicts = [
        None
        if match is None
        else Verdict(reason, dup_of=survivors[match[0]][0]["id"], detail=round(match[1], 3))
        for match in matches
    ]
    return _drop_verdicts(survivors, verdicts, rejected, summary)


def _drop_verdicts(
    survivors: list[tuple[dict[str, Any], str, str]],
    verdicts: list[Verdict | None],
    rejected: list[dict[str, Any]],
    summary: CurateSummary,
) -> list[tuple[dict[str, Any], str, str]]:
    """Survivors whose verdict is None; each other one goes to `rejected` (without its checks)."""
    kept = []
    for item, verdict in zip(survivors, verdicts, strict=True):
        if verdict is None:
            kept.append(item)
            continue
        rec = {k: v for k, v in item[0].items() if k != "checks"}
        rejected.append(_reject(rec, verdict))
        summary.rejected[(rec["strategy"], verdict.reason)] += 1
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
    survivors: list[tuple[dict[str, Any], str, str]] = []  # (record, title, chunk)
    rejected: list[dict[str, Any]] = []
    for path in files:
        for rec in read_jsonl(path):
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
                    rejected.append(_reject(rec, result))
                    summary.rejected[(rec["strategy"], result.reason)] += 1
                    break
                if result is not None:
                    checks[step.name] = result
            else:
                survivors.append(({**rec, "checks": checks}, doc["title"], chunk))

    if config.conflict_filter and survivors:
        verdicts = ConflictingAnswers().find([rec for rec, _, _ in survivors])
        survivors = _drop_verdicts(survivors, verdicts, rejected, summary)

    if config.near_dedup and survivors:
        texts = [rec["text"] for rec, _, _ in survivors]
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
                config.near_threshold, config.near_ngram, config.near_num_perm, config.near_bands, config.seed
            )
            matches = dedup.find(texts)
        survivors = _drop_matches(survivors, matches, "near_duplicate", rejected, summary)

    if config.semantic_dedup and survivors:
        from augment.curate.semantic import embed, semantic_duplicates

        vectors = embed([rec["text"] for rec, _, _ in survivors])
        matches = semantic_duplicates(
            vectors,
            [rec["doc_id"] for rec, _, _ in survivors],
            config.semantic_threshold,
            config.semantic_scope,
        )
        survivors = _drop_matches(survivors, matches, "semantic_duplicate", rejected, summary)

    kept: list[dict[str, Any]] = []
    if config.judge and survivors:
        from augment.curate.judge import judge_records

        if backend is None:
            from augment.backends import get_backend

            judge_config = config.model_copy(update={"model": config.judge_model or config.model})
            backend = get_backend(judge_config)
        verdicts = judge_records(
            survivors, backend, run_dir, config, on_start=on_judge_start, on_advance=on_judge
        )
        for (rec, _, _), verdict in zip(survivors, verdicts, strict=True):
            if isinstance(verdict, str):
                rejected.append(_reject(rec, Verdict("judge_failed", detail=verdict)))
                summary.rejected[(rec["strategy"], "judge_failed")] += 1
                continue
            rec = {**rec, "checks": {**rec["checks"], "judge": verdict.to_dict()}}
            if verdict.faithfulness < config.judge_min_faithfulness:
                reason = "judge_unfaithful"
            elif verdict.usefulness < config.judge_min_usefulness:
                reason = "judge_not_useful"
            else:
                kept.append(rec)
                summary.kept[rec["strategy"]] += 1
                continue
            rejected.append(_reject(rec, Verdict(reason, detail=verdict.reason)))
            summary.rejected[(rec["strategy"], reason)] += 1
    else:
        for rec, _, _ in survivors:
            kept.append(rec)
            summary.kept[rec["strategy"]] += 1

    out = run_dir / "curated"
    write_jsonl(out / "kept.jsonl", kept)
    write_jsonl(out / "rejected.jsonl", rejected)
    summary.seconds = time.perf_counter() - t0
    write_json(out / "stats.json", summary.to_dict())
    return summary
