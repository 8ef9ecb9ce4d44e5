"""Filters: each looks at one record (and its source chunk) and says why it must go, if it must.

`check(record, chunk)` returns None or a number (kept; the number is recorded under `checks`) or a
Verdict with the drop reason.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from augment.curate.dedup import Verdict
from augment.curate.text import ngrams, normalize, record_body, words
from augment.qafile import load_qa
from augment.tokens import Tokenizer


class LengthFilter:
    name = "length"

    def __init__(self, tokenizer: Tokenizer, min_tokens: int, max_tokens: int):
        self.tokenizer = tokenizer
        self.min_tokens = min_tokens
        self.max_tokens = max_tokens

    def check(self, rec: dict, chunk: str) -> Verdict | float | None:
        n = self.tokenizer.count(rec["text"])
        if n < self.min_tokens:
            return Verdict("too_short", detail=n)
        if n > self.max_tokens:
            return Verdict("too_long", detail=n)
        return n


# What assistants say instead of doing the task, or around it. A phrase that the source chunk
# itself contains is not boilerplate (a support FAQ may well say "let me know if").
_BOILERPLATE = [
    r"\bas an ai\b",
    r"\bas a (large )?language model\b",
    r"\bi(?: am|'m) (?:sorry|unable|not able)\b",
    r"\bi (?:cannot|can't|can not) (?:help|assist|provide|comply|fulfil)",
    r"^(?:sure|certainly|of course|absolutely)\b[,!. ]",
    r"\bhere(?: is|'s| are) (?:a|an|the|your|some)\b[^.\n]{0,60}\b(?:rewrite|rewritten|paraphrase|summary|version|notes|list|pairs?)\b",
    r"\bi hope (?:this|that) helps\b",
    # our own prompt scaffold, continued by a base model: the document block's closing line and
    # the instructions' wording
    r"^-{3,}\s*$",
    r"\b(?:the|a) document above\b",
    r"\blet me know if\b",
    r"\b(?:the|this) (?:text|passage|document) (?:does not|doesn't) (?:say|mention|provide)\b",
]


class BoilerplateFilter:
    name = "boilerplate"

    def __init__(self) -> None:
        self._patterns = [re.compile(p, re.IGNORECASE | re.MULTILINE) for p in _BOILERPLATE]

    def check(self, rec: dict, chunk: str) -> Verdict | float | None:
        body = record_body(rec)
        for p in self._patterns:
            m = p.search(body)
            if m and not p.search(chunk):
                return Verdict("boilerplate", detail=m.group(0))
        return None


class RepetitionFilter:
    """A record that says the same thing over and over: a small model stuck in a loop.

    Measured as the share of the record's words that lie inside a word n-gram (8 by default)
    occurring more than once in it. Natural prose repeats no 8-gram: none of the 368 passages of
    the two dev sets in ../shared/data does, while Gemma 3 270M's looping dialogues ("Teacher:
    It was a power struggle." again and again) score about 0.3 to 1.
    """

    name = "repetition"

    def __init__(self, max_share: float = 0.2, ngram: int = 8):
        self.max_share = max_share
        self.ngram = ngram

    def share(self, text: str) -> float:
        tokens = words(text)
        grams = ngrams(tokens, self.ngram)
        counts = Counter(grams)
        covered = [False] * len(tokens)
        for i, g in enumerate(grams):
            if counts[g] > 1:
                covered[i : i + self.ngram] = [True] * self.ngram
        return sum(covered) / len(tokens) if tokens else 0.0

    def check(self, rec: dict, chunk: str) -> Verdict | float | None:
        share = round(self.share(record_body(rec)), 3)
        if share > self.max_share:
            return Verdict("repetition", detail=share)
        return share


class CopyFilter:
    """A rewrite or inference that copies its source teaches nothing new.

    Measured as n-gram containment: the share of the record's word n-grams (8 by default) that
    also occur in the chunk. QA pairs are exempt by default: their evidence is a quote on purpose.
    """

    name = "copy"

    def __init__(self, ngram: int = 8, threshold: float = 0.5, exempt: list[str] | None = None):
        self.ngram = ngram
        self.threshold = threshold
        self.exempt = set(exempt or [])
        self._chunk_cache: tuple[str, set[str]] = ("", set())

    def _chunk_grams(self, chunk: str) -> set[str]:
        if self._chunk_cache[0] is not chunk:  # records of one chunk come together
            self._chunk_cache = (chunk, set(ngrams(words(chunk), self.ngram)))
        return self._chunk_cache[1]

    def check(self, rec: dict, chunk: str) -> Verdict | float | None:
        if rec["strategy"] in self.exempt:
            return None
        grams = ngrams(words(record_body(rec)), self.ngram)
        if not grams:
            return None
        source = self._chunk_grams(chunk)
        containment = sum(g in source for g in grams) / len(grams)
        if containment >= self.threshold:
            return Verdict("copies_source", detail=round(containment, 3))
        return round(containment, 3)


# a capitalised word or a number of 3+ digits; names are told from sentence starts by what precedes them
_TERM = re.compile(r"\b(?:[A-Z][\w'-]*[a-z][\w'-]*|\d{3,})\b")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\n\"(*•-]|\d\.)\s*$")


def trained_text(rec: dict) -> str:
    """Everything a record trains on: its text, and the turns of its chat form (a question too)."""
    return "\n".join([rec.get("text", ""), *(m.get("content", "") for m in rec.get("messages") or [])])


def example_terms(text: str) -> set[str]:
    """The names and numbers of a few-shot example: capitalised words that do not start a sentence
    (or a line), and numbers of three or more digits."""
    return {
        m.group(0)
        for m in _TERM.finditer(text)
        if not _SENTENCE_START.search(text[max(0, m.start() - 4) : m.start()])
    }


class ExampleCopyFilter:
    """Small base models copy the few-shot prompt's worked example into their answer ("the K2 is a
    modern version of the Orlen Valley Railway"). A record that names something from its strategy's
    example (a name, a year) that its own chunk does not contain is dropped: it teaches the example,
    not the document.
    """

    name = "example_copy"

    def __init__(self, examples: dict[str, str]):
        self.terms = {name: example_terms(text) for name, text in examples.items()}
        self._chunk_cache: tuple[str, set[str]] = ("", set())

    def _chunk_words(self, chunk: str) -> set[str]:
        if self._chunk_cache[0] is not chunk:
            self._chunk_cache = (chunk, set(words(chunk)))
        return self._chunk_cache[1]

    def check(self, rec: dict, chunk: str) -> Verdict | float | None:
        terms = self.terms.get(rec["strategy"])
        if not terms:
            return None
        in_chunk = self._chunk_words(chunk)
        trained = trained_text(rec)
        leaked = sorted(t for t in set(_TERM.findall(trained)) & terms if not set(words(t)) <= in_chunk)
        return Verdict("copies_example", detail=", ".join(leaked)) if leaked else None


class GroundingFilter:
    """QA pairs must quote their source and answer from the quote.

    The evidence must match a span of the chunk (rapidfuzz partial ratio >= min_score, after
    folding case, punctuation and whitespace), and the answer must match within the evidence.
    A pair without evidence (the few-shot form asks small models for question and answer only)
    needs its answer to match a span of the chunk itself. Records without an answer pass untouched.
    """

    name = "grounding"

    def __init__(
        self, min_score: float = 90.0, evidence_field: str = "evidence", answer_field: str = "answer"
    ):
        self.min_score = min_score
        self.evidence_field = evidence_field
        self.answer_field = answer_field

    def check(self, rec: dict, chunk: str) -> Verdict | float | None:
        from rapidfuzz import fuzz

        fields = rec.get("fields") or {}
        evidence, answer = fields.get(self.evidence_field), fields.get(self.answer_field)
        if not isinstance(answer, str):
            return None
        if evidence is None:
            ans, src = normalize(answer), normalize(chunk)
            score = fuzz.partial_ratio(ans, src) if ans and len(ans) <= len(src) else 0.0
            if score < self.min_score:
                return Verdict("answer_not_in_source", detail=round(score, 1))
            return round(score, 1)
        if not isinstance(evidence, str):
            return None
        ev, src, ans = normalize(evidence), normalize(chunk), normalize(answer)
        if not ev:
            return Verdict("ungrounded_evidence", detail="empty evidence")
        in_chunk = fuzz.partial_ratio(ev, src) if len(ev) <= len(src) else fuzz.ratio(ev, src)
        if in_chunk < self.min_score:
            return Verdict("ungrounded_evidence", detail=round(in_chunk, 1))
        if not ans:
            return Verdict("answer_not_in_evidence", detail="empty answer")
        supported = fuzz.partial_ratio(ans, ev) if len(ans) <= len(ev) else fuzz.ratio(ans, ev)
        if supported < self.min_score:
            return Verdict("answer_not_in_evidence", detail=round(supported, 1))
        return round(min(in_chunk, supported), 1)


# a number as written ("1981", "26th", "1980s", "3.5"): compared by its digits
_NUMBER = re.compile(r"\b\d[\d,.]*(?:st|nd|rd|th|s)?\b")
# a list's own numbering ("1. ", "2) ") is not a fact
_ENUMERATOR = re.compile(r"^\s*\d{1,2}[.)]\s", re.MULTILINE)


_NUMBER_WORDS = "zero one two three four five six seven eight nine ten eleven twelve".split()  # noqa: SIM905


def _digits(token: str) -> str:
    return "".join(c for c in token if c.isdigit())


def source_numbers(text: str) -> set[str]:
    """The numbers a text states (digits, and "two" as "2"), and the sums and differences of two of
    them: "36 years later" is supported by 1862 and 1898."""
    found = {_digits(m) for m in _NUMBER.findall(text)}
    vocabulary = set(words(text))
    found |= {str(i) for i, w in enumerate(_NUMBER_WORDS) if w in vocabulary}
    ints = sorted({int(n) for n in found if n and len(n) <= 5})[:200]
    for i, a in enumerate(ints):
        for b in ints[i + 1 :]:
            found |= {str(b - a), str(a + b)}
    return found


class UnsupportedTermsFilter:
    """A record must not assert names and numbers its source does not have.

    Small generators rewrite "directed by Víctor Soto" as "directed by Alberto del Rio", or add a
    year, a city, a cast. Such a record teaches a false fact next to the true one. The terms of a
    record are its capitalised words that do not start a sentence and its numbers (as in
    `example_terms`); a term is supported when each of its words is in the chunk or the document's
    title (a word of six or more letters also by its first five: "Mexican" by "Mexico"), a number
    when its digits are (or it is the sum or difference of two numbers there: an inference may count
    the years between two dates). The record is dropped when more than `max_share` of its terms are
    unsupported and at least `min_count` of them are: a well-known name that an inference adds is
    kept, a rewrite that swaps the cast is not. Strategies in `exempt` are not checked.
    """

    name = "unsupported_terms"
    uses_title = True

    def __init__(self, max_share: float = 0.2, min_count: int = 1, exempt: list[str] | None = None):
        self.max_share = max_share
        self.min_count = min_count
        self.exempt = set(exempt or [])
        self._cache: tuple[str, set[str], set[str], set[str]] = ("", set(), set(), set())

    def _source(self, source: str) -> tuple[set[str], set[str], set[str]]:
        if self._cache[0] != source:
            ws = set(words(source))
            self._cache = (
                source,
                ws,
                {w[:5] for w in ws if len(w) >= 6},
                source_numbers(source),
            )
        return self._cache[1:]

    def unsupported(self, text: str, source: str) -> tuple[list[str], int]:
        """(the unsupported terms, how many terms) of `text` against `source`."""
        ws, stems, numbers = self._source(source)
        text = _ENUMERATOR.sub(" ", text)
        names = example_terms(text)
        names = {re.sub(r"['’]s$", "", n) for n in names if not any(c.isdigit() for c in n)}
        nums = {m for m in _NUMBER.findall(text)}
        missing = [n for n in sorted(names) if any(w not in ws and w[:5] not in stems for w in words(n))]
        missing += [n for n in sorted(nums) if _digits(n) not in numbers]
        return missing, len(names) + len(nums)

    def check(self, rec: dict, chunk: str, title: str = "") -> Verdict | float | None:
        if rec["strategy"] in self.exempt:
            return None
        missing, total = self.unsupported(trained_text(rec), f"{title}\n{chunk}")
        if not total:
            return None
        share = len(missing) / total
        if len(missing) >= self.min_count and share > self.max_share:
            return Verdict("unsupported_terms", detail=", ".join(missing[:8]))
        return round(share, 3)


def load_eval_items(path: Path, answers: bool = False) -> list[str]:
    """Questions of an evaluation file (with `answers`, their answers too), read as `augment eval`
    reads it, but every question, unanswerable or without answers too. Answers are left out by
    default: a gold answer is a span of the documents, and records quoting the documents are what
    training on them is for."""
    items = load_qa(path, skip_unanswerable=False, need_answers=False)
    return [text for item in items for text in [item.question, *(item.answers if answers else [])]]


class Decontaminator:
    """Drop records that share a long word n-gram with an evaluation question (or answer).

    An item shorter than `ngram` words counts whole (if it has at least `min_words` words): a
    9-word question is leaked when the record contains those 9 words in a row.
    """

    name = "decontaminate"

    def __init__(self, items: list[str], ngram: int = 13, min_words: int = 6):
        self.ngram = ngram
        self._grams: dict[int, set[str]] = {}
        for item in items:
            toks = words(item)
            if len(toks) < min_words:
                continue
            n = min(ngram, len(toks))
            self._grams.setdefault(n, set()).update(ngrams(toks, n))

    def check(self, rec: dict, chunk: str) -> Verdict | float | None:
        toks = words(rec["text"] + " " + " ".join(m.get("content", "") for m in rec.get("messages") or []))
        for n, grams in self._grams.items():
            for g in ngrams(toks, n):
                if g in grams:
                    return Verdict("eval_contamination", detail=g)
        return None


class ConflictingAnswers:
    """One question given different answers from one document: drop every record of it.

    Small generators write generic questions and pair each with whatever span they were on ("What
    is the company's name?" kept with 2014, Sky UK Limited and British Sky Broadcasting Limited).
    Trained closed-book, such a question teaches that any of the document's salient phrases answers
    it. Questions are compared with case, accents and punctuation folded; two answers agree when
    one's words run inside the other's ("1851" and "in 1851"). Unlike the other filters this sees
    all of a document's surviving records at once, so it runs after the per-record steps.
    """

    name = "conflicting_answers"

    def __init__(self, question_field: str = "question", answer_field: str = "answer"):
        self.question_field = question_field
        self.answer_field = answer_field

    def find(self, records: list[dict]) -> list[Verdict | None]:
        groups: dict[tuple[str, str], list[int]] = {}
        for i, rec in enumerate(records):
            fields = rec.get("fields") or {}
            question, answer = fields.get(self.question_field), fields.get(self.answer_field)
            if isinstance(question, str) and isinstance(answer, str) and normalize(question):
                groups.setdefault((rec.get("doc_id", ""), normalize(question)), []).append(i)
        out: list[Verdict | None] = [None] * len(records)
        for members in groups.values():
            answers = [records[i]["fields"][self.answer_field] for i in members]
            distinct = _distinct_answers(answers)
            if len(distinct) < 2:
                continue
            detail = " | ".join(distinct[:6]) + (f" (+{len(distinct) - 6})" if len(distinct) > 6 else "")
            for i in members:
                out[i] = Verdict(self.name, detail=detail)
        return out


def _distinct_answers(answers: list[str]) -> list[str]:
    """The answers that no other one contains (word for word, folded), in order of first appearance."""
    kept: list[tuple[str, str]] = []  # (answer as written, " folded words ")
    for answer in answers:
        folded = f" {normalize(answer)} "
        if not folded.strip():
            continue
        if any(folded in other or other in folded for _, other in kept):
            continue
        kept.append((answer.strip(), folded))
    return [a for a, _ in kept]
