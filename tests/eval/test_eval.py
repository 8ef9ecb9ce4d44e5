from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from augment.errors import AugmentError
from augment.eval import bootstrap_ci, exact_match, f1_score, load_qa, normalize_answer
from augment.eval.metrics import answer_span, contains, source_form
from augment.qafile import QAItem

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def test_squad_normalisation_and_scores():
    assert normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    assert exact_match("the eiffel tower.", ["Eiffel Tower"]) == 1.0
    assert exact_match("Paris", ["Eiffel Tower"]) == 0.0
    assert f1_score("in January 2023", ["January 6, 2023."]) == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))
    assert f1_score("nothing", ["a", "nothing at all"]) == pytest.approx(0.5)
    assert contains("It was built in 1862 by Ada.", ["1862"]) == 1.0
    assert contains("18620", ["1862"]) == 0.0


def test_answer_likelihood_is_scored_without_the_closing_full_stop():
    assert answer_span("January 6, 2023.") == "January 6, 2023"
    assert answer_span(' "Heroic." ') == '"Heroic"'
    assert answer_span("Who? Me!") == "Who? Me"
    assert answer_span("U.S.") == "U.S." and answer_span("Ronald R.") == "Ronald R."
    assert answer_span("...") == "..." and answer_span("1862") == "1862"


def test_answer_nll_scores_the_answer_span(tiny_model):
    pytest.importorskip("torch")
    from augment.eval.runner import _answer_nlls, _load

    torch, tok, model, dev = _load(str(tiny_model), False)
    prompt = "Question: Where is the line?\nAnswer:"
    nll = {a: _answer_nlls(torch, tok, model, dev, [(prompt, a)])[0] for a in ("Brask", "Brask.", "Tessin")}
    assert nll["Brask."] == nll["Brask"] != nll["Tessin"]


def test_answer_likelihoods_batched_equal_each_scored_alone(tiny_model, monkeypatch):
    pytest.importorskip("torch")
    from augment.eval import runner
    from augment.eval.metrics import answer_span

    torch, tok, model, dev = runner._load(str(tiny_model), False)
    pairs = [
        ("Question: Where is the line?\nAnswer:", "Brask"),
        ("Title: Orlen Valley Railway\nQuestion: When did the line open to passengers?\nAnswer:", "in 1898"),
        ("Q:", "the narrow gauge line of the Orlen valley"),  # short prompt, long answer
    ]

    def alone(prompt: str, answer: str) -> float:  # the loss transformers computes, unpadded
        p = tok(prompt, return_tensors="pt").input_ids
        a = tok(" " + answer_span(answer), add_special_tokens=False, return_tensors="pt").input_ids
        ids = torch.cat([p, a], dim=1)
        labels = ids.clone()
        labels[:, : p.shape[1]] = -100
        with torch.no_grad():
            return float(model(ids, labels=labels).loss)

    expected = [alone(*pair) for pair in pairs]
    assert len(set(expected)) == 3
    np.testing.assert_allclose(runner._answer_nlls(torch, tok, model, dev, pairs), expected, rtol=1e-5)
    monkeypatch.setattr(runner, "_LOGITS_BUDGET", 1)  # one pair a forward: the same
    np.testing.assert_allclose(runner._answer_nlls(torch, tok, model, dev, pairs), expected, rtol=1e-5)


def test_generation_stops_once_every_answer_has_its_first_line(tiny_model):
    pytest.importorskip("torch")
    from augment.eval import runner

    torch, tok, model, dev = runner._load(str(tiny_model), False)
    prompt = tok("Question: Where?\nAnswer:").input_ids
    rows = [" Brask\nQuestion", " Brask", "\n Brask", "\n Brask\n"]  # generated so far
    generated = [tok(r, add_special_tokens=False).input_ids for r in rows]
    width = max(map(len, generated))  # a finished row goes on with padding, which decodes to nothing
    batch = torch.tensor([prompt + g + [tok.pad_token_id] * (width - len(g)) for g in generated])
    done = runner._first_line_ends(torch, tok, len(prompt))
    assert done(batch, None).tolist() == [True, False, False, True]  # a leading newline is not an end


@pytest.mark.parametrize(
    ("answer", "passage", "form"),
    [
        ("February 24, 2023.", "It was released on 24 February 2023 in India.", "24 February 2023"),
        ("Comedy drama.", "It is a 2023 Kannada-language comedy drama film.", "comedy drama"),
        ("A Filmfare Award", "She won a Filmfare Award.", "Filmfare Award"),  # the shortest run
        (
            "Marathi-language, comedy drama",
            "a Marathi-language comedy drama film",
            "Marathi-language comedy drama",
        ),
        ("comedy drama", "a comedy drama film", None),  # verbatim: nothing to add
        ("Tamil.", "a Tamil-language film", None),  # other words: not the same answer
        ("Brinda", "directed by Brinda.", None),
        ("1862", "", None),  # no passage
    ],
)
def test_source_form_is_the_passages_wording_of_the_same_words(answer: str, passage: str, form):
    assert source_form(answer, passage) == form


def test_source_nll_scores_a_reworded_gold_in_the_passages_wording(tiny_model):
    pytest.importorskip("torch")
    from augment.eval.runner import _answer_nlls, _load, likelihood_forms, score_model
    from augment.qafile import QAItem

    passage = "The Orlen line opened on 24 February 1898. Its gauge is narrow gauge."
    items = [
        QAItem("a", "Orlen", passage, "When did the line open?", ["February 24, 1898."]),
        QAItem("b", "Orlen", passage, "What gauge is it?", ["Narrow gauge", "narrow gauge"]),
        QAItem("c", "Orlen", passage, "Who built it?", ["Mara Kovel"]),
    ]
    assert likelihood_forms(items[0]) == (["February 24, 1898."], ["24 February 1898"])
    assert likelihood_forms(items[1]) == (["Narrow gauge", "narrow gauge"], [])
    assert likelihood_forms(items[2]) == (["Mara Kovel"], [])
    scores = score_model(str(tiny_model), items, max_new_tokens=2)
    gold, source = scores.per_item["answer_nll"], scores.per_item["answer_nll_source"]
    torch, tok, model, dev = _load(str(tiny_model), False)
    prompt = "Question: When did the line open?\nAnswer:"
    both = [
        _answer_nlls(torch, tok, model, dev, [(prompt, a)])[0]
        for a in ("February 24, 1898", "24 February 1898")
    ]
    assert gold[0] == pytest.approx(both[0]) and source[0] == pytest.approx(min(both))
    assert both[0] != both[1]  # the two wordings are scored apart
    assert source[1:] == gold[1:]  # no other wording: the same score
    assert set(scores.summary) >= {"answer_nll", "answer_nll_source"}


def test_a_prompt_past_the_models_positions_stops_with_one_line(tiny_gpt2):
    """A model with a learned position table (GPT-2, 64 positions): an open-book prompt past them
    used to fail inside generate (an index error); it is named before any answer is scored."""
    from augment.eval.runner import score_model

    folder = tiny_gpt2(64)
    passage = "The lighthouse at Cape Merrow was lit with paraffin until 1931. " * 6
    items = [QAItem("p1", "Merrow", passage, "What lit the lamp?", ["paraffin"])]
    closed = score_model(str(folder), items, max_new_tokens=4)  # the question alone fits
    assert len(closed.predictions) == 1
    with pytest.raises(
        AugmentError,
        match=r"gpt2-64: the longest prompt is \d+ tokens and an answer takes up to 4, past the model's 64 positions",
    ):
        score_model(str(folder), items, mode="open", max_new_tokens=4)


def test_bootstrap_interval_brackets_the_mean_and_is_reproducible():
    values = np.random.default_rng(1).normal(0.3, 1.0, 400)
    mean, lo, hi = bootstrap_ci(values)
    assert lo < mean < hi and hi - lo < 0.3
    assert bootstrap_ci(values) == (mean, lo, hi)
    assert bootstrap_ci([1.0] * 10) == (1.0, 1.0, 1.0)


def test_group_bootstrap_resamples_whole_passages():
    values = np.random.default_rng(1).normal(0.3, 1.0, 60)
    # one question per passage: the same draws as resampling questions
    assert bootstrap_ci(values, groups=[f"p{k}" for k in range(60)]) == bootstrap_ci(values)
    # 6 passages whose 10 questions move together: the interval is that of 6 observations, not 60
    clustered = np.repeat(np.random.default_rng(2).normal(0.3, 1.0, 6), 10)
    groups = np.repeat([f"p{k}" for k in range(6)], 10)
    mean, lo, hi = bootstrap_ci(clustered, groups=groups)
    _, qlo, qhi = bootstrap_ci(clustered)
    assert lo < mean < hi and hi - lo > 2.5 * (qhi - qlo)
    with pytest.raises(ValueError, match="60 values but 6 group labels"):
        bootstrap_ci(clustered, groups=groups[:6])


@pytest.mark.skipif(not DATA.is_dir(), reason="shared/data not present")
def test_loads_the_shared_sets():
    film = load_qa(DATA / "wikinewpages2023_film_dev.jsonl")
    squad = load_qa(DATA / "squad_dev200.jsonl")
    assert len(film) == 949 and len(squad) == 1024  # 2 unanswerable film questions left out
    assert len(load_qa(DATA / "wikinewpages2023_film_dev.jsonl", skip_unanswerable=False)) == 951
    assert squad[0].passage and squad[0].answers and squad[0].id == "56bec3153aeaaa14008c9389"


def test_one_question_per_line_and_errors(tmp_path: Path):
    f = tmp_path / "qa.jsonl"
    f.write_text('{"question": "Who?", "answer": "Ada"}\n{"q": "When?", "answers": ["1862", "in 1862"]}\n')
    items = load_qa(f)
    assert [(i.question, i.answers) for i in items] == [("Who?", ["Ada"]), ("When?", ["1862", "in 1862"])]
    f.write_text('{"question": "Who?"}\n')
    with pytest.raises(AugmentError, match=r"qa.jsonl:1: no answers"):
        load_qa(f)
    f.write_text("nope\n")
    with pytest.raises(AugmentError, match=r"qa.jsonl:1: invalid JSON"):
        load_qa(f)


def test_a_json_array_is_read_and_other_files_are_named_for_what_they_are(tmp_path: Path):
    rows = [
        {"question": "Who?", "answer": "Ada"},
        {"title": "Orlen", "text": "t", "questions": [{"q": "When?", "answers": ["1898"]}]},
    ]
    f = tmp_path / "qa.json"
    for text in (json.dumps(rows, indent=2), json.dumps(rows)):  # over several lines, and on one
        f.write_text(text)
        items = load_qa(f)
        assert [(i.question, i.answers, i.title) for i in items] == [
            ("Who?", ["Ada"], ""),
            ("When?", ["1898"], "Orlen"),
        ]
    f.write_text(json.dumps([rows[0], {"question": "Where?"}], indent=2))
    with pytest.raises(AugmentError, match=r"qa.json: item 1: no answers"):
        load_qa(f)
    f.write_text(json.dumps({"data": rows}, indent=2))  # a JSON object is not a QA file
    with pytest.raises(AugmentError, match=r"qa.json: one JSON document over several lines, not JSON Lines"):
        load_qa(f)
    f.write_text(
        json.dumps({"id": "x", "doc_id": "d", "chunk_id": "d:0000", "strategy": "qa", "text": "Q"}) + "\n"
    )
    with pytest.raises(
        AugmentError, match=r"qa.json:1: a run's generated record, not a question .*--format qa"
    ):
        load_qa(f)


def test_snapshots_expand_in_step_order(tmp_path: Path):
    from augment.eval.runner import with_snapshots

    ckpt = tmp_path / "ckpt"
    for sub in ("step-100", "step-24", ".step-48.tmp", "checkpoint-72", "step-x"):
        (ckpt / sub).mkdir(parents=True)
    (ckpt / "step-7").write_text("a file, not a snapshot")
    base = str(tmp_path / "base.gguf")  # not a folder: kept as it is
    assert with_snapshots([base, str(ckpt)]) == [
        base,
        str(ckpt / "step-24"),
        str(ckpt / "step-100"),
        str(ckpt),
    ]
    with pytest.raises(AugmentError, match=r"--snapshots: no step-N/ snapshot folder in .*base.gguf"):
        with_snapshots([base])


def test_every_model_is_found_before_the_first_is_scored(cli, tmp_path: Path, tiny_model):
    from augment.models import locate_model

    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"question": "Who?", "answer": "Ada"}\n')
    r = cli("eval", "-m", tiny_model, "-m", tmp_path / "nope", "--qa", qa)
    assert r.code == 1 and "nope: no such model folder" in r.err
    r = cli("eval", "-m", tiny_model, "-m", tiny_model, "--qa", qa)
    assert r.code == 2 and r.err == f"error: --model {tiny_model} is given twice; give each model once\n"
    assert "eval " not in r.err  # no progress: the first model was not scored
    (tmp_path / "two").mkdir()
    for name in ("a.gguf", "b.gguf"):
        (tmp_path / "two" / name).write_bytes(b"")
    with pytest.raises(AugmentError, match=r"two: not a model folder \(2 .gguf files: name one\)"):
        locate_model(str(tmp_path / "two"))
    assert locate_model("org/name") == ("hub", "org/name")  # from the local cache, at load time
    assert locate_model(str(tiny_model)) == ("folder", str(tiny_model))


def test_eval_before_and_after_training(cli, tmp_path: Path, shards, tiny_model):
    pytest.importorskip("torch")
    pytest.importorskip("trl")
    from augment.io import read_jsonl
    from augment.train.args import TrainConfig
    from augment.train.trainer import train

    cpt, base = shards["cpt"], tiny_model
    # questions whose answers the training text states ("Question: ...\nAnswer: ...")
    qa = tmp_path / "qa.jsonl"
    recs = [r for r in read_jsonl(next(cpt.glob("train-*.jsonl"))) if r["text"].startswith("Question: ")][:12]
    assert len(recs) >= 6, "the qa records' training text no longer starts with 'Question: '"
    rows = []
    for r in recs:
        q, a = r["text"].removeprefix("Question: ").split("\nAnswer: ", 1)
        rows.append({"question": q, "answer": a})
    qa.write_text("\n".join(json.dumps(x) for x in rows) + "\n")
    trained = tmp_path / "trained"
    train(
        TrainConfig(
            shards=cpt,
            model=str(base),
            output=trained,
            method="full",
            epochs=8,
            lr=3e-3,
            max_seq_len=128,
            batch_size=8,
            snapshot_steps="2",
        )
    )

    r = cli(
        "eval",
        "-m",
        base,
        "-m",
        trained,
        "--qa",
        qa,
        "-o",
        tmp_path / "report",
        "-q",
        "--max-new-tokens",
        "8",
        "--snapshots",
    )
    assert r.code == 0, r.err
    assert "closed-book QA, 12 questions" in r.out and "difference" in r.out
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["engine"] == "transformers"
    # --snapshots: the base model has none; the trained one is preceded by its step-2 weights
    assert [m["model"] for m in report["models"]] == [str(base), str(trained / "step-2"), str(trained)]
    before, early, after = (m["scores"]["answer_nll"]["mean"] for m in report["models"])
    diff = report["models"][2]["difference_vs_first"]["answer_nll"]
    assert after < before and diff["hi"] < 0  # the trained model finds the gold answers likelier
    assert early != after and early != before  # step 2's own weights, neither the base nor the last
    assert (tmp_path / "report" / "report.md").read_text().startswith("# augment eval")
    preds = json.loads((tmp_path / "report" / "predictions.json").read_text())
    assert len(preds) == 12 and str(trained) in preds[0]
    pytest.importorskip("matplotlib")
    assert (tmp_path / "report" / "scores.png").stat().st_size > 1000


def test_shots_come_before_every_question_in_the_same_form():
    from augment.eval.runner import prompt_for, shots_prefix

    shots = [
        QAItem("s1", "Orlen Valley Railway", "", "When did it open?", ["in 1898", "1898"]),
        QAItem("s2", "Wren", "", "Where was Wren built?", ["Leeds"]),
    ]
    item = QAItem("q", "Brask", "", "What is quarried at Brask?", ["slate"])
    assert shots_prefix(shots, "closed", with_title=True) == (
        "Title: Orlen Valley Railway\nQuestion: When did it open?\nAnswer: 1898\n\n"
        "Title: Wren\nQuestion: Where was Wren built?\nAnswer: Leeds\n\n"
    )
    assert shots_prefix([], "closed") == ""
    assert prompt_for(item, "closed") == "Question: What is quarried at Brask?\nAnswer:"


def test_eval_with_shots_scores_the_prompt_they_open(cli, tmp_path: Path, tiny_model):
    pytest.importorskip("torch")
    from augment.eval.runner import _answer_nlls, _load, prompt_for, score_model, shots_prefix

    items = [
        QAItem("1", "", "", "Where is the line?", ["Brask"]),
        QAItem("2", "", "", "Who built it?", ["Kovel"]),
    ]
    shots = [QAItem("s", "", "", "When did it open?", ["1898"])]
    plain = score_model(str(tiny_model), items, max_new_tokens=2)
    fewshot = score_model(str(tiny_model), items, max_new_tokens=2, shots=shots)
    torch, tok, model, dev = _load(str(tiny_model), False)
    prompt = shots_prefix(shots, "closed") + prompt_for(items[0], "closed")
    assert fewshot.per_item["answer_nll"][0] == pytest.approx(
        _answer_nlls(torch, tok, model, dev, [(prompt, "Brask")])[0]
    )
    assert fewshot.per_item["answer_nll"][0] != pytest.approx(plain.per_item["answer_nll"][0])

    qa, examples = tmp_path / "qa.jsonl", tmp_path / "shots.jsonl"
    qa.write_text(
        "".join(json.dumps({"question": it.question, "answer": it.answers[0]}) + "\n" for it in items)
    )
    examples.write_text('{"question": "When did it open?", "answer": "1898"}\n')
    r = cli(
        "eval",
        "-m",
        tiny_model,
        "--qa",
        qa,
        "--shots",
        examples,
        "-o",
        tmp_path / "r",
        "-q",
        "--max-new-tokens",
        "2",
    )
    assert r.code == 0, r.err
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["n_shots"] == 1 and report["shots"] == str(examples)
    nll = report["models"][0]["scores"]["answer_nll"]["mean"]
    assert nll == pytest.approx(float(np.mean(fewshot.per_item["answer_nll"])))
    assert "1 worked examples" in (tmp_path / "r" / "report.md").read_text()
    # an example that is also asked gives its answer away: refused, nothing scored
    examples.write_text('{"question": "who built it", "answer": "Kovel"}\n')
    r = cli("eval", "-m", tiny_model, "--qa", qa, "--shots", examples)
    assert r.code == 2 and f"{examples}: 1 of its 1 questions are also evaluated" in r.err
    assert "eval " not in r.err
    r = cli("eval", "-m", tiny_model, "--qa", qa, "--shots", tmp_path / "none.jsonl")
    assert r.code == 1 and "none.jsonl: QA file not found" in r.err


def test_a_killed_eval_resumes_and_a_rerun_reuses_every_answer(
    cli, tmp_path: Path, tiny_model, monkeypatch: pytest.MonkeyPatch
):
    pytest.importorskip("torch")
    import os

    from augment.eval import runner
    from augment.eval.store import AnswerStore

    items = [QAItem(f"q{k}", "", "", f"Where is station {k}?", [f"Brask {k}", "Kovel"]) for k in range(5)]
    fresh = runner.score_model(str(tiny_model), items, batch_size=2, max_new_tokens=4)

    scored: list[str] = []
    real_nlls = runner._answer_nlls
    monkeypatch.setattr(  # which answers are scored
        runner, "_answer_nlls", lambda *a: scored.extend(x for _, x in a[-1]) or real_nlls(*a)
    )

    def killed_after_the_first_batch(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    store = AnswerStore(tmp_path / "answers.sqlite")
    with pytest.raises(KeyboardInterrupt):
        runner.score_model(
            str(tiny_model),
            items,
            batch_size=2,
            max_new_tokens=4,
            store=store,
            on_progress=killed_after_the_first_batch,
        )
    assert len(store) == 2  # the first batch was stored before the kill
    scored.clear()
    resumed = runner.score_model(str(tiny_model), items, batch_size=2, max_new_tokens=4, store=store)
    assert resumed.reused == 2 and len(store) == 5
    assert scored == ["Brask 2", "Kovel", "Brask 3", "Kovel", "Brask 4", "Kovel"]  # only the rest
    assert resumed.predictions == fresh.predictions
    np.testing.assert_allclose(resumed.per_item["answer_nll"], fresh.per_item["answer_nll"], rtol=1e-5)
    longer = runner.score_model(str(tiny_model), items, batch_size=2, max_new_tokens=5, store=store)
    assert longer.reused == 0  # another answer length: other answers
    store.close()

    # the command: a second run loads no model; training into the same folder again scores afresh
    loads: list[str] = []
    real_load = runner._load
    monkeypatch.setattr(runner, "_load", lambda name, *a: loads.append(name) or real_load(name, *a))
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        "".join(json.dumps({"question": it.question, "answers": it.answers}) + "\n" for it in items)
    )
    args = ("eval", "-m", tiny_model, "--qa", qa, "-o", tmp_path / "report", "--max-new-tokens", "4")
    monkeypatch.setattr("augment.console.Counter.interval", 0.0)  # a line each batch
    r = cli(*args, "--batch-size", "2")
    assert r.code == 0, r.err
    assert re.search(
        rf"eval {re.escape(str(tiny_model))}: 2/5 questions, \d+\.\d\d s/question, eta \d+s\n", r.err
    )
    first = json.loads((tmp_path / "report" / "report.json").read_text())
    assert len(loads) == 1 and first["models"][0]["reused_answers"] == 0
    r = cli(*args)
    again = json.loads((tmp_path / "report" / "report.json").read_text())
    assert r.code == 0 and len(loads) == 1  # not loaded
    assert "5 of 5 answers reused from" in r.err and again["models"][0]["reused_answers"] == 5
    assert again["models"][0]["scores"] == first["models"][0]["scores"]
    weights = next(Path(tiny_model).glob("*.safetensors"))
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    try:
        r = cli(*args)
    finally:
        os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert r.code == 0 and len(loads) == 2 and "reused" not in r.err


@pytest.mark.parametrize(
    ("flag", "value"), [("--limit", "0"), ("--limit", "-3"), ("--batch-size", "0"), ("--max-new-tokens", "0")]
)
def test_counts_below_one_are_one_line_before_any_model_loads(cli, tmp_path: Path, flag: str, value: str):
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"question": "Who?", "answer": "Ada"}\n')
    # --limit -3 scored all but the last three questions; the others failed in torch, mid-run
    r = cli("eval", "-m", tmp_path / "no-model-needed", "--qa", qa, flag, value)
    assert r.code == 2 and r.err == f"error: {flag} must be at least 1, got {value}\n"


def test_open_book_without_passages_and_titles_that_are_not_there_are_one_line(
    cli, tmp_path: Path, tiny_model
):
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        '{"question": "Who?", "answer": "Ada"}\n'
        '{"id": "p", "title": "", "text": "Ada built it.", "questions": [{"q": "Who built it?", "answers": ["Ada"]}]}\n'
    )
    r = cli("eval", "-m", tiny_model, "--qa", qa, "--mode", "open")
    assert r.code == 2 and r.err == (
        f"error: --mode open puts each question's passage before it; 1 of the 2 questions in {qa} have "
        "none (a passage line's 'text')\n"
    )
    r = cli("eval", "-m", tiny_model, "--qa", qa, "--with-title")
    assert (
        r.code == 2
        and r.err == f"error: --with-title: no question in {qa} has a title (a passage line's 'title')\n"
    )
    r = cli("eval", "-m", tiny_model, "--qa", qa, "--mode", "open", "--limit", "1")
    assert r.code == 2 and "1 of the 1 questions" in r.err
    qa.write_text(qa.read_text().splitlines()[1] + "\n")  # the passage alone: open book works
    r = cli("eval", "-m", tiny_model, "--qa", qa, "--mode", "open", "-q")
    assert r.code == 0, r.err


def test_ctrl_c_in_eval_says_where_the_answers_are(cli, tmp_path: Path, tiny_model, monkeypatch):
    import augment.eval.runner as runner

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "score_model", stopped)
    monkeypatch.setattr(runner, "vllm_available", lambda: False)
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"question": "Who?", "answer": "Ada"}\n')
    r = cli("eval", "-m", tiny_model, "--qa", qa, "-o", tmp_path / "rep", "-q")
    assert r.code == 130 and r.err.strip().splitlines()[-1] == (
        f"interrupted: the answers scored so far are in {tmp_path / 'rep' / 'answers.sqlite'}; "
        "the same command scores only the rest"
    )
    r = cli("eval", "-m", tiny_model, "--qa", qa, "-q")
    assert r.code == 130 and r.err.strip().splitlines()[-1] == "interrupted: without -o no answer was kept"


def test_an_unreadable_answer_store_is_one_line(cli, tmp_path: Path, tiny_model):
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"question": "Who?", "answer": "Ada"}\n')
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "answers.sqlite").write_text("not a database, a note I left here\n" * 50)
    r = cli("eval", "-m", tiny_model, "--qa", qa, "-o", tmp_path / "report")
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1
    assert "answers.sqlite: not a database augment can read" in r.err
    assert (tmp_path / "report" / "answers.sqlite").read_text().startswith("not a database, a note")
