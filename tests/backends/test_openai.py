"""The openai backend against a real HTTP server on 127.0.0.1 (tests/fake_openai.py)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from augment.backends.openai import retry_after_seconds
from augment.config import load_config
from augment.errors import FatalBackendError
from augment.io import read_jsonl
from augment.pipeline import generate
from tests.conftest import REPO
from tests.fake_openai import FakeOpenAI, Faults

N_REQUESTS = 77  # the examples with examples/augment.toml: 11 chunks x 7 requests


@pytest.fixture
def server():
    servers: list[FakeOpenAI] = []

    def start(**kwargs) -> tuple[FakeOpenAI, str]:
        s = FakeOpenAI(**kwargs)
        url = s.start()
        servers.append(s)
        return s, url

    yield start
    for s in servers:
        s.stop()


def run(examples: Path, run_dir: Path, url: str, **overrides):
    values = {"backend": "openai", "model": "fake-model", "base_url": url, "concurrency": 8, **overrides}
    cfg = load_config(examples / "augment.toml", values)
    return generate([str(examples / "docs")], run_dir, cfg)


def generated(run_dir: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((run_dir / "generated").glob("*.jsonl"))}


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
@pytest.mark.parametrize("http_client", ["aiohttp", "sdk"])
def test_happy_path(server, examples: Path, tmp_path: Path, endpoint: str, http_client: str):
    srv, url = server(keep_bodies=True)
    summary = run(examples, tmp_path / "run", url, endpoint=endpoint, http_client=http_client)
    assert summary.complete and summary.failed_requests == 0
    assert srv.requests == N_REQUESTS and set(srv.seen.values()) == {1}
    assert set(summary.records) == {"qa", "paraphrase", "inferences", "notes"}
    prompts = [b.get("prompt") or b["messages"][0]["content"] for b in srv.bodies]
    assert summary.prompt_tokens == sum(len(p.split()) for p in prompts)  # usage as the server reported it
    qa = [b for b in srv.bodies if "JSON list" in (b.get("prompt") or b["messages"][0]["content"])]
    if endpoint == "chat":
        assert all(
            b["response_format"]["type"] == "json_schema" for b in qa
        )  # structured output where it fits
    else:
        assert not any("response_format" in b for b in srv.bodies)
    assert all(b["model"] == "fake-model" and b["seed"] == 0 for b in srv.bodies)
    rec = next(read_jsonl(tmp_path / "run" / "generated" / "qa.jsonl"))
    assert rec["backend"] == "openai" and rec["model"] == "fake-model" and rec["usage"]["prompt_tokens"] > 0


def test_rerun_makes_no_call_and_a_changed_prompt_reasks_only_its_strategy(
    server, examples: Path, tmp_path: Path
):
    srv, url = server()
    run(examples, tmp_path / "run", url)
    before = generated(tmp_path / "run")
    again = run(examples, tmp_path / "run", url)
    assert srv.requests == N_REQUESTS and again.state.calls == 0 and again.state.cached == N_REQUESTS
    assert generated(tmp_path / "run") == before

    prompts = tmp_path / "prompts"
    prompts.mkdir()
    notes = (REPO / "prompts" / "notes.md").read_text()
    (prompts / "notes.md").write_text(notes.replace("in bullet points", "in short bullet points"))
    changed = run(examples, tmp_path / "run", url, prompts_dir=str(prompts))
    assert changed.state.calls == changed.chunks == 11  # only the notes requests
    assert srv.requests == N_REQUESTS + 11


def test_faults_at_30_percent_lose_nothing(server, examples: Path, tmp_path: Path):
    _, clean_url = server()
    run(examples, tmp_path / "clean", clean_url)
    srv, url = server(faults=Faults(rate_500=0.15, rate_drop=0.1, rate_bad_json=0.05))
    summary = run(examples, tmp_path / "faulty", url, max_retries=10)
    assert summary.complete and summary.failed_requests == 0
    assert summary.state.retries >= 10
    assert srv.statuses[500] > 0 and srv.requests > N_REQUESTS
    # every record, byte for byte what a fault-free server gives
    assert generated(tmp_path / "faulty") == generated(tmp_path / "clean")


def test_429_honours_retry_after_without_stalling_the_rest(server, examples: Path, tmp_path: Path):
    srv, url = server(latency=0.01, faults=Faults(rate_429=0.3, retry_after=0.3))
    t = time.monotonic()
    summary = run(examples, tmp_path / "run", url, max_retries=10, concurrency=16)
    wall = time.monotonic() - t
    assert summary.complete and summary.failed_requests == 0 and srv.statuses[429] > 5
    by_key: dict[str, list[tuple[float, int]]] = {}
    for key, at, status in srv.events:
        by_key.setdefault(key, []).append((at, status))
    gaps = [b[0] - a[0] for ev in by_key.values() for a, b in zip(ev, ev[1:], strict=False) if a[1] == 429]
    assert gaps and min(gaps) >= 0.29  # never sooner than Retry-After
    # the other requests kept going meanwhile: far less than one Retry-After per 429 in sequence
    assert wall < 0.3 * srv.statuses[429] / 2


def test_unparsable_replies_are_reasked_then_recorded(server, examples: Path, tmp_path: Path):
    srv, url = server(faults=Faults(rate_bad_content=1.0))
    summary = run(examples, tmp_path / "run", url, max_parse_retries=2, strategies=["qa"])
    assert summary.failed_requests == summary.requests == 11
    assert srv.requests == 11 * 3  # asked, then re-asked twice
    reasons = Counter(f["reason"] for f in read_jsonl(tmp_path / "run" / "failures.jsonl"))
    assert reasons == {"parse_error: no JSON list or labelled fields found": 11}
    # the re-asks are cached too: a re-run pays for nothing
    again = run(examples, tmp_path / "run", url, max_parse_retries=2, strategies=["qa"])
    assert again.state.calls == 0 and srv.requests == 33


def test_no_structured_output_support_falls_back_to_text(server, examples: Path, tmp_path: Path):
    srv, url = server(formats=(), keep_bodies=True)
    summary = run(examples, tmp_path / "run", url, strategies=["qa"], concurrency=1)
    assert summary.complete and summary.failed_requests == 0 and summary.records["qa"] > 0
    # json_schema refused, then json_object refused, then text for this request and all later ones
    assert srv.statuses[400] == 2 and "response_format" not in srv.bodies[-1]
    assert [b.get("response_format", {}).get("type") for b in srv.bodies[:3]] == [
        "json_schema",
        "json_object",
        None,
    ]


def test_a_server_with_json_object_only_gets_it_with_the_schema(server, examples: Path, tmp_path: Path):
    """llama-cpp-python's server: json_schema is a 500 holding a validation error (retrying it five
    times a request failed every qa request); json_object with a schema is constrained decoding."""
    srv, url = server(formats=("json_object",), format_status=500, keep_bodies=True)
    summary = run(examples, tmp_path / "run", url, strategies=["qa"], concurrency=1)
    assert summary.complete and summary.failed_requests == 0 and summary.records["qa"] > 0
    assert srv.statuses[500] == 1 and summary.state.retries == 0
    later = [b["response_format"] for b in srv.bodies[1:]]
    assert len(later) == summary.requests and all(f["type"] == "json_object" for f in later)
    assert later[0]["schema"]["properties"]["items"]["type"] == "array"


def test_structured_output_on_stops_where_the_server_has_none(server, examples: Path, tmp_path: Path):
    srv, url = server(formats=(), format_status=500)
    with pytest.raises(FatalBackendError, match=r"--structured-output on: .* takes neither form") as e:
        run(examples, tmp_path / "run", url, strategies=["qa"], structured_output="on", concurrency=1)
    assert "\n" not in str(e.value)  # the server's traceback, as one line
    assert srv.statuses[500] == 2  # json_schema, then json_object: not retried


def test_budget_stops_cleanly_and_a_rerun_finishes(server, examples: Path, tmp_path: Path):
    srv, url = server()
    summary = run(examples, tmp_path / "run", url, max_requests=10, concurrency=4)
    assert srv.requests == 10 and summary.state.calls == 10
    assert not summary.complete and summary.not_sent == N_REQUESTS - 10
    assert json.loads((tmp_path / "run" / "stats.json").read_text())["budget_stopped"] == "--max-requests 10"
    finished = run(examples, tmp_path / "run", url)
    assert finished.complete and srv.requests == N_REQUESTS and set(srv.seen.values()) == {1}
    _, url2 = server()
    run(examples, tmp_path / "straight", url2)
    assert generated(tmp_path / "run") == generated(tmp_path / "straight")

    tokens = run(examples, tmp_path / "tokens", url2, max_tokens_total=5000)
    st = tokens.state
    assert not tokens.complete and 0 < st.prompt_tokens + st.completion_tokens <= 5000


@pytest.mark.parametrize("http_client", ["aiohttp", "sdk"])
def test_bad_key_is_one_line_exit_1_fast_and_never_printed(
    server, cli, examples: Path, tmp_path: Path, http_client, monkeypatch
):
    srv, url = server(api_key="sk-right-key")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-WRONG-secret-1234")
    r = cli(
        "generate",
        examples / "docs",
        "-o",
        tmp_path / "run",
        "--backend",
        "openai",
        "--model",
        "fake-model",
        "--base-url",
        url,
        "--http-client",
        http_client,
        "--concurrency",
        "4",
        "-q",
    )
    # fast: the first 401 stops the run (the model list asked for before any request), nothing is
    # retried and no request goes out (5 retries of 4 requests would be 24 calls; the run has 56)
    assert srv.statuses == {401: 1} and srv.requests == 0
    assert r.code == 1 and r.err.count("\n") == 1 and "401" in r.err and "Check the API key" in r.err
    assert "sk-WRONG-secret-1234" not in r.err + r.out


def test_unknown_model_and_wrong_url_are_one_line(server, cli, examples: Path, tmp_path: Path):
    srv, url = server()
    args = ("generate", examples / "docs", "--backend", "openai", "--base-url", url, "-q")
    r = cli(*args, "-o", tmp_path / "a", "--model", "nope")
    # the server's model list, before anything is written or sent: some servers answer under any
    # name (llama-cpp-python's), and every record would name a model that did not write it
    assert (
        r.code == 2
        and r.err
        == f"error: --model nope: {url} serves no model of that name (it serves: fake-model). A name the "
        "list does not show (an alias)? Set check_model = false.\n"
    )
    assert srv.requests == 0 and not (tmp_path / "a").exists()
    srv.lists_models = False  # no list to check against: the first request's 404 says it
    r = cli(*args, "-o", tmp_path / "a", "--model", "nope")
    assert r.code == 1 and r.err.count("\n") == 1 and "404" in r.err and "Check --model 'nope'" in r.err
    r = cli(
        "generate",
        examples / "docs",
        "-o",
        tmp_path / "b",
        "--backend",
        "openai",
        "--model",
        "fake-model",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "-q",
    )
    assert r.code == 1 and r.err.count("\n") == 1 and "cannot connect to http://127.0.0.1:9/v1" in r.err
    r = cli("generate", examples / "docs", "-o", tmp_path / "c", "--backend", "openai", "-q")
    assert r.code == 2 and "needs --model" in r.err


def test_a_model_name_is_checked_against_the_list_with_ollamas_latest_tag(server):
    from augment.backends.openai import OpenAIBackend
    from augment.errors import ConfigError

    _, url = server(models=("llama3:latest", "qwen2.5:7b"))
    OpenAIBackend("llama3", base_url=url).check_served()  # Ollama's NAME:latest answers to NAME
    OpenAIBackend("qwen2.5:7b", base_url=url).check_served()
    with pytest.raises(ConfigError, match=r"--model qwen2.5: .* \(it serves: llama3:latest, qwen2.5:7b\)"):
        OpenAIBackend("qwen2.5", base_url=url).check_served()
    OpenAIBackend("qwen2.5", base_url=url, check_model=False).check_served()  # the user's way out

    _, url = server(models=("models/gemini-2.5-flash", "Qwen/Qwen3-8B"))
    OpenAIBackend("gemini-2.5-flash", base_url=url).check_served()  # Gemini lists models/NAME
    OpenAIBackend("Qwen/Qwen3-8B", base_url=url).check_served()
    with pytest.raises(ConfigError, match="--model Qwen3-8b: .* Set check_model = false"):
        OpenAIBackend("Qwen3-8b", base_url=url).check_served()
    # Azure's list holds models, its requests name deployments: no check there
    for host, checked in (("res.openai.azure.com", False), ("api.example.com", True)):
        backend = OpenAIBackend("my-deployment", base_url=f"https://{host}/openai/v1")
        backend.served_models = lambda: ["gpt-4o"]  # what Azure lists
        if checked:
            with pytest.raises(ConfigError, match="--model my-deployment"):
                backend.check_served()
        else:
            backend.check_served()


def test_a_dead_server_stops_the_run_instead_of_failing_everything(server, examples: Path, tmp_path: Path):
    srv, url = server(faults=Faults(rate_500=1.0))
    with pytest.raises(
        FatalBackendError, match="20 requests in a row failed, the last with: backend_error: http_500"
    ):
        run(examples, tmp_path / "run", url, max_retries=1, concurrency=4)
    assert srv.requests < 2 * N_REQUESTS * 0.8  # it gave up long before retrying every request


def test_api_key_never_written(server, cli, examples: Path, tmp_path: Path, monkeypatch):
    secret = "sk-live-ABCDEF0123456789"
    _, url = server(api_key=secret)
    monkeypatch.setenv("MY_KEY", secret)
    r = cli(
        "generate",
        examples / "docs",
        "-o",
        tmp_path / "run",
        "--backend",
        "openai",
        "--model",
        "fake-model",
        "--base-url",
        url,
        "--api-key-env",
        "MY_KEY",
    )
    assert r.code == 0, r.err
    assert secret not in r.out + r.err
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    assert json.loads((tmp_path / "run" / "run.json").read_text())["config"]["api_key_env"] == "MY_KEY"
    monkeypatch.delenv("MY_KEY")
    r = cli(
        "generate",
        examples / "docs",
        "-o",
        tmp_path / "run",
        "--backend",
        "openai",
        "--model",
        "fake-model",
        "--base-url",
        url,
        "--api-key-env",
        "MY_KEY",
    )
    assert r.code == 2 and "api_key_env names $MY_KEY, which is not set" in r.err


def test_kill_9_then_resume_is_identical_and_pays_once(server, examples: Path, tmp_path: Path):
    srv, url = server(latency=0.05)
    cmd = [
        str(Path(sys.executable).parent / "augment"),
        "generate",
        str(examples / "docs"),
        "-o",
        str(tmp_path / "run"),
        "-c",
        str(examples / "augment.toml"),
        "--backend",
        "openai",
        "--model",
        "fake-model",
        "--base-url",
        url,
        "--concurrency",
        "3",
        "-q",
        "--no-export",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while srv.requests < 30 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 30 <= srv.requests < N_REQUESTS
    with sqlite3.connect(tmp_path / "run" / "cache.sqlite") as db:
        cached = db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    assert cached > 20
    # a request the killed client had sent may reach the server's handler only now (a loaded
    # machine): wait until the count settles, so that it is not charged to the resumed run
    settled, settle_by = -1, time.monotonic() + 10
    while settled != srv.requests and time.monotonic() < settle_by:
        settled = srv.requests
        time.sleep(0.5)
    sent_before = srv.requests

    resumed = subprocess.run(cmd, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert srv.requests - sent_before == N_REQUESTS - cached  # nothing received was asked again
    _, url2 = server()
    run(examples, tmp_path / "straight", url2)
    assert generated(tmp_path / "run") == generated(tmp_path / "straight")
    for text in generated(tmp_path / "run").values():
        ids = [json.loads(line)["id"] for line in text.splitlines()]
        assert len(ids) == len(set(ids))


def test_torn_last_line_is_dropped_on_resume(server, examples: Path, tmp_path: Path):
    _, url = server()
    run(examples, tmp_path / "run", url)
    complete = generated(tmp_path / "run")
    qa = tmp_path / "run" / "generated" / "qa.jsonl"
    lines = qa.read_bytes().splitlines(keepends=True)
    qa.write_bytes(b"".join(lines[:5]) + lines[5][:40])  # a killed writer's last, half-written line
    run(examples, tmp_path / "run", url)
    assert generated(tmp_path / "run") == complete


def test_stats_shows_cost(server, cli, examples: Path, tmp_path: Path):
    _, url = server()
    run(examples, tmp_path / "run", url, price_prompt_per_m=2.0, price_completion_per_m=8.0)
    s = json.loads(cli("stats", tmp_path / "run", "--json").out)
    u = s["usage"]
    assert s["cost"] == pytest.approx(u["prompt_tokens"] * 2e-6 + u["completion_tokens"] * 8e-6, rel=1e-6)
    assert "cost" in cli("stats", tmp_path / "run").out


def test_curate_judge_through_the_openai_backend(server, examples: Path, tmp_path: Path):
    from augment.curate import curate

    srv, url = server(keep_bodies=True)
    run(examples, tmp_path / "run", url, strategies=["qa", "notes"])
    generated_calls = srv.requests
    cfg = load_config(
        examples / "augment.toml",
        {
            "backend": "openai",
            "model": "fake-model",
            "base_url": url,
            "judge": True,
            "strategies": ["qa", "notes"],
        },
    )
    summary = curate(tmp_path / "run", cfg)
    judged = srv.requests - generated_calls
    kept = list(read_jsonl(tmp_path / "run" / "curated" / "kept.jsonl"))
    assert (
        judged > 0
        and judged
        == len(kept) + summary.by_reason["judge_unfaithful"] + summary.by_reason["judge_not_useful"]
    )
    assert all(1 <= r["checks"]["judge"]["faithfulness"] <= 5 for r in kept)
    judge_prompt = srv.bodies[-1]["messages"][0]["content"]
    assert judge_prompt.startswith("Document: ") and "<example>" in judge_prompt  # sees its own chunk first
    curate(tmp_path / "run", cfg)
    assert srv.requests - generated_calls == judged  # verdicts are cached


def test_retry_after_header_forms():
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert retry_after_seconds({"retry-after-ms": "1500"}) == 1.5
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_seconds({}) is None and retry_after_seconds(None) is None


def test_a_server_that_answers_one_at_a_time_is_sent_fewer_requests_after_timeouts(
    server, cli, examples: Path, tmp_path: Path
):
    """16 requests in flight, answered one after another in 0.1 s each, 0.5 s to answer: the
    requests queued behind the fifth time out. Keeping 16 in flight timed them out again and
    again, and the run stopped ("20 requests in a row failed"); the server worked through every
    one it had been sent all the same, as llama-cpp-python's does."""
    srv, url = server(latency=0.1, serial=True)
    summary = run(examples, tmp_path / "run", url, concurrency=16, request_timeout=0.5, max_retries=5)
    assert summary.complete and summary.failed_requests == 0, summary.failures
    slots = summary.state.limits.slots
    assert summary.state.timeouts > 0 and summary.state.retries >= summary.state.timeouts
    assert slots.limit <= slots.ceiling < 16 and slots.cuts >= 1
    # a call times out with the others queued with it: one cut for them, not one each
    assert slots.cuts < summary.state.timeouts
    stats = json.loads((tmp_path / "run" / "stats.json").read_text())
    assert stats["this_run"]["timeouts"] == summary.state.timeouts

    config = tmp_path / "slow.toml"
    config.write_text((examples / "augment.toml").read_text() + "request_timeout = 0.5\n")
    args = ("--backend", "openai", "--base-url", url, "--model", "fake-model", "--concurrency", "16")
    r = cli("generate", examples / "docs", "-o", tmp_path / "cli", "-c", config, *args, "-s", "qa")
    assert r.code == 0, r.err
    said = " ".join((r.out + r.err).split())
    assert (
        "got no reply within request_timeout (0.5 s), so the requests in flight were cut from 16 to" in said
    )
