"""Score models on QA items: greedy answers (EM, F1, containment) and the gold answer's likelihood.

Every model gets the same prompt. `closed`: the question alone (optionally with the passage's
title, as SEAL does); `open`: the passage, then the question — the upper bound of what training
on the passage could reach. With `shots`, worked examples in the same form come first (few-shot
prompting: a base model then answers in the examples' form, not in a paragraph). The answer
log-likelihood (mean negative log-likelihood per token of the best gold answer after the prompt)
needs no generation and moves even for small models.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from augment.errors import AugmentError
from augment.eval.metrics import answer_span, bootstrap_ci, contains, exact_match, f1_score, source_form
from augment.eval.store import AnswerStore, Scored, model_fingerprint
from augment.qafile import QAItem

# answer_nll: the gold answers as written; answer_nll_source: also in the passage's own wording where
# a gold answer is a rewording of it (see metrics.source_form); the lower of each counts
METRICS = ("exact_match", "f1", "contains", "answer_nll", "answer_nll_source")
JUDGE = "judge"  # share of answers a grader model judged correct (`augment eval --judge`)


def shots_prefix(shots: Sequence[QAItem], mode: str, with_title: bool = False) -> str:
    """Worked examples put before every question: each shot's prompt and its shortest gold answer."""
    return "".join(f"{prompt_for(s, mode, with_title)} {min(s.answers, key=len)}\n\n" for s in shots)


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
    reasons: list[str] = field(default_factory=list)  # the grader's, with --judge
    reused: int = 0  # answers taken from the eval's answer store, not scored again
    warnings: list[str] = field(default_factory=list)  # said once the model is scored

    def add_grades(self, grades: list[float], reasons: list[str]) -> None:
        """The grader's verdicts per question (1, 0, NaN where it failed), summarised with the rest."""
        self.per_item[JUDGE] = grades
        self.reasons = reasons
        self.summary = summarize(self.per_item)

    @property
    def ungraded(self) -> int:
        return int(np.isnan(np.asarray(self.per_item.get(JUDGE, []), dtype=float)).sum())


def metrics_of(results: list[ModelScores]) -> tuple[str, ...]:
    """The metrics every model in `results` has: the four scores, and the grader's when all were graded."""
    return METRICS + ((JUDGE,) if results and all(JUDGE in r.per_item for r in results) else ())


def _ci(values: list[float] | np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    v = np.asarray(values, dtype=float)
    return bootstrap_ci(v[~np.isnan(v)], seed=seed)  # NaN: a question the grader could not grade


def summarize(per_item: dict[str, list[float]]) -> dict[str, tuple[float, float, float]]:
    return {m: _ci(v) for m, v in per_item.items()}


def with_snapshots(models: list[str]) -> list[str]:
    """Each model folder preceded by the snapshots `augment train --snapshot-steps` left in it
    (OUTPUT/step-N, in step order): `augment eval --snapshots` scores the learning curve. A model
    without snapshots (the base model, a GGUF file, a hub name) stays as it is."""
    expanded: list[str] = []
    found = False
    for name in models:
        path = Path(name).expanduser()
        steps = []
        if path.is_dir():
            for sub in path.iterdir():
                step = sub.name.removeprefix("step-")
                if sub.name.startswith("step-") and step.isdigit() and sub.is_dir():
                    steps.append((int(step), str(sub)))
        found = found or bool(steps)
        expanded += [s for _, s in sorted(steps)] + [name]
    if not found:
        raise AugmentError(
            f"--snapshots: no step-N/ snapshot folder in {', '.join(models)} "
            "(train with --snapshot-steps to keep them)"
        )
    return expanded


def _load(model_name: str, trust_remote_code: bool, path: str | None = None):
    """torch, tokenizer, model and device; `path`: `model_name` already resolved."""
    try:
        import torch
        import transformers
    except ImportError as e:
        raise AugmentError(f"augment eval needs {e.name}: pip install 'augment[train]'") from None
    from augment.models import resolve_model

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    path = path or resolve_model(model_name, trust_remote_code)
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
    shots: Sequence[QAItem] = (),
    on_progress: Callable[[int, int], None] = lambda done, total: None,
    store: AnswerStore | None = None,
) -> ModelScores:
    """Greedy answers and gold-answer likelihoods, `batch_size` questions at a time; with `store`,
    the answers it holds are reused (the model is not loaded when it holds them all) and each
    batch's are stored before the next starts."""
    from augment.backends.base import cuda_available
    from augment.models import resolve_model

    path = resolve_model(model_name, trust_remote_code)
    t0 = time.monotonic()
    prompts = prompts_for(items, mode, with_title, shots)
    device = "cuda" if cuda_available() else "cpu"
    pending = PendingAnswers(
        items,
        prompts,
        store,
        model=f"{model_fingerprint(path)} {device}",
        engine="transformers",
        max_new_tokens=max_new_tokens,
    )
    if pending.todo:
        torch, tok, model, dev = _load(model_name, trust_remote_code, path)
        tok.padding_side = "left"
        _check_positions(model_name, tok, model, [prompts[k] for k in pending.todo], max_new_tokens, pending)
    on_progress(len(items) - len(pending.todo), len(items))
    for lo in range(0, len(pending.todo), batch_size):
        batch = pending.todo[lo : lo + batch_size]
        enc = tok([prompts[k] for k in batch], return_tensors="pt", padding=True).to(dev)
        start = enc.input_ids.shape[1]
        with torch.no_grad():
            out = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tok.pad_token_id,
                stopping_criteria=_first_line_ends(torch, tok, start),
            )
        answers = [first_line(tok.decode(row, skip_special_tokens=True)) for row in out[:, start:]]
        # gold answer likelihood: teacher-forced, best (lowest) over the gold answers (and their
        # passage wordings for answer_nll_source)
        pairs = [(prompts[k], a) for k in batch for a in sum(pending.forms[k], [])]
        nlls = iter(_answer_nlls(torch, tok, model, dev, pairs))
        for k, answer in zip(batch, answers, strict=True):
            gold, source = pending.forms[k]
            scored = {a: next(nlls) for a in gold + source}
            pending.done(k, answer, min(scored[a] for a in gold), min(scored.values()))
        pending.save()
        on_progress(len(items) - len(pending.todo) + min(lo + batch_size, len(pending.todo)), len(items))
    return pending.scores(model_name, time.monotonic() - t0)


def _check_positions(
    model_name: str, tok: Any, model: Any, prompts: list[str], max_new_tokens: int, pending: PendingAnswers
) -> None:
    """Stop with one line where a prompt and its answer would not fit the model's positions: a
    learned position table fails there, a rotary model reads past what it was trained on, and
    the comparison needs the same prompt for every model, so none is shortened."""
    from augment.backends.local import model_context

    positions = model_context(model.config)
    if not positions:
        return
    longest = max((len(ids) for ids in tok(prompts).input_ids), default=0) if prompts else 0
    spans = [" " + answer_span(a) for k in pending.todo for a in sum(pending.forms[k], [])]
    ids = tok(spans, add_special_tokens=False).input_ids if spans else []
    answer = max((len(x) for x in ids), default=0)
    if longest + max(max_new_tokens, answer) > positions:
        raise AugmentError(
            f"{model_name}: the longest prompt is {longest} tokens and an answer takes up to "
            f"{max(max_new_tokens, answer)}, past the model's {positions} positions; use fewer --shots, "
            "the closed mode (no passage in the prompt) or a model with a longer context"
        )


def first_line(text: str) -> str:
    """A generated answer: its first line (a base model goes on to the next question)."""
    return text.strip().split("\n")[0].strip()


def prompts_for(items: list[QAItem], mode: str, with_title: bool, shots: Sequence[QAItem]) -> list[str]:
    """Every question's whole prompt: the shots, then the question in `mode`'s form."""
    prefix = shots_prefix(shots, mode, with_title)
    return [prefix + prompt_for(it, mode, with_title) for it in items]


class PendingAnswers:
    """One model's answers: those `store` holds, and the questions still `todo`, whose answers are
    kept as they come (`done`) and stored batch by batch (`save`)."""

    def __init__(
        self,
        items: list[QAItem],
        prompts: list[str],
        store: AnswerStore | None,
        *,
        model: str,
        engine: str,
        max_new_tokens: int,
    ):
        """`model`: what identifies the weights that answer (their files' fingerprint and the
        device, or a server and the name it serves them by)."""
        self.items, self.store = items, store
        self.forms = [likelihood_forms(it) for it in items]  # the answers whose likelihood is scored
        self.keys = [""] * len(items)
        held: dict[str, Scored] = {}
        if store is not None:
            self.keys = [
                store.key(model, engine, prompt, max_new_tokens, sum(forms, []))
                for prompt, forms in zip(prompts, self.forms, strict=True)
            ]
            held = store.get(self.keys)
        self.answers: list[Scored | None] = [held.get(k) for k in self.keys]
        self.reused = len(items) - self.answers.count(None)
        self.todo = [k for k, a in enumerate(self.answers) if a is None]
        self._unsaved: dict[str, Scored] = {}

    def done(self, k: int, prediction: str, nll: float, nll_source: float) -> None:
        self.answers[k] = (prediction, nll, nll_source)
        self._unsaved[self.keys[k]] = self.answers[k]

    def save(self) -> None:
        if self.store is not None and self._unsaved:
            self.store.put(self._unsaved)
        self._unsaved = {}

    def scores(self, model_name: str, seconds: float) -> ModelScores:
        predictions, nll, nll_source = (
            (list(x) for x in zip(*self.answers, strict=True)) if self.answers else ([], [], [])
        )
        scores = scores_from_predictions(model_name, self.items, predictions, nll, nll_source, seconds)
        scores.reused = self.reused
        return scores


def likelihood_forms(item: QAItem) -> tuple[list[str], list[str]]:
    """The answers whose likelihood is scored: the gold answers as written, and the passage's own
    wording of those it states in another form (none in closed mode's prompt, but the passage is
    what the model was meant to learn)."""
    gold = list(dict.fromkeys(item.answers))
    source = [f for a in gold if (f := source_form(a, item.passage)) and f not in gold]
    return gold, list(dict.fromkeys(source))


def vllm_available() -> bool:
    """vLLM is installed and a CUDA GPU is visible: `--engine auto` scores with it."""
    import importlib.util

    from augment.backends.base import cuda_available

    return importlib.util.find_spec("vllm") is not None and cuda_available()


def score_model_vllm(
    model_name: str,
    items: list[QAItem],
    *,
    mode: str = "closed",
    with_title: bool = False,
    max_new_tokens: int = 32,
    trust_remote_code: bool = False,
    gpu_memory_utilization: float = 0.8,
    shots: Sequence[QAItem] = (),
    on_progress: Callable[[int, int], None] = lambda done, total: None,
    store: AnswerStore | None = None,
) -> ModelScores:
    """The same scores as `score_model`, with vLLM on a GPU: every question's greedy answer in one
    batch, and every gold answer's likelihood from the prompt log-probabilities of prompt + answer
    (the same tokens and the same mean over the answer's tokens as the transformers path)."""
    try:
        import vllm
    except ImportError:
        raise AugmentError(
            "--engine vllm needs vllm on a CUDA machine: pip install 'augment[vllm]'"
        ) from None
    from augment.backends.base import cuda_available
    from augment.models import resolve_model

    if not cuda_available():
        raise AugmentError("--engine vllm needs a CUDA GPU and none is visible: use --engine transformers")
    path = resolve_model(model_name, trust_remote_code)
    t0 = time.monotonic()
    prompts = prompts_for(items, mode, with_title, shots)
    pending = PendingAnswers(
        items,
        prompts,
        store,
        model=f"{model_fingerprint(path)} cuda",
        engine="vllm",
        max_new_tokens=max_new_tokens,
    )
    on_progress(len(items) - len(pending.todo), len(items))
    if not pending.todo:
        return pending.scores(model_name, time.monotonic() - t0)
    llm = vllm.LLM(
        model=path, seed=0, trust_remote_code=trust_remote_code, gpu_memory_utilization=gpu_memory_utilization
    )
    try:
        tok = llm.get_tokenizer()
        todo = pending.todo
        greedy = vllm.SamplingParams(temperature=0.0, max_tokens=max_new_tokens)
        outs = llm.generate([prompts[k] for k in todo], [greedy] * len(todo), use_tqdm=False)
        predictions = [first_line(o.outputs[0].text) for o in outs]
        on_progress(len(items) - len(todo) // 2, len(items))
        pairs, owners = [], []
        for j, k in enumerate(todo):
            p_ids = list(tok(prompts[k]).input_ids)
            gold, source = pending.forms[k]
            for answer in gold + source:
                a_ids = list(tok(" " + answer_span(answer), add_special_tokens=False).input_ids)
                pairs.append((p_ids, a_ids))
                owners.append((j, answer in gold))
        # prompt_logprobs=0: each prompt position's own token's log-probability (None at position 0)
        scoring = vllm.SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=0)
        outs = llm.generate(
            [{"prompt_token_ids": p + a} for p, a in pairs], [scoring] * len(pairs), use_tqdm=False
        )
        nll = [float("inf")] * len(todo)
        nll_source = [float("inf")] * len(todo)
        for (j, is_gold), (p, a), out in zip(owners, pairs, outs, strict=True):
            positions = range(len(p), len(p) + len(a))
            logps = [_logprob(out.prompt_logprobs[i], (p + a)[i]) for i in positions]
            value = -sum(logps) / len(logps)
            nll_source[j] = min(nll_source[j], value)
            if is_gold:
                nll[j] = min(nll[j], value)
        for j, k in enumerate(todo):
            pending.done(k, predictions[j], nll[j], nll_source[j])
        pending.save()
        on_progress(len(items), len(items))
    finally:
        del llm  # free the GPU for the next model
        import gc

        gc.collect()
        try:
            import torch

            torch.cuda.empty_cache()
        except ImportError:
            pass
    return pending.scores(model_name, time.monotonic() - t0)


def _logprob(position: Any, token_id: int) -> float:
    entry = position[token_id]
    return float(getattr(entry, "logprob", entry))


def scores_from_predictions(
    model_name: str,
    items: list[QAItem],
    predictions: list[str],
    nll: list[float],
    nll_source: list[float],
    seconds: float,
) -> ModelScores:
    """A model's scores from its answers and answer likelihoods, one each per item: exact match, F1
    and containment are computed here, so a kept result can be scored again without the model."""
    per_item = {
        "exact_match": [exact_match(p, it.answers) for p, it in zip(predictions, items, strict=True)],
        "f1": [f1_score(p, it.answers) for p, it in zip(predictions, items, strict=True)],
        "contains": [contains(p, it.answers) for p, it in zip(predictions, items, strict=True)],
        "answer_nll": nll,
        "answer_nll_source": nll_source,
    }
    scores = ModelScores(model_name, predictions, per_item, seconds)
    scores.summary = summarize(per_item)
    return scores


def _first_line_ends(torch: Any, tok: Any, start: int) -> Any:
    """A stopping criterion: a row is done once its answer's first line is (a newline after text),
    so a batch stops when every answer has one instead of running to max_new_tokens. The answers
    are the same: `first_line` keeps only that line."""
    from transformers import StoppingCriteria, StoppingCriteriaList

    class FirstLineEnds(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            texts = tok.batch_decode(input_ids[:, start:], skip_special_tokens=True)
            return torch.tensor(["\n" in t.lstrip() for t in texts], device=input_ids.device)

    return StoppingCriteriaList([FirstLineEnds()])


_LOGITS_BUDGET = 2**28  # floats of logits one likelihood forward may hold (1 GiB)


def _answer_nlls(torch: Any, tok: Any, model: Any, dev: str, pairs: list[tuple[str, str]]) -> list[float]:
    """Mean NLL per token of each answer after its prompt, teacher-forced, several pairs a forward.
    Left-padded so every answer ends at the last position, with positions counted from each row's
    first token (as unpadded), and logits kept for the answers' positions only: a large vocabulary
    (Gemma's 262k) times whole prompts would not fit."""
    encoded = [
        (tok(p).input_ids, tok(" " + answer_span(a), add_special_tokens=False).input_ids) for p, a in pairs
    ]
    head = model.get_output_embeddings()
    vocab = head.weight.shape[0] if head is not None else model.config.get_text_config().vocab_size
    out: list[float] = []
    lo = 0
    while lo < len(encoded):  # as many pairs a forward as the logits budget allows (at least one)
        hi, longest = lo, 0
        while hi < len(encoded):
            grown = max(longest, len(encoded[hi][1]))
            if hi > lo and (hi + 1 - lo) * (grown + 1) * vocab > _LOGITS_BUDGET:
                break
            longest, hi = grown, hi + 1
        chunk = encoded[lo:hi]
        width = max(len(p) + len(a) for p, a in chunk)
        ids = torch.full((len(chunk), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for i, (p, a) in enumerate(chunk):
            ids[i, width - len(p) - len(a) :] = torch.tensor(p + a)
            mask[i, width - len(p) - len(a) :] = 1
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        keep = longest + 1  # the logits that predict each row's answer tokens
        inputs = dict(input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=positions.to(dev))
        with torch.no_grad():
            try:
                logits = model(**inputs, logits_to_keep=keep).logits[:, -keep:]
            except TypeError:  # a model whose forward cannot keep only the last logits
                logits = model(**inputs).logits[:, -keep:]
        logp = torch.log_softmax(logits.float(), dim=-1)
        for i, (_, a) in enumerate(chunk):
            rows = logp[i, keep - 1 - len(a) : keep - 1]  # position t predicts token t + 1
            out.append(float(-rows.gather(1, torch.tensor(a, device=rows.device)[:, None]).mean()))
        lo = hi
    return out


def paired_differences(
    base: ModelScores, other: ModelScores, seed: int = 0
) -> dict[str, tuple[float, float, float]]:
    """other - base per metric, paired by question (those both have a score for), with a 95 %
    bootstrap interval."""
    return {
        m: _ci(np.asarray(other.per_item[m], dtype=float) - np.asarray(base.per_item[m], dtype=float), seed)
        for m in metrics_of([base, other])
    }
