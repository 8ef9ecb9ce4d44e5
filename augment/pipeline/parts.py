"""Sharded runs: N independent jobs each generate a part of RUN, and `merge` makes them one run.

`augment generate DOCS -o RUN --shard K/N` keeps the documents whose id hashes to K (of N) and
writes a complete run directory of its own, RUN/parts/0000K-of-0000N/, so jobs on different
machines (a CI matrix, a SLURM array, Kubernetes jobs) never write the same file. A part that
finished writes manifest.json last: its documents' positions in the corpus and the sha256 and line
count of every file. `merge` refuses unless all N manifests are there and agree (same config,
same corpus, same prompt files) and every file still matches its manifest, then interleaves the
parts into RUN/ in the order a single unsharded run writes: documents by corpus position,
records by (wave, position). The result is the same files, line for line, as one run over the
whole corpus; curation (dedup included) then runs on the merged records, so it is global.
"""

from __future__ import annotations

import heapq
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from augment.errors import AugmentError, ConfigError
from augment.io import atomic_write, locks_run, sha256_file, sha256_hex, write_json

PARTS = "parts"
_PART_NAME = re.compile(r"^(\d{5})-of-(\d{5})$")
#: the files of a part that merge combines (relative paths; steps/ and generated/ hold one per strategy)
_MERGED = ("documents.jsonl", "failures.jsonl")


#: settings that may differ from job to job (where it runs, how fast, what it costs, what happens
#: after the merge); every other setting shapes the records and must be the same in every part
PER_JOB = frozenset(
    {
        "concurrency",
        "max_retries",
        "rpm",
        "tpm",
        "max_requests",
        "max_tokens_total",
        "price_prompt_per_m",
        "price_completion_per_m",
        "base_url",
        "api_key_env",
        "http_client",
        "request_timeout",
        "threads",
        "read_workers",
        "local_batch_size",
        "device",
        "gpu_memory_utilization",
        "tensor_parallel_size",
        "prompts_dir",
        "curate",
        "decontaminate",
        "decontaminate_ngram",
        "decontaminate_answers",
        "min_record_tokens",
        "max_record_tokens",
        "boilerplate_filter",
        "repetition_filter",
        "repetition_max_share",
        "copy_filter",
        "copy_ngram",
        "copy_threshold",
        "copy_exempt",
        "example_filter",
        "grounding",
        "grounding_min_score",
        "unsupported_filter",
        "unsupported_max_share",
        "unsupported_exempt",
        "exact_dedup",
        "near_dedup",
        "near_threshold",
        "near_ngram",
        "near_num_perm",
        "near_bands",
        "semantic_dedup",
        "semantic_threshold",
        "semantic_scope",
        "judge",
        "judge_model",
        "judge_min_faithfulness",
        "judge_min_usefulness",
        "export",
        "format",
        "file_formats",
        "val_fraction",
        "shard_mb",
    }
)


@dataclass(frozen=True)
class Shard:
    """Part `index` (from 0) of `count`."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not m:
            raise ConfigError(f"--shard {text}: expected K/N, e.g. 0/4 (part K, counted from 0, of N)")
        k, n = int(m[1]), int(m[2])
        if n < 1:
            raise ConfigError(f"--shard {text}: N is the number of parts, at least 1")
        if k >= n:
            raise ConfigError(f"--shard {text}: K counts from 0 and must be below N (0/{n} ... {n - 1}/{n})")
        if n > 99999:
            raise ConfigError(f"--shard {text}: at most 99999 parts")
        return cls(k, n)

    @property
    def name(self) -> str:
        return f"{self.index:05d}-of-{self.count:05d}"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, doc_id: str) -> bool:
        """Whether this part generates the document (a hash of its id, so parts get similar shares)."""
        return int(sha256_hex(f"shard\x1f{doc_id}")[:16], 16) % self.count == self.index


def part_dir(run_dir: Path, shard: Shard) -> Path:
    return run_dir / PARTS / shard.name


def _parts(run_dir: Path) -> dict[int, dict[int, Path]]:
    """count -> index -> folder, for every part folder under RUN/parts/."""
    out: dict[int, dict[int, Path]] = {}
    root = run_dir / PARTS
    if root.is_dir():
        for p in sorted(root.iterdir()):
            m = _PART_NAME.match(p.name)
            if m and p.is_dir():
                out.setdefault(int(m[2]), {})[int(m[1])] = p
    return out


def has_parts(run_dir: Path) -> bool:
    return bool(_parts(run_dir))


def require_run(run_dir: Path) -> None:
    """A one-line error unless RUN holds a run (run.json); for a sharded run not merged yet, where
    its parts stand and what to do."""
    if (run_dir / "run.json").is_file():
        return
    found = _parts(run_dir)
    if found:
        n, parts = max(found.items())
        done = sum((p / "manifest.json").is_file() for p in parts.values())
        first = next(iter(parts.values()))
        raise AugmentError(
            f"{run_dir}: a sharded run, not merged yet ({done} of {n} parts done); each part is a run "
            f"of its own (augment stats {first}), and 'augment merge {run_dir}' joins them when all are done"
        )
    raise AugmentError(f"{run_dir}: not a run directory (no run.json); run 'augment generate' first")


def prepare_part(run_dir: Path, shard: Shard) -> Path:
    """The part's folder, after checking RUN holds nothing it would clash with; a stale manifest
    (from an earlier finish of this part) is removed, so a part being re-run is never merged."""
    others = sorted(n for n in _parts(run_dir) if n != shard.count)
    if others:
        raise AugmentError(
            f"{run_dir / PARTS}: holds parts of a {others[0]}-way split, not {shard.count}; "
            "use the same N for every part, or another -o"
        )
    run_json = run_dir / "run.json"
    if run_json.is_file() and "merged_from" not in json.loads(run_json.read_text(encoding="utf-8")):
        raise AugmentError(f"{run_dir}: holds an unsharded run; write the parts to another -o")
    out = part_dir(run_dir, shard)
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").unlink(missing_ok=True)
    return out


def check_unsharded(run_dir: Path) -> None:
    """An unsharded generate must not write over merged parts (a re-merge would replace its output)."""
    if has_parts(run_dir):
        raise AugmentError(
            f"{run_dir}: holds sharded parts ({run_dir / PARTS}); run 'augment merge {run_dir}', "
            "or write an unsharded run to another -o"
        )


def _count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))


def _data_files(folder: Path) -> list[str]:
    found = [name for name in _MERGED if (folder / name).is_file()]
    for sub in ("generated", "steps"):
        if (folder / sub).is_dir():
            found += [f"{sub}/{p.name}" for p in sorted((folder / sub).glob("*.jsonl"))]
    return found


def write_manifest(folder: Path, shard: Shard, positions: list[int], run_info: dict[str, Any]) -> None:
    """Mark a finished part: what it holds, so merge can tell it is whole and unchanged."""
    files = {
        name: {"sha256": sha256_file(folder / name), "lines": _count_lines(folder / name)}
        for name in _data_files(folder)
    }
    write_json(
        folder / "manifest.json",
        {
            "shard": shard.index,
            "of": shard.count,
            "complete": True,
            "config": {k: v for k, v in run_info["config"].items() if k not in PER_JOB},
            "source_fingerprint": run_info["source_fingerprint"],
            # what the prompts are, not where this machine keeps them
            "strategies": {
                k: {"version": v["version"], "sha256": v["sha256"]} for k, v in run_info["strategies"].items()
            },
            "positions": positions,
            "files": files,
        },
    )


@dataclass
class MergeSummary:
    run_dir: Path
    parts: int
    documents: int = 0
    records: Counter[str] = field(default_factory=Counter)
    failures: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "parts": self.parts,
            "documents": self.documents,
            "records": dict(self.records),
            "failures": self.failures,
        }


def _why_incomplete(folder: Path) -> str:
    stats = folder / "stats.json"
    if stats.is_file():
        s = json.loads(stats.read_text(encoding="utf-8"))
        if s.get("budget_stopped"):
            return f"stopped at the budget {s['budget_stopped']}"
        if s.get("not_sent") or s.get("unanswered"):
            return f"{s.get('unanswered', 0)} requests unanswered"
    return "interrupted or still running"


def check_parts(run_dir: Path) -> tuple[int, list[tuple[Path, dict[str, Any]]]]:
    """Every part of the split, with its manifest, or a one-line error naming what is missing."""
    found = _parts(run_dir)
    if not found:
        raise AugmentError(
            f"{run_dir}: no parts to merge (write them with 'augment generate DOCS -o {run_dir} --shard K/N')"
        )
    if len(found) > 1:
        raise AugmentError(f"{run_dir / PARTS}: holds parts of {sorted(found)}-way splits; keep one")
    ((n, parts),) = found.items()
    missing = [k for k in range(n) if k not in parts]
    if missing:
        names = ", ".join(f"{k}/{n}" for k in missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise AugmentError(
            f"{run_dir}: cannot merge, {len(missing)} of {n} shards missing ({names}); "
            f"run 'augment generate DOCS -o {run_dir} --shard K/{n}' for each"
        )
    incomplete = [
        f"{k}/{n} ({_why_incomplete(parts[k])})"
        for k in range(n)
        if not (parts[k] / "manifest.json").is_file()
    ]
    if incomplete:
        raise AugmentError(
            f"{run_dir}: cannot merge, {len(incomplete)} of {n} shards not complete: {', '.join(incomplete[:10])}; "
            "re-run them (replies received are cached)"
        )
    out = []
    first: dict[str, Any] | None = None
    for k in range(n):
        manifest = json.loads((parts[k] / "manifest.json").read_text(encoding="utf-8"))
        if first is None:
            first = manifest
        differs = [
            key
            for key in first["config"] | manifest["config"]
            if first["config"].get(key) != manifest["config"].get(key)
        ]
        if differs:
            key = differs[0]
            raise AugmentError(
                f"{parts[k]}: shard {k}/{n} was generated with {key} = {json.dumps(manifest['config'].get(key))}, "
                f"shard 0/{n} with {json.dumps(first['config'].get(key))}; re-run one of them with the other's setting"
            )
        for key, what in (("source_fingerprint", "documents"), ("strategies", "prompt files")):
            if manifest[key] != first[key]:
                raise AugmentError(
                    f"{parts[k]}: shard {k}/{n} was generated with other {what} than shard 0/{n}; "
                    "re-run it with the same inputs and prompt files"
                )
        for name, meta in manifest["files"].items():
            path = parts[k] / name
            if not path.is_file() or sha256_file(path) != meta["sha256"]:
                raise AugmentError(f"{path}: changed since shard {k}/{n} finished; re-run that shard")
        out.append((parts[k], manifest))
    return n, out


def parts_signature(run_dir: Path) -> str | None:
    """A hash of the parts' manifests (None when a part has none): merged output is current when
    run.json's merged_from holds the same."""
    found = _parts(run_dir)
    if len(found) != 1:
        return None
    ((n, parts),) = found.items()
    h = []
    for k in range(n):
        m = parts.get(k, Path("/nonexistent")) / "manifest.json"
        if not m.is_file():
            return None
        h.append(sha256_file(m))
    return sha256_hex("".join(h))


def merge_if_needed(run_dir: Path) -> MergeSummary | None:
    """Merge the parts unless RUN already holds their merge (for curate/export after sharded jobs)."""
    if not has_parts(run_dir):
        return None
    run_json = run_dir / "run.json"
    if run_json.is_file():
        merged = json.loads(run_json.read_text(encoding="utf-8")).get("merged_from") or {}
        if merged.get("signature") and merged["signature"] == parts_signature(run_dir):
            return None
    return merge(run_dir)


def _lines(path: Path) -> Iterator[str]:
    if path.is_file():
        with open(path, encoding="utf-8") as f:
            yield from f


def _merge_file(
    out: Path, sources: list[Path], key: Callable[[dict[str, Any]], tuple], counts: Counter[str] | None = None
) -> int:
    """Interleave already-ordered JSONL files into `out` by `key`, streaming (memory stays flat)."""

    def keyed(path: Path) -> Iterator[tuple[tuple, str]]:
        for line in _lines(path):
            yield key(json.loads(line)), line

    n = 0
    with atomic_write(out) as f:
        for _, line in heapq.merge(*(keyed(p) for p in sources), key=lambda kl: kl[0]):
            f.write(line)
            n += 1
    if counts is not None:
        counts[out.stem] += n
    return n


@locks_run
def merge(run_dir: Path) -> MergeSummary:
    """Combine every part of RUN/parts/ into RUN/ as one unsharded run would have written it."""
    n, parts = check_parts(run_dir)
    folders = [p for p, _ in parts]
    position: dict[str, int] = {}
    for folder, manifest in parts:
        docs = [json.loads(line)["doc_id"] for line in _lines(folder / "documents.jsonl")]
        position.update(zip(docs, manifest["positions"], strict=True))
    run_infos = [json.loads((p / "run.json").read_text(encoding="utf-8")) for p in folders]
    order = {name: i for i, name in enumerate(run_infos[0]["strategies"])}

    def doc_pos(row: dict[str, Any]) -> int:
        return position[row.get("doc_id") or row["chunk_id"].rsplit(":", 1)[0]]

    def record_key(row: dict[str, Any]) -> tuple:
        return (row.get("wave", 1), doc_pos(row))

    def failure_key(row: dict[str, Any]) -> tuple:
        # wave 1 goes chunk by chunk (all strategies of a chunk together); later waves strategy by strategy
        wave = row.get("wave", 1)
        return (wave, 0 if wave == 1 else order.get(row["strategy"], 0), doc_pos(row))

    summary = MergeSummary(run_dir, n)
    summary.documents = _merge_file(
        run_dir / "documents.jsonl", [p / "documents.jsonl" for p in folders], doc_pos
    )
    for sub, counts in (("generated", summary.records), ("steps", None)):
        names = sorted({p.name for f in folders if (f / sub).is_dir() for p in (f / sub).glob("*.jsonl")})
        for name in names:
            _merge_file(run_dir / sub / name, [f / sub / name for f in folders], record_key, counts)
    summary.failures = _merge_file(
        run_dir / "failures.jsonl", [p / "failures.jsonl" for p in folders], failure_key
    )

    stats = [json.loads((p / "stats.json").read_text(encoding="utf-8")) for p in folders]
    write_json(run_dir / "stats.json", sum_stats(stats))
    info = {k: v for k, v in run_infos[0].items() if k not in ("argv", "timings", "shard")}
    info["complete"] = True
    info["timings"] = {
        "generate_s": round(sum(i.get("timings", {}).get("generate_s", 0) for i in run_infos), 3)
    }
    info["merged_from"] = {"parts": n, "folder": PARTS, "signature": parts_signature(run_dir)}
    write_json(run_dir / "run.json", info)
    return summary


def sum_stats(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """stats.json of the merged run: counts summed; files and skipped inputs are the corpus's (every
    part read the same inputs)."""

    def add(a: Any, b: Any) -> Any:
        if b is None:
            return a
        if isinstance(b, list):  # notes (what a server refused): each once, in the order first said
            return (a if isinstance(a, list) else []) + [x for x in b if x not in (a or [])]
        if isinstance(a, dict):
            return {k: add(a.get(k, {} if isinstance(b.get(k), dict) else 0), b.get(k)) for k in a | b}
        return a + b if isinstance(a, int | float) and not isinstance(a, bool) else a

    out: dict[str, Any] = {}
    for s in parts:
        for k, v in s.items():
            if k in ("complete", "budget_stopped", "files", "skipped", "cost"):
                out.setdefault(k, v)
            elif k not in out:
                out[k] = v
            else:
                out[k] = add(out[k], v)
    out["complete"] = all(s["complete"] for s in parts)
    costs = [s.get("cost") for s in parts if s.get("cost") is not None]
    out["cost"] = round(sum(costs), 6) if costs else None
    out["seconds"] = round(sum(s.get("seconds", 0) for s in parts), 3)
    return out
