"""QA files: passages with questions (shared/data's format) or one question per line.

Read by `augment eval --qa` (questions and their gold answers) and by curation's
`--decontaminate` (questions, and answers if asked, that must not leak into training data), so a
file one accepts the other reads the same way, and a malformed line is an error in both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from augment.errors import AugmentError


@dataclass(slots=True)
class QAItem:
    id: str
    title: str
    passage: str
    question: str
    answers: list[str]


def _answers(row: dict, where: str, needed: bool) -> list[str]:
    answers = row.get("answers", row.get("answer"))
    if isinstance(answers, str):
        answers = [answers]
    found = [a for a in answers if isinstance(a, str) and a.strip()] if isinstance(answers, list) else []
    if needed and not found:
        raise AugmentError(f"{where}: no answers (expected 'answers': [...] or 'answer': '...')")
    return found


def load_qa(path: Path, skip_unanswerable: bool = True, need_answers: bool = True) -> list[QAItem]:
    """Every question of `path`. Questions marked `unanswerable_from_text` are left out by default;
    with `need_answers` False a question without answers is read with none (decontamination)."""
    if path.is_dir():
        hint = (
            f"use {path / 'qa.jsonl'}"
            if (path / "qa.jsonl").is_file()
            else f"a run's questions become one with 'augment export {path} --format qa'"
        )
        raise AugmentError(f"{path}: a folder, not a QA file ({hint})")
    if not path.is_file():
        raise AugmentError(f"{path}: QA file not found")
    items: list[QAItem] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise AugmentError(f"{path}: cannot read QA file ({e})") from None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise AugmentError(f"{where}: invalid JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise AugmentError(f"{where}: expected a JSON object")
        title = str(row.get("title", ""))
        passage = str(row.get("text", row.get("context", "")))
        questions = row.get("questions")
        if isinstance(questions, list):
            for k, q in enumerate(questions):
                if not isinstance(q, dict) or not isinstance(q.get("q", q.get("question")), str):
                    raise AugmentError(f"{where}: question {k} has no 'q' text")
                if skip_unanswerable and q.get("unanswerable_from_text"):
                    continue
                qid = str(q.get("qid") or f"{row.get('id', lineno)}#{k}")
                items.append(
                    QAItem(
                        qid, title, passage, q.get("q", q.get("question")), _answers(q, where, need_answers)
                    )
                )
        else:
            question = row.get("q", row.get("question"))
            if not isinstance(question, str):
                raise AugmentError(f"{where}: no question ('questions': [...], 'q' or 'question')")
            items.append(
                QAItem(
                    str(row.get("id", lineno)), title, passage, question, _answers(row, where, need_answers)
                )
            )
    if not items:
        raise AugmentError(f"{path}: no questions found")
    return items
