"""bench/uptake.py: a finished checkpoint is reused only when it was trained as asked."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from augment.train.args import TrainConfig

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
from uptake import augment_beside, trained_as_asked  # noqa: E402

ASKED = {
    "method": "full",
    "max_steps": 24,
    "lr": 1e-4,
    "batch_size": 4,
    "max_seq_len": 256,
    "seed": 0,
    "replay": 0.5,
}


def _trained(ckpt: Path, **settings) -> None:
    # train.json's hyperparameters as the trainer writes them: the TrainConfig, dumped as JSON
    # with bf16 resolved to whether it was used (on a CPU: only when asked)
    cfg = TrainConfig(shards=ckpt / "shards", model="m", output=ckpt, **settings)
    ckpt.mkdir(parents=True)
    hyper = {**cfg.model_dump(mode="json"), "bf16": cfg.bf16 == "on"}
    (ckpt / "train.json").write_text(json.dumps({"hyperparameters": hyper}))


def test_a_checkpoint_trained_as_asked_is_reused(tmp_path: Path):
    assert trained_as_asked(tmp_path / "none", ASKED) is False
    _trained(tmp_path / "ckpt", **ASKED)
    assert trained_as_asked(tmp_path / "ckpt", ASKED) is True


def test_a_checkpoint_trained_otherwise_is_refused(tmp_path: Path):
    _trained(tmp_path / "ckpt", **{**ASKED, "max_steps": 24})
    with pytest.raises(SystemExit, match=r"ckpt: trained with max_steps=24 \(asked 48\); use another -o"):
        trained_as_asked(tmp_path / "ckpt", {**ASKED, "max_steps": 48})


def test_a_checkpoint_without_the_asked_snapshots_is_refused(tmp_path: Path):
    # --score-steps scores OUTPUT/step-N: a run trained without those snapshots cannot be reused
    _trained(tmp_path / "ckpt", **ASKED)
    with pytest.raises(SystemExit, match=r"snapshot_steps=\[\] \(asked \[12\]\)"):
        trained_as_asked(tmp_path / "ckpt", {**ASKED, "snapshot_steps": [12]})
    _trained(tmp_path / "snap", **ASKED, snapshot_steps="12")
    assert trained_as_asked(tmp_path / "snap", {**ASKED, "snapshot_steps": [12]}) is True


def test_a_checkpoint_trained_in_another_precision_is_refused(tmp_path: Path):
    # --bf16 on asks for bf16 autocast; the fp32 runs made before the flag are not reused for it
    _trained(tmp_path / "fp32", **ASKED)
    with pytest.raises(SystemExit, match=r"bf16=False \(asked True\)"):
        trained_as_asked(tmp_path / "fp32", {**ASKED, "bf16": True})
    assert trained_as_asked(tmp_path / "fp32", {**ASKED, "bf16": False}) is True
    _trained(tmp_path / "bf16", **ASKED, bf16="on")
    assert trained_as_asked(tmp_path / "bf16", {**ASKED, "bf16": True}) is True


def test_a_checkpoint_trained_on_every_token_is_not_reused_for_answers_only(tmp_path: Path):
    # checkpoints from before --answers-only have no such key: they trained on every token
    _trained(tmp_path / "old", **ASKED)
    old = json.loads((tmp_path / "old" / "train.json").read_text())
    del old["hyperparameters"]["answers_only"]
    (tmp_path / "old" / "train.json").write_text(json.dumps(old))
    assert trained_as_asked(tmp_path / "old", {**ASKED, "answers_only": False}) is True
    with pytest.raises(SystemExit, match=r"answers_only=False \(asked True\)"):
        trained_as_asked(tmp_path / "old", {**ASKED, "answers_only": True})
    _trained(tmp_path / "new", **ASKED, answers_only=True)
    assert trained_as_asked(tmp_path / "new", {**ASKED, "answers_only": True}) is True
    with pytest.raises(SystemExit, match=r"answers_only=True \(asked False\)"):
        trained_as_asked(tmp_path / "new", {**ASKED, "answers_only": False})


def test_a_python_without_augment_beside_it_is_refused_in_one_line(tmp_path: Path):
    # run with a python augment is not installed in, the experiment used to stop at its first augment
    # command with a FileNotFoundError traceback, after the passages were written
    python = tmp_path / "bin" / "python"
    python.parent.mkdir()
    with pytest.raises(SystemExit) as e:
        augment_beside(python)
    assert str(e.value) == (
        f"{tmp_path}/bin/augment: no augment command beside {python}; run bench/uptake.py with the "
        "python augment is installed in (e.g. after . .venv/bin/activate)"
    )
    (tmp_path / "bin" / "augment").write_text("")
    assert augment_beside(python) == tmp_path / "bin" / "augment"


def test_a_replicate_with_the_draws_own_training_seed_is_refused(tmp_path: Path):
    # --seed 1 already trains with seed 1: "--train-seed 1" would redo that run, not replicate it
    script = Path(__file__).resolve().parents[2] / "bench" / "uptake.py"
    out = tmp_path / "run"
    cmd = [sys.executable, str(script), "--seed", "1", "--train-seed", "1", "--passages", "2", "-o", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)  # not refused: it would run
    assert res.returncode != 0
    assert res.stderr.strip() == (
        "--train-seed 1: --seed 1 already trains with that seed, so it is the same training run as "
        "without --train-seed; give another to train again"
    )
    assert not out.exists()  # refused before anything is written


def test_an_average_of_steps_that_are_not_snapshots_is_refused(tmp_path: Path):
    script = Path(__file__).resolve().parents[2] / "bench" / "uptake.py"
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        str(script),
        "--steps",
        "72",
        "--score-steps",
        "24",
        "--average",
        "48",
        "-o",
        str(out),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    assert res.stderr.strip() == "--average 48: each step must be one of --score-steps (24)"
    assert not out.exists()


def test_averaged_weights_are_reported_as_their_own_treatment(tmp_path: Path):
    """The mean of snapshots is another treatment than the final weights: its args say so, and the
    final weights' args do not carry --average (so they pool with runs made without it)."""
    from argparse import Namespace

    from uptake import report

    from augment.eval.runner import ModelScores, summarize

    def scores(f1: list[float]) -> ModelScores:
        per = {m: f1 for m in ("f1", "contains", "exact_match", "answer_nll", "answer_nll_source")}
        return ModelScores("m", ["x"] * len(f1), per, 0.0, summarize(per))

    arms = {arm: scores([0.1 * i, 0.5, 1.0]) for i, arm in enumerate(("base", "raw", "augment", "format"))}
    evaluated = [{"id": "p1", "text": "passage"}]
    items = [Namespace(question=f"q{i}", answers=["a"], passage="passage") for i in range(3)]
    args = Namespace(qa=Path("qa.jsonl"), passages=1, model="m", method="full", steps=72, batch_size=4,
                     max_seq_len=256, score_steps="24,48", average="48", seed=0)  # fmt: skip
    report(tmp_path / "avg.json", args, None, evaluated, items, arms, arms["base"], {}, [48, 72])
    report(tmp_path / "end.json", args, None, evaluated, items, arms, arms["base"], {})
    avg, end = (json.loads((tmp_path / f"{n}.json").read_text())["args"] for n in ("avg", "end"))
    assert avg["averaged"] == "48,72" and "average" not in avg and "at_step" not in avg
    assert "averaged" not in end and "average" not in end and end["steps"] == "72"


def test_a_checkpoint_replayed_as_written_is_not_reused_for_restated_replay(tmp_path: Path):
    # checkpoints from before --replay-title/--replay-shuffle read as trained without them
    _trained(tmp_path / "ckpt", **ASKED)
    assert trained_as_asked(tmp_path / "ckpt", {**ASKED, "replay_title": False, "replay_shuffle": False})
    with pytest.raises(SystemExit, match=r"replay_shuffle=False \(asked True\)"):
        trained_as_asked(tmp_path / "ckpt", {**ASKED, "replay_title": False, "replay_shuffle": True})
    _trained(tmp_path / "formed", **ASKED, replay_title=True, replay_shuffle=True)
    assert trained_as_asked(tmp_path / "formed", {**ASKED, "replay_title": True, "replay_shuffle": True})


def _scored(path: Path, scores: dict[str, list[float]], passages: list[str]) -> Path:
    """An uptake JSON with per-question F1 and NLL (NLL = 2 - F1, so both move together)."""
    per_question = {arm: {"f1": v, "answer_nll": [2 - x for x in v]} for arm, v in scores.items()}
    qs = [{"q": f"q{i}", "answers": ["a"]} for i in range(len(passages))]
    path.write_text(
        json.dumps({"questions_asked": qs, "question_passages": passages, "per_question": per_question})
    )
    return path


def test_compare_pairs_two_runs_question_by_question(tmp_path: Path):
    from uptake_compare import compare

    passages = ["p1", "p1", "p2", "p2"]
    old = {"base": [0.1] * 4, "raw": [0.2] * 4, "augment": [0.5, 0.5, 0.2, 0.2], "format": [0.3] * 4}
    new = {**old, "augment": [0.9, 0.5, 0.6, 0.2], "format": [0.3, 0.3, 0.4, 0.4]}
    a, b = _scored(tmp_path / "a.json", old, passages), _scored(tmp_path / "b.json", new, passages)
    cmp = compare(json.loads(a.read_text()), json.loads(b.read_text()), ("a", "b"))
    assert cmp["base"]["f1"]["questions"] == [0.0, 0.0, 0.0] and cmp["base"]["f1"]["changed"] == 0
    assert cmp["augment"]["f1"]["questions"][0] == pytest.approx(0.2)  # (0.4 + 0 + 0.4 + 0) / 4
    assert cmp["augment"]["f1"]["changed"] == 2
    # (c) - (d): old [0.2, 0.2, -0.1, -0.1], new [0.6, 0.2, 0.2, -0.2] -> +0.15 on the mean
    assert cmp["c-d"]["f1"]["questions"][0] == pytest.approx(0.15)
    assert cmp["c-d"]["answer_nll"]["questions"][0] == pytest.approx(-0.15)
    assert cmp["c-d, each run"]["old"]["f1"] == pytest.approx(0.05)
    lo, hi = cmp["c-d"]["f1"]["by_passage"][1:]
    assert lo <= 0.15 <= hi
    other = _scored(tmp_path / "c.json", old, ["p1", "p2", "p3", "p4"])
    bad = json.loads(other.read_text())
    bad["questions_asked"][0]["q"] = "another"
    with pytest.raises(SystemExit, match="not the questions of a"):
        compare(json.loads(a.read_text()), bad, ("a", "c"))
    result = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve().parents[2] / "bench/uptake_compare.py"),
            str(a),
            str(b),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and "| c-d | +0.150" in result.stdout, result.stderr


def test_restatements_are_added_to_a_copy_of_the_shards(shards, tmp_path: Path):
    from uptake import with_restatements

    from augment.io import read_jsonl
    from augment.train.data import load_training_data

    source = shards["cpt"]
    before = json.loads((source / "manifest.json").read_text())
    docs = tmp_path / "passages.jsonl"
    passages = [
        {"title": "Kestrel K2", "text": "The K2 has 40 steps. It was designed by Dr. Vale. It ships in May."},
        {"title": "Harwick", "text": "Harwick makes grinders. Its plant is in Leeds."},
    ]
    docs.write_text("".join(json.dumps(p) + "\n" for p in passages))
    out = with_restatements(source, tmp_path / "restated", docs, copies=2, seed=3)
    after = json.loads((out / "manifest.json").read_text())
    assert json.loads((source / "manifest.json").read_text()) == before  # the source is untouched
    rows = list(read_jsonl(out / "train-restated.jsonl"))
    assert len(rows) == 4 and after["counts"]["train"] == before["counts"]["train"] + 4
    assert after["tokens"]["train"] > before["tokens"]["train"]
    for p in passages:
        mine = [r["text"] for r in rows if r["text"].startswith(p["title"] + "\n\n")]
        assert len(mine) == 2
        for text in mine:
            assert sorted(text.split("\n\n", 1)[1].split()) == sorted(p["text"].split())
    train, _, _, _ = load_training_data(out)
    assert {r["text"] for r in rows} <= set(train["text"])
    again = with_restatements(source, tmp_path / "restated", docs, copies=2, seed=3)
    assert list(read_jsonl(again / "train-restated.jsonl")) == rows  # seeded: the same records
    held = with_restatements(source, tmp_path / "held", docs, copies=2, seed=3, held_replay=True)
    assert list(read_jsonl(held / "train-restated.jsonl")) == rows
    counted = json.loads((held / "manifest.json").read_text())
    assert counted["counts"]["train"] == after["counts"]["train"]
    assert counted["tokens"]["train"] == before["tokens"]["train"]  # the replay budget is unchanged
    # the replay drawn with the restatements held out of the count is the size it was without them
    shutil.copytree(source, tmp_path / "plain" / "shards")
    for run in (tmp_path / "plain", held.parent):  # the folders --replay reads documents.jsonl from
        (run / "documents.jsonl").write_text(docs.read_text())
    plain, _, _, _ = load_training_data(tmp_path / "plain" / "shards", replay=0.5)
    with_held, _, _, _ = load_training_data(held, replay=0.5)
    grown, _, _, _ = load_training_data(out, replay=0.5)
    n_plain = len(plain) - before["counts"]["train"]
    assert len(with_held) - after["counts"]["train"] == n_plain
    assert len(grown) - after["counts"]["train"] > n_plain


def test_other_records_are_added_to_a_copy_of_the_shards(shards, tmp_path: Path):
    from uptake import with_other_records

    from augment.io import read_jsonl, write_jsonl
    from augment.train.data import load_training_data

    source = shards["cpt"]
    before = json.loads((source / "manifest.json").read_text())
    # (d)'s records: the same files, every text about another subject
    other = tmp_path / "other" / "shards"
    shutil.copytree(source, other)
    theirs = json.loads((other / "manifest.json").read_text())
    for f in theirs["files"]:
        if f["format"] == "jsonl":
            rows = [{**r, "text": "Elsewhere: " + r["text"]} for r in read_jsonl(other / f["path"])]
            write_jsonl(other / f["path"], rows)
    run = tmp_path / "run"  # the folder --replay reads documents.jsonl from
    run.mkdir()
    shutil.copy(source.parent / "documents.jsonl", run / "documents.jsonl")
    mixed = with_other_records(source, other, run / "shards-mixed")
    assert json.loads((source / "manifest.json").read_text()) == before  # the source is untouched
    after = json.loads((mixed / "manifest.json").read_text())
    assert after["counts"]["train"] == 2 * before["counts"]["train"]
    assert after["tokens"]["train"] == 2 * before["tokens"]["train"]
    train, _, _, _ = load_training_data(mixed)
    own, _, _, _ = load_training_data(source)
    texts = list(train["text"])
    assert sorted(t for t in texts if not t.startswith("Elsewhere: ")) == sorted(own["text"])
    assert sorted(t for t in texts if t.startswith("Elsewhere: ")) == sorted(
        "Elsewhere: " + t for t in own["text"]
    )
    # the replay is counted over both sets, so it keeps its share of the stream
    with_replay, _, _, _ = load_training_data(mixed, replay=0.5)
    plain, _, _, _ = load_training_data(source, replay=0.5)
    assert len(with_replay) - len(train) > len(plain) - len(own)
    with pytest.raises(SystemExit, match=r"format 'chat', where .* has 'cpt'"):
        with_other_records(source, shards["chat"], tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_compare_averages_a_draws_runs_joined_with_plus(tmp_path: Path):
    from uptake_compare import compare, load_mean

    passages = ["p1", "p1", "p2", "p2"]
    old = {"base": [0.1] * 4, "raw": [0.2] * 4, "augment": [0.5, 0.5, 0.2, 0.2], "format": [0.3] * 4}
    a = _scored(tmp_path / "a.json", old, passages)
    b = _scored(tmp_path / "b.json", {**old, "augment": [0.9, 0.5, 0.6, 0.2]}, passages)
    mean = load_mean(f"{a}+{b}")
    assert mean["per_question"]["augment"]["f1"] == pytest.approx([0.7, 0.5, 0.4, 0.2])
    assert mean["per_question"]["augment"]["answer_nll"] == pytest.approx([1.3, 1.5, 1.6, 1.8])
    assert mean["per_question"]["format"]["f1"] == pytest.approx([0.3] * 4)
    # (c) - (d) of the mean of a and b minus a's: half of b's gain over a
    cmp = compare(load_mean(str(a)), mean, ("a", "a+b"))
    assert cmp["c-d"]["f1"]["questions"][0] == pytest.approx(0.1)
    other = _scored(tmp_path / "c.json", old, passages)
    bad = json.loads(other.read_text())
    bad["questions_asked"][1]["q"] = "another"
    other.write_text(json.dumps(bad))
    with pytest.raises(SystemExit, match="c.json: not the questions of .*a.json"):
        load_mean(f"{a}+{other}")


def test_compare_splits_questions_by_which_sides_records_anticipated_them(tmp_path: Path):
    from uptake_compare import by_anticipation, load_mean

    passages = ["p1", "p1", "p2", "p2"]
    old = {"base": [0.1] * 4, "raw": [0.2] * 4, "augment": [0.5, 0.5, 0.2, 0.2], "format": [0.3] * 4}
    new = {**old, "augment": [0.9, 0.5, 0.6, 0.2], "format": [0.3, 0.3, 0.4, 0.4]}
    asked = [
        {"q": "Which river crosses Harrow?", "answers": ["Wend"]},
        {"q": "Who founded the Harrow mill?", "answers": ["Ada Pike"]},
        {"q": "When did the mill close?", "answers": ["1931"]},
        {"q": "What powered the mill?", "answers": ["water"]},
    ]
    # old's records ask questions 0 and 1; new's ask 0 and 2 (and 3 with another answer)
    kept = {
        "old": [("Which river flows through Harrow?", "Wend"), ("Who founded Harrow's mill?", "Ada Pike")],
        "new": [
            ("What river crosses Harrow?", "the Wend"),
            ("In what year did the mill close?", "1931"),
            ("What powered the mill?", "steam"),
        ],
    }
    runs = {}
    for side, scores in (("old", old), ("new", new)):
        folder = tmp_path / side
        (folder / "run_eval" / "curated").mkdir(parents=True)
        (folder / "run_eval" / "curated" / "kept.jsonl").write_text(
            "".join(json.dumps({"fields": {"question": q, "answer": a}}) + "\n" for q, a in kept[side])
        )
        path = _scored(folder / "uptake.json", scores, passages)
        run = json.loads(path.read_text())
        path.write_text(json.dumps({**run, "questions_asked": asked}))
        runs[side] = load_mean(str(path))
    split = by_anticipation(runs["old"], runs["new"])
    assert {k: v["questions"] for k, v in split.items()} == {
        "old and new": 1,
        "new only": 1,
        "old only": 1,
        "neither": 1,
    }
    # question 2, anticipated by new only: (c) 0.2 -> 0.6, (d) 0.3 -> 0.4
    assert split["new only"]["old"]["c-d"]["f1"] == pytest.approx(-0.1)
    assert split["new only"]["new"]["c-d"]["f1"] == pytest.approx(0.2)
    assert split["old and new"]["new"]["augment"]["f1"] == pytest.approx(0.9)
    # a result copied out of its run folder has no records beside it: no split
    alone = tmp_path / "alone.json"
    shutil.copy(tmp_path / "new" / "uptake.json", alone)
    assert by_anticipation(runs["old"], load_mean(str(alone))) is None
    # kept as bench/draws.sh keeps a draw: results named PREFIX{-tN}{-stepN}.json, records in PREFIX-data/
    kept_dir = tmp_path / "results"
    shutil.copytree(tmp_path / "new" / "run_eval", kept_dir / "up-seed3-data" / "run_eval")
    for name in ("up-seed3.json", "up-seed3-t4-step24.json"):
        shutil.copy(tmp_path / "new" / "uptake.json", kept_dir / name)
        assert by_anticipation(runs["old"], load_mean(str(kept_dir / name))) == split
    shutil.copy(tmp_path / "new" / "uptake.json", kept_dir / "up-seed9.json")  # another draw: no records
    assert by_anticipation(runs["old"], load_mean(str(kept_dir / "up-seed9.json"))) is None
    result = subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parents[2] / "bench/uptake_compare.py")]
        + [str(tmp_path / "old" / "uptake.json"), str(tmp_path / "new" / "uptake.json")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and "| new only | 1 | 0.200 → 0.600" in result.stdout, result.stderr


def _draw(tmp_path: Path) -> list:
    from augment.qafile import load_qa

    qa = tmp_path / "qa.jsonl"
    rows = [
        {"id": "p1", "title": "Rivers", "text": "The Nile flows north.",
         "questions": [{"q": "Which way does the Nile flow?", "answers": ["north"]}]},
        {"id": "p2", "title": "Cities", "text": "Paris is the capital of France.",
         "questions": [{"q": "What is the capital of France?", "answers": ["Paris"]},
                       {"q": "Which country has Paris as its capital?", "answers": ["France"]}]},
    ]  # fmt: skip
    qa.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return load_qa(qa)


def _run_args(**changed):
    from argparse import Namespace

    base = dict(qa=Path("qa.jsonl"), passages=2, model="m", method="full", steps=72, lr=1e-4, batch_size=4,
                max_seq_len=256, seed=17, train_seed=18, score_steps="24", average="", replay=0.5,
                generate_args="", raw_from=None)  # fmt: skip
    return Namespace(**{**base, **changed})


def test_arm_b_is_scored_from_a_kept_result_of_the_same_draw(tmp_path: Path):
    """--raw-from: the kept result's predictions and likelihoods carry over, and EM, F1 and
    containment computed from them again equal the kept run's own."""
    from uptake import kept_raw_scores, report

    from augment.eval.runner import scores_from_predictions

    items = _draw(tmp_path)
    evaluated = [{"id": "p1", "text": "The Nile flows north."}, {"id": "p2", "text": items[1].passage}]
    arms = {
        arm: scores_from_predictions(arm, items, preds, [1.0 + k, 2.0, 0.5 * k], [1.0, 2.0 - k, 0.5], 1.0)
        for k, (arm, preds) in enumerate(
            [
                ("base", ["south", "London", "Spain"]),
                ("raw", ["the north", "Paris, France", "France"]),
                ("augment", ["north", "Paris", "Italy"]),
                ("format", ["west", "Paris", "France"]),
            ]
        )
    }
    kept = tmp_path / "kept-t18-step24.json"
    report(kept, _run_args(generate_args="--prompts-dir p"), 24, evaluated, items, arms, arms["base"], {})
    screen = _run_args(generate_args="--prompts-dir other", raw_from=str(tmp_path / "kept"))
    got = kept_raw_scores(kept, screen, 24, items)
    assert got.predictions == ["the north", "Paris, France", "France"]
    assert got.per_item == arms["raw"].per_item  # F1 (0.667 on "Paris, France") and the NLLs
    assert got.summary == arms["raw"].summary
    assert got.model == f"raw, from {kept}"

    with pytest.raises(
        SystemExit, match=r"kept-t18-step24.json: arm \(b\) made with lr=0.0001 \(asked 0.0002\)"
    ):
        kept_raw_scores(kept, _run_args(lr=2e-4), 24, items)
    with pytest.raises(SystemExit, match=r"at_step=24 \(asked 48\)"):
        kept_raw_scores(kept, screen, 48, items)
    with pytest.raises(SystemExit, match=r"train_seed=18 \(asked 19\)"):
        kept_raw_scores(kept, _run_args(train_seed=19), 24, items)
    with pytest.raises(SystemExit, match=r"kept-t18-step24.json: not the questions of this draw"):
        kept_raw_scores(kept, screen, 24, items[:2])
    with pytest.raises(SystemExit, match=r"kept-t18.json: no such file"):
        kept_raw_scores(tmp_path / "kept-t18.json", screen, None, items)
    (tmp_path / "torn.json").write_text('{"per_question": {')
    with pytest.raises(SystemExit, match=r"torn.json: not an uptake result"):
        kept_raw_scores(tmp_path / "torn.json", screen, 24, items)


def test_raw_from_with_average_is_refused(tmp_path: Path):
    # the averaged weights of arm (b) are not among a kept run's results
    script = Path(__file__).resolve().parents[2] / "bench" / "uptake.py"
    out = tmp_path / "run"
    cmd = [sys.executable, str(script), "--steps", "72", "--score-steps", "48", "--average", "48",
           "--raw-from", "kept/uptake", "-o", str(out)]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    assert (
        res.stderr.strip() == "--average with --raw-from: arm (b)'s averaged weights are not in kept/uptake"
    )
    assert not out.exists()


def test_the_four_arms_run_end_to_end_on_a_users_exported_questions(cli, tiny_model, tmp_path: Path):
    """The experiment on a user's own documents: held-out questions written by `augment export
    --format qa` (several chunks of one document share its title), the mock backend generating,
    the tiny model trained in every arm and scored."""
    held = tmp_path / "held"
    assert (
        cli("generate", REPO / "examples" / "docs", "-o", held, "--backend", "mock", "-s", "qa", "-q").code
        == 0
    )
    assert cli("export", held, "--format", "qa").code == 0
    out = tmp_path / "uptake"
    cmd = [
        sys.executable,
        str(REPO / "bench" / "uptake.py"),
        "--qa",
        str(held / "qa.jsonl"),
        "--passages",
        "3",
        "--model",
        str(tiny_model),
        "--strategies",
        "qa,paraphrase",
        "--generate-args",
        "--backend mock",
        "--method",
        "full",
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--max-seq-len",
        "64",
        "--replay",
        "0.5",
        "--seed",
        "1",
        "-o",
        str(out),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    result = json.loads((out / "uptake.json").read_text())
    asked = [
        q for line in (out / "qa_eval.jsonl").read_text().splitlines() for q in json.loads(line)["questions"]
    ]
    assert result["questions"] == len(asked) > 0
    assert set(result["closed"]) == {"base", "raw", "augment", "format"}
    for arm in ("base", "raw", "augment", "format", "base, open book"):
        assert len(result["per_question"][arm]["prediction"]) == len(asked)
    # each arm is its own model: the trained arms' answer likelihoods differ from the base model's
    nll = {arm: result["closed"][arm]["answer_nll"][0] for arm in result["closed"]}
    assert len(set(nll.values())) == 4, nll
    # the format control's passages are from other documents than the evaluated ones
    titles = [
        {json.loads(x)["title"] for x in (out / d / "passages.jsonl").read_text().splitlines()}
        for d in ("docs_eval", "docs_other")
    ]
    assert titles[0] and titles[1] and not titles[0] & titles[1]
    # no held-out question reaches arm (c)'s or (d)'s training data
    from augment.curate.text import normalize

    def records(run: str, name: str) -> list[dict]:
        return [json.loads(x) for x in (out / run / "curated" / f"{name}.jsonl").read_text().splitlines()]

    def questions(recs: list[dict]) -> set[str]:
        return {normalize(r["fields"]["question"]) for r in recs if "question" in r.get("fields", {})}

    held_out = {normalize(q["q"]) for q in asked}
    # the mock backend asks the held-out run's questions again on the same chunks: all dropped
    dropped = [r for r in records("run_eval", "rejected") if r["reason"] == "eval_contamination"]
    assert held_out <= questions(dropped)
    assert records("run_eval", "kept") and not questions(records("run_eval", "kept")) & held_out
    assert questions(records("run_other", "kept")) and not questions(records("run_other", "kept")) & held_out


def test_too_few_passages_for_both_halves_is_one_line(tmp_path: Path):
    from uptake import split_passages

    qa = tmp_path / "qa.jsonl"
    rows = [
        {
            "id": f"p{i}",
            "title": f"doc {i // 2}",
            "text": f"Text {i}.",
            "questions": [{"q": "Q?", "answers": ["A"]}],
        }
        for i in range(6)
    ]  # three documents of two chunks each
    qa.write_text("".join(json.dumps(r) + "\n" for r in rows))
    evaluated, other = split_passages(qa, 2, seed=0)
    assert {r["title"] for r in evaluated}.isdisjoint({r["title"] for r in other})
    with pytest.raises(SystemExit) as e:
        split_passages(qa, 3, seed=0)
    assert str(e.value).startswith(f"{qa}: 6 passages with questions, ")
    assert str(e.value).endswith(
        "--passages 3 needs 3 of each: give a smaller --passages, or more documents and questions"
    )
