"""Evaluation QA files: passages with questions (shared/data's format) or one question per line."""

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


def _answers(row: dict, where: str) -> list[str]:
    answers = row.get("answers", row.get("answer"))
    if isinstance(answers, str):
        answers = [answers]
    if not isinstance(answers, list) or not [a for a in answers if isinstance(a, str) and a.strip()]:
        raise AugmentError(f"{where}: no answers (expected 'answers': [...] or 'answer': '...')")
    return [a for a in answers if isinstance(a, str) and a.strip()]


def load_qa(path: Path, skip_unanswerable: bool = True) -> list[QAItem]:
    """Every question of `path`. Questions marked `unanswerable_from_text` are left out by default."""
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
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
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
                items.append(QAItem(qid, title, passage, q.get("q", q.get("question")), _answers(q, where)))
        else:
            question = row.get("q", row.get("question"))
            if not isinstance(question, str):
                raise AugmentError(f"{where}: no question ('questions': [...], 'q' or 'question')")
            items.append(QAItem(str(row.get("id", lineno)), title, passage, question, _answers(row, where)))
    if not items:
        raise AugmentError(f"{path}: no questions found")
    return items
