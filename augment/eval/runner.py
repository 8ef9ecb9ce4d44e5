"""Score models on QA items: greedy answers (EM, F1, containment) and the gold answer's likelihood.

Every model gets the same prompt. `closed`: the question alone (optionally with the passage's
title, as SEAL does); `open`: the passage, then the question — the upper bound of what training
on the passage could reach. The answer log-likelihood (mean negative log-likelihood per token of
the best gold answer after the prompt) needs no generation and moves even for small models.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from augment.errors import AugmentError
from augment.eval.data import QAItem
from augment.eval.metrics import answer_span, bootstrap_ci, contains, exact_match, f1_score

METRICS = ("exact_match", "f1", "contains", "answer_nll")


def prompt_for(item: QAItem, mode: str, with_title: bool = False) -> str:
    if mode == "open":
        return f"{item.title}\n{item.passage}\n\nQuestion: {item.question}\nAnswer:"
    title = f"Title: {item.title}\n" if with_title and item.title else ""
    return f"{title}Question: {item.question}\nAnswer:"


@dataclass
class ModelScores:
    model: str
    predictions: list[str]
    per_item: dict[str, list[float]]
    seconds: float
    summary: dict[str, tuple[float, float, float]] = field(default_factory=dict)


def _load(model_name: str, trust_remote_code: bool):
    try:
        import torch
        import transformers
    except ImportError as e:
        raise AugmentError(f"augment eval needs {e.name}: pip install 'augment[train]'") from None
    from augment.models import resolve_model

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    path = resolve_model(model_name, trust_remote_code)
    try:
        tok = transformers.AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        model = transformers.AutoModelForCausalLM.from_pretrained(path, trust_remote_code=trust_remote_code)
    except OSError as e:
        raise AugmentError(f"{model_name}: cannot load the model ({e})") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    if dev == "cuda":
        model = model.to(dtype=torch.bfloat16)
    return torch, tok, model.to(dev).eval(), dev


def score_model(
    model_name: str,
    items: list[QAItem],
    *,
    mode: str = "closed",
    with_title: bool = False,
    batch_size: int = 8,
    max_new_tokens: int = 32,
    trust_remote_code: bool = False,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> ModelScores:
    torch, tok, model, dev = _load(model_name, trust_remote_code)
    t0 = time.monotonic()
    prompts = [prompt_for(it, mode, with_title) for it in items]
    predictions: list[str] = []
    nll: list[float] = []
    tok.padding_side = "left"
    for lo in range(0, len(items), batch_size):
        batch = prompts[lo : lo + batch_size]
        enc = tok(batch, return_tensors="pt", padding=True).to(dev)
        with torch.no_grad():
            out = model.generate(
                **enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id
            )
        for row in out[:, enc.input_ids.shape[1] :]:
            text = tok.decode(row, skip_special_tokens=True)
            predictions.append(text.strip().split("\n")[0].strip())
        # gold answer likelihood: teacher-forced, best (lowest) over the gold answers
        for prompt, item in zip(batch, items[lo : lo + batch_size], strict=True):
            nll.append(min(_answer_nll(torch, tok, model, dev, prompt, a) for a in item.answers))
        on_progress(min(lo + batch_size, len(items)), len(items))
    per_item = {
        "exact_match": [exact_match(p, it.answers) for p, it in zip(predictions, items, strict=True)],
        "f1": [f1_score(p, it.answers) for p, it in zip(predictions, items, strict=True)],
        "contains": [contains(p, it.answers) for p, it in zip(predictions, items, strict=True)],
        "answer_nll": nll,
    }
    scores = ModelScores(model_name, predictions, per_item, time.monotonic() - t0)
    scores.summary = {m: bootstrap_ci(v) for m, v in per_item.items()}
    return scores


def _answer_nll(torch: Any, tok: Any, model: Any, dev: str, prompt: str, answer: str) -> float:
    p = tok(prompt, return_tensors="pt").input_ids
    a = tok(" " + answer_span(answer), add_special_tokens=False, return_tensors="pt").input_ids
    ids = torch.cat([p, a], dim=1).to(dev)
    labels = ids.clone()
    labels[:, : p.shape[1]] = -100
    with torch.no_grad():
        return float(model(ids, labels=labels).loss)


def paired_differences(
    base: ModelScores, other: ModelScores, seed: int = 0
) -> dict[str, tuple[float, float, float]]:
    """other - base per metric, paired by question, with a 95 % bootstrap interval."""
    return {
        m: bootstrap_ci(np.asarray(other.per_item[m]) - np.asarray(base.per_item[m]), seed=seed)
        for m in METRICS
    }
