"""Reasoning models as generators, and servers that refuse request fields (OpenAI's o-series and
GPT-5 models): against the loopback server, as a user's run meets them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from augment.backends.openai import OpenAIBackend
from augment.config import load_config
from augment.errors import ConfigError, ParseError
from augment.io import read_jsonl
from augment.strategies.parsers import UNFINISHED_THOUGHT, answer_of, strip_reasoning
from augment.types import GenRequest
from tests.backends.test_openai import N_REQUESTS, generated, run, server  # noqa: F401 (a fixture)


def records(run_dir: Path) -> list[dict]:
    return [r for f in sorted((run_dir / "generated").glob("*.jsonl")) for r in read_jsonl(f)]


def strip_usage(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "usage"} for r in rows]


GPT5 = {
    "max_tokens": "unsupported_parameter",
    "temperature": "unsupported_value",
    "stop": "unsupported_parameter",
}


def test_strip_reasoning_forms():
    answer = '[{"question": "Q?", "answer": "A"}]'
    assert strip_reasoning(f"<think>\nI think [x] {{y}}.\n</think>\n\n{answer}") == (answer, False)
    # a chat template that opens the tag itself (DeepSeek-R1's): only the close is in the reply
    assert strip_reasoning(f"so 1. then 2.\n</think>\n{answer}") == (answer, False)
    assert strip_reasoning("<think>\nstill going, [no] end") == ("", True)
    harmony = "<|channel|>analysis<|message|>hmm [x]<|end|><|start|>assistant<|channel|>final<|message|>"
    assert strip_reasoning(harmony + answer + "<|return|>") == (answer, False)
    assert strip_reasoning("<|channel|>analysis<|message|>hmm") == ("", True)
    plain = "The lamp flashes twice. <think> is a tag name."
    assert strip_reasoning(plain) == (plain, False)
    with pytest.raises(ParseError, match="ended in the model's reasoning") as e:
        answer_of("<think>\nOkay")
    assert e.value.reask is False


def test_a_model_that_refuses_max_tokens_temperature_and_stop_gets_a_run_without_them(
    server,  # noqa: F811
    examples: Path,
    tmp_path: Path,
    cli,
):
    """OpenAI's GPT-5 and o-series models answer max_tokens, a temperature other than 1 and stop with
    a 400 each; every request failed and the run stopped after 20 in a row."""
    _, plain_url = server()
    run(examples, tmp_path / "plain", plain_url)
    srv, url = server(refuses=GPT5, keep_bodies=True, runs_on=True)
    summary = run(examples, tmp_path / "run", url, concurrency=1)
    assert summary.complete and summary.failed_requests == 0 and summary.state.retries == 0
    assert srv.statuses[400] == 2  # once per field (chat requests carry no stop), then never again
    later = srv.bodies[2:]
    assert len(later) == N_REQUESTS and all(
        "max_completion_tokens" in b and not {"max_tokens", "temperature"} & set(b) for b in later
    )
    assert [b.get("response_format", {}).get("type") for b in later].count("json_schema") > 0  # kept
    assert generated(tmp_path / "run") == generated(tmp_path / "plain")  # the same records
    assert len(summary.adjusted) == 2 and summary.adjusted[0].startswith("max_tokens sent as max_completion")
    stats = json.loads((tmp_path / "run" / "stats.json").read_text())
    assert stats["this_run"]["adjusted"] == summary.adjusted
    assert json.loads((tmp_path / "run" / "run.json").read_text())["adjusted"] == summary.adjusted
    assert "adjusted" not in json.loads((tmp_path / "plain" / "run.json").read_text())
    said = " ".join(cli("stats", tmp_path / "run").out.split())
    assert "the server refused part of the requests: max_tokens sent as max_completion_tokens" in said

    # through the CLI, many in flight, the SDK client, a base model's completions (they carry stop
    # sequences): the first wave is refused, each request once per field it carried, and the run
    # says what it left out
    run(examples, tmp_path / "plain-completions", plain_url, endpoint="completions")
    res = cli(
        "generate", examples / "docs", "-o", tmp_path / "cli", "-c", examples / "augment.toml",
        "--backend", "openai", "--base-url", url, "--model", "fake-model", "--http-client", "sdk",
        "--endpoint", "completions",
    )  # fmt: skip
    assert res.code == 0, res.err
    line = " ".join(next(x for x in res.err.split("\n\n") if "the server refused" in x).split())
    for said in (
        "max_tokens sent as max_completion_tokens",
        "temperature left out",
        "stop sequences left out",
    ):
        assert said in line
    # sent no stop, the model runs on into another example; the reply is cut where stop would be
    assert strip_usage(records(tmp_path / "cli")) == strip_usage(records(tmp_path / "plain-completions"))


@pytest.mark.parametrize(
    ("status", "error", "body", "field"),
    [
        (400, {"message": "invalid temperature: only 1 is allowed for this model"}, {"temperature": 0.7}, "temperature"),
        (400, {"message": "Unsupported parameter: 'seed' is not supported.", "param": "seed"}, {"seed": 0}, "seed"),
        # not a refusal of a field: the request itself is wrong, and fails as before
        (400, {"message": "temperature must be between 0 and 2"}, {"temperature": 3}, None),
        (400, {"message": "This model's maximum context length is 4096 tokens."}, {"max_tokens": 5000}, None),
        (400, {"message": "'stop' is not supported", "param": "stop"}, {"temperature": 1}, None),  # not sent
        (500, {"message": "Unsupported parameter: 'temperature'", "param": "temperature"}, {"temperature": 1}, None),
    ],
)  # fmt: skip
def test_which_400s_name_a_field_to_leave_out(status: int, error: dict, body: dict, field: str | None):
    backend = OpenAIBackend("m", base_url="http://127.0.0.1:9/v1")
    assert backend._refused_field(status, json.dumps({"error": error}).encode(), body) == field


@pytest.mark.parametrize("form", ["inline", "field", "hidden"])
def test_a_reasoning_models_thoughts_are_not_data_and_a_reply_cut_off_in_them_is_said(
    server,  # noqa: F811
    examples: Path,
    tmp_path: Path,
    cli,
    form: str,
):
    """Qwen3 or DeepSeek-R1 behind vLLM without a reasoning parser put <think>...</think> before the
    answer: the json_list parser failed on the brackets in the thoughts, and `paraphrase` records
    held the thoughts as training text."""
    _, plain_url = server()
    run(examples, tmp_path / "plain", plain_url)
    _, url = server(reasoning=form, thought_words=40)
    summary = run(examples, tmp_path / "run", url)
    assert summary.complete and summary.failed_requests == 0
    ours, theirs = records(tmp_path / "run"), records(tmp_path / "plain")
    assert strip_usage(ours) == strip_usage(theirs)  # the same records: the thoughts are not in them
    # what the thoughts cost is counted (the server's usage), as it is billed
    assert sum(r["usage"]["completion_tokens"] for r in ours) > sum(
        r["usage"]["completion_tokens"] for r in theirs
    )
    assert not any(
        "<think>" in r["text"]
        for f in ("paraphrase", "qa")
        for r in read_jsonl(tmp_path / "run" / "generated" / f"{f}.jsonl")
    )

    # thoughts longer than any prompt file's max_tokens: every reply ends in them, none is asked
    # again (it would end the same way), and the run says what to do
    srv, url = server(reasoning=form, thought_words=10_000)
    res = cli(
        "generate", examples / "docs", "-o", tmp_path / "long", "-c", examples / "augment.toml",
        "--backend", "openai", "--base-url", url, "--model", "fake-model", "--no-curate",
    )  # fmt: skip
    assert res.code == 1  # nothing written: a batch job must not pass
    assert "no records: no reply gave one (77 of 77 requests: parse_error: the reply ended" in " ".join(
        res.err.split()
    )
    assert srv.requests == N_REQUESTS and set(srv.seen.values()) == {1}
    failures = list(read_jsonl(tmp_path / "long" / "failures.jsonl"))
    assert len(failures) == N_REQUESTS and {f["reason"] for f in failures} == {
        f"parse_error: {UNFINISHED_THOUGHT}"
    }
    assert f"{N_REQUESTS} replies: the reply ended in the model's reasoning" in " ".join(res.err.split())


def test_extra_body_is_sent_is_part_of_the_cache_key_and_cannot_change_augments_own_fields(
    server,  # noqa: F811
    examples: Path,
    tmp_path: Path,
    cli,
):
    extra = {"chat_template_kwargs": {"enable_thinking": False}, "top_k": 20}
    for client in ("aiohttp", "sdk"):
        srv, url = server(keep_bodies=True)
        run(examples, tmp_path / client, url, strategies=["notes"], extra_body=extra, http_client=client)
        assert srv.bodies and all(
            b["chat_template_kwargs"] == {"enable_thinking": False} and b["top_k"] == 20 for b in srv.bodies
        )
    sent = srv.requests
    run(examples, tmp_path / "sdk", url, strategies=["notes"], extra_body=extra, http_client="sdk")
    assert srv.requests == sent  # the same extra fields: every reply from the cache
    run(examples, tmp_path / "sdk", url, strategies=["notes"], extra_body={"top_k": 40})
    assert srv.requests == 2 * sent  # other extra fields, other replies: asked again
    for bad, match in [
        ({"temperature": 0.2}, "sets 'temperature', which augment sets itself"),
        ({"when": object()}, "is not JSON"),
    ]:
        with pytest.raises(ConfigError, match=match):
            load_config(examples / "augment.toml", {"extra_body": bad})
    # the flag, for a run's worth: the same fields; not JSON, one line naming the flag
    srv, url = server(keep_bodies=True)
    args = ("generate", examples / "docs", "-o", tmp_path / "flag", "-s", "notes", "--backend", "openai")
    args += ("--base-url", url, "--model", "fake-model", "-q")
    assert cli(*args, "--extra-body", '{"reasoning_effort": "low"}').code == 0
    assert srv.bodies and all(b["reasoning_effort"] == "low" for b in srv.bodies)
    res = cli(*args, "--extra-body", "{reasoning_effort: low}")
    assert res.code == 2 and res.err.startswith("error: --extra-body: not JSON (")
    toml = examples / "thinking.toml"
    toml.write_text(
        'backend = "openai"\n[extra_body]\ntop_k = 20\n[extra_body.chat_template_kwargs]\nenable_thinking = false\n'
    )
    assert load_config(toml, {}).extra_body == extra


def test_curate_judge_reads_past_the_thoughts(server, examples: Path, tmp_path: Path):  # noqa: F811
    from augment.curate import curate

    verdicts = []
    for form in ("", "inline"):
        _, url = server(reasoning=form)
        run_dir = tmp_path / (form or "plain")
        run(examples, run_dir, url, strategies=["qa", "notes"])
        values = {"backend": "openai", "model": "fake-model", "base_url": url, "judge": True}
        summary = curate(
            run_dir, load_config(examples / "augment.toml", {**values, "strategies": ["qa", "notes"]})
        )
        kept = list(read_jsonl(run_dir / "curated" / "kept.jsonl"))
        verdicts.append(([(r["id"], r["checks"]["judge"]) for r in kept], dict(summary.by_reason)))
    assert verdicts[0][0] and verdicts[1] == verdicts[0]  # the same verdicts on the same records


def test_chat_template_kwargs_go_to_servers_as_their_field_and_key_the_cache(
    server,  # noqa: F811
    examples: Path,
    tmp_path: Path,
    cli,
):
    srv, url = server(keep_bodies=True)
    off = {"enable_thinking": False}
    run(examples, tmp_path / "run", url, strategies=["notes"], chat_template_kwargs=off)
    assert srv.bodies and all(b["chat_template_kwargs"] == off for b in srv.bodies)
    sent = srv.requests
    run(examples, tmp_path / "run", url, strategies=["notes"])  # the template's default: other replies
    assert srv.requests == 2 * sent and "chat_template_kwargs" not in srv.bodies[-1]
    # a base model's completions endpoint has no chat template to give them to
    srv, url = server(keep_bodies=True)
    run(
        examples,
        tmp_path / "base",
        url,
        strategies=["notes"],
        endpoint="completions",
        chat_template_kwargs=off,
    )
    assert srv.bodies and not any("chat_template_kwargs" in b for b in srv.bodies)
    with pytest.raises(ConfigError, match="chat_template_kwargs is set twice"):
        load_config(None, {"chat_template_kwargs": off, "extra_body": {"chat_template_kwargs": off}})
    args = ("generate", examples / "docs", "-o", tmp_path / "flag", "-s", "notes", "--backend", "openai")
    res = cli(
        *args, "--base-url", url, "--model", "fake-model", "--chat-template-kwargs", "{enable_thinking: 0}"
    )
    assert res.code == 2 and res.err.startswith("error: --chat-template-kwargs: not JSON (")


def test_chat_template_kwargs_reach_a_transformers_models_template(tiny_model: Path, examples: Path):
    pytest.importorskip("torch")
    from augment.backends.local import LocalBackend

    # Qwen3's switch, as its template reads it: an empty thought opened and closed for the model
    template = (
        "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}<|assistant|>"
        "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n{% endif %}"
    )
    config = load_config(examples / "augment.toml", {"backend": "local", "model": str(tiny_model)})
    plain = LocalBackend.from_config(config)
    off = LocalBackend.from_config(
        config.model_copy(update={"chat_template_kwargs": {"enable_thinking": False}})
    )
    plain.engine.tokenizer.chat_template = off.engine.tokenizer.chat_template = template
    req = GenRequest("k", "Name the keeper.", 0.0, 8, 0)
    assert plain.engine.render([req], chat=True) == ["<|user|>Name the keeper.</s><|assistant|>"]
    assert off.engine.render([req], chat=True) == [
        "<|user|>Name the keeper.</s><|assistant|><think>\n\n</think>\n\n"
    ]
    assert plain.identity == "local/transformers" and off.identity.startswith("local/transformers/template-")
    # llama.cpp's formatter here takes no variables: one line, not a switch silently ignored
    gguf = tiny_model.parent / "model.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(ConfigError, match="llama.cpp here renders the chat template without variables"):
        LocalBackend.from_config(
            config.model_copy(update={"model": str(gguf), "chat_template_kwargs": {"x": 1}})
        )
