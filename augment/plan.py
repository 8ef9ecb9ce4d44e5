"""`augment plan`: requests, tokens and cost of a `generate` run, estimated before any model call.

Documents are read and chunked exactly as `generate` reads them, and every first request is
rendered, so request counts and prompt tokens are exact (as counted by the run's tokenizer).
Completion tokens are estimated from each prompt file's `expect_completion` (completion tokens
per chunk token, capped at max_tokens). For multi-step strategies the first step's item count is
its prompt file's `expect_items`, and the tasks sent follow the same budget waves as a real run
(pipeline/deep.py), so their estimate is close to the budget they will spend whenever there are
more tasks than the budget covers.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from augment.backends.base import backend_name, reply_room
from augment.config import RunConfig
from augment.ingest import Chunker, Skipped
from augment.pipeline import Work, cost, read_documents
from augment.pipeline.deep import chunk_budgets
from augment.strategies import Strategy, load_strategies
from augment.strategies.deep import DeepStrategy, Task
from augment.tokens import Tokenizer
from augment.types import Chunk


@dataclass
class StrategyPlan:
    strategy: str
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Plan:
    documents: int
    chunks: int
    style: str
    style_reason: str
    strategies: list[StrategyPlan]
    skipped: list[Skipped] = field(default_factory=list)
    # what a model's context must hold: the longest prompt (first requests, run's tokenizer) and the
    # most reply tokens a prompt file asks for; against context_tokens where the backend is in
    # this process (local, vllm): requests whose prompt leaves less than REPLY_ROOM would fail
    longest_prompt: int = 0
    most_reply: int = 0
    context: int | None = None
    context_name: str = ""  # what holds it: "context_tokens=4096", "the model's 2048 positions"
    too_long: int = 0
    cut_replies: int = 0  # requests whose max_tokens would be lowered to the room left
    # batch_api: most requests a batch, most batches out at once (None: requests go one by one)
    batch_requests: int | None = None
    batches_at_once: int = 0

    @property
    def total(self) -> StrategyPlan:
        t = StrategyPlan("all")
        for s in self.strategies:
            t.requests += s.requests
            t.prompt_tokens += s.prompt_tokens
            t.completion_tokens += s.completion_tokens
            if s.cost is not None:
                t.cost = (t.cost or 0.0) + s.cost
        return t

    @property
    def batches(self) -> dict[str, int] | None:
        """batch_api: how many batches the requests take at least (a deep strategy's later steps go
        in later batches), and the prompt tokens each holds, which the server's queue must take."""
        if self.batch_requests is None:
            return None
        total = self.total
        n = max(1, -(-total.requests // self.batch_requests))
        return {
            "batches": n,
            "requests_per_batch": min(total.requests, self.batch_requests),
            "at_once": self.batches_at_once,
            "prompt_tokens_per_batch": -(-total.prompt_tokens // n),
        }

    def to_dict(self) -> dict[str, Any]:
        def row(s: StrategyPlan) -> dict[str, Any]:
            return {
                "requests": s.requests,
                "prompt_tokens": s.prompt_tokens,
                "completion_tokens": s.completion_tokens,
                "tokens": s.tokens,
                "cost": None if s.cost is None else round(s.cost, 6),
            }

        return {
            "documents": self.documents,
            "chunks": self.chunks,
            "prompt_style": self.style,
            "prompt_style_from": self.style_reason,
            "strategies": {s.strategy: row(s) for s in self.strategies},
            "total": row(self.total),
            "skipped": [x.to_dict() for x in self.skipped],
            "longest_prompt_tokens": self.longest_prompt,
            "most_reply_tokens": self.most_reply,
            "context_tokens": self.context,
            "too_long_for_context": self.too_long,
            "replies_cut_to_context": self.cut_replies,
            "batch_api": self.batches,
        }


def planned_style(config: RunConfig) -> tuple[str, str]:
    """The prompt style `generate` would use, and why, without loading a model."""
    if config.prompt_style != "auto":
        return config.prompt_style, "prompt_style setting"
    name = backend_name(config)
    if name == "openai":
        return ("chat" if config.endpoint == "chat" else "completion"), f"openai {config.endpoint} endpoint"
    if name == "local":
        from augment.backends.local import takes_chat

        chat = takes_chat(config.model)
        if chat is None:
            return (
                "completion",
                "local model's chat template unknown (llama-cpp-python missing): assumed none",
            )
        return ("chat" if chat else "completion"), "local model " + (
            "has a chat template" if chat else "is a base model"
        )
    return "chat", f"{name} backend"


def _expected(strategy: Strategy, chunk: Chunk, max_tokens: int) -> int:
    return min(max_tokens, math.ceil(strategy.header.expect_completion * chunk.tokens))


_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][\w'-]*|\b\d[\d.,]*\b")


def _names_in(text: str) -> int:
    """Distinct capitalised words (not opening a sentence) and numbers: a proxy for a text's entities."""
    return len(set(_NAME.findall(" ".join(text.split()))))


def _example_task(strategy: DeepStrategy) -> Task:
    form = strategy.header.completion
    names = ("Entity One", "Entity Two", "Entity Three")
    default = {"entities": "Entity One and Entity Two", "study": "Self-quiz: ask and answer questions on it."}
    context = dict(form.example_vars) if form is not None and form.example_vars else {}
    key = "entities" if strategy.kind == "entigraph" else "study"
    context.setdefault(key, default[key])
    return Task(" | ".join(names[:2]), context)


def _deep_estimate(
    strategy: DeepStrategy,
    chunk: Chunk,
    budget: int,
    config: RunConfig,
    count: Any,
    style: str,
    identity: str,
    model: str,
) -> tuple[int, int, int]:
    """(requests, prompt tokens, completion tokens) of one chunk, following the run's budget waves."""
    sampling = dict(
        seed=config.seed, temperature=config.temperature, max_tokens=config.max_tokens, style=style
    )
    first = strategy.build(chunk, backend=identity, model=model, **sampling)[0]
    p1, c1 = count(first.prompt), _expected(strategy.first, chunk, first.max_tokens)
    step = strategy.header.first
    assert step is not None
    items = min(step.expect_items, strategy.header.max_items)
    if strategy.kind == "entigraph":
        items = min(items, max(1, _names_in(chunk.text)))  # a short glossary entry has few entities
        tasks = sum(math.comb(items, g) for g in strategy.header.group_sizes)
    else:
        tasks = items
    tasks *= config.samples or strategy.header.samples
    req = strategy.task_request(chunk, _example_task(strategy), backend=identity, model=model, **sampling)
    p2, c2 = count(req.prompt), _expected(strategy, chunk, req.max_tokens)
    worst = p2 + req.max_tokens
    spent, sent = p1 + c1, 0
    while sent < tasks:
        fit = min(tasks - sent, max(budget - spent, 0) // worst)
        if fit == 0:
            break
        sent += fit
        spent += fit * (p2 + c2)
    return 1 + sent, p1 + sent * p2, c1 + sent * c2


def plan(inputs: list[str], config: RunConfig, on_skip: Any = None) -> Plan:
    strategies = load_strategies(config.strategies, config.prompts_dir)
    tokenizer = Tokenizer(config.tokenizer)
    ingested = read_documents(inputs, config, on_skip or (lambda s: None))
    chunks = list(Chunker(tokenizer, config.chunk_tokens, config.chunk_overlap).chunk_all(ingested.documents))
    style, why = planned_style(config)
    # the backend's name and model only enter request keys, never prompts: any value renders the same
    identity, model = config.backend, config.model or ""
    rows = {s.name: StrategyPlan(s.name) for s in strategies}
    single = [s for s in strategies if not isinstance(s, DeepStrategy)]
    in_process = backend_name(config) in ("local", "vllm")
    fit = Plan(0, 0, style, why, [])
    if config.batch_api:
        fit.batch_requests, fit.batches_at_once = config.batch_requests, config.batches_at_once
    if in_process:  # a transformers folder is held to its positions, as generate holds it
        from augment.backends.local import folder_context

        positions = folder_context(config.model) if backend_name(config) == "local" else None
        fit.context = positions or config.context_tokens
        fit.context_name = (
            f"the model's {positions} positions" if positions else f"context_tokens={fit.context}"
        )
    for chunk, strategy, req in Work(chunks, single, config, identity, model, style):
        row = rows[strategy.name]
        n = tokenizer.count(req.prompt)
        row.requests += 1
        row.prompt_tokens += n
        row.completion_tokens += _expected(strategy, chunk, req.max_tokens)
        fit.longest_prompt, fit.most_reply = max(fit.longest_prompt, n), max(fit.most_reply, req.max_tokens)
        if fit.context is not None:
            room = reply_room(fit.context, n, req.max_tokens)
            fit.too_long += room is None
            fit.cut_replies += room is not None and room < req.max_tokens
    for strategy in strategies:
        if not isinstance(strategy, DeepStrategy):
            continue
        budgets = chunk_budgets(chunks, config.budget_tokens or strategy.budget_tokens, config.budget_scope)
        row = rows[strategy.name]
        for chunk in chunks:
            n, p, c = _deep_estimate(
                strategy, chunk, budgets[chunk.chunk_id], config, tokenizer.count, style, identity, model
            )
            row.requests += n
            row.prompt_tokens += p
            row.completion_tokens += c
    for row in rows.values():
        row.cost = cost(config, row.prompt_tokens, row.completion_tokens)
    fit.documents, fit.chunks, fit.strategies, fit.skipped = (
        len(ingested.documents),
        len(chunks),
        list(rows.values()),
        ingested.skipped,
    )
    return fit


__all__ = ["Plan", "StrategyPlan", "plan", "planned_style"]
