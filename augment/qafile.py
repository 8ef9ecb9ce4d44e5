"""QA files: passages with questions (shared/data's format) or one question per line (JSON Lines,
or one JSON array of such rows).

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
    for lineno, where, row in _rows(path):
        if not isinstance(row, dict):
            raise AugmentError(f"{where}: expected a JSON object")
        if "chunk_id" in row and "strategy" in row:
            raise AugmentError(
                f"{where}: a run's generated record, not a question "
                "(a run's questions become a QA file with 'augment export RUN --format qa')"
            )
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


def _rows(path: Path) -> list[tuple[int, str, object]]:
    """(number, where, row) for each row of a QA file: a JSON Lines file, or one JSON array of rows."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise AugmentError(f"{path}: cannot read QA file ({e})") from None
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append((lineno, f"{path}:{lineno}", json.loads(line)))
        except json.JSONDecodeError as e:
            try:
                whole = json.loads(text)
            except json.JSONDecodeError:
                raise AugmentError(f"{path}:{lineno}: invalid JSON ({e.msg})") from None
            if isinstance(whole, list):  # a JSON array of rows, spread over lines
                return _items_of(path, whole)
            raise AugmentError(
                f"{path}: one JSON document over several lines, not JSON Lines; a QA file holds "
                "a passage or a question a line, or a JSON array of them"
            ) from None
    if len(rows) == 1 and isinstance(rows[0][2], list):  # a JSON array on one line
        return _items_of(path, rows[0][2])
    return rows


def _items_of(path: Path, array: list) -> list[tuple[int, str, object]]:
    return [(i + 1, f"{path}: item {i}", row) for i, row in enumerate(array)]
