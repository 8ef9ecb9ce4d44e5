"""Text normalisation and n-grams shared by the dedup and filter steps."""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"\w+", re.UNICODE)


def normalize(text: str) -> str:
    """Case, accents, punctuation and whitespace folded: 'Café,  DU Monde!' -> 'cafe du monde'."""
    text = unicodedata.normalize("NFKD", text.casefold())
    return " ".join(_WORD.findall("".join(c for c in text if not unicodedata.combining(c))))


def words(text: str) -> list[str]:
    return normalize(text).split()


def ngrams(tokens: list[str], n: int) -> list[str]:
    """Word n-grams joined by spaces; a text shorter than n is one n-gram (itself)."""
    if len(tokens) < n:
        return [" ".join(tokens)] if tokens else []
    return [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def record_body(rec: dict) -> str:
    """What a record teaches: the assistant turn (the answer, the rewrite), else the training text."""
    messages = rec.get("messages") or []
    if messages and messages[-1].get("role") == "assistant" and messages[-1].get("content"):
        return messages[-1]["content"]
    return rec.get("text", "")
