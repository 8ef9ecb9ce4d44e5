"""bench/spans.py: the answer picker screened against a QA file's gold answers, no model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "spans.py"
PROMPTS = Path(__file__).resolve().parents[2] / "prompts"


def _qa(path: Path) -> Path:
    rows = [
        {
            "id": "fresno",
            "title": "Fresno",
            "text": "Fresno is served by State Route 99, which heads north. It opened in 1926.",
            "questions": [
                {"q": "Which road serves the city?", "answers": ["State Route 99"]},
                {"q": "When did it open?", "answers": ["1926"]},
            ],
        },
        {
            "id": "tesla",
            "title": "Tesla",
            "text": "In 1882 he worked for the Continental Edison Company in France.",
            "questions": [{"q": "In which country?", "answers": ["France"]}],
        },
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)


def _row(out: str, options: str) -> list[str]:
    line = next(ln for ln in out.splitlines() if f"│ {options} " in ln)
    return [c.strip() for c in line.split("│")[1:-1]]


def test_screen_counts_gold_answers_picked_per_option(tmp_path: Path):
    res = _run("--qa", str(_qa(tmp_path / "qa.jsonl")))
    assert res.returncode == 0, res.stderr
    header = _row(res.stdout, "header")
    tight = _row(res.stdout, "+ tight")
    # the default picker takes "99" for "State Route 99" and one span for "... Company in France":
    # of the three gold answers only "1926" is picked exactly; tight picks all three
    assert header[0].startswith("qa.jsonl (3 q)") and header[3] == "33.3%"
    assert tight[3] == "100.0%" and tight[5] == "3.00"
    assert float(tight[4]) > float(header[4])
    assert header[5] == "1.00" and header[6] == "1.00"


def test_a_prompts_folder_with_tight_on_makes_it_the_header(tmp_path: Path):
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    src = (PROMPTS / "qa-spans.md").read_text()
    (prompts / "qa-spans.md").write_text(src.replace("\ntight: false", "\ntight: true"))
    res = _run("--qa", str(_qa(tmp_path / "qa.jsonl")), "--prompts-dir", str(prompts))
    assert res.returncode == 0, res.stderr
    assert _row(res.stdout, "header")[3] == "100.0%"
    assert "+ tight" not in res.stdout


def test_bare_questions_without_passages_are_a_clear_error(tmp_path: Path):
    qa = tmp_path / "bare.jsonl"
    qa.write_text(json.dumps({"q": "Who?", "answers": ["X"]}) + "\n")
    res = _run("--qa", str(qa))
    assert res.returncode != 0
    assert str(qa) in res.stderr and "passage" in res.stderr


def test_a_missing_prompts_folder_or_qa_file_is_a_one_line_error(tmp_path: Path):
    qa = _qa(tmp_path / "qa.jsonl")
    res = _run("--qa", str(qa), "--prompts-dir", str(tmp_path / "nope"))
    assert res.returncode != 0 and "nope: prompts_dir is not a folder" in res.stderr
    assert "Traceback" not in res.stderr
    res = _run("--qa", str(tmp_path / "missing.jsonl"))
    assert res.returncode != 0 and "missing.jsonl: QA file not found" in res.stderr
    assert "Traceback" not in res.stderr


def test_chunks_pick_common_nouns_and_max_items_caps_every_row(tmp_path: Path):
    qa = tmp_path / "qa.jsonl"
    row = {
        "id": "steam",
        "title": "Steam engine",
        "text": "The Rankine cycle was built by Mara Kovel in 1901. Its condenser works at constant pressure.",
        "questions": [{"q": "At what does the condenser work?", "answers": ["constant pressure"]}],
    }
    qa.write_text(json.dumps(row) + "\n")
    res = _run("--qa", str(qa))
    assert res.returncode == 0, res.stderr
    assert _row(res.stdout, "header")[3] == "0.0%" and _row(res.stdout, "+ chunks")[3] == "100.0%"
    capped = _run("--qa", str(qa), "--max-items", "2")
    assert capped.returncode == 0 and "max_items 2" in capped.stdout
    # under a cap of two the names come first and the chunk is left out
    assert _row(capped.stdout, "+ chunks")[3] == "0.0%" and _row(capped.stdout, "+ chunks")[2] == "2.0"
    bad = _run("--qa", str(qa), "--max-items", "0")
    assert bad.returncode != 0 and "--max-items" in bad.stderr
