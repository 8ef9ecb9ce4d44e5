"""Counts for `augment stats`: read back from the run directory's files, not from memory."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from augment.errors import AugmentError
from augment.io import read_jsonl
from augment.pipeline.parts import require_run
from augment.shards import generated_files
from augment.tokens import Tokenizer


def run_stats(run_dir: Path) -> dict[str, Any]:
    require_run(run_dir)
    run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    saved = (
        json.loads((run_dir / "stats.json").read_text(encoding="utf-8"))
        if (run_dir / "stats.json").is_file()
        else {}
    )
    tokenizer = Tokenizer(run.get("config", {}).get("tokenizer", "approx"))

    records: Counter[str] = Counter()
    record_tokens: Counter[str] = Counter()
    for path in generated_files(run_dir):
        for rec in read_jsonl(path):
            records[rec["strategy"]] += 1
            record_tokens[rec["strategy"]] += tokenizer.count(rec["text"])
    failures: Counter[str] = Counter()
    if (run_dir / "failures.jsonl").is_file():
        failures.update(row["reason"] for row in read_jsonl(run_dir / "failures.jsonl"))
    documents = (
        sum(1 for _ in read_jsonl(run_dir / "documents.jsonl"))
        if (run_dir / "documents.jsonl").is_file()
        else 0
    )
    curated_path = run_dir / "curated" / "stats.json"
    curated = json.loads(curated_path.read_text(encoding="utf-8")) if curated_path.is_file() else None
    manifest_path = run_dir / "shards" / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else None
    return {
        "run_dir": str(run_dir),
        "backend": run.get("backend"),
        "batches": _batches(run_dir),
        "model": run.get("model"),
        "documents": documents,
        "skipped": saved.get("skipped", []),
        "chunks": saved.get("chunks"),
        "requests": saved.get("requests"),
        "failed_requests": saved.get("failed_requests"),
        "retries": saved.get("this_run", {}).get("retries"),
        "records": dict(records),
        "record_tokens": dict(record_tokens),
        "multi_step": saved.get("multi_step", {}),
        "failures": dict(failures.most_common()),
        "usage": {
            "prompt_tokens": saved.get("prompt_tokens", 0),
            "completion_tokens": saved.get("completion_tokens", 0),
        },
        "cost": saved.get("cost"),
        "curated": curated,
        "complete": saved.get("complete"),
        "budget_stopped": saved.get("budget_stopped"),
        "unanswered": saved.get("unanswered", 0),
        "this_run": saved.get("this_run", {}),
        "adjusted": run.get("adjusted", []),  # what the server refused and the last run did without
        "shards": None
        if manifest is None
        else {"format": manifest["format"], "counts": manifest["counts"], "tokens": manifest["tokens"]},
    }


def _batches(run_dir: Path) -> list[dict[str, Any]]:
    """The batches sent to a Batch API (batch_api), from the run's ledger: id and requests."""
    path = run_dir / "batches.jsonl"
    if not path.is_file():
        return []
    out = []
    for line in path.read_bytes().splitlines():
        try:
            row = json.loads(line)
            out.append({"batch": str(row["batch"]), "requests": len(row["ids"])})
        except (ValueError, KeyError, TypeError):
            continue  # a line torn by a killed run
    return out


def sample_records(
    run_dir: Path,
    *,
    strategy: str | None = None,
    rejected: bool = False,
    reason: str | None = None,
    n: int = 5,
) -> list[dict[str, Any]]:
    """The first `n` records of a run that match: generated (or curated kept/rejected when curated)."""
    out = []
    for path in _record_files(run_dir, rejected or bool(reason)):
        for rec in read_jsonl(path):
            if strategy and rec.get("strategy") != strategy:
                continue
            if reason and rec.get("reason") != reason:
                continue
            out.append(rec)
            if len(out) >= n:
                return out
    return out


def _record_files(run_dir: Path, rejected: bool) -> list[Path]:
    """The files `show` samples: curated/rejected.jsonl, else curated/kept.jsonl when curated, else
    the generated records."""
    require_run(run_dir)
    if rejected:
        path = run_dir / "curated" / "rejected.jsonl"
        if not path.is_file():
            raise AugmentError(f"{run_dir}: not curated yet (run 'augment curate {run_dir}')")
        return [path]
    if (run_dir / "curated" / "kept.jsonl").is_file():
        return [run_dir / "curated" / "kept.jsonl"]
    return generated_files(run_dir)


def what_is_there(run_dir: Path, *, rejected: bool = False) -> str:
    """What the records `show` samples hold, by strategy (and for dropped ones by reason): said when
    nothing matched, so that a mistyped strategy or reason shows the right spelling."""
    paths = _record_files(run_dir, rejected)
    strategies: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for path in paths:
        for rec in read_jsonl(path):
            strategies[str(rec.get("strategy"))] += 1
            if rejected:
                reasons[str(rec.get("reason"))] += 1
    where = paths[0] if len(paths) == 1 else run_dir / "generated"
    if not strategies:
        return f"{where}: no records"
    held = "; ".join(
        f"{name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        for name, counts in (("strategies", strategies), ("reasons", reasons))
        if counts
    )
    return f"{where} holds {held}"
