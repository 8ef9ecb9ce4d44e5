"""The vLLM backend against a stand-in with vllm's API (vllm needs a GPU and cannot be installed here).

The stand-in answers like a model would (tests/fake_openai.py builds the mock's reply from the
prompt text) and records every engine call, so these tests check what augment hands vLLM: one
batch for the whole run, a sampling-params object per request (seed, stop, max_tokens, guided JSON),
chat or plain prompts by the model's chat template; and that replies are cached and parsed.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from augment.config import load_config
from augment.errors import AugmentError
from augment.pipeline import generate
from tests.fake_openai import reply_for


class SamplingParams:
    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)


class StructuredOutputsParams:
    def __init__(self, json=None):
        self.json = json


class FakeLLM:
    chat_template: str | None = None
    instances: list[FakeLLM] = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.calls: list[tuple[str, int]] = []  # (method, prompts in the call)
        self.params: list[SamplingParams] = []
        self.prompts: list[str] = []  # as sent: each prompt, or each chat's last message
        FakeLLM.instances.append(self)

    def get_tokenizer(self):
        if (Path(self.kwargs["model"]) / "tokenizer.json").exists():  # a real model's: its tokenizer
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(self.kwargs["model"])
            return self.tokenizer
        return SimpleNamespace(chat_template=self.chat_template)

    def _check(self, prompts: list[Any]) -> None:
        """As vLLM: one prompt longer than max_model_len refuses the whole call."""
        tokenizer = getattr(self, "tokenizer", None)
        for p in prompts if tokenizer is not None else ():
            if isinstance(p, str):
                n = len(tokenizer(p)["input_ids"])
            else:
                n = len(
                    tokenizer.apply_chat_template(p, add_generation_prompt=True, return_dict=True)[
                        "input_ids"
                    ]
                )
            if n >= self.kwargs["max_model_len"]:
                raise ValueError(
                    f"The decoder prompt (length {n}) is longer than the maximum model length of "
                    f"{self.kwargs['max_model_len']}."
                )

    def _answer(self, prompt: str, params: SamplingParams):
        text = reply_for(prompt)
        for s in params.stop or ():
            text = text.split(s, 1)[0]
        completion = SimpleNamespace(text=text, finish_reason="stop", token_ids=text.split())
        return SimpleNamespace(prompt_token_ids=prompt.split(), outputs=[completion])

    def generate(self, prompts, sampling_params, use_tqdm=True):
        assert isinstance(sampling_params, list) and len(sampling_params) == len(prompts)
        self._check(prompts)
        self.calls.append(("generate", len(prompts)))
        self.params += sampling_params
        self.prompts += prompts
        return [self._answer(p, sp) for p, sp in zip(prompts, sampling_params, strict=True)]

    def chat(self, messages, sampling_params, use_tqdm=True, chat_template_kwargs=None):
        self.template_kwargs = chat_template_kwargs
        self._check(messages)
        self.calls.append(("chat", len(messages)))
        self.params += sampling_params
        self.prompts += [m[-1]["content"] for m in messages]
        return [self._answer(m[-1]["content"], sp) for m, sp in zip(messages, sampling_params, strict=True)]


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    module = types.ModuleType("vllm")
    module.LLM = FakeLLM
    module.SamplingParams = SamplingParams
    sp = types.ModuleType("vllm.sampling_params")
    sp.StructuredOutputsParams = StructuredOutputsParams
    module.sampling_params = sp
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sp)
    monkeypatch.setattr("augment.backends.vllm.cuda_available", lambda: True)
    monkeypatch.setattr(FakeLLM, "instances", [])
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    return model


def run(examples: Path, out: Path, model: Path, **overrides):
    config = load_config(
        examples / "augment.toml", {"backend": "vllm", "model": str(model), "export": False, **overrides}
    )
    return generate([str(examples / "docs")], out, config)


def test_the_whole_run_is_one_batch_of_completion_prompts(fake_vllm: Path, examples: Path, tmp_path: Path):
    summary = run(examples, tmp_path / "run", fake_vllm)
    llm = FakeLLM.instances[-1]
    assert llm.kwargs["enable_prefix_caching"] is True and llm.kwargs["model"] == str(fake_vllm)
    assert llm.calls == [("generate", summary.requests)]  # every request in one call: vLLM schedules
    assert summary.complete and summary.failed_requests == 0
    assert set(summary.records) == {"qa", "paraphrase", "inferences", "notes"}
    assert all(n > 0 for n in summary.records.values())
    # a base model (no chat template): few-shot prompts, stopped at the separator, no guided JSON
    assert all(p.stop[0] == "###" and not hasattr(p, "structured_outputs") for p in llm.params)
    assert len({p.seed for p in llm.params}) == len(llm.params)  # each request samples on its own seed
    # run again: everything from the cache, the engine is not called
    again = run(examples, tmp_path / "run", fake_vllm)
    assert FakeLLM.instances[-1].calls == [] and again.records == summary.records


def test_chat_models_get_chat_and_guided_json(
    fake_vllm: Path, examples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(FakeLLM, "chat_template", "{{ messages }}")
    summary = run(examples, tmp_path / "run", fake_vllm, strategies=["qa", "notes"])
    llm = FakeLLM.instances[-1]
    assert llm.calls == [("chat", summary.requests)]
    guided = [p for p in llm.params if hasattr(p, "structured_outputs")]
    assert len(guided) == summary.requests // 2  # the qa requests: a JSON schema
    assert guided[0].structured_outputs.json["properties"]["items"]["type"] == "array"
    assert summary.records["qa"] > 0 and summary.failed_requests == 0
    assert llm.template_kwargs is None  # none set: the template's defaults
    # the chat template's variables (Qwen3's thinking switch) go to vLLM's chat, and key the cache
    off = {"enable_thinking": False}
    again = run(examples, tmp_path / "run", fake_vllm, strategies=["qa", "notes"], chat_template_kwargs=off)
    llm = FakeLLM.instances[-1]
    assert llm.template_kwargs == off and again.state.calls == summary.requests


def test_missing_vllm_or_gpu_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, examples: Path, tmp_path: Path, fake_vllm: Path
):
    monkeypatch.setattr("augment.backends.vllm.cuda_available", lambda: False)
    with pytest.raises(AugmentError, match="needs a CUDA GPU"):
        run(examples, tmp_path / "run", fake_vllm)
    monkeypatch.setitem(sys.modules, "vllm", None)  # import fails as if not installed
    with pytest.raises(AugmentError, match=r"pip install 'augment\[vllm\]'"):
        run(examples, tmp_path / "run", fake_vllm)


def test_a_prompt_longer_than_the_context_fails_alone_and_the_rest_fit(
    fake_vllm: Path, tiny_model: Path, examples: Path, tmp_path: Path
):
    # through the tiny model's own tokenizer (600 tokens) the examples' prompts run from 273 tokens to
    # past 700: 30 of the 77 leave no room
    summary = run(examples, tmp_path / "run", tiny_model, context_tokens=700)
    llm = FakeLLM.instances[-1]
    assert llm.calls == [("chat", llm.calls[0][1])]  # one engine call, which vLLM did not refuse
    sizes = [
        len(
            llm.tokenizer.apply_chat_template(
                [{"role": "user", "content": p}], add_generation_prompt=True, return_dict=True
            )["input_ids"]
        )
        for p in llm.prompts
    ]
    assert all(n + p.max_tokens <= 700 for n, p in zip(sizes, llm.params, strict=True))
    assert any(p.max_tokens < 1024 for p in llm.params)  # lowered to the room left
    too_long = summary.requests - llm.calls[0][1]
    assert too_long > 0 and summary.records and summary.failed_requests == too_long
    reason = (
        "backend_error: context_exceeded: the prompt leaves too little room for a reply in "
        "context_tokens=700 (lower chunk_tokens or raise context_tokens)"
    )
    assert summary.failures == {reason: too_long}


@pytest.mark.skipif(
    importlib.util.find_spec("vllm") is None, reason="vllm is not installed (GPU machines only)"
)
def test_real_vllm_engine(tiny_model: Path, examples: Path, tmp_path: Path):
    from augment.backends.base import cuda_available

    if not cuda_available():
        pytest.skip("vllm is installed but no CUDA GPU is visible")
    summary = run(examples, tmp_path / "run", tiny_model, strategies=["notes"], max_tokens=16)
    assert summary.complete and summary.requests > 0
