"""`augment eval --judge`: a grader model marks each answer correct or not against the gold answers."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from augment.backends.mock import MockBackend
from augment.config import load_config
from augment.errors import ParseError
from augment.eval.judge import grade_answers, parse_grade
from augment.qafile import QAItem
from tests.fake_openai import FakeOpenAI

ITEMS = [
    QAItem("q1", "Lighthouse", "", "When was the Cape Merrow lighthouse completed?", ["1862"]),
    QAItem("q2", "Lighthouse", "", "Who designed it?", ["Thomas Stevenson", "Stevenson"]),
    QAItem("q3", "Lighthouse", "", "How tall is it?", ["31 metres"]),
]


def test_parse_grade_reads_the_verdict_in_its_wrappings():
    assert parse_grade('{"correct": true, "reason": "same year"}') == (True, "same year")
    assert parse_grade('Sure:\n```json\n{"correct": "no", "reason": "another name"}\n```') == (
        False,
        "another name",
    )
    assert parse_grade('[{"correct": 1}]') == (True, "")
    with pytest.raises(ParseError, match="no 'correct'"):
        parse_grade('{"faithfulness": 5}')
    with pytest.raises(ParseError, match="not true or false"):
        parse_grade('{"correct": "maybe"}')


def _config(tmp_path: Path, **values):
    return load_config(None, {"backend": "mock", **values})


def test_grades_each_answer_once_and_caches_the_replies(tmp_path: Path):
    predictions = [
        ["It was completed in 1862.", "Robert Stevenson", ""],  # right, half right (graded right), empty
        ["1862", "Alan Brown", "about 40 metres"],  # a number other than the gold one is wrong
        ["It was completed in 1862.", "Alan Brown", "31 metres"],  # two answers the others gave
    ]
    backend = MockBackend.from_config(_config(tmp_path))
    cache = tmp_path / "grades.sqlite"
    graded = grade_answers(ITEMS, predictions, backend, _config(tmp_path), cache)
    assert [g for g, _ in graded] == [[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 1.0]]
    assert graded[0][1][2] == "empty answer"  # no call for an empty answer
    assert "Stevenson" in graded[0][1][1]  # the grader's reason comes back per answer
    assert backend.calls == 6  # 8 non-empty answers, 2 of them repeated: graded once each

    again = MockBackend.from_config(_config(tmp_path))
    assert grade_answers(ITEMS, predictions, again, _config(tmp_path), cache) == graded
    assert again.calls == 0  # every reply came from the cache


def test_a_grader_that_never_answers_leaves_questions_ungraded(tmp_path: Path):
    cfg = _config(tmp_path, mock_malformed_rate=1.0, max_parse_retries=1)
    graded = grade_answers(
        ITEMS, [["1862", "Stevenson", ""]], MockBackend.from_config(cfg), cfg, tmp_path / "g.sqlite"
    )
    grades, reasons = graded[0]
    assert math.isnan(grades[0]) and math.isnan(grades[1]) and grades[2] == 0.0
    assert reasons[0].startswith("grader failed")


def test_a_prompts_folder_replaces_the_grader_prompt(tmp_path: Path):
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "_grade.md").write_text("Grade {{ prediction }} against {{ gold }}")
    cfg = _config(tmp_path, prompts_dir=str(tmp_path / "prompts"))
    with pytest.raises(Exception, match="_grade.md: 'gold' is undefined"):
        grade_answers(ITEMS, [["1862", "x", "y"]], MockBackend.from_config(cfg), cfg, tmp_path / "g.sqlite")


@pytest.fixture
def qa_file(tmp_path: Path) -> Path:
    path = tmp_path / "qa.jsonl"
    rows = [{"question": it.question, "answers": it.answers} for it in ITEMS]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


# inline: a grader that thinks first (<think>); batch: the grades go through the Batch API
@pytest.mark.parametrize(("reasoning", "batch"), [("", False), ("inline", False), ("", True)])
def test_eval_judge_over_a_real_http_server(
    cli, tmp_path: Path, tiny_model: Path, qa_file: Path, reasoning: str, batch: bool
):
    server = FakeOpenAI(reasoning=reasoning)
    url = server.start()
    try:
        config = tmp_path / "grader.toml"
        config.write_text(
            f'base_url = "{url}"\nconcurrency = 4\n' + "batch_api = true\nbatch_poll = 0.05\n" * batch
        )
        args = (
            "eval",
            "-m",
            tiny_model,
            "--qa",
            qa_file,
            "-q",
            "--max-new-tokens",
            "6",
            "-o",
            tmp_path / "r",
        )
        args += ("--judge", "--judge-backend", "openai", "--judge-model", "fake-model", "-c", config)
        r = cli(*args)
        assert r.code == 0, r.err
        assert "judge" in r.out
        requests = server.requests
        assert 1 <= requests <= len(ITEMS)  # one call per non-empty answer
        report = json.loads((tmp_path / "r" / "report.json").read_text())
        assert report["metrics"][-1] == "judge" and report["models"][0]["ungraded"] == 0
        preds = json.loads((tmp_path / "r" / "predictions.json").read_text())
        for p in preds:
            row = p[str(tiny_model)]
            # the grader's verdict is the mock's rule: every number and half the words of a gold answer
            said = set(re.findall(r"\w+", row["prediction"].lower()))
            golds = [re.findall(r"\w+", a.lower()) for a in p["answers"]]
            expect = any(
                sum(w in said for w in g) >= len(g) / 2 and all(w in said for w in g if w.isdigit())
                for g in golds
            )
            assert row["judge"] == float(expect and bool(row["prediction"].strip())), row
            assert row["judge_reason"]
        assert (tmp_path / "r" / "grades.sqlite").is_file()
        assert len(server.batches) == batch and (tmp_path / "r" / "batches.jsonl").is_file() == batch

        r = cli(*args)
        assert r.code == 0, r.err
        assert server.requests == requests  # the second report was graded from the cache
    finally:
        server.stop()


def test_grader_flags_without_judge_are_a_one_line_error(cli, tmp_path: Path, qa_file: Path):
    r = cli("eval", "-m", "x", "--qa", qa_file, "--judge-model", "gpt-4o")
    assert r.code != 0 and "add --judge" in r.err and len(r.err.strip().splitlines()) == 1
    r = cli("eval", "-m", "x", "--qa", qa_file, "--judge", "--judge-backend", "nope")
    assert r.code != 0 and "--judge-backend: unknown backend 'nope'" in r.err


def test_a_grader_that_cannot_follow_the_prompt_is_reported(
    cli, tmp_path: Path, tiny_model: Path, qa_file: Path
):
    config = tmp_path / "grader.toml"
    config.write_text("mock_malformed_rate = 1.0\nmax_parse_retries = 0\n")
    out = tmp_path / "report"
    args = ("eval", "-m", tiny_model, "--qa", qa_file, "-q", "-o", out)
    r = cli(*args, "--judge", "--judge-backend", "mock", "-c", config)
    assert r.code == 0, r.err
    assert "n/a" in r.out, r.out  # no judge score: nothing was graded
    report = json.loads((out / "report.json").read_text())  # valid JSON: NaN written as null
    assert report["models"][0]["scores"]["judge"]["mean"] is None and report["models"][0]["ungraded"] >= 1
    assert "| n/a |" in (out / "report.md").read_text()
    assert "warning: the grader gave no verdict on" in r.err and "instruction-tuned" in r.err
