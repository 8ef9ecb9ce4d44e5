"""Parsers turn a model's reply into items (dicts of named string fields).

They accept what real models emit around the payload (code fences, a preamble line, trailing
prose, numbered or bulleted lists, trailing commas in JSON) and raise ParseError with a short
reason for anything else. Items that are present but unusable are returned as `rejected` reasons
so the rest of the reply still counts.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from augment.errors import ParseError

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
_HARMONY_FINAL = "<|channel|>final<|message|>"  # gpt-oss's answer channel, as a raw completion has it
UNFINISHED_THOUGHT = (
    "the reply ended in the model's reasoning, before its answer: allow more tokens (a prompt "
    "file's max_tokens) or turn the reasoning down (extra_body, see the README)"
)


def strip_reasoning(text: str) -> tuple[str, bool]:
    """(the answer, whether the reply ended before it) of a reply that may open with a reasoning
    model's thoughts: `<think>...</think>` (DeepSeek-R1, Qwen3, QwQ, Magistral and the like when
    the server does not take it apart; the template may have opened the tag, so only the close
    shows) or gpt-oss's analysis channel. Replies without them come back as they are."""
    if THINK_CLOSE in text:
        return text.rsplit(THINK_CLOSE, 1)[1].lstrip(), False
    if text.lstrip().startswith(THINK_OPEN):
        return "", True
    if _HARMONY_FINAL in text:
        answer = text.rsplit(_HARMONY_FINAL, 1)[1]
        for end in ("<|return|>", "<|end|>"):
            answer = answer.split(end, 1)[0]
        return answer.strip(), False
    if text.lstrip().startswith("<|channel|>analysis"):
        return "", True
    return text, False


def answer_of(text: str) -> str:
    """A reply without a reasoning model's thoughts; ParseError, not re-asked, where it ended in them."""
    answer, unfinished = strip_reasoning(text)
    if unfinished:
        raise ParseError(UNFINISHED_THOUGHT, reask=False)
    return answer


@dataclass(slots=True)
class Parsed:
    items: list[dict[str, str]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)  # reply-level fields (an entity list's summary)


_FENCE = re.compile(r"```[\w+-]*[ \t]*\n(.*?)(?:^```|\Z)", re.DOTALL | re.MULTILINE)
_PREAMBLE = re.compile(
    r"^\s*(?:sure|certainly|okay|ok|of course|here(?:'s| is| are)|below (?:is|are))\b[^\n]*:\s*\n",
    re.IGNORECASE,
)


def strip_wrapping(text: str) -> str:
    """The content of the first code fence if there is one, else the text without a chatty preamble."""
    m = _FENCE.search(text)
    if m:
        return m.group(1).strip()
    return _PREAMBLE.sub("", text, count=1).strip()


def _norm_key(key: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(key).strip().lower()).strip("_")


def _loads_lenient(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return json.loads(re.sub(r",\s*([\]}])", r"\1", text))  # trailing commas


def _find_json(text: str) -> Any:
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for cand in candidates:
        cand = cand.strip()
        try:
            return _loads_lenient(cand)
        except json.JSONDecodeError:
            pass
        # JSON followed or preceded by prose: decode from the first bracket, ignore what trails
        for opener in "[{":
            start = cand.find(opener)
            if start < 0:
                continue
            try:
                return json.JSONDecoder().raw_decode(cand, start)[0]
            except json.JSONDecodeError:
                end = cand.rfind("]" if opener == "[" else "}")
                if end > start:
                    try:
                        return _loads_lenient(cand[start : end + 1])
                    except json.JSONDecodeError:
                        pass
    raise ParseError("no JSON list or labelled fields found")


def _as_items(data: Any, fields: tuple[str, ...]) -> list[Any]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        keys = {_norm_key(k) for k in data}
        if fields and set(fields) <= keys:
            return [data]
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) == 1:
            return lists[0]
    raise ParseError(f"expected a JSON list, got {type(data).__name__}")


def _coerce(raw: Any, fields: tuple[str, ...], rejected: list[str]) -> dict[str, str] | None:
    if isinstance(raw, str) and len(fields) == 1:
        raw = {fields[0]: raw}
    if not isinstance(raw, dict):
        rejected.append(f"item is a {type(raw).__name__}, not an object")
        return None
    by_key = {_norm_key(k): v for k, v in raw.items()}
    item: dict[str, str] = {}
    for f in fields:
        value = by_key.get(f)
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            rejected.append(f"item missing '{f}'")
            return None
        item[f] = value.strip()
    return item


# "Question: ...", "**Q:** ...", "1. Question: ..." — what models write when they ignore "JSON only"
_LABEL = re.compile(r"^\s*(?:\d{1,3}[.)]\s*)?[*_]*([A-Za-z][A-Za-z _]{0,30}?)[*_]*\s*[:：][*_]*\s*(.*)$")


def _parse_labelled(text: str, fields: tuple[str, ...]) -> list[dict[str, str]]:
    aliases = {_norm_key(f): f for f in fields}
    for f in fields:
        aliases.setdefault(f[0], f)  # Q:, A:, E:
    items: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last: str | None = None
    for line in text.splitlines():
        m = _LABEL.match(line)
        name = aliases.get(_norm_key(m.group(1))) if m else None
        if name:
            if name in current:
                items.append(current)
                current = {}
            current[name] = m.group(2).strip().strip('"')
            last = name
        elif last and line.strip():
            current[last] = (current[last] + " " + line.strip()).strip()
        elif not line.strip():
            last = None
    if current:
        items.append(current)
    return [it for it in items if len(it) > 1 or len(fields) == 1]


def parse_json_list(text: str, fields: tuple[str, ...]) -> Parsed:
    """A JSON list of objects with the strategy's fields (or labelled 'Field: value' blocks)."""
    if not text.strip():
        raise ParseError("empty response")
    try:
        raw_items = _as_items(_find_json(text), fields)
    except ParseError:
        labelled = _parse_labelled(strip_wrapping(text), fields) if fields else []
        if not labelled:
            raise
        raw_items = labelled
    out = Parsed()
    for raw in raw_items:
        item = _coerce(raw, fields, out.rejected)
        if item is not None:
            out.items.append(item)
    if not out.items:
        raise ParseError(out.rejected[0] if out.rejected else "empty JSON list")
    return out


_ITEM = re.compile(r"^\s*(?:\d{1,3}[.)]|[-*•])\s+(.*\S)\s*$")


def parse_numbered_list(text: str, fields: tuple[str, ...]) -> Parsed:
    """A numbered or bulleted list; a preamble before it and prose after it are ignored."""
    field_name = fields[0] if fields else "text"
    items: list[str] = []
    gap = False
    for line in strip_wrapping(text).splitlines():
        m = _ITEM.match(line)
        if m:
            items.append(m.group(1))
            gap = False
        elif not line.strip():
            gap = True
        elif items and not gap:
            items[-1] += " " + line.strip()  # wrapped continuation of the item
        elif items and gap and line.startswith((" ", "\t")):
            items[-1] += " " + line.strip()
        elif items:
            break  # trailing prose after the list
    items = [re.sub(r"^\*\*(.+?)\*\*\s*", r"\1 ", it).strip() for it in items]
    items = [it for it in items if it]
    if not items:
        raise ParseError("empty response" if not text.strip() else "no list items found")
    return Parsed(items=[{field_name: it} for it in items])


def parse_text(text: str, fields: tuple[str, ...]) -> Parsed:
    """The whole reply as one item (code fence and chatty preamble removed)."""
    body = strip_wrapping(text)
    if not body:
        raise ParseError("empty response")
    return Parsed(items=[{(fields[0] if fields else "text"): body}])


_SUMMARY = re.compile(r"^\s*[*_]*summary[*_]*\s*[:：][*_]*\s*(.*)$", re.IGNORECASE)
_ENTITIES = re.compile(r"^\s*[*_]*(?:salient\s+)?entities[*_]*\s*[:：][*_]*\s*(.*)$", re.IGNORECASE)
MAX_ENTITY_WORDS = 10


def _clean_entity(raw: Any) -> str:
    if isinstance(raw, dict):  # {"name": ..., "type": ...}
        raw = raw.get("name") or raw.get("entity") or next(iter(raw.values()), "")
    name = " ".join(str(raw).split()).strip("\"'`*_ ").rstrip(".,;:")
    return re.sub(r"^\d{1,3}[.)]\s*", "", name)


def parse_entities(text: str, fields: tuple[str, ...]) -> Parsed:
    """Salient entities and an optional summary: a JSON object {"summary", "entities": [...]} (EntiGraph's
    format), a JSON list of names, or text with a 'Summary:' line and the names as a list or after 'Entities:'."""
    field_name = fields[0] if fields else "entity"
    if not text.strip():
        raise ParseError("empty response")
    summary, names = "", []
    data: Any = None
    start = text.find("{")  # the object first: _find_json would take its inner list for the payload
    if start >= 0:
        with contextlib.suppress(json.JSONDecodeError):
            data = json.JSONDecoder().raw_decode(text, start)[0]
    if not (isinstance(data, dict) and isinstance(data.get("entities"), list)):
        try:
            data = _find_json(text)
        except ParseError:
            data = None
    if isinstance(data, dict) and isinstance(data.get("entities"), list):
        summary, names = str(data.get("summary") or ""), data["entities"]
    elif isinstance(data, list) and data and all(isinstance(x, str | dict) for x in data):
        names = data
    else:
        current = None
        for line in strip_wrapping(text).splitlines():
            if m := _SUMMARY.match(line):
                summary, current = m.group(1), "summary"
            elif m := _ENTITIES.match(line):
                current = "entities"
                names += [p for p in re.split(r"[;,]\s*", m.group(1)) if p.strip()]
            elif m := _ITEM.match(line):
                names.append(m.group(1))
                current = "entities"
            elif line.strip() and current == "summary":
                summary += " " + line.strip()
            elif not line.strip() and current == "summary":
                current = None
    out = Parsed(meta={"summary": " ".join(summary.split())} if summary.strip() else {})
    seen: set[str] = set()
    for raw in names:
        name = _clean_entity(raw)
        if not name or name.lower() in seen:
            continue
        if len(name.split()) > MAX_ENTITY_WORDS:
            out.rejected.append(f"entity longer than {MAX_ENTITY_WORDS} words")
            continue
        seen.add(name.lower())
        out.items.append({field_name: name})
    if not out.items:
        raise ParseError("no entities found")
    return out


PARSERS: dict[str, Callable[[str, tuple[str, ...]], Parsed]] = {
    "json_list": parse_json_list,
    "numbered_list": parse_numbered_list,
    "text": parse_text,
    "entities": parse_entities,
}
