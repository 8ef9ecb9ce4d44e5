"""A deterministic backend with no model: it writes its replies from the chunk text itself.

Replies have the shape each parser expects — cloze questions whose answers are spans of the
chunk with the sentence as evidence, sentence-level rewrites, bullet notes — and sometimes the
wrapping real models add (a code fence, a preamble, trailing prose), so every stage downstream
sees realistic input. It can inject retryable failures and malformed replies at given rates;
which requests are hit follows from the request key, so a test knows the outcome in advance.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from typing import ClassVar

from augment.config import RunConfig
from augment.errors import BackendError
from augment.io import sha256_hex
from augment.tokens import approx_count
from augment.types import GenRequest, GenResult, Usage

_SENTENCE = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(\[]?[A-Z0-9])")
_NUMBER = re.compile(r"\b\d[\d,.]*\d\b|\b\d\b")
_PROPER = re.compile(r"(?<!^)(?<![.!?]\s)\b([A-Z][a-z]+(?:\s+(?:of\s+|the\s+|de\s+)?[A-Z][a-z]+)*)")
_WORD = re.compile(r"\b[A-Za-z]{6,}\b")

_CONNECTORS = ("It follows that", "This implies that", "One consequence is that", "In other words,")
_MALFORMED = (
    '[{"question": "What is',  # cut off mid-JSON
    "I'm sorry, but I can't help with that request.",
    "",
)


def _unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from the parts."""
    return int(sha256_hex("\x1f".join(map(str, parts)))[:12], 16) / 16**12


def sentences(text: str) -> list[str]:
    out = []
    for para in re.split(r"\n\s*\n", text):
        para = " ".join(para.split())
        out.extend(s.strip() for s in _SENTENCE.split(para) if len(s.split()) >= 4)
    return out


def _answer_span(sentence: str) -> str | None:
    for pattern in (_NUMBER, _PROPER, _WORD):
        spans = [m.group(0) for m in pattern.finditer(sentence)]
        spans = [s for s in spans if len(s) < len(sentence) // 2]
        if spans:
            return max(spans, key=len)
    return None


_FUNCTION_WORDS = {
    "a",
    "an",
    "the",
    "in",
    "it",
    "this",
    "these",
    "at",
    "on",
    "if",
    "since",
    "once",
    "every",
    "all",
}


_STOP = set(
    [
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "from",
        "by",
        "with",
        "and",
        "or",
        "but",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "which",
        "who",
        "whom",
        "as",
        "into",
        "than",
        "then",
        "there",
        "their",
        "they",
        "he",
        "she",
        "his",
        "her",
        "has",
        "have",
        "had",
        "do",
        "does",
        "did",
        "not",
    ]
)


# words the mock's own replies wrap facts in; its judge does not count them as unsupported
_SCAFFOLD = set(
    [
        "question",
        "answer",
        "which",
        "what",
        "word",
        "phrase",
        "completes",
        "statement",
        "student",
        "teacher",
        "know",
        "else",
        "should",
        "words",
        "study",
        "notes",
        "follows",
        "implies",
        "consequence",
        "other",
        "documented",
        "notably",
        "evidently",
    ]
)


_CAPS = re.compile(r"\b[A-Z][\w'-]*(?:\s+(?:of\s+|the\s+|de\s+)?[A-Z][\w'-]*)*")
_YEAR = re.compile(r"\b1[5-9]\d\d\b|\b20\d\d\b")


def _salient(text: str) -> list[str]:
    """A mock entity list: capitalised names (without a leading function word), years, and content
    words used more than once; most frequent first (ties: first seen)."""
    found: list[str] = []
    for sent in sentences(text) or [" ".join(text.split())]:
        for m in _CAPS.finditer(sent):
            words = m.group(0).split()
            while words and (words[0].lower() in _STOP or words[0].lower() in _FUNCTION_WORDS):
                words = words[1:]
            if words and not (m.start() == 0 and len(words) == 1 and sent.count(words[0]) == 1):
                found.append(" ".join(words))
    found += _YEAR.findall(text)
    common = Counter(w.lower() for w in re.findall(r"\b[a-z]{6,}\b", text) if w.lower() not in _STOP)
    found += [w for w, n in common.items() if n > 1]
    if not found:  # a one-line definition: its longest words
        found = sorted({w for w in re.findall(r"[A-Za-z]{5,}", text) if w.lower() not in _STOP}, key=len)[-3:]
    counts = Counter(found)
    return sorted(dict.fromkeys(found), key=lambda n: -counts[n])


def condense(sentence: str) -> str:
    """A telegraphic rewrite: the sentence's content words in order (keeps facts, breaks long copies)."""
    kept = [w for w in sentence.rstrip(".").split() if w.lower().strip(",;:") not in _STOP]
    return " ".join(kept).strip(",;: ") + "."


def _lower_first(s: str) -> str:
    first = s.split(" ", 1)[0]
    return s[0].lower() + s[1:] if first.lower() in _FUNCTION_WORDS else s


class MockBackend:
    name: ClassVar[str] = "mock"
    retry_wait: ClassVar[float] = 0.0

    def __init__(self, model: str = "mock", fail_rate: float = 0.0, malformed_rate: float = 0.0):
        self._model = model
        self.fail_rate = fail_rate
        self.malformed_rate = malformed_rate
        self.attempts: dict[str, int] = {}
        self.calls = 0

    @classmethod
    def from_config(cls, config: RunConfig) -> MockBackend:
        return cls(config.model or "mock", config.mock_fail_rate, config.mock_malformed_rate)

    @property
    def model(self) -> str:
        return self._model

    @property
    def identity(self) -> str:
        return self.name

    @property
    def chat(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None

    async def generate(self, req: GenRequest) -> GenResult:
        self.calls += 1
        attempt = self.attempts[req.key] = self.attempts.get(req.key, 0) + 1
        if _unit(req.key, "fail", attempt) < self.fail_rate:
            raise BackendError("mock: injected server error (503)", retryable=True)
        if _unit(req.key, "malformed") < self.malformed_rate:
            text = _MALFORMED[int(_unit(req.key, "which") * len(_MALFORMED))]
        else:
            text = self.reply(req)
        usage = Usage(approx_count(req.prompt), approx_count(text))
        return GenResult(text=text, finish_reason="stop", usage=usage)

    def reply(self, req: GenRequest) -> str:
        rng = random.Random(req.key)
        if req.parser == "judge":
            return self._judge(req.source, req.target)
        if req.parser == "grade":
            return self._grade(req.source.split("\n"), req.target, rng)
        sents = sentences(req.source) or [" ".join(req.source.split())]
        if req.context.get("answer") and req.context.get("sentence"):  # kind spans: write the question
            sentence, answer = req.context["sentence"], req.context["answer"]
            cloze = sentence.replace(answer, "_____").rstrip(".")
            body = f'Which word or phrase completes this statement: "{cloze}"?'
            return " " + body if not req.chat else self._wrap(body, req.parser, rng)
        if req.step:
            body = self._step(req, sents, rng)
            if not req.chat:
                return body.removeprefix(req.primer) if body.startswith(req.primer) else " " + body
            return self._wrap(body, req.parser, rng)
        if not req.chat:
            return self._continuation(req, sents, rng)
        if req.parser == "json_list":
            body = self._json_items(sents, req.fields, rng)
        elif req.parser == "numbered_list":
            picked = rng.sample(sents, min(len(sents), 8))
            body = "\n".join(
                f"{i}. {rng.choice(_CONNECTORS)} {_lower_first(condense(s))}" for i, s in enumerate(picked, 1)
            )
        else:
            body = self._rewrite(sents, req.variant or req.strategy, rng)
        return self._wrap(body, req.parser, rng)

    def _step(self, req: GenRequest, sents: list[str], rng: random.Random) -> str:
        """Multi-step strategies: entity lists, relations, study plans and their application."""
        names = _salient(req.source)
        if req.step == "entities":
            summary = " ".join(condense(s) for s in sents[:2])
            if req.chat:
                return json.dumps({"summary": summary, "entities": names[:12]}, ensure_ascii=False)
            listing = "\n".join(f"{i}. {n}" for i, n in enumerate(names[:12], 1))
            return f"Summary: {summary}\nEntities:\n{listing}"
        if req.step == "relate":
            group = req.variant.split(" | ")
            about = [s for s in sents if any(g.lower() in s.lower() for g in group)]
            about.sort(key=lambda s: -sum(g.lower() in s.lower() for g in group))  # stable
            facts = " ".join(condense(s) for s in (about or sents)[:4])
            return f"{' and '.join(group)} are linked in this account. {facts}"
        if req.step == "plan":
            numbers = list(dict.fromkeys(m.group(0) for m in _NUMBER.finditer(req.source)))
            plan = []
            if numbers:
                plan.append(f"Timeline: put the events dated {', '.join(numbers[:3])} in order.")
            plan += [f"Self-quiz: ask and answer questions about {n}." for n in names[:2]]
            if len(names) >= 4:
                plan.append(f"Comparison: compare {names[2]} and {names[3]}.")
            plan.append(f"Summary: restate the {len(sents)} key facts in your own words.")
            return "\n".join(f"{i}. {p}" for i, p in enumerate(plan, 1))
        if req.step == "apply":
            study = req.context.get("study", "")
            if study.lower().startswith("timeline"):
                dated = [s for s in sents if _NUMBER.search(s)]
                dated.sort(key=lambda s: _NUMBER.search(s).group(0))  # type: ignore[union-attr]
                return "\n".join(f"{_NUMBER.search(s).group(0)}: {condense(s)}" for s in dated) or condense(
                    sents[0]
                )  # type: ignore[union-attr]
            focus = [n for n in names if n.lower() in study.lower()]
            picked = [s for s in sents if any(f in s for f in focus)] or sents
            if study.lower().startswith("self-quiz"):
                lines = []
                for s in picked:
                    span = _answer_span(s)
                    if span:
                        lines += [f"Q: What completes this: {s.replace(span, '___', 1)}", f"A: {span}"]
                return "\n".join(lines) or condense(picked[0])
            return " ".join(f"Key point: {condense(s)}" for s in picked)
        raise ValueError(f"mock: unknown step '{req.step}'")

    def _continuation(self, req: GenRequest, sents: list[str], rng: random.Random) -> str:
        """Completion style: the few-shot answer format, continuing from the primer (cut before any stop)."""
        if req.parser == "json_list":
            labels = {"question": "Q", "answer": "A"}
            items = json.loads(self._json_items(sents, req.fields, rng))
            body = "\n".join(
                f"{labels.get(f, f.capitalize())}: {item[f]}" for item in items for f in req.fields
            )
        elif req.parser == "numbered_list":
            picked = rng.sample(sents, min(len(sents), 8))
            body = "\n".join(f"{i}. {_lower_first(condense(s))}" for i, s in enumerate(picked, 1))
        else:
            body = self._rewrite(sents, req.variant or req.strategy, rng)
        return body.removeprefix(req.primer) if body.startswith(req.primer) else " " + body

    def _json_items(self, sents: list[str], fields: tuple[str, ...], rng: random.Random) -> str:
        items = []
        for s in rng.sample(sents, min(len(sents), 6)):
            span = _answer_span(s)
            if not span:
                continue
            cloze = s.replace(span, "_____", 1).rstrip(".")
            values = {
                "question": f'Which word or phrase completes this statement: "{cloze}"?',
                "answer": span,
                "evidence": s,
            }
            items.append({f: values.get(f, s) for f in fields})
        return json.dumps(items, ensure_ascii=False, indent=1)

    def _rewrite(self, sents: list[str], style: str, rng: random.Random) -> str:
        short = [condense(s) for s in sents]
        if style == "simple":
            parts = [p.strip().rstrip(".") for s in short for p in re.split(r",\s+|;\s+", s)]
            return " ".join(p[0].upper() + p[1:] + "." for p in parts if p)
        if style == "academic":
            openers = ("Notably,", "It is documented that", "Evidently,")
            return " ".join(f"{rng.choice(openers)} {_lower_first(s)}" for s in short)
        if style == "qa_dialogue":
            lines = []
            for s in short:
                lines += ["Student: What else should I know?", f"Teacher: {s}"]
            return "\n".join(lines)
        if style == "notes":
            return "\n".join("- " + s for s in short)
        return " ".join(reversed(short)) if len(short) > 1 else short[0]

    @staticmethod
    def _judge(source: str, target: str) -> str:
        # faithfulness: the share of the example's content words that the source contains
        src = {w.lower() for w in re.findall(r"\w+", source)} | _SCAFFOLD
        content = [w.lower() for w in re.findall(r"\w+", target) if len(w) > 3]
        share = sum(w in src for w in content) / len(content) if content else 0.0
        faithfulness = (
            5 if share >= 0.8 else 4 if share >= 0.5 else 3 if share >= 0.35 else 2 if share >= 0.2 else 1
        )
        usefulness = 4 if len(content) >= 6 else 3 if len(content) >= 3 else 1
        reason = f"{share:.0%} of the example's content words appear in the source"
        return json.dumps({"faithfulness": faithfulness, "usefulness": usefulness, "reason": reason})

    @classmethod
    def _grade(cls, answers: list[str], prediction: str, rng: random.Random) -> str:
        # correct when the prediction holds every number and at least half the words of a gold answer
        said = {w.lower() for w in re.findall(r"\w+", prediction)}
        best, share, correct = "", 0.0, False
        for answer in answers:
            words = [w.lower() for w in re.findall(r"\w+", answer) if w.lower() not in ("a", "an", "the")]
            if not words:
                continue
            s = sum(w in said for w in words) / len(words)
            ok = s >= 0.5 and all(w in said for w in words if w.isdigit())
            if (ok, s) > (correct, share):
                best, share, correct = answer, s, ok
        reason = f"it states {share:.0%} of the words of the gold answer {best!r}" if best else "no gold word"
        return cls._wrap(json.dumps({"correct": correct, "reason": reason}), "grade", rng)

    @staticmethod
    def _wrap(body: str, parser: str, rng: random.Random) -> str:
        # Real models wrap their payload; the parsers must cope with each of these.
        r = rng.random()
        if r < 0.25:
            fence = "json" if parser in ("json_list", "entities") else ""
            return f"```{fence}\n{body}\n```"
        if r < 0.5:
            return f"Sure, here is what you asked for:\n{body}" + (
                "\n\nLet me know if you need more." if parser != "text" else ""
            )
        return body
