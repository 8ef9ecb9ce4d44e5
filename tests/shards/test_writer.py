from __future__ import annotations

import json
from pathlib import Path

import pytest

from augment.errors import AugmentError
from augment.io import sha256_file, write_jsonl
from augment.shards import export
from augment.shards.writer import split


def make_run(tmp_path: Path, n: int = 300) -> Path:
    run = tmp_path / "run"
    recs = [
        {
            "id": f"id{i:04d}",
            "strategy": "qa" if i % 3 else "notes",
            "text": f"Record {i}. " + "word " * 50,
            "messages": [{"role": "user", "content": f"Q{i}?"}, {"role": "assistant", "content": f"A{i}."}],
        }
        for i in range(n)
    ]
    write_jsonl(run / "generated" / "all.jsonl", recs)
    return run


def test_shards_are_cut_by_size_and_listed_with_checksums(tmp_path: Path):
    run = make_run(tmp_path)
    summary = export(run, shard_mb=0.02, val_fraction=0.1)  # ~20 KB shards
    manifest = json.loads((run / "shards" / "manifest.json").read_text())
    train = [f for f in manifest["files"] if f["split"] == "train" and f["format"] == "jsonl"]
    assert len(train) > 3
    assert [f["path"] for f in train] == [
        f"train-{k:05d}-of-{len(train):05d}.jsonl" for k in range(len(train))
    ]
    for f in manifest["files"]:
        path = run / "shards" / f["path"]
        assert sha256_file(path) == f["sha256"] and path.stat().st_size == f["bytes"]
        if f["format"] == "jsonl":
            assert f["bytes"] <= 0.02 * 1024 * 1024 + 400  # one record may cross the line
            assert sum(1 for _ in path.open()) == f["records"]
    assert manifest["counts"]["train"] == 270 and manifest["counts"]["val"] == 30
    by_strategy = manifest["counts"]["by_strategy"]
    assert {k: v["train"] + v.get("val", 0) for k, v in by_strategy.items()} == {"notes": 100, "qa": 200}
    assert manifest["tokens"]["train"] > 270 * 50 and summary.tokens == {
        k: manifest["tokens"][k] for k in ("train", "val")
    }
    assert not list((run / "shards").glob(".*.tmp"))  # no temp files left behind

    # a re-export with bigger shards replaces the old set, leaving no stale file
    export(run, shard_mb=64, val_fraction=0.1)
    assert sorted(p.name for p in (run / "shards").iterdir()) == [
        "manifest.json",
        "train-00000-of-00001.jsonl",
        "train-00000-of-00001.parquet",
        "val-00000-of-00001.jsonl",
        "val-00000-of-00001.parquet",
    ]


def test_validation_split_is_deterministic_and_keeps_order():
    recs = [{"id": f"r{i}"} for i in range(1000)]
    train, val = split(recs, 0.05)
    assert len(val) == 50 and len(train) == 950
    assert split(list(reversed(recs)), 0.05)[1] == list(reversed(val))
    assert [r["id"] for r in train] == sorted((r["id"] for r in train), key=lambda x: int(x[1:]))
    assert split(recs, 0.0) == (recs, [])
    assert split(recs[:1], 0.5) == (recs[:1], [])


def test_curated_records_win_over_generated(tmp_path: Path):
    run = make_run(tmp_path)
    write_jsonl(
        run / "curated" / "kept.jsonl", [{"id": "keep1", "strategy": "qa", "text": "kept", "messages": []}]
    )
    summary = export(run, val_fraction=0.0, file_formats=["jsonl"])
    assert summary.source == "curated/kept.jsonl" and summary.counts == {"train": 1, "val": 0}
    assert not list((run / "shards").glob("*.parquet"))


def test_export_without_records_is_a_clear_error(tmp_path: Path):
    with pytest.raises(AugmentError, match="no generated records"):
        export(tmp_path)
