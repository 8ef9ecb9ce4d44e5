"""bench/uptake_pool.py: pooled knowledge-uptake runs, one paired observation per question."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "uptake_pool.py"


def _run(path: Path, seed: int, f1: dict[str, list[float]], lr: str = "0.0001") -> Path:
    n = len(f1["base"])
    per = {
        arm: {"f1": v, "answer_nll": [3.0 - x for x in v], "prediction": [""] * n} for arm, v in f1.items()
    }
    args = {"seed": str(seed), "out": str(path.parent), "lr": lr, "model": "m", "steps": "24"}
    path.write_text(json.dumps({"args": args, "per_question": per}))
    return path


def _pool(*paths: Path, out: Path | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(SCRIPT), *map(str, paths), *(["-o", str(out)] if out else [])]
    return subprocess.run(cmd, capture_output=True, text=True)


def test_runs_pool_question_by_question(tmp_path: Path):
    a = _run(tmp_path / "a.json", 0, {"base": [0, 0], "raw": [0, 1], "augment": [1, 1], "format": [0, 1]})
    b = _run(
        tmp_path / "b.json",
        1,
        {"base": [0, 0, 0], "raw": [0, 0, 0], "augment": [1, 0, 1], "format": [1, 0, 0]},
    )
    res = _pool(a, b, out=tmp_path / "pooled.json")
    assert res.returncode == 0, res.stderr
    pooled = json.loads((tmp_path / "pooled.json").read_text())
    assert pooled["questions"] == 5 and pooled["seeds"] == ["0", "1"]
    c_minus_d = np.array([1, 1, 1, 0, 1]) - np.array([0, 1, 1, 0, 0])
    mean, lo, hi = pooled["differences"]["c-d (knowledge)"]["f1"]
    assert mean == c_minus_d.mean() and lo <= mean <= hi
    assert pooled["differences"]["c-d (knowledge)"]["answer_nll"][0] == -c_minus_d.mean()
    assert pooled["closed"]["augment"]["f1"] == 0.8
    assert "| c-d (knowledge) | +0.400 [" in res.stdout


def test_runs_with_other_settings_do_not_pool(tmp_path: Path):
    arms = {"base": [0], "raw": [0], "augment": [1], "format": [0]}
    a = _run(tmp_path / "a.json", 0, arms)
    b = _run(tmp_path / "b.json", 1, arms, lr="3e-05")
    res = _pool(a, b)
    assert res.returncode != 0
    assert res.stderr.strip() == f"{b}: settings differ from {a} in lr"
