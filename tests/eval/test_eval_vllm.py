"""`augment eval --engine vllm` against a stand-in with vLLM's API, backed by a real tiny model.

vLLM needs a GPU and cannot be installed here. The stand-in runs the same tiny Llama with
transformers: `generate` answers greedily, and a request of token ids with `prompt_logprobs=0`
returns each prompt token's log-probability the way vLLM does ([None, {token_id: Logprob}, ...]).
So the test checks what augment hands vLLM and reads back — one batch per pass, greedy bounded
sampling, prompt + answer token ids — by comparing its scores with the transformers path's.
"""

from __future__ import annotations

import importlib.machinery
import json
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from augment.qafile import QAItem


class SamplingParams:
    def __init__(self, **kwargs):
        self.__dict__.update({"prompt_logprobs": None, **kwargs})


class FakeLLM:
    instances: list[FakeLLM] = []

    def __init__(self, model: str, **kwargs):
        import transformers

        self.kwargs = kwargs
        self.model = transformers.AutoModelForCausalLM.from_pretrained(model).eval()
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(model)
        self.calls: list[tuple[int, SamplingParams]] = []
        FakeLLM.instances.append(self)

    def get_tokenizer(self):
        return self.tokenizer

    def generate(self, prompts, sampling_params, use_tqdm=True):
        import torch

        assert len(sampling_params) == len(prompts)
        self.calls.append((len(prompts), sampling_params[0]))
        outs = []
        for prompt, params in zip(prompts, sampling_params, strict=True):
            assert params.temperature == 0.0
            if isinstance(prompt, dict):  # token ids: score the prompt
                ids = torch.tensor([prompt["prompt_token_ids"]])
                with torch.no_grad():
                    logp = torch.log_softmax(self.model(ids).logits[0].float(), dim=-1)
                pl = [None] + [
                    {int(ids[0, i]): SimpleNamespace(logprob=float(logp[i - 1, ids[0, i]]))}
                    for i in range(1, ids.shape[1])
                ]
                outs.append(SimpleNamespace(prompt_logprobs=pl, outputs=[SimpleNamespace(text="")]))
                continue
            enc = self.tokenizer(prompt, return_tensors="pt")
            with torch.no_grad():
                gen = self.model.generate(
                    **enc,
                    max_new_tokens=params.max_tokens,
                    do_sample=False,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
            text = self.tokenizer.decode(gen[0, enc.input_ids.shape[1] :], skip_special_tokens=True)
            outs.append(SimpleNamespace(prompt_logprobs=None, outputs=[SimpleNamespace(text=text)]))
        return outs


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch):
    module = types.ModuleType("vllm")
    module.__spec__ = importlib.machinery.ModuleSpec("vllm", None)  # so find_spec sees it installed
    module.LLM = FakeLLM
    module.SamplingParams = SamplingParams
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setattr("augment.backends.base.cuda_available", lambda: True)
    monkeypatch.setattr(FakeLLM, "instances", [])
    return module


def _items(run_dir: Path) -> list[QAItem]:
    from augment.io import read_jsonl

    docs = list(read_jsonl(run_dir / "documents.jsonl"))
    out = []
    for k, d in enumerate(docs[:3]):
        words = d["text"].split()
        out.append(
            QAItem(
                f"q{k}",
                d["title"],
                d["text"][:400],
                f"What is {d['title']} about?",
                # the first gold in other case: scored in the passage's wording too (answer_nll_source)
                [" ".join(words[:3]).upper(), words[5]],
            )
        )
    return out


def test_vllm_scores_equal_the_transformers_scores(fake_vllm, tiny_model: Path, run_dir: Path):
    pytest.importorskip("torch")
    from augment.eval.runner import likelihood_forms, score_model, score_model_vllm

    items = _items(run_dir)
    pairs = sum(len(gold) + len(source) for gold, source in map(likelihood_forms, items))
    assert pairs > 6  # some gold answer has a passage wording
    for mode, shots in (("closed", ()), ("open", ()), ("closed", items[:1])):  # and few-shot
        ref = score_model(str(tiny_model), items, mode=mode, batch_size=1, max_new_tokens=6, shots=shots)
        got = score_model_vllm(str(tiny_model), items, mode=mode, max_new_tokens=6, shots=shots)
        assert got.predictions == ref.predictions
        for m in ("answer_nll", "answer_nll_source"):
            np.testing.assert_allclose(got.per_item[m], ref.per_item[m], rtol=1e-4)
        for m in ("exact_match", "f1", "contains"):
            assert got.per_item[m] == ref.per_item[m]
    llm = FakeLLM.instances[-1]
    # one batch of greedy answers, one batch of every (question, gold answer or its wording) pair
    assert [n for n, _ in llm.calls] == [3, pairs]
    assert llm.calls[0][1].max_tokens == 6 and llm.calls[1][1].prompt_logprobs == 0


def test_eval_engine_flag(cli, fake_vllm, tiny_model: Path, run_dir: Path, tmp_path: Path, monkeypatch):
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        "\n".join(json.dumps({"question": it.question, "answers": it.answers}) for it in _items(run_dir))
    )
    r = cli("eval", "-m", tiny_model, "--qa", qa, "-q", "--max-new-tokens", "4")  # auto: vLLM is "there"
    assert r.code == 0, r.err
    assert len(FakeLLM.instances) == 1
    r = cli("eval", "-m", tiny_model, "--qa", qa, "-q", "--max-new-tokens", "4", "--engine", "transformers")
    assert r.code == 0 and len(FakeLLM.instances) == 1
    r = cli("eval", "-m", tiny_model, "--qa", qa, "--engine", "tensorrt")
    assert r.code != 0 and "--engine must be auto, transformers, vllm or server" in r.err
    monkeypatch.delitem(sys.modules, "vllm")
    monkeypatch.setattr("augment.backends.base.cuda_available", lambda: False)
    r = cli("eval", "-m", tiny_model, "--qa", qa, "--engine", "vllm")
    assert r.code != 0 and len(r.err.strip().splitlines()) == 1 and "vllm" in r.err


def test_vllm_scores_only_the_questions_its_store_lacks(fake_vllm, tiny_model: Path, run_dir: Path, tmp_path):
    pytest.importorskip("torch")
    from augment.eval.runner import score_model_vllm
    from augment.eval.store import AnswerStore

    items = _items(run_dir)
    store = AnswerStore(tmp_path / "answers.sqlite")
    first = score_model_vllm(str(tiny_model), items[:2], max_new_tokens=6, store=store)
    assert first.reused == 0 and len(store) == 2
    got = score_model_vllm(str(tiny_model), items, max_new_tokens=6, store=store)
    assert got.reused == 2 and len(store) == 3
    assert [n for n, _ in FakeLLM.instances[-1].calls][0] == 1  # one question left to answer
    fresh = score_model_vllm(str(tiny_model), items, max_new_tokens=6)
    assert got.predictions == fresh.predictions
    np.testing.assert_allclose(got.per_item["answer_nll"], fresh.per_item["answer_nll"], rtol=1e-4)
    loaded = len(FakeLLM.instances)
    again = score_model_vllm(str(tiny_model), items, max_new_tokens=6, store=store)
    assert again.reused == 3 and len(FakeLLM.instances) == loaded  # all stored: vLLM is not started
    assert again.per_item["f1"] == fresh.per_item["f1"]
