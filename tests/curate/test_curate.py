from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from augment.config import load_config
from augment.curate import curate
from augment.io import read_jsonl, write_json, write_jsonl

CHUNK = (
    "The lighthouse at Cape Merrow was designed by Ada Penhallow and completed in 1862 after two winters of "
    "storms had delayed the work. The tower is 31 metres tall and built from local grey granite. In 1884 the "
    "keepers switched from colza oil to paraffin, which gave a brighter flame and cost less. The last keeper, "
    "Tomas Rill, left the station in 1989 when the light was automated and monitored from Port Anselm."
)
PARAPHRASE = (
    "Ada Penhallow's lighthouse on Cape Merrow took until 1862 to finish, because storms held up construction "
    "for two winters. Its granite tower, quarried nearby, rises 31 metres. Paraffin replaced colza oil in 1884, "
    "burning brighter for less money. Automation came in 1989, when Tomas Rill, the final keeper, departed and "
    "the harbour office at Port Anselm took over monitoring."
)
EVAL_Q = "In which year did the keepers of the Cape Merrow lighthouse switch from colza oil to paraffin?"


def rec(rid: str, strategy: str, body: str, **fields) -> dict:
    text = f"Merrow\nQuestion: {fields['question']}\nAnswer: {fields['answer']}" if strategy == "qa" else body
    user = fields.get("question", "Tell me about Merrow.")
    return {
        "id": rid,
        "doc_id": "d1",
        "chunk_id": "d1:0000",
        "span": [0, len(CHUNK)],
        "strategy": strategy,
        "variant": "",
        "sample": 0,
        "item": 0,
        "text": text,
        "fields": fields or {"text": body},
        "messages": [
            {"role": "user", "content": user},
            {"role": "assistant", "content": fields.get("answer", body)},
        ],
    }


def make_run(tmp_path: Path, records: list[dict]) -> Path:
    run = tmp_path / "run"
    write_jsonl(
        run / "documents.jsonl",
        [{"doc_id": "d1", "path": "m.txt", "title": "Merrow", "text": CHUNK, "sha256": "x"}],
    )
    by_strategy: dict[str, list[dict]] = {}
    for r in records:
        by_strategy.setdefault(r["strategy"], []).append(r)
    for name, recs in by_strategy.items():
        write_jsonl(run / "generated" / f"{name}.jsonl", recs)
    write_json(run / "run.json", {"strategies": {n: {} for n in by_strategy}, "config": {}})
    return run


PLANTED = [
    rec("para", "paraphrase", PARAPHRASE),
    rec("para-exact", "paraphrase", PARAPHRASE.upper().replace(",", " ,").replace(".", " . ")),
    rec(
        "para-near", "paraphrase", PARAPHRASE.replace("departed", "left")
    ),  # one word edited: 5-gram Jaccard 0.85
    rec("copy", "paraphrase", CHUNK.split(". ")[1] + ". " + CHUNK.split(". ")[2] + "."),
    rec("infer", "inferences", "Cape Merrow's light ran on colza oil for its first 22 years."),
    rec("ai", "inferences", "As an AI language model, I cannot infer anything about lighthouses."),
    rec(
        "qa-ok",
        "qa",
        "",
        question="Who designed the Cape Merrow lighthouse?",
        answer="Ada Penhallow",
        evidence="designed by Ada  Penhallow and completed in 1862",
    ),
    rec(
        "qa-fuzzy",
        "qa",
        "",
        question="How tall is the Cape Merrow tower?",
        answer="31 metres",
        evidence="the tower is 31 metres tall, and built from local grey granite",
    ),
    rec(
        "qa-invented",
        "qa",
        "",
        question="Who painted the Cape Merrow lighthouse red?",
        answer="Jan Vos",
        evidence="Jan Vos painted the tower red in 1901",
    ),
    rec(
        "qa-unsupported",
        "qa",
        "",
        question="When was the light automated?",
        answer="1975",
        evidence="left the station in 1989 when the light was automated",
    ),
    rec(
        "qa-leak",
        "qa",
        "",
        question=EVAL_Q,
        answer="1884",
        evidence="In 1884 the keepers switched from colza oil",
    ),
    rec("short", "inferences", "Yes."),
]


def run_curate(tmp_path: Path, records=PLANTED, **overrides):
    run = make_run(tmp_path, records)
    summary = curate(run, load_config(None, overrides))
    kept = {r["id"]: r for r in read_jsonl(run / "curated" / "kept.jsonl")}
    rejected = {r["id"]: r for r in read_jsonl(run / "curated" / "rejected.jsonl")}
    return run, summary, kept, rejected


def test_planted_cases(tmp_path: Path):
    evals = tmp_path / "eval.jsonl"
    evals.write_text(
        json.dumps({"id": "p", "text": "...", "questions": [{"q": EVAL_Q, "answers": ["1884"]}]}) + "\n"
    )
    _, summary, kept, rejected = run_curate(tmp_path, decontaminate=[str(evals)])
    reasons = {rid: r["reason"] for rid, r in rejected.items()}
    assert reasons == {
        "para-exact": "exact_duplicate",
        "para-near": "near_duplicate",
        "copy": "copies_source",
        "ai": "boilerplate",
        "qa-invented": "ungrounded_evidence",
        "qa-unsupported": "answer_not_in_evidence",
        "qa-leak": "eval_contamination",
        "short": "too_short",
    }
    assert rejected["para-exact"]["dup_of"] == "para" and rejected["para-near"]["dup_of"] == "para"
    assert 0.8 <= rejected["para-near"]["reason_detail"] < 1.0
    assert set(kept) == {"para", "infer", "qa-ok", "qa-fuzzy"}
    # every record ends in exactly one of the two files
    assert set(kept) | set(rejected) == {r["id"] for r in PLANTED} and not set(kept) & set(rejected)
    assert kept["para"]["checks"]["copy"] < 0.2 and kept["qa-fuzzy"]["checks"]["grounding"] >= 90
    assert summary.total == len(PLANTED) and sum(summary.kept.values()) == 4
    assert summary.by_reason["near_duplicate"] == 1


def test_records_are_written_whole_as_generated_and_a_torn_last_line_is_passed_over(tmp_path: Path):
    """Curate holds only what its later steps read of a record and reads the rest again from the
    generated file when it writes it: every field comes back as it was, multi-byte text too, and
    a killed generate's torn last line is left out as before."""
    records = [
        {**r, "extra": {"nested": [1, 2.5, None]}, "note": f"caf\u00e9 \u2014 {r['id']} \U0001f4a1"}
        for r in PLANTED
    ]
    run = make_run(tmp_path, records)
    with open(run / "generated" / "paraphrase.jsonl", "a", encoding="utf-8") as f:
        f.write('{"id": "torn", "strategy": "paraphrase", "te')
    summary = curate(run, load_config(None, {}))
    assert summary.total == len(records)
    out = {r["id"]: r for name in ("kept", "rejected") for r in read_jsonl(run / "curated" / f"{name}.jsonl")}
    assert set(out) == {r["id"] for r in records}
    for r in records:
        got = {
            k: v for k, v in out[r["id"]].items() if k not in ("checks", "reason", "dup_of", "reason_detail")
        }
        assert got == r


def test_each_step_can_be_turned_off(tmp_path: Path):
    _, _, kept, rejected = run_curate(
        tmp_path,
        exact_dedup=False,
        near_dedup=False,
        copy_filter=False,
        grounding=False,
        boilerplate_filter=False,
        unsupported_filter=False,
        min_record_tokens=0,
    )
    assert not rejected and len(kept) == len(PLANTED)


def test_thresholds_move_the_line(tmp_path: Path):
    _, _, _, rejected = run_curate(tmp_path, near_threshold=0.99)
    assert "para-near" not in rejected
    _, _, _, rejected = run_curate(tmp_path / "b", copy_threshold=0.05, copy_ngram=2)
    assert rejected["para"]["reason"] == "copies_source"  # a real paraphrase still shares some word pairs


def test_span_answers_may_quote_their_source_a_rewrite_may_not(tmp_path: Path):
    long_span = "after two winters of storms had delayed the work"  # 9 words of the chunk
    recs = [
        rec("span", "qa-spans", long_span, question="When was the lighthouse completed?", answer=long_span),
        rec("copy", "paraphrase", f"Completed in 1862 {long_span}."),
    ]
    # qa-spans is of kind spans: exempt whatever copy_exempt lists
    _, _, kept, rejected = run_curate(tmp_path, recs, strategies=["qa-spans", "paraphrase"], copy_exempt=[])
    assert set(kept) == {"span"} and rejected["copy"]["reason"] == "copies_source"
    # not a spans strategy of this run (a user's file of that name could be anything): checked
    _, _, kept, rejected = run_curate(tmp_path / "other", recs, strategies=["paraphrase"])
    assert not kept and {r["reason"] for r in rejected.values()} == {"copies_source"}


def test_boilerplate_phrase_in_the_source_is_not_boilerplate(tmp_path: Path):
    recs = [rec("faq", "inferences", "Let me know if the light fails, the keepers said.")]
    _, _, kept, _ = run_curate(tmp_path, recs)
    assert "faq" not in kept  # the chunk does not say it
    chunked = [dict(recs[0], span=[0, len(CHUNK)])]
    run = make_run(tmp_path / "c", chunked)
    docs = [
        {
            "doc_id": "d1",
            "path": "m.txt",
            "title": "M",
            "text": CHUNK + " Let me know if the light fails.",
            "sha256": "x",
        }
    ]
    write_jsonl(run / "documents.jsonl", docs)
    chunked[0]["span"] = [0, len(docs[0]["text"])]
    write_jsonl(run / "generated" / "inferences.jsonl", chunked)
    curate(run, load_config(None, {}))
    assert [r["id"] for r in read_jsonl(run / "curated" / "kept.jsonl")] == ["faq"]


def test_judge_with_the_mock_backend(tmp_path: Path):
    invented = rec(
        "made-up", "inferences", "Zebras graze on Mars beside purple volcanoes every Tuesday morning."
    )
    records = [*PLANTED[:1], PLANTED[4], invented]
    # (the names filter would catch "Mars" and "Tuesday" first; this tests the judge)
    run, summary, kept, rejected = run_curate(
        tmp_path, records, judge=True, backend="mock", unsupported_filter=False
    )
    assert rejected["made-up"]["reason"] == "judge_unfaithful"
    assert set(kept) == {"para", "infer"}
    verdict = kept["para"]["checks"]["judge"]
    assert verdict["faithfulness"] >= 4 and verdict["usefulness"] >= 3 and verdict["reason"]
    # the judge's replies are cached with the run: curating again asks nothing
    from augment.pipeline.cache import ResponseCache

    cache = ResponseCache(run / "cache.sqlite")
    assert len(cache) == 3
    cache.close()
    again = {"backend": "mock", "judge": True, "judge_min_faithfulness": 1, "unsupported_filter": False}
    curate(run, load_config(None, again))
    assert len(list(read_jsonl(run / "curated" / "kept.jsonl"))) == 3


def test_the_judge_builds_its_requests_as_they_go_out(tmp_path: Path):
    from augment.backends import get_backend
    from augment.curate.judge import judge_records

    n, pulled, seen_at_first = 12_000, [0], []
    chunk = "The lighthouse at Cape Merrow was completed in 1862. It is 31 metres tall."

    def records():
        for i in range(n):
            pulled[0] += 1
            yield (
                rec(f"r{i}", "notes", f"- The lighthouse was completed in 1862 ({i})."),
                "Cape Merrow",
                chunk,
            )

    def advance(outcome) -> None:
        seen_at_first.append(pulled[0])

    config = load_config(None, {"backend": "mock"})
    verdicts = judge_records(records(), n, get_backend(config), tmp_path, config, on_advance=advance)
    assert len(verdicts) == n and all(v.faithfulness >= 1 for v in verdicts)
    # the first verdict came back while most records were still unread (a window ahead, not all)
    assert seen_at_first[0] < n / 2 and pulled[0] == n


def test_decontamination_matches_questions_and_only_optionally_answers(tmp_path: Path):
    # a SQuAD-style gold answer that is a clause of the document: a record quoting the document
    # holds it, and is no leak of the question
    answer = "the keepers switched from colza oil to paraffin"
    quoting = rec(
        "quote", "qa", "", question="What changed in 1884?", answer=answer, evidence=f"In 1884 {answer}"
    )
    evals = tmp_path / "eval.jsonl"
    evals.write_text(
        json.dumps({"q": "What fuel change happened at Cape Merrow?", "answers": [answer]}) + "\n"
    )
    _, _, kept, _ = run_curate(tmp_path / "q", [quoting], decontaminate=[str(evals)])
    assert set(kept) == {"quote"}
    _, _, kept, rejected = run_curate(
        tmp_path / "qa", [quoting], decontaminate=[str(evals)], decontaminate_answers=True
    )
    assert not kept and rejected["quote"]["reason"] == "eval_contamination"


def test_decontamination_file_errors_are_one_line(tmp_path: Path):
    from augment.errors import AugmentError

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"q": "fine question here"}\nnot json\n')
    with pytest.raises(AugmentError, match=r"bad.jsonl:2: invalid JSON"):
        run_curate(tmp_path, decontaminate=[str(bad)])
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"title": "no questions"}\n')
    with pytest.raises(AugmentError, match=r"empty.jsonl:1: no question \('questions'"):
        run_curate(tmp_path / "e", decontaminate=[str(empty)])
    # a malformed line among good ones is an error too, not a question silently not checked
    typo = tmp_path / "typo.jsonl"
    typo.write_text('{"q": "fine question here"}\n{"question_text": "a misspelt field"}\n')
    with pytest.raises(AugmentError, match=r"typo.jsonl:2: no question"):
        run_curate(tmp_path / "t", decontaminate=[str(typo)])
    with pytest.raises(AugmentError, match=r"folder, not a QA file"):
        run_curate(tmp_path / "f", decontaminate=[str(tmp_path)])


def test_decontamination_reads_every_question_of_an_eval_file(tmp_path: Path):
    from augment.curate.filters import load_eval_items

    rows = [
        {
            "id": "p1",
            "questions": [
                {"q": "Which keeper lit the Cape Merrow lamp first?", "answers": ["Tomas Rill"]},
                {"q": "What colour was the keeper's boat?", "answers": [], "unanswerable_from_text": True},
            ],
        },
        {"question": "How many steps lead to the gallery?"},
    ]
    path = tmp_path / "eval.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    questions = load_eval_items(path)
    both = load_eval_items(path, answers=True)
    # the unanswerable question and the one without answers are kept out of training too
    assert questions == [
        "Which keeper lit the Cape Merrow lamp first?",
        "What colour was the keeper's boat?",
        "How many steps lead to the gallery?",
    ]
    assert both == [questions[0], "Tomas Rill", questions[1], questions[2]]


def test_generate_curates_and_exports_the_kept_records(cli, examples: Path, tmp_path: Path):
    r = cli("generate", examples / "docs", "-o", tmp_path / "run", "-c", examples / "augment.toml", "-q")
    assert r.code == 0, r.err
    assert "curate: kept" in r.out
    kept = list(read_jsonl(tmp_path / "run" / "curated" / "kept.jsonl"))
    rejected = list(read_jsonl(tmp_path / "run" / "curated" / "rejected.jsonl"))
    generated = [x for p in (tmp_path / "run" / "generated").glob("*.jsonl") for x in read_jsonl(p)]
    assert len(kept) + len(rejected) == len(generated) and rejected
    manifest = json.loads((tmp_path / "run" / "shards" / "manifest.json").read_text())
    assert manifest["source"] == "curated/kept.jsonl"
    assert manifest["counts"]["train"] + manifest["counts"]["val"] == len(kept)
    assert Counter(x["reason"] for x in rejected)["near_duplicate"] > 0

    r = cli("curate", tmp_path / "run", "--near-threshold", "0.99")
    assert r.code == 0 and "curate: kept" in r.out
    assert len(list(read_jsonl(tmp_path / "run" / "curated" / "kept.jsonl"))) > len(kept)


def test_records_copying_the_few_shot_example_are_dropped(tmp_path: Path):
    from augment.curate.filters import example_terms
    from augment.strategies import load_strategies

    # names and years of the bundled worked example (prompts/_example.md), not sentence starts
    (qa,) = load_strategies(["qa"])
    terms = example_terms(qa.example_text())
    assert {"Orlen", "Kovel", "Brask", "Wren", "1898"} <= terms and not {"The", "Its", "Passenger"} & terms
    recs = [
        rec("para-example", "paraphrase", "Like the Orlen Valley Railway, the Merrow tower rises 31 metres."),
        rec(
            "qa-example",  # the question names the example's engineer; the answer alone is fine
            "qa",
            "",
            question="Who designed the lighthouse Mara Kovel built?",
            answer="Ada Penhallow",
            evidence="designed by Ada Penhallow and completed in 1862",
        ),
        rec(
            "infer-year", "inferences", "Cape Merrow's light was lit in 1898, 36 years after it was finished."
        ),
        # the example's words are fine where the chunk has them too (any case), or as plain words
        rec(
            "infer-ok",
            "inferences",
            "Merrow's keepers burned colza oil for 22 years; Tomas Rill was the last.",
        ),
        rec("para-ok", "paraphrase", "No railway or valley is mentioned; Granite came from the Cape itself."),
    ]
    _, summary, kept, rejected = run_curate(tmp_path, recs)
    assert {k: r["reason"] for k, r in rejected.items()} == dict.fromkeys(
        ["para-example", "qa-example", "infer-year"], "copies_example"
    )
    assert rejected["para-example"]["reason_detail"] == "Orlen, Railway, Valley"
    assert rejected["infer-year"]["reason_detail"] == "1898"
    assert set(kept) == {"infer-ok", "para-ok"}
    _, _, kept, rejected = run_curate(tmp_path / "off", recs, example_filter=False)
    assert {"para-example", "infer-year"} <= {
        k for k, r in rejected.items() if r["reason"] == "unsupported_terms"
    }
    _, _, kept, _ = run_curate(tmp_path / "both", recs, example_filter=False, unsupported_filter=False)
    assert {"para-example", "infer-year"} <= set(kept)


def test_a_base_model_continuing_into_the_prompt_scaffold_is_boilerplate(tmp_path: Path):
    from augment.strategies.base import COMPLETION_STOP

    leaked = (
        "The Merrow light was finished in 1862.\n\n---\n\nThe document above about Merrow, rewritten in "
        "simple words, keeping every fact: The Merrow light"
    )
    recs = [
        rec("scaffold", "paraphrase", leaked),
        rec("rule", "paraphrase", "The Merrow light was finished in 1862 by its builders.\n---"),
    ]
    _, _, kept, rejected = run_curate(tmp_path, recs, copy_filter=False)
    assert not kept and {r["reason"] for r in rejected.values()} == {"boilerplate"}
    # and generation stops there in the first place
    assert any(stop and stop in leaked for stop in COMPLETION_STOP)


def test_records_asserting_names_and_numbers_the_source_lacks_are_dropped(tmp_path: Path):
    recs = [
        # a small model's "paraphrase": the designer, the height and the date are swapped
        rec(
            "para-swapped",
            "paraphrase",
            "The lighthouse at Cape Merrow, designed by Isambard Brunel, was finished in 1870 and stands "
            "45 metres tall.",
        ),
        # the differences of the source's dates are inferences, not inventions (1884 - 1862)
        rec("infer-years", "inferences", "Cape Merrow's light burned colza oil for 22 years, from 1862 on."),
        # "two winters" supports 2; the document's title supports its own name; "Cornish" by "Cornwall"
        # would count, one outside name among many is tolerated
        rec(
            "para-ok",
            "paraphrase",
            "For 2 winters storms stopped work at Cape Merrow; Ada Penhallow finished Merrow's tower in "
            "1862, 31 metres of granite. Tomas Rill left in 1989, and Port Anselm took over, as Trinity "
            "House does elsewhere.",
        ),
        rec(
            "qa-renamed",
            "qa",
            "",
            question="Who was the last keeper at Cape Merrow, hired by Lord Harwood?",
            answer="Tomas Rill",
            evidence="The last keeper, Tomas Rill, left the station in 1989",
        ),
    ]
    _, summary, kept, rejected = run_curate(tmp_path, recs)
    assert {k: r["reason"] for k, r in rejected.items()} == dict.fromkeys(
        ["para-swapped", "qa-renamed"], "unsupported_terms"
    )
    assert rejected["para-swapped"]["reason_detail"] == "Brunel, Isambard, 1870, 45"
    assert rejected["qa-renamed"]["reason_detail"] == "Harwood, Lord"
    assert set(kept) == {"infer-years", "para-ok"}
    assert 0 < kept["para-ok"]["checks"]["unsupported_terms"] <= 0.2
    assert summary.by_reason["unsupported_terms"] == 2
    # the share is a setting, a strategy can be exempt, and the filter can be turned off
    _, _, kept, _ = run_curate(tmp_path / "share", recs, unsupported_max_share=0.5)
    assert "qa-renamed" in kept and "para-swapped" not in kept  # 2 of 6 terms, and 4 of 6
    _, _, kept, _ = run_curate(tmp_path / "exempt", recs, unsupported_exempt=["qa"])
    assert "qa-renamed" in kept and "para-swapped" not in kept
    _, _, kept, _ = run_curate(tmp_path / "off", recs, unsupported_filter=False)
    assert set(kept) == {r["id"] for r in recs}


def test_records_that_repeat_themselves_are_dropped(tmp_path: Path):
    looping = (
        "Student: Who designed the Cape Merrow lighthouse?\nTeacher: Ada Penhallow designed it in 1862.\n"
        + "Student: Why was it late?\nTeacher: Storms held up the work for two winters at Cape Merrow.\n" * 4
    )
    recs = [
        rec("para", "paraphrase", PARAPHRASE),
        rec("loop", "paraphrase", looping),
        # a QA record's question is in its text and its user turn: only the answer is its own words
        next(r for r in PLANTED if r["id"] == "qa-ok"),
    ]
    _, summary, kept, rejected = run_curate(tmp_path, recs)
    assert set(rejected) == {"loop"} and rejected["loop"]["reason"] == "repetition"
    assert 0.8 < rejected["loop"]["reason_detail"] <= 1
    assert kept["para"]["checks"]["repetition"] == 0 and kept["qa-ok"]["checks"]["repetition"] == 0
    assert summary.by_reason["repetition"] == 1
    # one repeated clause in an otherwise new text is tolerated up to the share set
    once = PARAPHRASE + (
        " Two winters of storms held up the work at Cape Merrow, as the keepers wrote: two winters of"
        " storms held up the work."
    )
    _, _, kept, rejected = run_curate(tmp_path / "once", [rec("once", "paraphrase", once)])
    assert 0 < kept["once"]["checks"]["repetition"] <= 0.2
    _, _, kept, _ = run_curate(
        tmp_path / "strict", [rec("once", "paraphrase", once)], repetition_max_share=0.05
    )
    assert not kept
    _, _, kept, _ = run_curate(tmp_path / "off", recs, repetition_filter=False)
    assert set(kept) == {"para", "loop", "qa-ok"}


def test_prose_repeats_no_eight_words():
    from augment.curate.filters import RepetitionFilter
    from augment.ingest import ingest

    docs = ingest([str(Path(__file__).parents[2] / "examples" / "docs")]).documents
    assert len(docs) >= 5
    assert max(RepetitionFilter().share(d.text) for d in docs) == 0


def test_a_question_one_document_answers_two_ways_is_dropped_whole(tmp_path: Path):
    def qa(rid: str, question: str, answer: str) -> dict:
        text = f"Question: {question}\nAnswer: {answer}"
        return rec(rid, "qa-spans", text, question=question, answer=answer, evidence=CHUNK)

    recs = [
        qa("year-a", "In what year was the lighthouse completed?", "1862"),
        qa("year-b", "In which year was the lighthouse completed?", "1884"),  # another question
        qa("who-a", "Who is named in the text?", "Ada Penhallow"),
        qa("who-b", "who is named in the text", "Tomas Rill"),  # same question up to case and "?"
        qa("who-c", "Who is named in the text?", "Rill."),  # agrees with who-b, not with who-a
        qa("tall-a", "How tall is the tower?", "31 metres"),
        qa("tall-b", "How tall is the tower?", "31 metres tall"),  # agrees: one runs inside the other
    ]
    off = {"strategies": ["qa-spans"], "grounding": False, "near_dedup": False}
    _, _, kept, rejected = run_curate(tmp_path / "off", recs, **off)
    assert not rejected  # off by default: the recipe's records stay as they were

    _, summary, kept, rejected = run_curate(tmp_path / "on", recs, **off, conflict_filter=True)
    assert set(rejected) == {"who-a", "who-b", "who-c"}
    assert {r["reason"] for r in rejected.values()} == {"conflicting_answers"}
    assert rejected["who-a"]["reason_detail"] == "Ada Penhallow | Tomas Rill"
    assert "checks" not in rejected["who-a"]
    assert set(kept) == {"year-a", "year-b", "tall-a", "tall-b"}
    assert summary.by_reason["conflicting_answers"] == 3


def test_conflicting_answers_are_counted_within_one_document():
    from augment.curate.filters import ConflictingAnswers

    def qa(doc: str, answer: str) -> dict:
        return {"doc_id": doc, "fields": {"question": "What is the company's name?", "answer": answer}}

    other_docs = [qa("d1", "Sky UK Limited"), qa("d2", "British Sky Broadcasting Limited"), {"doc_id": "d1"}]
    assert ConflictingAnswers().find(other_docs) == [None, None, None]
    verdicts = ConflictingAnswers().find([*other_docs, qa("d1", "2014")])
    both = "Sky UK Limited | 2014"
    assert [v and v.detail for v in verdicts] == [both, None, None, both]
