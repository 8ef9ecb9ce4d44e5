"""bench/uptake_pool.py: pooled knowledge-uptake runs, one paired observation per question."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "uptake_pool.py"


def _run(
    path: Path, seed: int, f1: dict[str, list[float]], lr: str = "0.0001", train_seed: int | None = None
) -> Path:
    n = len(f1["base"])
    per = {
        arm: {"f1": v, "answer_nll": [3.0 - x for x in v], "prediction": [""] * n} for arm, v in f1.items()
    }
    args = {"seed": str(seed), "out": str(path.parent), "lr": lr, "model": "m", "steps": "24"}
    args["train_seed"] = str(train_seed)
    path.write_text(json.dumps({"args": args, "per_question": per}))
    return path


def _pool(*paths: Path, out: Path | None = None, same: str | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(SCRIPT), *map(str, paths), *(["-o", str(out)] if out else [])]
    cmd += ["--same", same] if same else []
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
    # the runs say neither which passage each question is about nor where their QA file is
    assert pooled["differences_by_passage"] is None and "no interval by passage" in res.stdout
    assert pooled["shared_passages"] == {} and "is evaluated by seeds" not in res.stdout


def test_intervals_by_passage_resample_whole_passages(tmp_path: Path):
    # per draw, 3 passages of 4 questions; (c) knows two passages of each draw entirely, (d) none
    knows = {0: [1, 1, 0], 1: [1, 0, 1]}
    paths = []
    for seed in (0, 1):
        c = [float(k) for k in np.repeat(knows[seed], 4)]
        path = _run(
            tmp_path / f"s{seed}.json",
            seed,
            {"base": [0] * 12, "raw": [0] * 12, "augment": c, "format": [0] * 12},
        )
        data = json.loads(path.read_text())
        data["question_passages"] = [f"p{k}" for k in np.repeat([0, 1, 2], 4)]
        path.write_text(json.dumps(data))
        paths.append(path)
    res = _pool(*paths, out=tmp_path / "pooled.json")
    assert res.returncode == 0, res.stderr
    pooled = json.loads((tmp_path / "pooled.json").read_text())
    mean, lo, hi = pooled["differences"]["c-d (knowledge)"]["f1"]
    pmean, plo, phi = pooled["differences_by_passage"]["c-d (knowledge)"]["f1"]
    assert mean == pmean == 2 / 3
    # 6 clusters (s0/p0 and s1/p0 count twice: each draw trains its own arms), not 24 questions
    assert phi - plo > 1.5 * (hi - lo)
    assert "F1, by passage" in res.stdout and f"[{plo:+.3f}, {phi:+.3f}]" in res.stdout
    # the same passage ids in both draws: said, so that a reader knows the questions repeat
    assert pooled["shared_passages"] == {"p0": ["0", "1"], "p1": ["0", "1"], "p2": ["0", "1"]}
    assert "passage p0 is evaluated by seeds 0, 1: counted once per draw" in res.stdout


def test_replicates_of_one_draw_are_averaged_per_question_before_pooling(tmp_path: Path):
    a = _run(tmp_path / "a.json", 0, {"base": [0, 0], "raw": [0, 0], "augment": [1, 0], "format": [0, 0]})
    a2 = _run(
        tmp_path / "a2.json",
        0,
        {"base": [0, 0], "raw": [0, 0], "augment": [0, 0.5], "format": [0, 1]},
        train_seed=7,
    )
    b = _run(tmp_path / "b.json", 1, {"base": [0], "raw": [0], "augment": [1], "format": [0]})
    res = _pool(a, a2, b, out=tmp_path / "pooled.json")
    assert res.returncode == 0, res.stderr
    pooled = json.loads((tmp_path / "pooled.json").read_text())
    # seed 0's two questions once each, averaged over its two training runs; then seed 1's
    assert pooled["questions"] == 3 and pooled["replicates"] == {"0": 2, "1": 1}
    c_minus_d = np.array([0.5, 0.25, 1.0]) - np.array([0.0, 0.5, 0.0])
    assert pooled["differences"]["c-d (knowledge)"]["f1"][0] == c_minus_d.mean()
    assert pooled["closed"]["augment"]["f1"] == np.mean([0.5, 0.25, 1.0])
    assert "pooled from 3 runs (2 of seed 0, 1 of seed 1)" in res.stdout
    # how far the two training runs of seed 0 are apart; seed 1, trained once, has no entry
    runs = pooled["training_runs"]
    assert list(runs) == ["0"] and [r["train_seed"] for r in runs["0"]["runs"]] == ["0", "7"]
    assert runs["0"]["runs"][0]["c-d (knowledge)"]["f1"][0] == 0.5  # [1, 0] - [0, 0]
    assert runs["0"]["runs"][1]["c-d (knowledge)"]["f1"][0] == -0.25  # [0, 0.5] - [0, 1]
    assert runs["0"]["spread"]["c-d (knowledge)"]["f1"] == 0.75
    assert runs["0"]["spread"]["c-d (knowledge)"]["answer_nll"] == 0.75
    assert "| 0 | spread (max - min) | 0.750 | 0.750 |" in res.stdout


def _with_passages(path: Path, passages: list[str]) -> Path:
    data = json.loads(path.read_text())
    data["question_passages"] = passages
    path.write_text(json.dumps(data))
    return path


def test_interval_by_passage_and_run_holds_how_far_training_runs_are_apart(tmp_path: Path):
    # one passage, two training runs of it: (c) - (d) is 1 on every question in one, 0 in the other
    zeros = [0.0, 0.0]
    runs = [
        _with_passages(
            _run(
                tmp_path / f"r{t}.json",
                0,
                {"base": zeros, "raw": zeros, "augment": c, "format": zeros},
                train_seed=t,
            ),
            ["p", "p"],
        )
        for t, c in ((0, [1.0, 1.0]), (7, zeros))
    ]
    res = _pool(*runs, out=tmp_path / "pooled.json")
    assert res.returncode == 0, res.stderr
    pooled = json.loads((tmp_path / "pooled.json").read_text())
    # over questions and passages the two runs' mean, 0.5, is certain: one passage, no spread in it
    assert pooled["differences_by_passage"]["c-d (knowledge)"]["f1"] == [0.5, 0.5, 0.5]
    # resampling the runs: their mean, or the mean moved by sqrt(2) times half their distance,
    # as much as a mean of two runs varies (sd of two runs 1/sqrt(2), over sqrt(2))
    by_run = pooled["differences_by_passage_and_run"]["c-d (knowledge)"]
    assert by_run["f1"] == pytest.approx([0.5, 0.5 - 2**-0.5, 0.5 + 2**-0.5])
    assert by_run["answer_nll"] == pytest.approx([-0.5, -0.5 - 2**-0.5, -0.5 + 2**-0.5])
    assert "by passage and training run (training runs per draw: seed 0: 2)" in res.stdout
    assert "| c-d (knowledge) | +0.500 [-0.207, +1.207] | -0.500 [-1.207, +0.207] |" in res.stdout


def test_the_interval_by_run_covers_where_the_interval_by_passage_does_not(monkeypatch: pytest.MonkeyPatch):
    # simulated pools of 3 draws x 10 passages x 5 questions, each draw trained twice; the true
    # (c) - (d) is 0, and each training run moves its whole draw by N(0, 0.2) (the data order),
    # about what two training runs of one draw differed by in the uptake runs
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    from uptake_pool import bootstrap_runs_and_groups

    from augment.eval.metrics import bootstrap_ci

    rng = np.random.default_rng(1)
    by_passage = by_run = 0
    for _ in range(200):
        stacks = []
        for d in range(3):
            passage = np.repeat(rng.normal(0, 0.1, 10), 5)
            question = rng.normal(0, 0.3, 50)
            runs = np.stack(
                [passage + question + rng.normal(0, 0.2) + rng.normal(0, 0.1, 50) for _ in range(2)]
            )
            stacks.append((runs, [f"{d}/{k}" for k in np.repeat(np.arange(10), 5)]))
        mean = np.concatenate([r.mean(axis=0) for r, _ in stacks])
        _, lo, hi = bootstrap_ci(mean, n=500, groups=[g for _, labels in stacks for g in labels])
        by_passage += lo <= 0 <= hi
        _, lo, hi = bootstrap_runs_and_groups(stacks, n=500)
        by_run += lo <= 0 <= hi
    # the interval by passage holds 0 in about 3 pools of 5; resampling the runs too, in 9 of 10
    assert by_passage / 200 < 0.7 and by_run / 200 >= 0.85


def test_training_runs_that_agree_give_the_interval_by_passage(tmp_path: Path):
    knows = {0: [1, 1, 0], 1: [1, 0, 1]}
    paths = []
    for seed in (0, 1):
        c = [float(k) for k in np.repeat(knows[seed], 4)]
        arms = {"base": [0] * 12, "raw": [0.5] * 12, "augment": c, "format": [0] * 12}
        for t in (None, 9):
            path = _run(tmp_path / f"s{seed}-t{t}.json", seed, arms, train_seed=t)
            paths.append(_with_passages(path, [f"p{k}" for k in np.repeat([0, 1, 2], 4)]))
    res = _pool(*paths, out=tmp_path / "pooled.json")
    assert res.returncode == 0, res.stderr
    pooled = json.loads((tmp_path / "pooled.json").read_text())
    assert pooled["differences_by_passage_and_run"] == pooled["differences_by_passage"]
    assert pooled["differences_by_passage"]["c-d (knowledge)"]["f1"][2] > 2 / 3  # not a point


def test_no_interval_by_run_while_a_draw_was_trained_once(tmp_path: Path):
    arms = {"base": [0, 0], "raw": [0, 0], "augment": [1, 0], "format": [0, 0]}
    paths = [
        _with_passages(_run(tmp_path / name, seed, arms, train_seed=t), ["p", "q"])
        for name, seed, t in (("a.json", 0, None), ("a2.json", 0, 7), ("b.json", 1, None))
    ]
    res = _pool(*paths, out=tmp_path / "pooled.json")
    assert res.returncode == 0, res.stderr
    pooled = json.loads((tmp_path / "pooled.json").read_text())
    assert pooled["differences_by_passage"] is not None
    assert pooled["differences_by_passage_and_run"] is None
    assert "(no interval by passage and training run: seed 1 trained once)" in res.stdout


def test_replicates_must_ask_the_same_questions(tmp_path: Path):
    arms = {"base": [0], "raw": [0], "augment": [1], "format": [0]}
    a, a2 = _run(tmp_path / "a.json", 0, arms), _run(tmp_path / "a2.json", 0, arms, train_seed=7)
    for path, q in ((a, "Who?"), (a2, "When?")):
        data = json.loads(path.read_text())
        data["questions_asked"] = [{"q": q, "answers": ["x"]}]
        path.write_text(json.dumps(data))
    res = _pool(a, a2)
    assert res.returncode != 0
    assert res.stderr.strip() == f"{a2}: same --seed as {a} but other questions"


def test_one_training_run_is_not_pooled_twice(tmp_path: Path):
    arms = {"base": [0], "raw": [0], "augment": [1], "format": [0]}
    a, again = _run(tmp_path / "a.json", 0, arms), _run(tmp_path / "again.json", 0, arms)
    res = _pool(a, again)
    assert res.returncode != 0
    assert res.stderr.strip() == f"{again}: the same training run as {a} (pool it once)"
    # --train-seed equal to --seed trains exactly as the run without it
    same = _run(tmp_path / "same.json", 0, arms, train_seed=0)
    res = _pool(a, same)
    assert res.stderr.strip() == f"{same}: the same training run as {a} (pool it once)"


def test_runs_with_other_settings_do_not_pool(tmp_path: Path):
    arms = {"base": [0], "raw": [0], "augment": [1], "format": [0]}
    a = _run(tmp_path / "a.json", 0, arms)
    b = _run(tmp_path / "b.json", 1, arms, lr="3e-05")
    res = _pool(a, b)
    assert res.returncode != 0
    assert (
        res.stderr.strip()
        == f"{b}: settings differ from {a} in lr (--same lr if they are the same treatment)"
    )


def test_a_setting_vouched_the_same_pools_and_is_recorded(tmp_path: Path):
    # e.g. two runs that named one prompts folder by two paths in --generate-args
    arms = {"base": [0], "raw": [0], "augment": [1], "format": [0]}
    a = _run(tmp_path / "a.json", 0, arms)
    b = _run(tmp_path / "b.json", 1, arms, lr="3e-05")
    res = _pool(a, b, out=tmp_path / "p.json", same="lr")
    assert res.returncode == 0, res.stderr
    pooled = json.loads((tmp_path / "p.json").read_text())
    assert pooled["questions"] == 2 and "lr" not in pooled["settings"]
    assert pooled["treated_as_same"] == {"lr": ["0.0001", "3e-05"]}
    # a misspelt setting is an error, not a silent no-op
    res = _pool(a, b, same="lrr")
    assert res.returncode != 0 and res.stderr.startswith("--same lrr: no run has that setting")


def _kept(run_dir: Path, records: list[tuple[str, str]]) -> None:
    kept = run_dir / "run_eval" / "curated" / "kept.jsonl"
    kept.parent.mkdir(parents=True)
    lines = [json.dumps({"strategy": "qa-spans", "fields": {"question": q, "answer": a}}) for q, a in records]
    lines.append(json.dumps({"strategy": "paraphrase", "fields": {"text": "Radek Beran directed it."}}))
    kept.write_text("\n".join(lines) + "\n")


def test_questions_are_split_by_whether_the_synthetic_data_asked_them(tmp_path: Path):
    questions = [
        {"q": "Who directed The Little Man?", "answers": ["Radek Beran."]},  # asked, other words
        {"q": "When was The Little Man released?", "answers": ["2015"]},  # answer, other question
        {"q": "Where was it filmed?", "answers": ["Prague"]},  # its answer is nowhere
    ]
    arms = {"base": [0, 0, 0], "raw": [0, 0, 1], "augment": [1, 0, 1], "format": [0, 0, 0]}
    paths = []
    for seed in (0, 1):
        run_dir = tmp_path / f"s{seed}"
        run_dir.mkdir()
        path = _run(run_dir / "uptake.json", seed, arms)
        data = json.loads(path.read_text())
        data["questions_asked"] = questions
        path.write_text(json.dumps(data))
        _kept(
            run_dir,
            [("The Little Man was directed by whom?", "Radek Beran"), ("Who scored the film?", "2015")],
        )
        paths.append(path)
    res = _pool(*paths, out=tmp_path / "pooled.json")
    assert res.returncode == 0, res.stderr
    split = json.loads((tmp_path / "pooled.json").read_text())["by_anticipation"]
    assert split["anticipated"]["questions"] == 2 and split["not anticipated"]["questions"] == 4
    assert split["anticipated"]["differences"]["c-d (knowledge)"]["f1"][0] == 1.0
    # not anticipated: (c) - (d) per question 0, 1, 0, 1; (c) - (b) all 0
    assert split["not anticipated"]["differences"]["c-d (knowledge)"]["f1"][0] == 0.5
    assert split["not anticipated"]["differences"]["c-b"]["f1"][0] == 0.0
    assert "| anticipated | 2 | 1.000 | 0.000 | +1.000 [" in res.stdout


def test_wrong_answers_that_arm_c_practised_for_the_passage_are_counted(tmp_path: Path):
    questions = [
        {"q": "Who was the first director?", "answers": ["Henry Cole"]},
        {"q": "When was it founded?", "answers": ["1851"]},
        {"q": "Who played the lead?", "answers": ["Ana Lind"]},
    ]
    run_dir = tmp_path / "s0"
    (run_dir / "run_eval" / "curated").mkdir(parents=True)
    path = _run(
        run_dir / "uptake.json",
        0,
        {"base": [0, 0, 0], "raw": [0, 0, 0], "augment": [0, 1, 0], "format": [1, 0, 0]},
    )
    data = json.loads(path.read_text())
    data["questions_asked"] = questions
    data["question_passages"] = ["p/museum", "p/museum", "p/film"]
    preds = {
        "base": ["Cole", "1900", "1851"],
        "raw": ["", "", ""],
        "augment": ["1851", "1851", "1851"],
        "format": ["Henry Cole", "Kew", "Kew"],
    }
    for arm, p in preds.items():
        data["per_question"][arm]["prediction"] = p
    path.write_text(json.dumps(data))
    (run_dir / "qa_eval.jsonl").write_text(
        json.dumps({"id": "p/museum", "title": "V&A"})
        + "\n"
        + json.dumps({"id": "p/film", "title": "Dune"})
        + "\n"
    )
    (run_dir / "run_eval" / "documents.jsonl").write_text(
        json.dumps({"doc_id": "d1", "title": "V&A"})
        + "\n"
        + json.dumps({"doc_id": "d2", "title": "Dune"})
        + "\n"
    )
    records = [("d1", "When was the V&A founded?", "1851"), ("d2", "Who directed Dune?", "Kew")]
    (run_dir / "run_eval" / "curated" / "kept.jsonl").write_text(
        "".join(
            json.dumps({"doc_id": d, "fields": {"question": q, "answer": a}}) + "\n" for d, q, a in records
        )
    )
    res = _pool(path, out=tmp_path / "pooled.json")
    assert res.returncode == 0, res.stderr
    shares = json.loads((tmp_path / "pooled.json").read_text())["practised_wrong"]
    # (c): "1851" for the director (wrong, practised for that passage) counts; for the founding
    # year it is right; for the film it was practised for another passage. (d): "Kew" was
    # practised for the film only. (a): "1851" for the film is another passage's answer.
    assert shares["all"] == {"questions": 3, "base": 0.0, "raw": 0.0, "augment": 1 / 3, "format": 1 / 3}
    # the director and the lead were not anticipated (no kept question holds their answers)
    assert shares["not anticipated"]["questions"] == 2 and shares["not anticipated"]["augment"] == 0.5
    assert "| all | 3 | 0.000 | 0.000 | 0.333 | 0.333 |" in res.stdout


def test_no_split_when_a_run_folder_is_missing(tmp_path: Path):
    arms = {"base": [0], "raw": [0], "augment": [1], "format": [0]}
    res = _pool(_run(tmp_path / "a.json", 0, arms), out=tmp_path / "pooled.json")
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "pooled.json").read_text())["by_anticipation"] is None
    assert "no split by anticipated questions" in res.stdout


def test_source_wording_nll_is_pooled_only_where_every_run_scored_it(tmp_path: Path):
    f1 = {"base": [0, 0], "raw": [0, 1], "augment": [1, 1], "format": [0, 1]}
    a, b = _run(tmp_path / "a.json", 0, f1), _run(tmp_path / "b.json", 1, f1)
    for path in (a, b):
        run = json.loads(path.read_text())
        for arm, scores in run["per_question"].items():
            scores["answer_nll_source"] = [
                x - (1.0 if arm == "augment" else 0.0) for x in scores["answer_nll"]
            ]
        path.write_text(json.dumps(run))
    res = _pool(a, b, out=tmp_path / "both.json")
    assert res.returncode == 0, res.stderr
    both = json.loads((tmp_path / "both.json").read_text())
    # (c) - (d) in the source wording: the answer_nll difference, one nat lower
    cd = both["differences"]["c-d (knowledge)"]
    assert cd["answer_nll_source"][0] == cd["answer_nll"][0] - 1.0
    assert "answer_nll_source: c-d (knowledge) -1.500 [" in res.stdout
    old = _run(tmp_path / "old.json", 2, f1)  # a run from before the metric existed
    res = _pool(a, old, out=tmp_path / "mixed.json")
    assert res.returncode == 0, res.stderr
    mixed = json.loads((tmp_path / "mixed.json").read_text())
    assert "answer_nll_source" not in mixed["differences"]["c-d (knowledge)"]
    assert set(mixed["closed"]["augment"]) == {"f1", "answer_nll"}


def test_questions_about_passages_other_runs_evaluated_can_be_left_out(tmp_path: Path):
    # draw 0 asks two questions on p0 (which an earlier run evaluated) and one on p1
    run = _with_passages(
        _run(
            tmp_path / "s0.json",
            0,
            {"base": [0, 0, 0], "raw": [0, 0, 0], "augment": [1, 1, 0], "format": [0, 0, 1]},
        ),
        ["p0", "p0", "p1"],
    )
    data = json.loads(run.read_text())
    data["questions_asked"] = [{"q": f"q{k}", "answers": ["a"]} for k in range(3)]
    run.write_text(json.dumps(data))
    earlier = _with_passages(
        _run(tmp_path / "e.json", 9, {"base": [0], "raw": [0], "augment": [0], "format": [0]}), ["p0"]
    )
    out = tmp_path / "pooled.json"
    res = subprocess.run(
        [sys.executable, str(SCRIPT), str(run), "--without-passages-of", str(earlier), "-o", str(out)],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    pooled = json.loads(out.read_text())
    # only p1's question is left: (c) 0, (d) 1
    assert pooled["questions"] == 1 and pooled["differences"]["c-d (knowledge)"]["f1"][0] == -1.0
    assert pooled["passages_left_out"] == ["p0"] and "questions about 1 passages" in res.stdout
    # all pooled, (c) - (d) is +1/3: the option is what changed it
    assert _pool(run, out=out).returncode == 0
    assert json.loads(out.read_text())["differences"]["c-d (knowledge)"]["f1"][0] == 1 / 3
    res = subprocess.run(
        [sys.executable, str(SCRIPT), str(earlier), "--without-passages-of", str(earlier)],
        capture_output=True,
        text=True,
    )
    assert res.returncode != 0 and "every question is about a passage those runs evaluated" in res.stderr
