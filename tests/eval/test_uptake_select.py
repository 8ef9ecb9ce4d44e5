"""bench/uptake_select.py: each arm's training setting chosen on the other fold of passages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPT = BENCH / "uptake_select.py"
ARMS = ("base", "raw", "augment", "format")


def _run(
    path: Path,
    seed: int,
    steps: int,
    nll: dict[str, list[float]],
    passages: list[str],
    train_seed: int | None = None,
) -> Path:
    """An uptake.json whose F1 per question is 10 - NLL, so the two metrics can be told apart."""
    per = {
        arm: {"answer_nll": v, "f1": [10 - x for x in v], "prediction": [""] * len(v)}
        for arm, v in nll.items()
    }
    args = {
        "seed": str(seed),
        "train_seed": str(train_seed),
        "out": str(path.parent),
        "steps": str(steps),
        "lr": "1e-4",
    }
    questions = [{"q": f"q{k}", "answers": ["a"]} for k in range(len(passages))]
    data = {"args": args, "per_question": per, "questions_asked": questions, "question_passages": passages}
    path.write_text(json.dumps(data))
    return path


def _select(
    *paths: Path, out: Path | None = None, by: str | None = None, same: str | None = None
) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(SCRIPT), *map(str, paths), *(["-o", str(out)] if out else [])]
    cmd += (["--by", by] if by else []) + (["--same", same] if same else [])
    return subprocess.run(cmd, capture_output=True, text=True)


# four questions on passages p, q, r, s: fold 0 holds p and r (questions 0, 2), fold 1 q and s (1, 3)
PASSAGES = ["p", "q", "r", "s"]
SHORT = {  # at 24 steps (c) is better on fold 1's questions, (d) the same everywhere
    "base": [4, 4, 4, 4],
    "raw": [3, 3, 3, 3],
    "augment": [2.0, 1.0, 2.0, 1.0],
    "format": [2.5, 2.5, 2.5, 2.5],
}
LONG = {  # at 48 steps (c) is better on fold 0's questions; (d) worse everywhere, (b) better
    "base": [4, 4, 4, 4],
    "raw": [2, 2, 2, 2],
    "augment": [1.5, 3.0, 1.5, 3.0],
    "format": [3.5, 3.5, 3.5, 3.5],
}


def test_each_fold_is_scored_with_the_setting_the_other_fold_chose(tmp_path: Path):
    a = _run(tmp_path / "a.json", 0, 24, SHORT, PASSAGES)
    b = _run(tmp_path / "b.json", 0, 48, LONG, PASSAGES)
    res = _select(a, b, out=tmp_path / "sel.json")
    assert res.returncode == 0, res.stderr
    sel = json.loads((tmp_path / "sel.json").read_text())
    assert sel["candidates_differ_in"] == ["steps"] and sel["questions"] == 4
    # (c): fold 1 prefers 24 steps, so fold 0 is scored at 24; fold 0 prefers 48, so fold 1 at 48
    assert sel["chosen"]["augment"] == {"0": ["steps=24", "steps=48"]}
    augment = np.array([2.0, 3.0, 2.0, 3.0])
    assert sel["closed"]["augment"]["answer_nll"] == augment.mean()
    assert sel["chosen"]["format"] == {"0": ["steps=24", "steps=24"]}
    assert sel["chosen"]["raw"] == {"0": ["steps=48", "steps=48"]}
    mean, lo, hi = sel["differences"]["c-d (knowledge)"]["answer_nll"]
    assert mean == pytest.approx((augment - 2.5).mean()) and lo <= mean <= hi
    assert sel["differences"]["c-b"]["f1"][0] == pytest.approx(-((augment - 2.0).mean()))
    assert "| augment | seed 0: steps=24 / steps=48 |" in res.stdout
    # by passage: the same mean, an interval over the draw's passages
    by_passage = sel["differences_by_passage"]["c-d (knowledge)"]["answer_nll"]
    assert by_passage[0] == pytest.approx(mean) and by_passage[1] <= mean <= by_passage[2]
    assert "NLL, by passage" in res.stdout


def test_choosing_by_f1_picks_the_higher_score(tmp_path: Path):
    a = _run(tmp_path / "a.json", 0, 24, SHORT, PASSAGES)
    b = _run(tmp_path / "b.json", 0, 48, LONG, PASSAGES)
    res = _select(a, b, out=tmp_path / "sel.json", by="f1")
    assert res.returncode == 0, res.stderr
    # F1 = 10 - NLL: the same choices as by likelihood, which a lower-is-better mix-up would invert
    sel = json.loads((tmp_path / "sel.json").read_text())
    assert sel["chosen"]["augment"] == {"0": ["steps=24", "steps=48"]}
    assert sel["chosen"]["raw"] == {"0": ["steps=48", "steps=48"]}


def test_choosing_by_the_source_wording_nll_needs_every_run_to_have_it(tmp_path: Path):
    a = _run(tmp_path / "a.json", 0, 24, SHORT, PASSAGES)
    b = _run(tmp_path / "b.json", 0, 48, LONG, PASSAGES)
    res = _select(a, b, by="answer_nll_source")
    assert res.returncode != 0 and "not every run scored it" in res.stderr
    for path, table in ((a, LONG), (b, SHORT)):  # the source wording prefers the other setting
        run = json.loads(path.read_text())
        for arm in ARMS:
            run["per_question"][arm]["answer_nll_source"] = table[arm]
        path.write_text(json.dumps(run))
    res = _select(a, b, out=tmp_path / "sel.json", by="answer_nll_source")
    assert res.returncode == 0, res.stderr
    sel = json.loads((tmp_path / "sel.json").read_text())
    assert sel["chosen"]["raw"] == {"0": ["steps=24", "steps=24"]}  # lower-is-better: raw's 2 is at 24 now
    assert "answer_nll_source" in sel["differences"]["c-d (knowledge)"]


def test_draws_pool_and_replicates_average_before_choosing(tmp_path: Path):
    a = _run(tmp_path / "a.json", 0, 24, SHORT, PASSAGES)
    b = _run(tmp_path / "b.json", 0, 48, LONG, PASSAGES)
    # a replicate of seed 0 at 48 steps whose (c) is bad on fold 0 too: averaged, 48 loses there
    worse = {**LONG, "augment": [3.5, 3.0, 3.5, 3.0]}
    b2 = _run(tmp_path / "b2.json", 0, 48, worse, PASSAGES, train_seed=9)
    c = _run(tmp_path / "c.json", 1, 24, {arm: v[:2] for arm, v in SHORT.items()}, ["x", "y"])
    d = _run(tmp_path / "d.json", 1, 48, {arm: v[:2] for arm, v in LONG.items()}, ["x", "y"])
    res = _select(a, b, b2, c, d, out=tmp_path / "sel.json")
    assert res.returncode == 0, res.stderr
    sel = json.loads((tmp_path / "sel.json").read_text())
    assert sel["questions"] == 6
    # seed 0 at 48 steps averages to 2.5 on fold 0: fold 1 is scored at 24 steps (chosen on fold 0)
    assert sel["chosen"]["augment"]["0"] == ["steps=24", "steps=24"]
    assert sel["chosen"]["augment"]["1"] == ["steps=24", "steps=48"]
    expected = [2.0, 1.0, 2.0, 1.0, 2.0, 3.0]
    assert sel["closed"]["augment"]["answer_nll"] == pytest.approx(np.mean(expected))


def test_interval_by_passage_and_run_resamples_each_training_run_under_the_choices(tmp_path: Path):
    a = _run(tmp_path / "a.json", 0, 24, SHORT, PASSAGES)
    b = _run(tmp_path / "b.json", 0, 48, LONG, PASSAGES)
    # the same training run again (train seed 9): the interval is the one by passage
    a9 = _run(tmp_path / "a9.json", 0, 24, SHORT, PASSAGES, train_seed=9)
    b9 = _run(tmp_path / "b9.json", 0, 48, LONG, PASSAGES, train_seed=9)
    res = _select(a, b, a9, b9, out=tmp_path / "sel.json")
    assert res.returncode == 0, res.stderr
    sel = json.loads((tmp_path / "sel.json").read_text())
    assert sel["replicates"] == {"0": 2}
    assert sel["differences_by_passage_and_run"] == sel["differences_by_passage"]
    # a second run whose (c) is one nat worse at every step: the choices stay, the runs' mean moves
    # by half a nat and the interval widens by how far the runs are apart
    for path, table in ((a9, SHORT), (b9, LONG)):
        run = json.loads(path.read_text())
        run["per_question"]["augment"]["answer_nll"] = [x + 1 for x in table["augment"]]
        path.write_text(json.dumps(run))
    res = _select(a, b, a9, b9, out=tmp_path / "sel.json")
    assert res.returncode == 0, res.stderr
    sel = json.loads((tmp_path / "sel.json").read_text())
    assert sel["chosen"]["augment"] == {"0": ["steps=24", "steps=48"]}
    mean, lo, hi = sel["differences_by_passage_and_run"]["c-d (knowledge)"]["answer_nll"]
    _, plo, phi = sel["differences_by_passage"]["c-d (knowledge)"]["answer_nll"]
    assert mean == pytest.approx((np.array([2.0, 3.0, 2.0, 3.0]) + 0.5 - 2.5).mean())
    assert hi - lo > (phi - plo) + 0.5
    # a draw whose candidates were not all trained in the same runs has no such interval
    res = _select(a, b, b9, out=tmp_path / "sel.json")
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "sel.json").read_text())["differences_by_passage_and_run"] is None


def test_every_draw_needs_every_candidate(tmp_path: Path):
    a = _run(tmp_path / "a.json", 0, 24, SHORT, PASSAGES)
    b = _run(tmp_path / "b.json", 0, 48, LONG, PASSAGES)
    c = _run(tmp_path / "c.json", 1, 24, SHORT, PASSAGES)
    res = _select(a, b, c)
    assert res.returncode != 0
    assert res.stderr.strip() == "seed 1: no run with steps=48 (every draw needs every candidate)"


def test_a_setting_vouched_the_same_is_not_a_candidate(tmp_path: Path):
    # seed 1's runs wrote one prompts folder's path another way
    a = _run(tmp_path / "a.json", 0, 24, SHORT, PASSAGES)
    b = _run(tmp_path / "b.json", 0, 48, LONG, PASSAGES)
    c = _run(tmp_path / "c.json", 1, 24, SHORT, PASSAGES)
    d = _run(tmp_path / "d.json", 1, 48, LONG, PASSAGES)
    for path in (c, d):
        data = json.loads(path.read_text())
        data["args"]["generate_args"] = "--prompts-dir /tmp/p"
        path.write_text(json.dumps(data))
    res = _select(a, b, c, d)
    assert res.returncode != 0
    assert res.stderr.strip() == (
        "seed 0: no run with generate_args=--prompts-dir /tmp/p, steps=24 (every draw needs every "
        "candidate; --same generate_args if its values name one treatment)"
    )
    out = tmp_path / "sel.json"
    res = _select(a, b, c, d, out=out, same="generate_args")
    assert res.returncode == 0, res.stderr
    sel = json.loads(out.read_text())
    assert sel["candidates_differ_in"] == ["steps"] and sel["questions"] == 8
    assert sel["treated_as_same"] == {"generate_args": ["--prompts-dir /tmp/p", "None"]}


def test_candidates_of_one_draw_must_ask_the_same_questions(tmp_path: Path):
    a = _run(tmp_path / "a.json", 0, 24, SHORT, PASSAGES)
    b = _run(tmp_path / "b.json", 0, 48, LONG, PASSAGES)
    data = json.loads(b.read_text())
    data["questions_asked"][0]["q"] = "another"
    b.write_text(json.dumps(data))
    res = _select(a, b)
    assert res.returncode != 0
    assert res.stderr.strip() == f"{b}: same --seed as {a} but other questions"


def test_passages_are_drawn_again_for_runs_that_did_not_write_them(tmp_path: Path):
    sys.path.insert(0, str(BENCH))
    from uptake import split_passages
    from uptake_select import folds, question_passages

    qa = tmp_path / "qa.jsonl"
    rows = [
        {
            "id": f"P{k}",
            "title": f"T{k}",
            "text": f"text {k}",
            "questions": [{"q": "?", "answers": ["a"]}] * (k % 3),
        }
        for k in range(8)
    ]
    rows[3]["questions"] = [
        {"q": "?", "answers": ["a"], "unanswerable_from_text": True},
        {"q": "!", "answers": ["b"]},
    ]
    qa.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    evaluated, _ = split_passages(qa, 3, 5)
    want = [r["id"] for r in evaluated for q in r["questions"] if not q.get("unanswerable_from_text")]
    run = {"args": {"qa": str(qa), "passages": "3", "seed": "5"}, "questions_asked": [{}] * len(want)}
    assert question_passages(tmp_path / "u.json", run) == want
    assert folds(["p", "p", "q", "r", "q"]).tolist() == [0, 0, 1, 0, 1]
    run["questions_asked"] = [{}] * (len(want) + 1)
    with pytest.raises(SystemExit, match="the run asked"):
        question_passages(tmp_path / "u.json", run)
