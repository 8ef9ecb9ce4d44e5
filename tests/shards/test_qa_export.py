"""`augment export RUN --format qa`: a run's questions and answers as an evaluation QA file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from augment.curate.text import words
from augment.errors import AugmentError
from augment.io import read_jsonl, write_jsonl
from augment.qafile import load_qa
from augment.shards.qa import export_qa


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_export_qa_writes_each_chunks_questions_with_the_chunk_as_passage(
    cli, examples: Path, tmp_path: Path
):
    run = tmp_path / "held"
    r = cli("generate", examples / "docs", "-o", run, "--backend", "mock", "-s", "qa,qa-spans", "-q")
    assert r.code == 0, r.err
    r = cli("export", run, "--format", "qa")
    assert r.code == 0, r.err
    assert "qa.jsonl" in r.out and "from curated/kept.jsonl" in r.out

    kept = {rec["id"]: rec for rec in read_jsonl(run / "curated" / "kept.jsonl")}
    docs = {d["doc_id"]: d for d in read_jsonl(run / "documents.jsonl")}
    rows = _lines(run / "qa.jsonl")
    qids = [q["qid"] for row in rows for q in row["questions"]]
    assert (
        len(qids)
        == len(set(qids))
        == sum(1 for rec in kept.values() if rec["strategy"] in ("qa", "qa-spans"))
    )
    assert len({row["id"] for row in rows}) == len(rows) > 1  # one line a chunk
    for row in rows:
        for q in row["questions"]:
            rec = kept[q["qid"]]
            doc = docs[rec["doc_id"]]
            assert row["id"] == rec["chunk_id"] and row["title"] == doc["title"]
            assert row["text"] == doc["text"][rec["span"][0] : rec["span"][1]]
            # the passage holds the answer's sentence (the evidence has its line breaks as spaces)
            assert " ".join(rec["fields"]["evidence"].split()) in " ".join(row["text"].split())
            assert (q["q"], q["answers"], q["strategy"]) == (
                rec["fields"]["question"],
                [rec["fields"]["answer"]],
                rec["strategy"],
            )
    # in document order, chunks in order within a document
    order = [(list(docs).index(row["doc_id"]), int(row["id"].rsplit(":", 1)[1])) for row in rows]
    assert order == sorted(order)

    # augment eval reads it as it reads the shared sets
    items = load_qa(run / "qa.jsonl")
    assert len(items) == len(qids) and items[0].passage == rows[0]["text"]

    # -s keeps one strategy; -o writes elsewhere
    r = cli("export", run, "--format", "qa", "-s", "qa", "-o", tmp_path / "qa-only.jsonl")
    assert r.code == 0, r.err
    only = [q for row in _lines(tmp_path / "qa-only.jsonl") for q in row["questions"]]
    assert only and {q["strategy"] for q in only} == {"qa"}
    assert len(only) == sum(1 for rec in kept.values() if rec["strategy"] == "qa")


def test_a_training_run_decontaminated_against_the_export_drops_its_questions(
    cli, examples: Path, tmp_path: Path
):
    held = tmp_path / "held"
    assert cli("generate", examples / "docs", "-o", held, "--backend", "mock", "-s", "qa", "-q").code == 0
    assert cli("export", held, "--format", "qa").code == 0
    questions = [q["q"] for row in _lines(held / "qa.jsonl") for q in row["questions"]]

    train = tmp_path / "train"
    r = cli(
        "generate",
        examples / "docs",
        "-o",
        train,
        "--backend",
        "mock",
        "-s",
        "qa,qa-spans",
        "--decontaminate",
        held / "qa.jsonl",
        "-q",
    )
    assert r.code == 0, r.err
    rejected = [rec for rec in read_jsonl(train / "curated" / "rejected.jsonl")]
    dropped = [rec for rec in rejected if rec["reason"] == "eval_contamination"]
    # the mock writes the same qa records again: each of those with a long enough question is dropped
    long_questions = [q for q in questions if len(words(q)) >= 6]
    assert long_questions and len(dropped) >= len(long_questions)
    kept_text = " ".join(" ".join(words(rec["text"])) for rec in read_jsonl(train / "curated" / "kept.jsonl"))
    leaked = [q for q in long_questions if " ".join(words(q)[:13]) in kept_text]
    assert not leaked


def _run(tmp_path: Path, records: list[dict]) -> Path:
    run = tmp_path / "run"
    text = "Harrow Point is a 2019 Irish drama film. It was shot in 23 days on Achill Island."
    write_jsonl(
        run / "documents.jsonl", [{"doc_id": "d1", "path": "a.md", "title": "Harrow Point", "text": text}]
    )
    base = {"doc_id": "d1", "chunk_id": "d1:0000", "span": [0, len(text)], "strategy": "qa"}
    write_jsonl(run / "generated" / "qa.jsonl", [{**base, **rec} for rec in records])
    return run


def test_a_question_asked_twice_on_a_chunk_is_one_with_both_answers(tmp_path: Path):
    run = _run(
        tmp_path,
        [
            {"id": "r1", "fields": {"question": "Where was Harrow Point shot?", "answer": "Achill Island"}},
            {"id": "r2", "fields": {"question": "where was Harrow Point shot", "answer": "on Achill Island"}},
            {"id": "r3", "fields": {"question": "Where was Harrow Point shot?", "answer": "Achill Island"}},
            {"id": "r4", "strategy": "notes", "fields": {"note": "An Irish film."}},
            {"id": "r5", "fields": {"question": "How many days was it shot in?", "answer": " "}},
        ],
    )
    summary = export_qa(run)
    assert (summary.source, summary.passages, summary.questions, summary.merged) == ("generated/", 1, 1, 2)
    (row,) = _lines(run / "qa.jsonl")
    assert row["questions"] == [
        {
            "q": "Where was Harrow Point shot?",
            "answers": ["Achill Island", "on Achill Island"],
            "qid": "r1",
            "strategy": "qa",
        }
    ]
    assert not list(run.glob(".*.tmp"))


@pytest.mark.parametrize(
    ("records", "strategies", "message"),
    [
        ([{"id": "r1", "fields": {"note": "x"}}], None, "no question–answer records in generated/"),
        ([{"id": "r1", "fields": {"question": "Q?", "answer": "A"}}], ["notes"], "no records of notes"),
        (
            [{"id": "r1", "doc_id": "d9", "fields": {"question": "Q?", "answer": "A"}}],
            None,
            "no document 'd9'",
        ),
    ],
)
def test_bad_runs_are_one_line_errors(tmp_path: Path, records, strategies, message):
    run = _run(tmp_path, records)
    with pytest.raises(AugmentError, match=message):
        export_qa(run, strategies=strategies)
    assert not (run / "qa.jsonl").exists()


def test_a_run_without_documents_and_flags_without_format_qa(cli, tmp_path: Path):
    run = _run(tmp_path, [{"id": "r1", "fields": {"question": "Q?", "answer": "A"}}])
    (run / "documents.jsonl").unlink()
    r = cli("export", run, "--format", "qa")
    assert r.code == 1 and "documents.jsonl: not found" in r.err
    r = cli("export", run, "-o", tmp_path / "x.jsonl")
    assert r.code == 2 and "--format qa" in r.err
    r = cli("export", run, "--format", "qa", "--val-fraction", "0.1")
    assert r.code == 2 and "for shards, not --format qa" in r.err
    r = cli("export", run, "--format", "csv")  # the error names every format, qa too
    assert (
        r.code == 2 and r.err.strip() == "error: --format csv: give cpt or chat (shards), or qa (a QA file)"
    )
    assert not (run / "shards").exists()


def test_a_run_folder_given_as_qa_file_says_how_to_make_one(tmp_path: Path):
    run = _run(tmp_path, [{"id": "r1", "fields": {"question": "Where was it shot?", "answer": "Achill"}}])
    with pytest.raises(AugmentError, match="a folder, not a QA file .*augment export .* --format qa"):
        load_qa(run)
    export_qa(run)
    with pytest.raises(AugmentError, match=re.escape(f"a folder, not a QA file (use {run / 'qa.jsonl'})")):
        load_qa(run)
    assert [item.question for item in load_qa(run / "qa.jsonl")] == ["Where was it shot?"]


def test_eval_scores_the_exported_questions_open_book(cli, run_dir: Path, tiny_model: Path, tmp_path: Path):
    qa = tmp_path / "qa.jsonl"
    export_qa(run_dir, qa)
    report = tmp_path / "report"
    args = ["eval", "-m", tiny_model, "--qa", qa, "--mode", "open", "--limit", "6", "-o", report, "-q"]
    r = cli(*args)
    assert r.code == 0, r.err
    assert json.loads((report / "report.json").read_text())["questions"] == 6
