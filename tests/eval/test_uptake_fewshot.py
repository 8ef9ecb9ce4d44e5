"""bench/uptake_fewshot.py: the base model with worked examples from the format control's passages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPT = BENCH / "uptake_fewshot.py"
ARMS = ("base", "raw", "augment", "format")


def _qa(path: Path) -> Path:
    rows = [
        {
            "id": f"p{i}",
            "title": f"Page {i}",
            "text": f"Page {i} opened in {1900 + i} at Brask.",
            "questions": [
                {"q": f"When did page {i} open?", "answers": [str(1900 + i)]},
                {"q": f"Where did page {i} open?", "answers": ["Brask"]},
            ],
        }
        for i in range(6)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _run(path: Path, qa: Path, model: Path, f1: float, train_seed: int | None = None) -> Path:
    sys.path.insert(0, str(BENCH))
    from uptake import split_passages

    evaluated, _ = split_passages(qa, 2, 0)
    asked = [q for r in evaluated for q in r["questions"]]
    per = {arm: {"f1": [f1] * len(asked), "answer_nll": [2.0] * len(asked)} for arm in ARMS}
    args = {"qa": str(qa), "passages": "2", "seed": "0", "train_seed": str(train_seed)}
    path.write_text(
        json.dumps({"args": args, "model": str(model), "questions_asked": asked, "per_question": per})
    )
    return path


def _probe(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True)


def test_few_shot_base_is_scored_with_the_controls_passages_only(tmp_path: Path, tiny_model):
    pytest.importorskip("torch")
    sys.path.insert(0, str(BENCH))
    from uptake import split_passages

    qa = _qa(tmp_path / "qa.jsonl")
    first = _run(tmp_path / "uptake.json", qa, tiny_model, 0.0)
    second = _run(tmp_path / "uptake-t1.json", qa, tiny_model, 1.0, train_seed=1)
    res = _probe(first, second, "--shots", "2", "-o", tmp_path / "out.json")
    assert res.returncode == 0, res.stderr
    out = json.loads((tmp_path / "out.json").read_text())
    (draw,) = out["draws"]  # the two training runs are one draw
    evaluated, other = split_passages(qa, 2, 0)
    assert [s["q"] for s in draw["shots"]] == [r["questions"][0]["q"] for r in other[:2]]
    assert not {s["q"] for s in draw["shots"]} & {q["q"] for r in evaluated for q in r["questions"]}
    assert len(draw["few_shot"]["f1"]) == len(draw["few_shot"]["answer_nll"]) == 4
    assert draw["arms"]["augment"]["f1"] == [0.5] * 4  # the two runs averaged
    assert "base few-shot" in res.stdout and "qa, 1 draws" in res.stdout

    res = _probe(first, "--shots", "3")
    assert res.returncode != 0 and "2 format-control passages, fewer than --shots 3" in res.stderr
    moved = json.loads(first.read_text())
    moved["questions_asked"] = moved["questions_asked"][::-1]
    (tmp_path / "moved.json").write_text(json.dumps(moved))
    res = _probe(tmp_path / "moved.json", "--shots", "1")
    assert res.returncode != 0 and "does not give the questions the run asked" in res.stderr
