"""`augment eval --engine server`: models scored through a real OpenAI-compatible HTTP server on
loopback, with a real (tiny) model behind its completions endpoint."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web

from augment.qafile import QAItem
from tests.fake_openai import FakeOpenAI

PASSAGE = "The Orlen line opened on 24 February 1898. Its gauge is narrow gauge."
ITEMS = [
    QAItem("a", "Orlen", PASSAGE, "When did the line open?", ["February 24, 1898."]),
    QAItem("b", "Orlen", PASSAGE, "What gauge is it?", ["Narrow gauge", "narrow gauge"]),
    QAItem("c", "Orlen", PASSAGE, "Who built it?", ["Mara Kovel"]),
    QAItem("d", "Orlen", PASSAGE, "Where is station 4?", ["Brask 4", "Kovel"]),
]


def served_by(model_dir: Path, fail_on: str | None = None, newline_first: str | None = None):
    """What a vLLM server answers on /v1/completions: a greedy continuation, cut before a `stop`
    string, and with `echo` every prompt token's log-probability and character offset. `fail_on`: a
    prompt part that gets a 500; `newline_first`: one whose continuation opens with a newline."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir).eval()
    lock = threading.Lock()

    def complete(body: dict[str, Any]) -> dict[str, Any]:
        prompt = body["prompt"]
        if fail_on is not None and fail_on in prompt:
            raise RuntimeError("the server fell over")  # aiohttp answers 500
        enc = tok(prompt, return_offsets_mapping=True)
        ids = torch.tensor([enc.input_ids])
        with lock, torch.no_grad():
            out = model.generate(
                ids, max_new_tokens=body["max_tokens"], do_sample=False, pad_token_id=tok.pad_token_id
            )
            logp = model(ids).logits[0].log_softmax(-1)
        text = tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
        if newline_first is not None and newline_first in prompt:
            text = "\n" + text
        for stop in body.get("stop") or []:
            text = text.split(stop)[0]
        choice: dict[str, Any] = {"index": 0, "text": text, "finish_reason": "length", "logprobs": None}
        if body.get("echo"):
            token_logprobs = [None] + [float(logp[i - 1, t]) for i, t in enumerate(enc.input_ids) if i]
            choice["text"] = prompt + text
            choice["logprobs"] = {
                "tokens": tok.convert_ids_to_tokens(enc.input_ids),
                "token_logprobs": token_logprobs,
                "text_offset": [start for start, _ in enc.offset_mapping],
            }
        return choice

    return complete


@pytest.fixture
def server(tiny_model: Path):
    complete = served_by(tiny_model, newline_first="Who built it?")
    fake = FakeOpenAI(models=("tiny",), complete=complete, keep_bodies=True)
    url = fake.start()
    yield fake, url
    fake.stop()


def _config(url: str, endpoint: str = "completions", **values: Any):
    from augment.config import load_config

    return load_config(None, {"backend": "openai", "base_url": url, "endpoint": endpoint, **values})


def test_a_served_model_scores_as_the_same_weights_do_in_this_process(server, tiny_model: Path):
    from augment.eval.runner import score_model
    from augment.eval.server import score_model_server

    fake, url = server
    here = score_model(str(tiny_model), ITEMS, max_new_tokens=4)
    served = score_model_server("tiny", ITEMS, _config(url), max_new_tokens=4)
    assert served.predictions == here.predictions and all(served.predictions)
    # answers end at their first newline; one that opens with a newline is asked again without it
    asked = [b for b in fake.bodies if not b.get("echo")]
    assert [b.get("stop") for b in asked] == [["\n"]] * 4 + [None]
    assert "Who built it?" in asked[-1]["prompt"]
    for metric in ("answer_nll", "answer_nll_source"):  # the same tokens scored: the same likelihood
        np.testing.assert_allclose(served.per_item[metric], here.per_item[metric], rtol=1e-4)
    scoring = [b for b in fake.bodies if b.get("echo")]
    assert len(scoring) == 7 and all(b["logprobs"] == 1 and b["max_tokens"] == 1 for b in scoring)
    assert [b["prompt"].rsplit(": ", 1)[1] for b in scoring[:2]] == ["February 24, 1898", "24 February 1898"]


def test_the_command_stores_answers_as_they_come_and_a_rerun_sends_nothing(
    cli, tmp_path: Path, server, tiny_model: Path
):
    fake, url = server
    qa = tmp_path / "qa.jsonl"
    qa.write_text("".join(json.dumps({"q": it.question, "answers": it.answers}) + "\n" for it in ITEMS))
    args = ("eval", "--engine", "server", "--base-url", url, "-m", "tiny", "--qa", qa, "-o", tmp_path / "r")
    r = cli(*args, "--max-new-tokens", "4", "--limit", "2")
    assert r.code == 0, r.err
    sent = fake.requests
    assert sent == 2 + 3  # two answers, their three gold answers' likelihoods
    r = cli(*args, "--max-new-tokens", "4")
    assert r.code == 0, r.err
    # only the two questions not answered before (one of them asked again: its answer opens with a newline)
    assert fake.requests - sent == 2 + 3 + 1
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["models"][0]["model"] == "tiny" and report["models"][0]["reused_answers"] == 2
    assert report["engine"] == f"server {url} (completions)"  # what answered, in the report too
    assert f"Answers from server {url} (completions)." in (tmp_path / "r" / "report.md").read_text()
    sent = fake.requests
    r = cli(*args, "--max-new-tokens", "4")
    assert r.code == 0 and fake.requests == sent and "4 of 4 answers reused" in r.err
    again = json.loads((tmp_path / "r" / "report.json").read_text())["models"][0]
    assert again["reused_answers"] == 4 and again["scores"] == report["models"][0]["scores"]
    fake.stop()  # every answer is stored: the report is rebuilt with the server gone
    r = cli(*args, "--max-new-tokens", "4")
    assert r.code == 0 and "4 of 4 answers reused" in r.err, r.err


@pytest.mark.parametrize(
    ("endpoint", "echo", "why"),
    [
        ("completions", True, "gave no log-probabilities of the prompt's tokens (echo)"),  # llama-server
        (
            "completions",
            False,
            "would not echo the prompt's log-probabilities (Setting 'echo' and 'logprobs'",
        ),
        ("chat", True, "a chat endpoint scores no given text (--endpoint completions does)"),
    ],
)
def test_without_prompt_log_probabilities_the_likelihood_is_na_and_said_once(
    cli, tmp_path: Path, endpoint: str, echo: bool, why: str
):
    fake = FakeOpenAI(models=("tiny",), keep_bodies=True, echo=echo)  # answers, no log-probabilities
    url = fake.start()
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"question": "Who built it?", "answers": ["Mara Kovel"]}\n')
    args = ("eval", "--engine", "server", "--base-url", url, "--endpoint", endpoint, "-m", "tiny", "--qa", qa)
    try:
        r = cli(*args, "-o", tmp_path / "r")
    finally:
        fake.stop()
    assert r.code == 0, r.err
    assert r.err.count("warning: tiny: answer likelihood is n/a for 1 of 1 questions: ") == 1 and why in r.err
    scores = json.loads((tmp_path / "r" / "report.json").read_text())["models"][0]["scores"]
    assert scores["answer_nll"]["mean"] is None and scores["f1"]["mean"] is not None
    assert sum(bool(b.get("echo")) for b in fake.bodies) == (endpoint == "completions")  # chat: none


def test_a_failed_request_keeps_the_other_answers_and_a_rerun_asks_only_the_rest(
    cli, tmp_path: Path, tiny_model: Path
):
    broken = FakeOpenAI(models=("tiny",), complete=served_by(tiny_model, fail_on="station 4"))
    url = broken.start()
    qa = tmp_path / "qa.jsonl"
    qa.write_text("".join(json.dumps({"q": it.question, "answers": it.answers}) + "\n" for it in ITEMS))
    config = tmp_path / "server.toml"
    config.write_text("max_retries = 0\n")
    args = ("eval", "--engine", "server", "-m", "tiny", "--qa", qa, "-o", tmp_path / "r", "-c", config, "-q")
    try:
        r = cli(*args, "--base-url", url, "--max-new-tokens", "3")
    finally:
        broken.stop()
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1
    assert "tiny: 3 of 10 requests to" in r.err and "other questions' answers are kept" in r.err
    assert "http_500: 500 Internal Server Error Server got itself in trouble" in r.err  # aiohttp's page

    mended = FakeOpenAI(models=("tiny",), complete=served_by(tiny_model))
    assert mended.start(port=broken.port) == url  # the same server, restarted
    try:
        r = cli(*args, "--base-url", url, "--max-new-tokens", "3")
    finally:
        mended.stop()
    assert r.code == 0, r.err
    assert mended.requests == 3  # the question that failed: its answer and two likelihoods
    assert json.loads((tmp_path / "r" / "report.json").read_text())["models"][0]["reused_answers"] == 3


def test_server_flags_are_checked_before_anything_is_sent(cli, tmp_path: Path):
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"question": "Who?", "answer": "Ada"}\n')
    r = cli("eval", "-m", "x", "--qa", qa, "--base-url", "http://127.0.0.1:9/v1")
    assert (
        r.code == 2 and r.err == "error: --base-url, --endpoint and --concurrency are for --engine server\n"
    )
    r = cli("eval", "-m", "x", "--qa", qa, "-c", qa)  # a config for nothing
    assert r.code == 2 and "--config sets up the grader (--judge) or --engine server" in r.err
    r = cli("eval", "-m", "x", "--qa", qa, "--judge-model", "gpt-4o-mini")
    assert r.code == 2 and "--judge-backend and --judge-model set up the grader: add --judge" in r.err
    r = cli("eval", "--engine", "server", "-m", "x", "--qa", qa, "--concurrency", "0")
    assert r.code == 2 and r.err == "error: --concurrency must be at least 1, got 0\n"
    r = cli("eval", "--engine", "server", "-m", "x", "--qa", qa, "--endpoint", "responses")
    assert r.code == 2 and "--endpoint must be completions or chat, got 'responses'" in r.err
    r = cli("eval", "--engine", "server", "-m", "x", "--qa", qa, "--snapshots")
    assert r.code == 2 and "--engine server scores the names a server serves" in r.err
    for flag in (("--batch-size", "4"), ("--trust-remote-code",)):
        r = cli("eval", "--engine", "server", "-m", "x", "--qa", qa, *flag)
        assert r.code == 2 and r.err.startswith(
            "error: --batch-size and --trust-remote-code are for the engines that load the weights here"
        )
    fake = FakeOpenAI(models=("tiny",))
    url = fake.start()
    try:
        r = cli("eval", "--engine", "server", "--base-url", url, "-m", "tiny", "-m", "other", "--qa", qa)
        assert r.code == 2 and fake.requests == 0  # "tiny" was not scored first
        assert r.err == (
            f"error: --model other: {url} serves no model of that name (it serves: tiny). A name the "
            "list does not show (an alias)? Set check_model = false.\n"
        )
    finally:
        fake.stop()

    unlisted = NoModelList(models=("tiny",))  # no model list: the first request tells
    url = unlisted.start()
    try:
        r = cli("eval", "--engine", "server", "--base-url", url, "-m", "other", "--qa", qa, "-q")
    finally:
        unlisted.stop()
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1
    assert "error: 404 from" in r.err and "Check --model 'other'" in r.err
    r = cli("eval", "--engine", "server", "--base-url", "http://127.0.0.1:9/v1", "-m", "x", "--qa", qa, "-q")
    assert r.code == 1 and r.err.startswith("error: cannot connect to http://127.0.0.1:9/v1")
    assert len(r.err.strip().splitlines()) == 1


def test_a_wrong_key_is_one_line_that_does_not_show_it(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"question": "Who?", "answer": "Ada"}\n')
    fake = FakeOpenAI(models=("tiny",), api_key="sk-right-key")
    url = fake.start()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-123456")
    try:
        r = cli(
            "eval", "--engine", "server", "--base-url", url, "-m", "tiny", "--qa", qa, "-o", tmp_path / "r"
        )
    finally:
        fake.stop()
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1 and fake.requests == 0
    assert r.err.startswith(f"error: 401 from {url}/models: ") and "Check the API key" in r.err
    assert "sk-wrong-key-123456" not in r.err + r.out  # the server echoed it; augment does not


def test_a_slow_server_gets_the_requests_in_flight_it_is_given_and_a_timeout_says_so(cli, tmp_path: Path):
    qa = tmp_path / "qa.jsonl"
    qa.write_text("".join(json.dumps({"q": it.question, "answers": it.answers}) + "\n" for it in ITEMS))
    config = tmp_path / "server.toml"
    config.write_text("max_retries = 0\nrequest_timeout = 0.3\n")
    slow = FakeOpenAI(models=("tiny",), latency=0.1)
    url = slow.start()
    flags = ("eval", "--engine", "server", "--base-url", url, "-m", "tiny", "-q", "-c", config)
    args = (*flags, "--qa", qa)
    try:
        r = cli(*args, "--concurrency", "1")  # one at a time: each answered in 0.1 s
        assert r.code == 0, r.err
        assert slow.most_in_flight == 1 and slow.requests == 10
        slow.latency = 0.4  # now every request waits past the timeout
        r = cli(*args, "--concurrency", "2", "--max-new-tokens", "5")
        assert r.code == 1 and len(r.err.strip().splitlines()) == 1
        assert "no reply within request_timeout (0.3 s)" in r.err
        assert "2 requests in flight waited past request_timeout (0.3 s)" in r.err
        assert "wants --concurrency 1" in r.err
        # so many that the run stops after 20 failures in a row: the same hint
        many = tmp_path / "many.jsonl"
        many.write_text(
            "".join(json.dumps({"q": f"Where is station {k}?", "answer": "Brask"}) + "\n" for k in range(30))
        )
        r = cli(*flags, "--qa", many, "--concurrency", "4")
    finally:
        slow.stop()
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1
    assert "requests in a row failed" in r.err and "4 requests in flight waited past" in r.err


class NoModelList(FakeOpenAI):
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/completions", self.completions)
        return app
