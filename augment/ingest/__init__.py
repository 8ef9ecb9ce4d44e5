"""Ingest: find the input files, read each into Documents, and report every file that was skipped."""

from __future__ import annotations

import glob as globlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from augment.errors import AugmentError
from augment.ingest.chunking import Chunker
from augment.ingest.readers import READERS, RowSkipped, SkipFile
from augment.io import sha256_hex
from augment.types import Document

__all__ = ["Chunker", "IngestResult", "Skipped", "discover", "ingest", "SUPPORTED"]

SUPPORTED = tuple(READERS)


@dataclass(slots=True)
class Skipped:
    path: str
    reason: str

    def __str__(self) -> str:
        return f"skipped {self.path}: {self.reason}"


@dataclass
class IngestResult:
    documents: list[Document] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    files: int = 0


def _is_hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def discover(inputs: list[str], patterns: list[str] | None = None) -> tuple[list[Path], list[Skipped]]:
    """Expand inputs (folders recursively, files, glob patterns) into a sorted list of files.

    Files in a folder with an extension no reader handles come back as Skipped, unless `patterns`
    was given (then only matching files are considered at all).
    """
    files: set[Path] = set()
    skipped: list[Skipped] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            if patterns:
                candidates = {p for pat in patterns for p in path.rglob(pat)}
            else:
                candidates = set(path.rglob("*"))
            for p in sorted(candidates):
                if not p.is_file() or _is_hidden(p, path):
                    continue
                if p.suffix.lower() in READERS:
                    files.add(p)
                elif not patterns:
                    skipped.append(Skipped(str(p), f"unsupported file type '{p.suffix or p.name}'"))
        elif path.is_file():
            files.add(path)
        elif globlib.has_magic(item):
            matches = [Path(m) for m in globlib.glob(item, recursive=True) if Path(m).is_file()]
            if not matches:
                raise AugmentError(f"{item}: the pattern matches no file")
            files.update(matches)
        else:
            raise AugmentError(f"{item}: no such file or folder")
    return sorted(files), skipped


def ingest(
    inputs: list[str],
    *,
    patterns: list[str] | None = None,
    text_field: str = "text",
    title_field: str = "title",
    on_skip: Callable[[Skipped], None] | None = None,
) -> IngestResult:
    """Read every document under `inputs`. Unusable files and rows are skipped, reported, counted.

    Documents are identified by a hash of their text, so the same content under two paths is
    read once (the second is reported as a duplicate).
    """
    paths, skipped = discover(inputs, patterns)
    result = IngestResult(files=len(paths) + len(skipped))
    seen: dict[str, str] = {}

    def skip(s: Skipped) -> None:
        result.skipped.append(s)
        if on_skip:
            on_skip(s)

    for s in skipped:
        skip(s)
    for path in paths:
        reader = READERS.get(path.suffix.lower())
        if reader is None:
            skip(Skipped(str(path), f"unsupported file type '{path.suffix or path.name}'"))
            continue
        try:
            for item in reader(path, text_field, title_field):
                if isinstance(item, RowSkipped):
                    skip(Skipped(item.location, str(item)))
                    continue
                location, title, text = item
                digest = sha256_hex(text)
                doc_id = digest[:16]
                if doc_id in seen:
                    skip(Skipped(location, f"duplicate of {seen[doc_id]}"))
                    continue
                seen[doc_id] = location
                result.documents.append(Document(doc_id, location, title.strip(), text, digest))
        except SkipFile as e:
            skip(Skipped(str(path), str(e)))
        except OSError as e:
            skip(Skipped(str(path), f"cannot read ({e.strerror or e})"))
    return result
