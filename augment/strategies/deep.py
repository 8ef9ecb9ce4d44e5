"""Multi-step strategies: a first request per chunk, then one request per task it yields.

- `entigraph` (after Yang et al., "Synthetic continued pretraining"): the first step lists the
  chunk's salient entities (and a short summary); the tasks are groups of those entities — pairs,
  then triples — and each asks for a passage on how they relate in this document.
- `active-reading` (after Lin et al., "Learning facts at scale with active reading"): the first
  step proposes study strategies suited to the chunk (a timeline, a self-quiz, analogies ...); the
  tasks apply each one to the chunk.

The reference implementations enumerate every pair and triple. Here tasks come in a fixed,
seeded order — a weighted sample without replacement in which groups of often-mentioned entities
tend to come first — and the pipeline sends them in that order until the strategy's token budget
for the chunk is spent (pipeline/deep.py). The order depends only on the first step's reply, the
seed and the chunk, so a resumed run draws the same sample as an unbroken one.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from itertools import combinations
from typing import Any

from augment.errors import ParseError
from augment.io import sha256_hex
from augment.strategies.base import PromptHeader, RecordTemplates, Strategy
from augment.strategies.parsers import Parsed
from augment.types import Chunk, GenRequest, GenResult

#: (first step, second step) of each kind; the names appear in requests and records
STEPS = {"entigraph": ("entities", "relate"), "active-reading": ("plan", "apply")}

_WORD = re.compile(r"\w+")
_MINOR = {"the", "and", "of", "a", "an", "in", "on", "at", "for", "to", "de", "la", "von", "van"}


@dataclass(frozen=True, slots=True)
class Task:
    label: str  # the record's variant: names the task in ids, `augment show` and provenance
    context: dict[str, str]  # template variables of the second step's prompt
    sample: int = 0


def unit(*parts: object) -> float:
    """A number in (0, 1), fixed by the parts."""
    return (int(sha256_hex("\x1f".join(map(str, parts)))[:13], 16) + 0.5) / 16**13


def mentions(entity: str, text: str, words: Counter[str] | None = None) -> int:
    """How often `entity` occurs in `text`: as a phrase, else as its rarest content word (0: absent)."""
    lower = text.lower()
    n = len(re.findall(rf"(?<!\w){re.escape(entity.lower())}(?!\w)", lower))
    if n:
        return n
    words = words if words is not None else Counter(_WORD.findall(lower))
    content = [w for w in _WORD.findall(entity.lower()) if w not in _MINOR and len(w) > 2]
    return min((words[w] for w in content), default=0)


def natural_join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def weighted_order(
    groups: list[tuple[str, ...]], weight: dict[str, int], *key: object
) -> list[tuple[str, ...]]:
    """A weighted sample without replacement of all `groups` (Efraimidis-Spirakis: sort by -ln(u)/w),
    the weight of a group being the product of its entities' mentions."""

    def rank(group: tuple[str, ...]) -> float:
        w = math.prod(weight[e] for e in group)
        return -math.log(unit(*key, "|".join(group))) / w

    return sorted(groups, key=rank)


class DeepStrategy(Strategy):
    """A strategy of kind entigraph or active-reading; the header and body describe the second step."""

    @property
    def kind(self) -> str:
        return self.header.kind

    @property
    def steps(self) -> tuple[str, str]:
        return STEPS[self.kind]

    @property
    def budget_tokens(self) -> int:
        assert self.header.budget_tokens is not None  # the header validator requires it
        return self.header.budget_tokens

    def example_text(self) -> str:
        return super().example_text() + "\n" + self.first.example_text()

    @cached_property
    def first(self) -> Strategy:
        step = self.header.first
        assert step is not None
        header = PromptHeader(
            name=self.name,
            version=self.version,
            parser=step.parser,
            fields=step.fields,
            temperature=step.temperature,
            max_tokens=step.max_tokens,
            record=step.record or RecordTemplates(text="", user="", assistant=""),
            completion=step.completion,
            expect_completion=step.expect_completion,
        )
        return Strategy(
            header, self.path, step.instruction, self.document_block, self.sha256, self.example_document
        )

    def count(self, chunk: Chunk, samples: int | None = None) -> int:
        return 1  # the first step's; the tasks come in later waves

    def build(
        self,
        chunk: Chunk,
        *,
        backend: str,
        model: str,
        seed: int,
        samples: int | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        style: str = "chat",
    ) -> list[GenRequest]:
        """The first step's one request for this chunk (samples apply to the tasks, not to this step)."""
        return [
            self.first.request(
                chunk,
                variant="",
                sample=0,
                backend=backend,
                model=model,
                seed=seed,
                temperature=temperature,
                max_tokens=max_tokens,
                style=style,
                step=self.steps[0],
                strategy=self.name,
            )
        ]

    def task_request(
        self,
        chunk: Chunk,
        task: Task,
        *,
        backend: str,
        model: str,
        seed: int,
        temperature: float | None = None,
        max_tokens: int | None = None,
        style: str = "chat",
    ) -> GenRequest:
        return self.request(
            chunk,
            variant=task.label,
            sample=task.sample,
            backend=backend,
            model=model,
            seed=seed,
            temperature=temperature,
            max_tokens=max_tokens,
            style=style,
            context=task.context,
            step=self.steps[1],
        )

    def parse(
        self, text: str, finish_reason: str = "stop", chat: bool = True, step: str = "", source: str = ""
    ) -> Parsed:
        if step != self.steps[0]:
            return super().parse(text, finish_reason, chat)
        parsed = self.first.parse(text, finish_reason, chat)
        return self._check_entities(parsed, source) if self.kind == "entigraph" and source else parsed

    def parse_request(self, req: GenRequest, text: str, finish_reason: str) -> Parsed:
        return self.parse(text, finish_reason, req.chat, step=req.step, source=req.source)

    def _check_entities(self, parsed: Parsed, source: str) -> Parsed:
        """Entities that occur in the chunk, most mentioned first (ties: the model's order), capped."""
        field = self.first.fields[0]
        words = Counter(_WORD.findall(source.lower()))
        found, rejected = [], list(parsed.rejected)
        for item in parsed.items:
            n = mentions(item[field], source, words)
            if n:
                found.append({field: item[field], "mentions": str(n)})
            else:
                rejected.append(f"entity '{item[field][:60]}' does not occur in the chunk")
        if not found:
            raise ParseError("none of the entities occurs in the chunk")
        found.sort(key=lambda it: -int(it["mentions"]))  # stable: ties keep the model's order
        return Parsed(found, rejected, parsed.meta)

    def tasks(self, chunk: Chunk, parsed: Parsed, seed: int, samples: int | None = None) -> list[Task]:
        """The second step's tasks in the order they are sent: every task of sample 0, then of sample 1 ..."""
        field = self.first.fields[0]
        items = parsed.items[: self.header.max_items]
        if self.kind == "entigraph":
            weight = {it[field]: int(it.get("mentions", "1")) for it in items}
            names = list(weight)
            base: list[Task] = []
            for size in self.header.group_sizes:
                groups = weighted_order(list(combinations(names, size)), weight, seed, chunk.chunk_id, size)
                base += [Task(" | ".join(g), {"entities": natural_join(list(g))}) for g in groups]
        else:
            base, seen = [], Counter[str]()
            for it in items:
                study = it[field]
                label = _short_label(study)
                seen[label] += 1
                if seen[label] > 1:
                    label = f"{label} #{seen[label]}"
                base.append(Task(label, {"study": study}))
        n = samples or self.header.samples
        return [dataclasses.replace(t, sample=s) for s in range(n) for t in base]

    def records(
        self,
        chunk: Chunk,
        req: GenRequest,
        result: GenResult,
        parsed: Parsed,
        *,
        backend: str,
        model: str,
        parents: list[dict[str, str]] | None = None,
    ) -> list[dict[str, Any]]:
        if req.step != self.steps[0]:
            return super().records(chunk, req, result, parsed, backend=backend, model=model, parents=parents)
        step = self.header.first
        summary = parsed.meta.get("summary", "")
        if step is None or step.record is None or not summary:
            return []
        # the first step's own training text: its summary of the chunk
        return self.first.records(
            chunk,
            dataclasses.replace(req, variant="summary"),
            result,
            Parsed([{"summary": summary}]),
            backend=backend,
            model=model,
        )


def _short_label(study: str) -> str:
    head = study.split(":", 1)[0].strip()
    words = (head if 0 < len(head.split()) <= 6 else study).split()[:6]
    return " ".join(words).strip(".,;") or "study"
