"""Write train/validation shards in `cpt` ({"id", "text"}) or `chat` ({"id", "messages"}) format.

Shards are cut by size, named `train-00000-of-00003.jsonl` (and `.parquet` with the same rows),
and listed in `manifest.json` with record and token counts and a sha256 per file. The split is
a deterministic function of the record ids, so re-exporting the same records gives the same files.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from augment.errors import AugmentError
from augment.io import atomic_path, dumps, locks_run, read_jsonl, sha256_file, stable_id, write_json
from augment.tokens import Tokenizer

Format = Literal["cpt", "chat"]


@dataclass
class ExportSummary:
    out_dir: Path
    source: str
    format: str
    counts: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    files: list[dict[str, Any]] = field(default_factory=list)


def generated_files(run_dir: Path) -> list[Path]:
    """generated/<strategy>.jsonl of the strategies of the last generate (run.json), else all of them.

    A file left by an earlier generate with other strategies stays on disk but is not used.
    """
    run_json = run_dir / "run.json"
    if run_json.is_file():
        names = json.loads(run_json.read_text(encoding="utf-8")).get("strategies") or {}
        return [p for name in sorted(names) if (p := run_dir / "generated" / f"{name}.jsonl").is_file()]
    return sorted((run_dir / "generated").glob("*.jsonl")) if (run_dir / "generated").is_dir() else []


def left_aside(run_dir: Path) -> list[Path]:
    """generated/*.jsonl that an earlier generate with other strategies left: on disk, not used."""
    folder = run_dir / "generated"
    used = set(generated_files(run_dir))
    return [p for p in sorted(folder.glob("*.jsonl")) if p not in used] if folder.is_dir() else []


def load_records(run_dir: Path) -> tuple[str, list[dict[str, Any]]]:
    """Curated records when the run has been curated, else every generated record."""
    kept = run_dir / "curated" / "kept.jsonl"
    if kept.is_file():
        return "curated/kept.jsonl", list(read_jsonl(kept))
    gen = generated_files(run_dir)
    if not gen:
        raise AugmentError(
            f"{run_dir}: no generated records (run 'augment generate DOCS -o {run_dir}' first)"
        )
    return "generated/", [rec for path in gen for rec in read_jsonl(path)]


def _row(rec: dict[str, Any], fmt: Format) -> dict[str, Any]:
    if fmt == "cpt":
        return {"id": rec["id"], "text": rec["text"]}
    return {
        "id": rec["id"],
        "messages": [{"role": m["role"], "content": m["content"]} for m in rec["messages"]],
    }


def _row_text(row: dict[str, Any]) -> str:
    return row["text"] if "text" in row else "\n".join(m["content"] for m in row["messages"])


def split(
    records: list[dict[str, Any]], val_fraction: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A fixed fraction of records (chosen by a hash of their id) for validation; order is kept."""
    n_val = math.ceil(len(records) * val_fraction) if val_fraction > 0 and len(records) > 1 else 0
    ranked = sorted(records, key=lambda r: stable_id(r["id"], "val"))
    val_ids = {r["id"] for r in ranked[:n_val]}
    return [r for r in records if r["id"] not in val_ids], [r for r in records if r["id"] in val_ids]


def _cut(lines: list[str], shard_bytes: int) -> list[tuple[int, int]]:
    bounds, start, size = [], 0, 0
    for i, line in enumerate(lines):
        n = len(line.encode("utf-8"))
        if size and size + n > shard_bytes:
            bounds.append((start, i))
            start, size = i, 0
        size += n
    bounds.append((start, len(lines)))
    return bounds


def _write_parquet(path: Path, rows: list[dict[str, Any]], fmt: Format) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if fmt == "cpt":
        schema = pa.schema([("id", pa.string()), ("text", pa.string())])
    else:
        message = pa.struct([("role", pa.string()), ("content", pa.string())])
        schema = pa.schema([("id", pa.string()), ("messages", pa.list_(message))])
    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp)


@locks_run
def export(
    run_dir: Path,
    *,
    fmt: Format = "cpt",
    file_formats: list[str] | tuple[str, ...] = ("jsonl", "parquet"),
    val_fraction: float = 0.05,
    shard_mb: float = 256.0,
    tokenizer: Tokenizer | None = None,
    config: dict[str, Any] | None = None,
    versions: dict[str, str] | None = None,
) -> ExportSummary:
    """Write RUN/shards/ from the run's records; stale shards of an earlier export are removed last."""
    tokenizer = tokenizer or Tokenizer()
    source, records = load_records(run_dir)
    if not records:
        raise AugmentError(f"{run_dir}: {source} holds no records to export")
    out_dir = run_dir / "shards"
    out_dir.mkdir(parents=True, exist_ok=True)
    train, val = split(records, val_fraction)
    summary = ExportSummary(out_dir, source, fmt)
    by_strategy: dict[str, Counter[str]] = {}
    for name, recs in (("train", train), ("val", val)):
        if not recs:
            summary.counts[name] = 0
            summary.tokens[name] = 0
            continue
        rows = [_row(r, fmt) for r in recs]
        lines = [dumps(r) + "\n" for r in rows]
        bounds = _cut(lines, int(shard_mb * 1024 * 1024))
        for k, (a, b) in enumerate(bounds):
            stem = f"{name}-{k:05d}-of-{len(bounds):05d}"
            for file_format in file_formats:
                path = out_dir / f"{stem}.{file_format}"
                if file_format == "jsonl":
                    with atomic_path(path) as tmp:
                        tmp.write_text("".join(lines[a:b]), encoding="utf-8")
                else:
                    _write_parquet(path, rows[a:b], fmt)
                summary.files.append(
                    {
                        "path": path.name,
                        "split": name,
                        "format": file_format,
                        "records": b - a,
                        "bytes": path.stat().st_size,
                        "sha256": sha256_file(path),
                    }
                )
        summary.counts[name] = len(rows)
        summary.tokens[name] = sum(tokenizer.count(_row_text(r)) for r in rows)
        for r in recs:
            by_strategy.setdefault(r["strategy"], Counter())[name] += 1

    manifest = {
        "format": fmt,
        "source": source,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "counts": {**summary.counts, "by_strategy": {k: dict(v) for k, v in sorted(by_strategy.items())}},
        "tokens": {**summary.tokens, "tokenizer": tokenizer.spec},
        "files": summary.files,
        "config": config or {},
        "versions": versions or {},
    }
    write_json(out_dir / "manifest.json", manifest)
    current = {f["path"] for f in summary.files} | {"manifest.json"}
    for stale in out_dir.iterdir():
        if stale.is_file() and stale.name not in current and stale.name.startswith(("train-", "val-")):
            stale.unlink()
    return summary
