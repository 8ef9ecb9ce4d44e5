"""batch_api: the openai backend sending requests through the Batch API of a real HTTP server on
127.0.0.1 (tests/fake_openai.py runs each batch line against its own endpoint)."""

# ruff: noqa: F811 (the server fixture, imported, is each test's argument)

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from augment.errors import ConfigError, FatalBackendError
from tests.backends.test_openai import N_REQUESTS, generated, run, server  # noqa: F401 (a fixture)
from tests.conftest import interruptible

BATCH = {"batch_api": True, "batch_poll": 0.05}


def live_records(server, examples: Path, tmp_path: Path, **overrides) -> dict[str, str]:
    """What a live run (no batch) of the examples writes, on a server of its own."""
    _, url = server()
    run(examples, tmp_path / "live", url, **overrides)
    return generated(tmp_path / "live")


def ledger(run_dir: Path) -> list[dict]:
    return [orjson.loads(line) for line in (run_dir / "batches.jsonl").read_bytes().splitlines()]


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_a_batch_run_writes_what_a_live_run_writes(server, examples: Path, tmp_path: Path, endpoint: str):
    srv, url = server()
    summary = run(examples, tmp_path / "batch", url, endpoint=endpoint, **BATCH)
    assert summary.complete and summary.failed_requests == 0
    assert len(srv.batches) == 1 and srv.requests == N_REQUESTS  # one batch, each request once
    (sent,) = ledger(tmp_path / "batch")
    assert sent["batch"] == "batch_1" and len(set(sent["ids"])) == N_REQUESTS
    assert srv.batches["batch_1"]["input_file_id"] not in srv.files  # deleted once the batch ended
    assert srv.batches["batch_1"]["output_file_id"] in srv.files  # what was paid for stays
    assert srv.batches["batch_1"]["endpoint"] == f"/v1/{'chat/' if endpoint == 'chat' else ''}completions"
    assert srv.batches["batch_1"]["metadata"] == {"made_by": "augment", "run": "batch"}  # the run's folder
    assert generated(tmp_path / "batch") == live_records(server, examples, tmp_path, endpoint=endpoint)
    run(examples, tmp_path / "batch", url, endpoint=endpoint, **BATCH)  # a re-run: all cached, nothing sent
    assert len(srv.batches) == 1 and srv.requests == N_REQUESTS


def test_batch_size_splits_the_requests(server, cli, examples: Path, tmp_path: Path):
    srv, url = server()
    summary = run(examples, tmp_path / "run", url, batch_requests=30, **BATCH)
    assert summary.complete
    sizes = [len(row["ids"]) for row in ledger(tmp_path / "run")]
    assert sorted(sizes, reverse=True) == [30, 30, 17] and srv.requests == N_REQUESTS
    shown = json.loads(cli("stats", tmp_path / "run", "--json").out)["batches"]
    assert sorted(b["requests"] for b in shown) == [17, 30, 30] and {b["batch"] for b in shown} == set(
        srv.batches
    )
    assert "batches sent to the Batch API" in cli("stats", tmp_path / "run").out
    # augment plan says as much before anything is sent
    config = tmp_path / "b30.toml"
    config.write_text((examples / "augment.toml").read_text() + "\nbatch_requests = 30\n")
    planned = json.loads(cli("plan", examples / "docs", "-c", config, "--batch-api", "--json").out)
    assert planned["batch_api"] == {
        "batches": 3,
        "requests_per_batch": 30,
        "at_once": 4,
        "prompt_tokens_per_batch": -(-planned["total"]["prompt_tokens"] // 3),
    }
    said = cli("plan", examples / "docs", "-c", config, "--batch-api").out
    assert "--batch-api: at least 3 batches of up to 30 requests, 4 out at once" in said
    assert "--batch-api:" not in cli("plan", examples / "docs", "-c", config).out


def test_rate_limits_do_not_pace_a_batch(server, examples: Path, tmp_path: Path):
    srv, url = server()  # at 30 requests a minute, gathering 77 would take 2.5 minutes, in many batches
    summary = run(examples, tmp_path / "run", url, rpm=30, tpm=1000, **BATCH)
    assert summary.complete and len(srv.batches) == 1 and srv.requests == N_REQUESTS


def start_generate(examples: Path, tmp_path: Path, url: str) -> tuple[subprocess.Popen, list]:
    """`augment generate --batch-api` in its own process, once its batch is sent (the server holds
    it): the process and its command."""
    config = tmp_path / "augment.toml"
    config.write_text((examples / "augment.toml").read_text() + "\nbatch_poll = 0.05\n")
    cmd = [sys.executable, "-m", "augment", "generate", examples / "docs", "-o", tmp_path / "run"]
    cmd += ["-c", config, "--backend", "openai", "--model", "fake-model", "--base-url", url]
    cmd += ["--batch-api", "-q", "--no-export"]
    proc = interruptible(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "run" / "batches.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)  # the batch sent, its replies not yet back
    return proc, cmd


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT])  # kill -9, Ctrl-C
def test_a_stopped_run_waits_for_its_batch_instead_of_sending_it_again(
    server, examples: Path, tmp_path: Path, stop: signal.Signals
):
    srv, url = server(batch_hold=True)
    proc, cmd = start_generate(examples, tmp_path, url)
    os.killpg(proc.pid, stop)
    _, err = proc.communicate(timeout=60)
    assert len(srv.batches) == 1 and srv.requests == 0
    if stop == signal.SIGINT:
        assert proc.returncode == 130 and "waits for the batches already sent" in err
    srv.release_batches()
    resumed = subprocess.run(cmd, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "batch_1: sent by an earlier run; waiting for it" in resumed.stderr
    assert len(srv.batches) == 1 and srv.requests == N_REQUESTS  # nothing paid for twice
    assert generated(tmp_path / "run") == live_records(server, examples, tmp_path)


def test_batches_shows_a_runs_batches_at_the_server_and_cancels_them(
    server, cli, examples: Path, tmp_path: Path
):
    srv, url = server(batch_hold=True)
    proc, cmd = start_generate(examples, tmp_path, url)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    shown = cli("batches", tmp_path / "run")
    assert shown.code == 0 and "batch_1" in shown.out and "in_progress" in shown.out
    assert "1 batch not ended: the same generate command waits for them" in shown.out
    (row,) = json.loads(cli("batches", tmp_path / "run", "--cancel", "--json").out)
    assert row["batch"] == "batch_1" and row["requests"] == N_REQUESTS and row["cancelled"]
    assert row["status"] == "cancelling" and row["answered"] == 0
    srv.release_batches()  # it stops before its first line: cancelled, nothing answered
    deadline = time.monotonic() + 30
    while srv.batches["batch_1"]["status"] != "cancelled" and time.monotonic() < deadline:
        time.sleep(0.02)
    (row,) = json.loads(cli("batches", tmp_path / "run", "--cancel", "--json").out)
    assert row["status"] == "cancelled" and not row["cancelled"]  # ended: nothing to cancel
    resumed = subprocess.run(cmd, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert len(srv.batches) == 2 and srv.requests == N_REQUESTS  # the rest (all) sent again, once
    assert generated(tmp_path / "run") == live_records(server, examples, tmp_path)


def test_a_run_whose_batch_is_cancelled_stops_with_a_line_saying_so(
    server, cli, examples: Path, tmp_path: Path
):
    srv, url = server(batch_hold=True)
    proc, _ = start_generate(examples, tmp_path, url)  # waiting for its batch
    assert json.loads(cli("batches", tmp_path / "run", "--cancel", "--json").out)[0]["cancelled"]
    srv.release_batches()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "batch batch_1 was cancelled before it ended" in err
    assert srv.requests == 0


def test_batches_of_a_folder_without_a_run_takes_the_server_from_a_config(
    server, cli, examples: Path, tmp_path: Path
):
    srv, url = server()
    run(examples, tmp_path / "run", url, **BATCH)
    graded = tmp_path / "eval-out"  # an eval's output: its grader's ledger, no run.json
    graded.mkdir()
    (graded / "batches.jsonl").write_bytes((tmp_path / "run" / "batches.jsonl").read_bytes())
    config = tmp_path / "grader.toml"
    config.write_text(f'backend = "openai"\nmodel = "fake-model"\nbase_url = "{url}"\n')
    (row,) = json.loads(cli("batches", graded, "-c", config, "--json").out)
    assert row["batch"] == "batch_1" and row["status"] == "completed" and row["answered"] == N_REQUESTS
    no_server = cli("batches", graded, "--base-url", "http://127.0.0.1:9/v1")
    assert no_server.code == 1 and "127.0.0.1:9" in no_server.err and len(no_server.err.splitlines()) == 1


def test_batches_of_a_folder_without_batches_is_a_one_line_error(cli, tmp_path: Path):
    r = cli("batches", tmp_path)
    assert r.code == 1 and "batches.jsonl: not found (no batch was sent from" in r.err


def test_a_lost_cache_is_refilled_from_the_batch_and_a_gone_batch_is_sent_again(
    server, examples: Path, tmp_path: Path
):
    srv, url = server()
    run(examples, tmp_path / "run", url, **BATCH)
    complete = generated(tmp_path / "run")
    (tmp_path / "run" / "cache.sqlite").unlink()
    run(examples, tmp_path / "run", url, **BATCH)  # the replies are the server's batch output's
    assert len(srv.batches) == 1 and srv.requests == N_REQUESTS
    assert generated(tmp_path / "run") == complete
    (tmp_path / "run" / "cache.sqlite").unlink()
    path = tmp_path / "run" / "batches.jsonl"
    path.write_bytes(path.read_bytes().replace(b'"batch_1"', b'"batch_gone"'))  # no longer on the server
    summary = run(examples, tmp_path / "run", url, **BATCH)
    assert summary.complete and len(srv.batches) == 2 and srv.requests == 2 * N_REQUESTS
    assert generated(tmp_path / "run") == complete


def test_a_long_batch_says_how_far_it_is_now_and_then(server, examples: Path, tmp_path: Path, capfd):
    _, url = server(batch_line_time=0.02)  # 77 lines: ~1.5 s, 30 checks
    run(examples, tmp_path / "run", url, **BATCH)
    lines = [
        line for line in capfd.readouterr().err.splitlines() if line.startswith("batch batch_1: in_progress")
    ]
    answered = [int(line.split(", ")[1].split(" of ")[0]) for line in lines]
    # every 20 checks (not at each of the ~30 checks that saw a new count), growing
    assert 2 <= len(answered) <= 10 and answered == sorted(set(answered))


def test_a_server_down_while_a_batch_runs_is_waited_out_not_paid_twice(
    server, examples: Path, tmp_path: Path, capfd
):
    srv, url = server(batch_outage=5)  # past the SDK's own retries
    summary = run(examples, tmp_path / "run", url, **BATCH)
    assert summary.complete and len(srv.batches) == 1 and srv.requests == N_REQUESTS
    assert srv.batch_outage == 0 and "trying again every 0.05 s" in capfd.readouterr().err


def test_a_download_cut_halfway_is_taken_again_without_paying_twice(
    server, examples: Path, tmp_path: Path, capfd
):
    srv, url = server(batch_content_cut=1)  # replies handed out as they download; then it drops
    summary = run(examples, tmp_path / "run", url, **BATCH)
    assert summary.complete and summary.failed_requests == 0 and srv.batch_content_cut == 0
    assert len(srv.batches) == 1 and srv.requests == N_REQUESTS
    assert "checking batch batch_1: " in capfd.readouterr().err  # said, and tried again
    assert generated(tmp_path / "run") == live_records(server, examples, tmp_path)


def test_what_an_expired_batch_left_unanswered_is_sent_again(server, examples: Path, tmp_path: Path):
    srv, url = server(batch_answers=50)
    summary = run(examples, tmp_path / "run", url, **BATCH)
    assert summary.complete and summary.failed_requests == 0
    assert [len(row["ids"]) for row in ledger(tmp_path / "run")] == [N_REQUESTS, N_REQUESTS - 50]
    assert srv.requests == N_REQUESTS


def test_a_field_the_model_refuses_is_left_out_of_the_next_batch(server, examples: Path, tmp_path: Path):
    srv, url = server(refuses={"max_tokens": "unsupported_parameter"}, keep_bodies=True)
    summary = run(examples, tmp_path / "run", url, **BATCH)
    assert summary.complete and summary.failed_requests == 0
    assert len(srv.batches) == 2 and any("max_completion_tokens" in note for note in summary.adjusted)
    assert all("max_completion_tokens" in b for b in srv.bodies[N_REQUESTS:])


def test_a_failed_batch_stops_the_run_with_its_reason(server, examples: Path, tmp_path: Path):
    srv, url = server(batch_fails="invalid_model")
    with pytest.raises(
        FatalBackendError, match=r"batch batch_1 failed: invalid_model: The batch could not run"
    ):
        run(examples, tmp_path / "run", url, **BATCH)
    assert len(srv.batches) == 1


@pytest.mark.parametrize("at_once", [1, 4])
def test_batches_go_out_several_at_once(server, examples: Path, tmp_path: Path, at_once: int):
    srv, url = server(batch_line_time=0.01)  # a 20-line batch runs 0.2 s: the next one is sent meanwhile
    summary = run(examples, tmp_path / "run", url, batch_requests=20, batches_at_once=at_once, **BATCH)
    assert summary.complete and srv.requests == N_REQUESTS and set(srv.seen.values()) == {1}
    assert sorted(len(row["ids"]) for row in ledger(tmp_path / "run")) == [17, 20, 20, 20]
    assert srv.most_batches_out == at_once


def test_a_batch_the_full_queue_refused_goes_again_once_another_ends(
    server, examples: Path, tmp_path: Path, capfd
):
    # the queue takes 45 requests: two batches of 20; the third and fourth fail and go again
    srv, url = server(batch_queue=45, batch_line_time=0.01)
    summary = run(examples, tmp_path / "run", url, batch_requests=20, **BATCH)
    assert summary.complete and summary.failed_requests == 0
    assert srv.requests == N_REQUESTS and set(srv.seen.values()) == {1}  # each request answered once
    assert srv.most_batches_out == 2
    failed = [b for b in srv.batches.values() if b["status"] == "failed"]
    # the third and fourth, once each: what they held waited for room rather than failing again
    assert len(failed) == 2 and all(b["errors"]["data"][0]["code"] == "token_limit_exceeded" for b in failed)
    err = capfd.readouterr().err
    assert "requests go again once one of the" in err and "at most 2 out at once from now on" in err
    assert generated(tmp_path / "run") == live_records(server, examples, tmp_path)


def test_a_batch_too_big_for_the_queue_alone_goes_again_in_halves(
    server, examples: Path, tmp_path: Path, capfd
):
    srv, url = server(batch_queue=30)  # the 77 requests in one batch never fit
    summary = run(examples, tmp_path / "run", url, **BATCH)
    assert summary.complete and srv.requests == N_REQUESTS and set(srv.seen.values()) == {1}
    ran = [b["request_counts"]["total"] for b in srv.batches.values() if b["status"] == "completed"]
    assert sum(ran) == N_REQUESTS and max(ran) <= 30
    assert "its 77 requests go again in batches of at most 38" in capfd.readouterr().err


def test_a_queue_that_takes_no_request_stops_the_run(server, examples: Path, tmp_path: Path):
    srv, url = server(batch_queue=0)
    with pytest.raises(FatalBackendError, match="token_limit_exceeded: .* takes not even one request"):
        run(examples, tmp_path / "run", url, batches_at_once=1, **BATCH)
    sizes = [len(row["ids"]) for row in ledger(tmp_path / "run")]
    assert sizes == [77, 38, 19, 9, 4, 2, 1] and srv.requests == 0


def test_an_upload_the_server_failed_is_sent_whole_again(server, examples: Path, tmp_path: Path):
    srv, url = server(batch_upload_fails=1)  # the SDK sends the file again: from its first byte
    summary = run(examples, tmp_path / "run", url, **BATCH)
    assert summary.complete and srv.batch_upload_fails == 0
    assert len(srv.batches) == 1 and srv.batches["batch_1"]["request_counts"]["total"] == N_REQUESTS
    assert sorted(p.name for p in (tmp_path / "run").iterdir() if p.is_file() and "batch" in p.name) == [
        "batches.jsonl"  # the batch file was written to an unnamed file: nothing left behind
    ]


@pytest.mark.parametrize("lost", [1, 3])  # 3: past the SDK's own two retries
def test_a_batch_whose_creation_reply_was_lost_is_found_not_made_twice(
    server, examples: Path, tmp_path: Path, lost: int
):
    srv, url = server(batch_create_lost=lost)
    summary = run(examples, tmp_path / "run", url, **BATCH)
    assert summary.complete and srv.batch_create_lost == lost - 1  # found after the first lost reply
    assert len(srv.batches) == 1 and srv.requests == N_REQUESTS and set(srv.seen.values()) == {1}
    assert [row["batch"] for row in ledger(tmp_path / "run")] == ["batch_1"]


def test_a_refused_batch_stops_the_run_and_leaves_no_file(server, examples: Path, tmp_path: Path):
    srv, url = server(batch_refuses="completion_window must be 24h")
    with pytest.raises(
        FatalBackendError, match="refused a batch of 77 requests: http_400: completion_window"
    ):
        run(examples, tmp_path / "run", url, **BATCH)
    assert srv.files_made == 1 and srv.files == {} and srv.batches == {}  # uploads deleted
    assert not (tmp_path / "run" / "batches.jsonl").exists()


def test_a_server_without_a_batch_api_is_named(server, examples: Path, tmp_path: Path):
    srv, url = server(has_batches=False)
    with pytest.raises(FatalBackendError, match=r"404 from .*/v1/files: .* has no Batch API"):
        run(examples, tmp_path / "run", url, **BATCH)
    assert srv.requests == 0


def test_batch_api_needs_the_openai_backend(examples: Path, tmp_path: Path):
    from augment.config import load_config
    from augment.pipeline import generate

    cfg = load_config(examples / "augment.toml", {"backend": "mock", "batch_api": True})
    with pytest.raises(ConfigError, match="batch_api needs the openai backend"):
        generate([str(examples / "docs")], tmp_path / "run", cfg)


def test_the_curation_judge_sends_its_verdicts_in_a_batch(server, examples: Path, tmp_path: Path):
    from augment.config import load_config
    from augment.curate import curate

    kept = {}
    for mode, extra in (("batch", BATCH), ("live", {})):
        srv, url = server()
        run(examples, tmp_path / mode, url, strategies=["qa", "notes"], **extra)
        values = {"backend": "openai", "model": "fake-model", "base_url": url, "judge": True}
        cfg = load_config(examples / "augment.toml", {**values, "strategies": ["qa", "notes"], **extra})
        curate(tmp_path / mode, cfg)
        kept[mode] = (tmp_path / mode / "curated" / "kept.jsonl").read_bytes()
        if mode == "batch":
            assert len(srv.batches) == 2  # the generation's, the judge's
            generation, judge = (len(row["ids"]) for row in ledger(tmp_path / mode))
            assert judge > 0 and srv.requests == generation + judge  # each request once
    assert kept["batch"] == kept["live"]


def test_batch_api_with_the_ray_engine_is_a_one_line_error(cli, examples: Path, tmp_path: Path):
    r = cli("generate", examples / "docs", "-o", tmp_path / "run", "--engine", "ray", "--batch-api")
    assert r.code == 2 and "--batch-api with --engine ray" in r.err and not (tmp_path / "run").exists()


def test_a_batch_failure_keeps_its_retry_fields_through_the_backend():
    """An expired batch's requests are retried at once (retry_after 0), so that they go out
    together as one batch; the backend re-raises the failure (its key kept out) with every field."""
    import asyncio

    from augment.backends.openai import OpenAIBackend
    from augment.errors import BackendError
    from augment.types import GenRequest

    backend = OpenAIBackend("m", base_url="http://127.0.0.1:9/v1", api_key="sk-secret", batch_requests=10)

    async def expired(key: str, body: dict):
        raise BackendError("batch_expired: sk-secret", retryable=True, retry_after=0.0, of_request=True)

    backend.batch.post = expired
    with pytest.raises(BackendError) as e:
        asyncio.run(backend.generate(GenRequest("k", "prompt", 0.0, 16, 0)))
    assert e.value.retryable and e.value.retry_after == 0.0 and e.value.of_request
    assert "sk-secret" not in str(e.value)


def test_a_lost_create_reply_on_a_server_that_lists_no_batches_is_sent_again(
    server, examples: Path, tmp_path: Path
):
    srv, url = server(batch_create_lost=1, lists_batches=False)  # nothing to search: as the SDK would
    summary = run(examples, tmp_path / "run", url, **BATCH)
    assert summary.complete and len(srv.batches) == 2 and srv.batch_create_lost == 0


def test_a_bug_while_taking_the_replies_stops_the_run_instead_of_waiting(
    server, examples: Path, tmp_path: Path, monkeypatch
):
    """What the server or the network causes is waited out; a bug here would never pass."""
    import threading

    from augment.backends import openai_batch

    def broken(self, line, members, handed):
        raise AttributeError("a bug")

    monkeypatch.setattr(openai_batch.BatchQueue, "_take_line", broken)
    _, url = server()
    ended: list[BaseException] = []

    def go() -> None:
        try:
            run(examples, tmp_path / "run", url, **BATCH)
        except BaseException as e:  # noqa: BLE001 - what the run raised, for the test to see
            ended.append(e)

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "still waiting after 60 s"
    assert isinstance(ended[0], FatalBackendError) and "batch batch_1: AttributeError: a bug" in str(ended[0])
