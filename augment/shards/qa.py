"""Write a run's question–answer records as an evaluation QA file, the format `augment eval --qa`
and `--decontaminate` read: one chunk a line, `{"id", "title", "text", "questions": [{"q",
"answers", "qid", "strategy"}]}` (the format of the shared SQuAD and film sets).

This is how a user without a hand-written test set measures what training taught: generate
questions on the documents in a run of their own (a strong model, the `qa` strategy), export
them as QA, keep them out of the training run with `--decontaminate`, and score closed-book
before and after training. The passage is the chunk the questions were asked on, so `--mode
open` gives the model the same text the question writer saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from augment.curate.text import normalize
from augment.errors import AugmentError
from augment.io import read_jsonl, write_jsonl
from augment.shards.writer import load_records


@dataclass
class QAExportSummary:
    path: Path
    source: str
    passages: int
    questions: int
    by_strategy: dict[str, int] = field(default_factory=dict)
    merged: int = 0  # questions asked again on a chunk: one question, the answers together


def _qa_fields(rec: dict[str, Any]) -> tuple[str, str] | None:
    fields = rec.get("fields") or {}
    question, answer = fields.get("question"), fields.get("answer")
    if isinstance(question, str) and isinstance(answer, str) and question.strip() and answer.strip():
        return question.strip(), answer.strip()
    return None


def export_qa(run_dir: Path, out: Path | None = None, strategies: list[str] | None = None) -> QAExportSummary:
    """Write the run's records that have a `question` and an `answer` field to `out`
    (default RUN/qa.jsonl), grouped by the chunk they were asked on, in document order.

    Curated records when the run has been curated, else every generated one. A question asked
    twice on one chunk (case, accents and punctuation aside) is one question with both answers as gold.
    """
    out = out or run_dir / "qa.jsonl"
    source, records = load_records(run_dir)
    docs_path = run_dir / "documents.jsonl"
    if not docs_path.is_file():
        raise AugmentError(f"{docs_path}: not found (the run's documents give each question its passage)")
    docs = {d["doc_id"]: (i, d) for i, d in enumerate(read_jsonl(docs_path))}

    wanted = set(strategies) if strategies else None
    present = {rec.get("strategy", "") for rec in records}
    if wanted and not wanted & present:
        raise AugmentError(
            f"{run_dir}: no records of {', '.join(sorted(wanted))} in {source} "
            f"(it has {', '.join(sorted(present)) or 'none'})"
        )
    passages: dict[str, dict[str, Any]] = {}
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    by_strategy: dict[str, int] = {}
    merged = 0
    order: dict[str, tuple[int, int]] = {}
    for rec in records:
        strategy = rec.get("strategy", "")
        qa = _qa_fields(rec)
        if qa is None or (wanted and strategy not in wanted):
            continue
        doc_id, chunk_id, span = rec.get("doc_id"), rec.get("chunk_id"), rec.get("span")
        if doc_id not in docs:
            raise AugmentError(f"{docs_path}: no document {doc_id!r}, which record {rec.get('id')} names")
        if not (isinstance(span, list) and len(span) == 2):
            raise AugmentError(f"{source}: record {rec.get('id')} has no chunk span")
        doc_index, doc = docs[doc_id]
        chunk_id = str(chunk_id or f"{doc_id}:{span[0]}")
        if chunk_id not in passages:
            passages[chunk_id] = {
                "id": chunk_id,
                "title": doc.get("title", ""),
                "text": doc["text"][span[0] : span[1]],
                "doc_id": doc_id,
                "questions": [],
            }
            order[chunk_id] = (doc_index, span[0])
        question, answer = qa
        key = (chunk_id, normalize(question))
        if key in seen:
            answers = seen[key]["answers"]
            if answer not in answers:
                answers.append(answer)
            merged += 1
            continue
        item = {"q": question, "answers": [answer], "qid": rec.get("id"), "strategy": strategy}
        seen[key] = item
        passages[chunk_id]["questions"].append(item)
        by_strategy[strategy] = by_strategy.get(strategy, 0) + 1
    if not passages:
        among = f" of {', '.join(sorted(wanted))}" if wanted else ""
        raise AugmentError(
            f"{run_dir}: no question–answer records{among} in {source} (generate with a strategy "
            "whose records have 'question' and 'answer' fields, such as qa or qa-spans)"
        )
    rows = sorted(passages.values(), key=lambda p: order[p["id"]])
    write_jsonl(out, rows)
    return QAExportSummary(
        path=out,
        source=source,
        passages=len(rows),
        questions=sum(len(p["questions"]) for p in rows),
        by_strategy=dict(sorted(by_strategy.items())),
        merged=merged,
    )
