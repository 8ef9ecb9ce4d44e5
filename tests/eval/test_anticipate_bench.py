"""bench/anticipate.py: how many evaluated questions a setting's generated data asks, no training."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "anticipate.py"
sys.path.insert(0, str(ROOT / "bench"))
from anticipate import count  # noqa: E402


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_count_gold_kept_and_anticipated_per_passage(tmp_path: Path):
    run = tmp_path / "run_eval"
    _jsonl(run / "documents.jsonl", [{"doc_id": "d1", "title": "Fresno"}, {"doc_id": "d2", "title": "Tesla"}])
    _jsonl(tmp_path / "qa_eval.jsonl", [{"id": 1, "title": "Fresno"}, {"id": 2, "title": "Tesla"}])
    qa = lambda q, a: {"question": q, "answer": a}  # noqa: E731
    _jsonl(
        run / "curated" / "kept.jsonl",
        [
            {"doc_id": "d1", "fields": qa("Which road serves Fresno?", "State Route 99")},
            {"doc_id": "d1", "fields": qa("What happened in 1926?", "1926")},  # the answer, not the wording
            {"doc_id": "d2", "fields": qa("Where did Tesla live in 1882?", "Paris")},  # other passage's gold
            {"doc_id": "d2", "fields": {"text": "a paraphrase"}},  # not a QA record
        ],
    )
    questions = [
        {"q": "What road serves Fresno?", "answers": ["State Route 99"], "passage": "1"},
        {"q": "When did the Fresno airport open?", "answers": ["1926"], "passage": "1"},
        {"q": "Where did Fresno's founder study?", "answers": ["Paris"], "passage": "1"},
        {"q": "Which country?", "answers": ["France"], "passage": "2"},
    ]
    assert count(tmp_path, questions) == {"questions": 4, "qa_records": 3, "gold_kept": 2, "anticipated": 1}


def _qa(path: Path) -> Path:
    _jsonl(
        path,
        [
            {
                "id": "fresno",
                "title": "Fresno",
                "text": "Fresno is served by State Route 99, which heads north. It opened in 1926 after a vote.",
                "questions": [
                    {"q": "Which road serves Fresno?", "answers": ["State Route 99"]},
                    {"q": "When did it open?", "answers": ["1926"]},
                ],
            },
            {
                "id": "tesla",
                "title": "Tesla",
                "text": "In 1882 Tesla worked for the Continental Edison Company in France.",
                "questions": [{"q": "In which country did Tesla work?", "answers": ["France"]}],
            },
        ],
    )
    return path


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)


def test_screen_compares_settings_on_the_same_draws(tmp_path: Path):
    prompts = tmp_path / "tight"
    prompts.mkdir()
    text = (ROOT / "prompts" / "qa-spans.md").read_text()
    assert "\ntight: false" in text
    (prompts / "qa-spans.md").write_text(text.replace("\ntight: false", "\ntight: true"))
    out = tmp_path / "out"
    res = _run(
        "--qa", str(_qa(tmp_path / "qa.jsonl")), "--passages", "1", "--seeds", "0", "1",
        "--setting", "header=--backend mock", "--setting", f"tight=--backend mock --prompts-dir {prompts}",
        "-o", str(out),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    result = json.loads((out / "anticipate.json").read_text())
    header, tight = result["totals"]["header"], result["totals"]["tight"]
    assert header["questions"] == tight["questions"] > 0
    # the default picker asks "99", not "State Route 99", and "... Company in France" whole:
    # tight answers keep the road's name and give "France" alone
    assert tight["gold_kept"] > header["gold_kept"]
    assert tight["qa_records"] > header["qa_records"]
    assert set(result["per_seed"]["tight"]) == {"0", "1"}
    assert "│ tight " in res.stdout

    # a second run answers every request from the runs' caches and counts the same
    again = _run(
        "--qa", str(tmp_path / "qa.jsonl"), "--passages", "1", "--seeds", "0", "1",
        "--setting", "header=--backend mock", "--setting", f"tight=--backend mock --prompts-dir {prompts}",
        "-o", str(out),
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "anticipate.json").read_text())["totals"] == result["totals"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--setting", "nameonly"], "expected NAME=FLAGS"),
        (["--setting", "a=", "--setting", "a=--samples 2"], "two settings share a name"),
        (["--setting", "a=", "--cache", "{tmp}/none/s{seed}"], "none/s0/cache.sqlite: no such file"),
    ],
)
def test_bad_input_is_a_one_line_error(tmp_path: Path, args: list[str], message: str):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    res = _run(
        "--qa",
        str(_qa(tmp_path / "qa.jsonl")),
        "--passages",
        "1",
        "--seeds",
        "0",
        *args,
        "-o",
        str(tmp_path / "o"),
    )
    assert res.returncode != 0
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    missing = _run("--qa", str(tmp_path / "nope.jsonl"), "--seeds", "0", "--setting", "a=")
    assert "nope.jsonl: no such file" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
