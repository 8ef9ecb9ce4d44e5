"""Readers: one function per file format, each returning (title, text) pairs or raising SkipFile."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path


class SkipFile(Exception):  # noqa: N818 - a control-flow signal, not an error for users
    """This file (or row) cannot be used; the message says why."""


Reader = Callable[[Path, str, str], Iterator[tuple[str, str, str]]]
"""(path, text_field, title_field) -> (location, title, text) for each document in the file."""

_NUL_SNIFF = 8192

# pypdf and trafilatura log warnings about the damaged files we skip; the skip line says it once.
for _name in ("pypdf", "trafilatura", "htmldate", "courlan"):
    logging.getLogger(_name).setLevel(logging.ERROR)


def _decode(path: Path, data: bytes) -> str:
    if b"\x00" in data[:_NUL_SNIFF]:
        raise SkipFile("binary file (contains NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SkipFile(f"not UTF-8 text (bad byte at offset {e.start}); convert it to UTF-8") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _require_text(text: str, what: str = "empty file") -> str:
    if not text.strip():
        raise SkipFile(what)
    return text


def read_text(path: Path, text_field: str, title_field: str) -> Iterator[tuple[str, str, str]]:
    text = _require_text(_decode(path, path.read_bytes()))
    # A short first line followed by a blank line is the title, as in most plain-text documents.
    first, sep, _ = text.lstrip().partition("\n\n")
    title = first.strip() if sep and "\n" not in first.strip() and len(first) <= 120 else path.stem
    yield str(path), title, text


_MD_HEADING = re.compile(r"^#{1,2}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def read_markdown(path: Path, text_field: str, title_field: str) -> Iterator[tuple[str, str, str]]:
    text = _require_text(_decode(path, path.read_bytes()))
    m = _MD_HEADING.search(text)
    yield str(path), (m.group(1) if m else path.stem), text


def read_html(path: Path, text_field: str, title_field: str) -> Iterator[tuple[str, str, str]]:
    import trafilatura

    html = _require_text(_decode(path, path.read_bytes()))
    # favor_recall keeps short pages and lists that the precision mode would drop as boilerplate
    text = trafilatura.extract(html, favor_recall=True, include_comments=False, include_tables=True)
    if not text or not text.strip():
        raise SkipFile("no main text found in the HTML")
    meta = trafilatura.extract_metadata(html)
    title = (meta.title if meta and meta.title else None) or path.stem
    # trafilatura separates paragraphs by one newline; a blank line lets chunking see paragraphs
    yield str(path), title, re.sub(r"\n+", "\n\n", text.strip())


def read_pdf(path: Path, text_field: str, title_field: str) -> Iterator[tuple[str, str, str]]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise SkipFile("encrypted PDF (needs a password); decrypt it first")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = (reader.metadata.title if reader.metadata else None) or path.stem
    except SkipFile:
        raise
    except (PdfReadError, ValueError, KeyError, OSError) as e:
        raise SkipFile(f"not a readable PDF ({type(e).__name__}: {e})") from None
    except Exception as e:  # pypdf raises many things on broken files; none may stop the run
        raise SkipFile(f"not a readable PDF ({type(e).__name__}: {e})") from None
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    yield str(path), str(title), _require_text(text, "PDF has no text layer (scanned?); OCR it first")


def _row_doc(path: Path, where: str, row: object, text_field: str, title_field: str) -> tuple[str, str, str]:
    if not isinstance(row, dict):
        raise SkipFile(f"{where}: expected a JSON object, got {type(row).__name__}")
    text = row.get(text_field)
    if not isinstance(text, str):
        keys = ", ".join(sorted(map(str, row))) or "none"
        raise SkipFile(f"{where}: no string field '{text_field}' (fields: {keys}); set text_field")
    _require_text(text, f"{where}: field '{text_field}' is empty")
    title = row.get(title_field)
    return where, (str(title) if title else f"{path.stem} {where.rsplit(':', 1)[-1]}"), text


class RowSkipped(Exception):  # noqa: N818
    """One row of a multi-document file is unusable; the others are still read."""

    def __init__(self, location: str, reason: str):
        super().__init__(reason)
        self.location = location


def read_jsonl(path: Path, text_field: str, title_field: str) -> Iterator[tuple[str, str, str] | RowSkipped]:
    data = path.read_bytes()
    text = _require_text(_decode(path, data))
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row = json.loads(line)
            yield _row_doc(path, where, row, text_field, title_field)
        except json.JSONDecodeError as e:
            yield RowSkipped(where, f"invalid JSON ({e.msg} at column {e.colno})")
        except SkipFile as e:
            yield RowSkipped(where, str(e).removeprefix(f"{where}: "))


def read_parquet(
    path: Path, text_field: str, title_field: str
) -> Iterator[tuple[str, str, str] | RowSkipped]:
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception as e:
        raise SkipFile(f"not a readable Parquet file ({type(e).__name__}: {e})") from None
    if text_field not in schema.names:
        raise SkipFile(f"no column '{text_field}' (columns: {', '.join(schema.names)}); set text_field")
    columns = [text_field] + ([title_field] if title_field in schema.names else [])
    rows = pq.read_table(path, columns=columns).to_pylist()
    if not rows:
        raise SkipFile("Parquet file has no rows")
    for i, row in enumerate(rows):
        where = f"{path}:{i}"
        try:
            yield _row_doc(path, where, row, text_field, title_field)
        except SkipFile as e:
            yield RowSkipped(where, str(e).removeprefix(f"{where}: "))


READERS: dict[str, Reader] = {
    ".txt": read_text,
    ".text": read_text,
    ".md": read_markdown,
    ".markdown": read_markdown,
    ".html": read_html,
    ".htm": read_html,
    ".pdf": read_pdf,
    ".jsonl": read_jsonl,
    ".parquet": read_parquet,
}
