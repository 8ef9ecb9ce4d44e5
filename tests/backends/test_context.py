"""A server whose context is shorter than a prompt plus its max_tokens (a vLLM started with
--max-model-len 4096, a llama.cpp server with -c 2048): each server's error is read, the request is
sent again with the room that is left, and a prompt that leaves too little fails with that reason."""

# ruff: noqa: F811 (the server fixture, imported, is each test's argument)

from __future__ import annotations

import json
from pathlib import Path

import pytest

from augment.backends.openai import context_overflow
from tests.backends.test_openai import N_REQUESTS, generated, run, server  # noqa: F401 (a fixture)

TOO_LONG = "context_exceeded: the prompt leaves too little room for a reply in the server's context"


def _body(message: str, **error) -> bytes:
    return json.dumps({"error": {"message": message, **error}}).encode()


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        # OpenAI, llama-cpp-python's server, vLLM before 0.8
        (
            400,
            _body(
                "This model's maximum context length is 8192 tokens. However, you requested 9000 "
                "tokens (1000 in the messages, 8000 in the completion).",
                code="context_length_exceeded",
            ),
            (8192, 1000),
        ),
        (
            400,
            _body(
                "This model's maximum context length is 4097 tokens, however you requested 4200 "
                "tokens (200 in your prompt; 4000 for the completion)."
            ),
            (4097, 200),
        ),
        # vLLM: max_tokens too large, and a prompt too long
        (
            400,
            _body(
                "'max_tokens' or 'max_completion_tokens' is too large: 8000. This model's maximum "
                "context length is 4096 tokens and your request has 2778 input tokens (8000 > 4096 - 2778)."
            ),
            (4096, 2778),
        ),
        (
            400,
            _body(
                "This model's maximum context length is 1536 tokens. However, your request has 4176 input tokens."
            ),
            (1536, 4176),
        ),
        # SGLang
        (
            400,
            _body(
                "Requested token count exceeds the model's maximum context length of 2048 tokens. You "
                "requested a total of 2324 tokens: 1300 tokens from the input messages and 1024 tokens "
                "for the completion."
            ),
            (2048, 1300),
        ),
        (
            400,
            _body("The input (3000 tokens) is longer than the model's context length (2048 tokens)."),
            (2048, 3000),
        ),
        # TGI's 422, whose error is a string
        (
            422,
            json.dumps(
                {
                    "error": "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 2048. "
                    "Given: 1300 `inputs` tokens and 1024 `max_new_tokens`",
                    "error_type": "validation",
                }
            ).encode(),
            (2048, 1300),
        ),
        # llama.cpp's llama-server says the sizes as fields
        (
            400,
            _body(
                "the request exceeds the available context size, try increasing it",
                type="exceed_context_size_error",
                n_prompt_tokens=3000,
                n_ctx=2048,
            ),
            (2048, 3000),
        ),
        # an MLX server (oMLX)
        (
            400,
            _body("Prompt too long: 51587 tokens exceeds max context window of 32768 tokens"),
            (32768, 51587),
        ),
        # the context without the prompt's size: the backend estimates it
        (400, _body("Prompt exceeds the maximum context length of 32,768 tokens."), (32768, None)),
        # not a context error
        (400, _body("Unsupported parameter: 'max_tokens' is not supported with this model."), None),
        (400, _body("temperature must be at most 2, got 7"), None),
        (500, _body("This model's maximum context length is 8192 tokens."), None),
        (429, _body("Rate limit reached for tokens per min (TPM): Limit 30000."), None),
        (400, b"<html>Bad Request</html>", None),
        (400, b"", None),
    ],
)
def test_each_servers_context_error_is_read(status: int, body: bytes, expected):
    assert context_overflow(status, body) == expected


@pytest.mark.parametrize("style", ["vllm", "openai", "tgi"])
def test_max_tokens_is_lowered_to_the_room_the_prompt_leaves(server, examples: Path, tmp_path: Path, style):
    _, plain_url = server()
    run(examples, tmp_path / "plain", plain_url)
    # prompts here are 91 to 323 tokens and ask for 1024: those over 176 do not fit 1200 as they are
    srv, url = server(context=1200, context_style=style, keep_bodies=True)
    summary = run(examples, tmp_path / "short", url)
    assert summary.complete and not summary.failures
    refused = [b for b in srv.bodies if len(b["messages"][0]["content"].split()) + b["max_tokens"] > 1200]
    assert 0 < len(refused) < N_REQUESTS  # the short prompts went through as they were
    assert srv.requests == N_REQUESTS + len(refused)  # each refused one was sent once more, fitted
    fitted = [b for b in srv.bodies if b["max_tokens"] < 1024]
    assert len(fitted) == len(refused)
    assert all(len(b["messages"][0]["content"].split()) + b["max_tokens"] == 1200 for b in fitted)
    assert generated(tmp_path / "short") == generated(tmp_path / "plain")  # the records are the same
    assert summary.adjusted == [
        "max_tokens lowered where prompt and reply would not fit the server's context of 1200 tokens"
    ]


def test_a_prompt_that_leaves_too_little_room_fails_with_the_reason(
    server, cli, examples: Path, tmp_path: Path
):
    srv, url = server(context=300, keep_bodies=True)
    summary = run(examples, tmp_path / "run", url)
    sizes = [len(b["messages"][0]["content"].split()) for b in srv.bodies if b["max_tokens"] == 1024]
    too_long = sum(300 - n < 64 for n in sizes)  # under 64 tokens of reply is not worth asking for
    assert too_long and not summary.complete
    reason = f"{TOO_LONG} of 300 tokens (lower chunk_tokens, or start the server with a longer context)"
    assert summary.failures == {f"backend_error: {reason}": too_long}
    assert srv.requests == len(sizes) + (len(sizes) - too_long)  # none that cannot fit is sent again
    # the line at the end of the run says why, not only failures.jsonl
    config = examples / "augment.toml"
    args = ["--backend", "openai", "--model", "fake-model", "--base-url", url, "-q"]
    r = cli("generate", examples / "docs", "-o", tmp_path / "run", "-c", config, *args)
    assert r.code == 1
    said = " ".join(r.err.split())
    assert f"{too_long} requests failed in the backend ({too_long} of them: {reason}; see" in said


def test_llama_server_cuts_the_reply_and_refuses_only_a_prompt_beyond_its_context(
    server,
    examples: Path,
    tmp_path: Path,
):
    srv, url = server(context=300, context_style="llama-server", keep_bodies=True)
    summary = run(examples, tmp_path / "run", url)
    beyond = sum(len(b["messages"][0]["content"].split()) >= 300 for b in srv.bodies)
    assert beyond and srv.statuses[400] == beyond  # its error names n_ctx: read, and failed at once
    assert (
        summary.failures[
            f"backend_error: {TOO_LONG} of 300 tokens (lower chunk_tokens, or start the server with a longer context)"
        ]
        == beyond
    )
    assert not summary.adjusted  # nothing was changed: the server cut the replies itself


def test_prompts_too_long_do_not_stop_the_run_as_a_dead_server_would(server, examples: Path, tmp_path: Path):
    # at 200 most prompts leave no room; one at a time, more than 20 of them come in a row
    srv, url = server(context=200, keep_bodies=True)
    summary = run(examples, tmp_path / "run", url, concurrency=1)
    first = [len(b["messages"][0]["content"].split()) for b in srv.bodies if b["max_tokens"] == 1024]
    assert len(first) == N_REQUESTS  # every request was tried: the run went on to the end
    run_of_too_long = max(len(r) for r in "".join("x" if 200 - n < 64 else "." for n in first).split("."))
    assert run_of_too_long > 20
    assert sum(summary.failures.values()) == sum(200 - n < 64 for n in first)
    assert sum(summary.records.values()) > 0  # the prompts that fit gave records


def test_plan_says_what_a_context_must_hold_and_which_requests_would_not_fit(cli, examples: Path):
    base = ("plan", examples / "docs", "-c", examples / "augment.toml")

    def planned(*args: str) -> dict:
        r = cli(*base, *args, "--json")
        assert r.code == 0, r.err
        return json.loads(r.out)

    server = planned("--backend", "openai", "--model", "m")
    assert server["context_tokens"] is None and server["too_long_for_context"] == 0
    assert server["longest_prompt_tokens"] > 0 and server["most_reply_tokens"] == 1024
    said = " ".join(cli(*base, "--backend", "openai", "--model", "m").out.split())
    hold = server["longest_prompt_tokens"] + server["most_reply_tokens"]
    assert f"a server's context should hold {hold}." in said
    # in this process: counted against context_tokens, as the backend will
    wide, mid, short = (planned("--backend", "local", "--context-tokens", str(n)) for n in (100000, 800, 300))
    assert wide["too_long_for_context"] == wide["replies_cut_to_context"] == 0
    assert mid["replies_cut_to_context"] > 0 and mid["too_long_for_context"] <= short["too_long_for_context"]
    assert short["too_long_for_context"] > 0
    n = short["total"]["requests"]
    said = " ".join(cli(*base, "--backend", "local", "--context-tokens", "300").out.split())
    assert f"{short['too_long_for_context']} of {n} requests leave too little room for a reply in" in said
    assert "context_tokens=300 and would fail; lower chunk_tokens, or raise context_tokens." in said
    assert "context_tokens=100000 holds every request." in " ".join(
        cli(*base, "--backend", "local", "--context-tokens", "100000").out.split()
    )


def test_plan_holds_a_transformers_folder_to_its_positions(cli, examples: Path, tmp_path: Path):
    """generate checks a transformers model's prompts against its positions, whatever
    context_tokens says (it allocates nothing there); plan reads them from config.json."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_positions": 300}))
    base = ("plan", examples / "docs", "-c", examples / "augment.toml", "--backend", "local")
    r = cli(*base, "--model", folder, "--context-tokens", "100000", "--json")
    assert r.code == 0, r.err
    planned = json.loads(r.out)
    r = cli(*base, "--context-tokens", "300", "--json")  # the same limit as context_tokens (GGUF)
    assert r.code == 0, r.err
    assert planned["context_tokens"] == 300 and planned["too_long_for_context"] > 0
    assert planned["too_long_for_context"] == json.loads(r.out)["too_long_for_context"]
    said = " ".join(cli(*base, "--model", folder).out.split())
    assert (
        "room for a reply in the model's 300 positions and would fail; lower chunk_tokens, or use a" in said
    )


def test_a_server_that_cuts_prompts_silently_is_seen_and_its_replies_are_not_kept(
    server, examples: Path, tmp_path: Path
):
    """Ollama's OpenAI endpoint cuts a prompt longer than its context to its last part, answers
    200, and counts only what it read: prompts of different lengths all report the same tokens."""
    once = {"max_parse_retries": 0}  # no re-asking a reply no parser takes: a request is one body
    _, plain_url = server()
    run(examples, tmp_path / "plain", plain_url, **once)
    srv, url = server(context=300, context_style="ollama", keep_bodies=True)
    summary = run(examples, tmp_path / "run", url, concurrency=1, **once)
    sizes = [len(b["messages"][0]["content"].split()) for b in srv.bodies]
    cut = sum(n > 152 for n in sizes)  # 300 // 2 + 2: what the fake keeps of a longer prompt
    assert 2 <= cut < N_REQUESTS and not summary.complete
    failed = summary.failures[
        "backend_error: prompt_cut: the server read only the last 152 tokens of the prompt (start it "
        "with a longer context, or lower chunk_tokens)"
    ]
    # the first cut replies came back until two prompts a tenth apart showed the same count
    assert cut - 5 <= failed < cut
    assert summary.adjusted[-1].startswith("prompts longer than 152 tokens were cut to their last 152")
    # that one is not kept either: with the server fixed, a re-run asks for exactly the cut ones
    # and ends as a run that never met the short context
    fixed, fixed_url = server()
    again = run(examples, tmp_path / "run", fixed_url, **once)
    assert again.complete and fixed.requests == cut
    assert generated(tmp_path / "run") == generated(tmp_path / "plain")


def test_prompts_of_one_length_counted_alike_are_not_taken_for_cut_ones(
    server, examples: Path, tmp_path: Path
):
    """Samples of one prompt (and prompts within a tenth of each other) count the same tokens:
    that is no sign of a cut."""
    srv, url = server(keep_bodies=True)
    summary = run(examples, tmp_path / "run", url, samples=3)
    assert summary.complete and not summary.failures and not summary.adjusted
