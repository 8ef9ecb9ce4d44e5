"""Token budgets for multi-step strategies, and the waves of requests that spend them.

A multi-step strategy's budget (prompt + completion tokens, its first step included) is per
document or per corpus; either way it is shared out over chunks in proportion to their tokens.
After the first step's reply on a chunk, its tasks are sent in their fixed order, in waves: a wave
takes the next tasks for as long as their worst case (the prompt's tokens + max_tokens) fits what
is left of the chunk's budget, and the next wave is sized on what the replies really cost. The
run ends for a chunk when the next task cannot fit: the budget is never exceeded, and at most one
request's worst case of it goes unused.

Every decision depends only on replies (cached, with their token counts) and the fixed task order,
so a run that was killed and resumed sends the same tasks as one that was not.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from augment.strategies.deep import DeepStrategy, Task
from augment.types import Chunk, GenRequest, GenResult


def chunk_budgets(chunks: list[Chunk], budget: int, scope: str) -> dict[str, int]:
    """chunk_id -> tokens: `budget` per document (scope 'document') or for all (scope 'corpus'),
    shared out in proportion to chunk tokens."""
    groups: dict[str, list[Chunk]] = {}
    for c in chunks:
        groups.setdefault(c.doc_id if scope == "document" else "", []).append(c)
    out = {}
    for group in groups.values():
        total = sum(max(c.tokens, 1) for c in group)
        for c in group:
            out[c.chunk_id] = budget * max(c.tokens, 1) // total
    return out


@dataclass
class DeepWork:
    """One multi-step strategy on one chunk: its tasks, what it has spent and what comes next."""

    chunk: Chunk
    strategy: DeepStrategy
    budget: int
    count: Callable[[str], int]  # estimated prompt tokens
    parent: str = ""  # the first step's request key
    tasks: list[Task] = field(default_factory=list)
    next: int = 0  # tasks[:next] have been sent
    spent: int = 0  # tokens of the replies so far (first step included)
    scale: float = 1.0  # the backend's prompt tokens per estimated token (from the first step)
    failed: int = 0
    _held: tuple[GenRequest, int] | None = None  # the task that did not fit the last wave, rendered

    def start(self, req: GenRequest, result: GenResult | None, tasks: list[Task]) -> None:
        """The first step came back (`tasks` empty if it failed)."""
        self.parent = req.key
        self.tasks = tasks
        if result is not None:
            self.spend(result)
            estimated = self.count(req.prompt)
            if result.usage.prompt_tokens > 0 and estimated > 0:
                self.scale = max(1.0, result.usage.prompt_tokens / estimated)

    def spend(self, result: GenResult | None, worst: int = 0) -> None:
        """A second-step reply (or, if it failed, its worst case: a failure must not free budget)."""
        if result is None:
            self.spent += worst
            self.failed += 1
        else:
            self.spent += result.usage.prompt_tokens + result.usage.completion_tokens

    def worst(self, req: GenRequest) -> int:
        return math.ceil(self.count(req.prompt) * self.scale) + req.max_tokens

    def wave(self, build: Callable[[Task], GenRequest]) -> list[tuple[GenRequest, int]]:
        """The next tasks whose worst cases fit the budget left, as (request, worst case)."""
        left = self.budget - self.spent
        out = []
        while self.next < len(self.tasks):
            req, worst = self._held or (req := build(self.tasks[self.next]), self.worst(req))
            self._held = None
            if worst > left:
                self._held = (req, worst)  # not rendered again for the next wave
                break
            left -= worst
            out.append((req, worst))
            self.next += 1
        return out

    @property
    def parents(self) -> list[dict[str, str]]:
        return [{"step": self.strategy.steps[0], "request": self.parent[:16]}]

    def summary(self) -> dict[str, Any]:
        return {
            "tasks": len(self.tasks),
            "sent": self.next,
            "spent_tokens": self.spent,
            "budget_tokens": self.budget,
        }
