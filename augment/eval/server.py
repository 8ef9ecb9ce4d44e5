"""Score models that an OpenAI-compatible server serves (`augment eval --engine server`).

The same prompts and scores as the transformers and vLLM engines, for weights that are not on this
machine: a model served by vLLM, SGLang or llama.cpp's server, or one fine-tuned at a provider.
Answers are greedy completions of the prompt, cut to their first line. A gold answer's likelihood
comes from the server's log-probabilities of the prompt's own tokens (`echo`, completions endpoint
only): prompt and answer are sent as one text, and the tokens from the answer's first character on
are scored. Servers that do not echo them or refuse to (and every chat endpoint) leave `answer_nll`
n/a.
Requests go through the run's retry, rate and concurrency machinery (`pipeline.run_calls`).
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from augment.config import RunConfig
from augment.errors import AugmentError, FatalBackendError, ParseError
from augment.eval.metrics import answer_span
from augment.eval.runner import ModelScores, PendingAnswers, first_line, prompts_for
from augment.eval.store import AnswerStore
from augment.io import sha256_hex
from augment.qafile import QAItem
from augment.strategies.parsers import Parsed, answer_of
from augment.types import GenRequest, GenResult

if TYPE_CHECKING:
    from augment.pipeline.runner import Outcome


def answer_nll_of(data: dict, start: int, end: int) -> float:
    """Mean NLL per token of the text's characters [start, end) from a scoring reply (see
    `GenRequest.score_prompt`): the tokens that begin there. NaN when the server gave none."""
    offsets, logprobs = data.get("offsets"), data.get("logprobs")
    if not offsets or not logprobs or not any(at < start for at in offsets):
        return math.nan  # no echo of the prompt (llama.cpp's server scores the generated token only)
    span = [lp for at, lp in zip(offsets, logprobs, strict=True) if start <= at < end]
    if not span or any(lp is None for lp in span):
        return math.nan
    return -sum(span) / len(span)


def check_served(models: list[str], config: RunConfig) -> None:
    """Every model is one the server lists, before the first is scored (a server that lists none is
    taken at its word, as is one whose list is empty, and one that cannot be reached: answers
    stored before need no server, and the first request says it is down)."""
    from augment.backends.openai import OpenAIBackend

    OpenAIBackend.from_config(config.model_copy(update={"model": models[0]})).check_served(models)


def _timeout_hint(config: RunConfig) -> str:
    return (
        f"; {config.concurrency} requests in flight waited past request_timeout "
        f"({config.request_timeout:g} s): a server that answers one at a time wants --concurrency 1"
    )


def _least(values: list[float]) -> float:
    return min((v for v in values if not math.isnan(v)), default=math.nan)


def score_model_server(
    model_name: str,
    items: list[QAItem],
    config: RunConfig,
    *,
    mode: str = "closed",
    with_title: bool = False,
    max_new_tokens: int = 32,
    shots: Sequence[QAItem] = (),
    on_progress: Callable[[int, int], None] = lambda done, total: None,
    store: AnswerStore | None = None,
) -> ModelScores:
    """`model_name` as the server at `config.base_url` names it; `config.endpoint` completions (base
    or fine-tuned models: answers and likelihoods) or chat (answers only)."""
    from augment.backends.openai import OpenAIBackend
    from augment.pipeline.runner import run_calls

    backend = OpenAIBackend.from_config(config.model_copy(update={"model": model_name}))
    t0 = time.monotonic()
    prompts = prompts_for(items, mode, with_title, shots)
    pending = PendingAnswers(
        items,
        prompts,
        store,
        model=f"{backend.base_url} {model_name}",  # the server's name for the weights: no files to see
        engine=f"server/{backend.endpoint}",
        max_new_tokens=max_new_tokens,
    )

    def request(prompt: str, max_tokens: int, score_from: int | None = None, stop: bool = True) -> GenRequest:
        key = sha256_hex(
            "\x1f".join(map(str, (backend.identity, model_name, prompt, max_tokens, score_from, stop)))
        )
        return GenRequest(
            key=key,
            prompt=prompt,
            temperature=0.0,
            max_tokens=max_tokens,
            seed=config.seed,
            strategy="eval",
            chat=backend.chat,
            stop=("\n",) if stop and score_from is None else (),
            score_prompt=score_from is not None,
            context={} if score_from is None else {"score_from": str(score_from)},
        )

    requests: list[GenRequest] = []
    ends: dict[int, tuple[int, int]] = {}  # a question's last request -> the question, its first request
    for k in pending.todo:
        first = len(requests)
        requests.append(request(prompts[k], max_new_tokens))  # generation ends at the answer's line
        if not backend.chat:  # a chat endpoint scores no given text
            gold, source = pending.forms[k]
            for answer in gold + source:
                requests.append(request(f"{prompts[k]} {answer_span(answer)}", 1, len(prompts[k])))
        ends[len(requests) - 1] = (k, first)

    refused: list[str] = []  # the server's messages where it would not score a prompt

    def parse(req: GenRequest, result: GenResult) -> Parsed:
        if not req.score_prompt:
            return Parsed(items=[{"answer": first_line(answer_of(result.text))}])
        try:
            data = json.loads(result.text)
            nll = answer_nll_of(data, int(req.context["score_from"]), len(req.prompt))
        except (ValueError, TypeError, AttributeError) as e:
            raise ParseError(f"not a scoring reply: {e}") from None
        if "refused" in data:
            refused.append(data["refused"])
        return Parsed(items=[{"nll": repr(nll)}])

    replies: dict[int, Parsed] = {}
    failed: list[str] = []
    again: dict[int, tuple[float, float]] = {}  # empty at the first newline: asked again without it
    done = len(items) - len(pending.todo)

    def on_outcome(o: Outcome) -> None:  # outcomes come in request order: a question's last one ends it
        nonlocal done
        if o.parsed is None:
            failed.append(o.error or "no reply")
        else:
            replies[o.index] = o.parsed
        if o.index not in ends:
            return
        k, first = ends[o.index]
        if all(i in replies for i in range(first, o.index + 1)):
            mine = [replies.pop(i) for i in range(first, o.index + 1)]  # held only until the question ends
            nlls = [float(p.items[0]["nll"]) for p in mine[1:]]
            nll = (_least(nlls[: len(pending.forms[k][0])]), _least(nlls))
            answer = mine[0].items[0]["answer"]
            if answer:
                pending.done(k, answer, *nll)
                pending.save()  # a killed eval keeps every question answered so far
            else:
                again[k] = nll
        done += 1
        on_progress(done, len(items))

    def on_again(o: Outcome) -> None:
        if o.parsed is None:
            failed.append(o.error or "no reply")
            return
        k = asked_again[o.index]
        pending.done(k, o.parsed.items[0]["answer"], *again[k])
        pending.save()

    on_progress(done, len(items))
    with tempfile.TemporaryDirectory() as tmp:
        calls = Path(tmp) / "calls.sqlite"
        try:
            run_calls(backend, requests, parse, calls, config, on_outcome=on_outcome)
            if again:
                # a model that opens its answer with a newline: the first line after it, as the
                # other engines take it (a stop at the first newline cut it to nothing)
                asked_again = list(again)
                redo = [request(prompts[k], max_new_tokens, stop=False) for k in asked_again]
                run_calls(backend, redo, parse, calls, config, on_outcome=on_again)
                requests += redo
        except FatalBackendError as e:  # many failed in a row: the run stopped
            if "request_timeout" not in str(e):
                raise
            raise FatalBackendError(f"{e}{_timeout_hint(config)}") from None
    if failed:
        kept = "; the other questions' answers are kept" if store is not None else ""
        slow = next((f for f in failed if "within request_timeout" in f), None)
        raise AugmentError(
            f"{model_name}: {len(failed)} of {len(requests)} requests to {backend.base_url} failed "
            f"(first: {slow or failed[0]}){kept}; re-run to retry{_timeout_hint(config) if slow else ''}"
        )
    scores = pending.scores(model_name, time.monotonic() - t0)
    missing = sum(math.isnan(v) for v in scores.per_item["answer_nll"])
    if missing:
        if backend.chat:
            why = "a chat endpoint scores no given text (--endpoint completions does)"
        elif refused:
            why = f"{backend.base_url} would not echo the prompt's log-probabilities ({refused[0]})"
        else:
            why = f"{backend.base_url} gave no log-probabilities of the prompt's tokens (echo)"
        scores.warnings.append(
            f"{model_name}: answer likelihood is n/a for {missing} of {len(items)} questions: {why}"
        )
    return scores
