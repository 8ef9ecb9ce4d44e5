"""Ingest: find the input files, read each into Documents, and report every file that was skipped."""

from __future__ import annotations

import glob as globlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from augment.errors import AugmentError
from augment.ingest.chunking import Chunker
from augment.ingest.readers import READERS, RowSkipped, SkipFile
from augment.io import sha256_hex
from augment.types import Document

__all__ = [
    "Chunker",
    "IngestResult",
    "Skipped",
    "SkippedTypes",
    "discover",
    "ingest",
    "skipped_lines",
    "SUPPORTED",
]

SUPPORTED = tuple(READERS)


@dataclass(slots=True)
class Skipped:
    path: str
    reason: str
    files: int = 1  # a skipped build folder stands for the files in it

    def to_dict(self) -> dict[str, object]:
        return {"path": self.path, "reason": self.reason} | ({"files": self.files} if self.files != 1 else {})

    def __str__(self) -> str:
        return f"skipped {self.path}: {self.reason}"


# More unsupported files than this in the inputs are reported as one line, not a line each.
_TYPES_LINE_AFTER = 3
UNSUPPORTED = "unsupported file type"


@dataclass(slots=True)
class SkippedTypes:
    """Many files of types no reader handles, reported as one line (each is still in `skipped`)."""

    files: list[Skipped]

    def kinds(self) -> str:
        counts = Counter(Path(s.path).suffix.lower() or "no extension" for s in self.files)
        return ", ".join(f"{ext} {n}" for ext, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def __str__(self) -> str:
        return (
            f"skipped {len(self.files)} files of types augment does not read ({self.kinds()};"
            f" first: {self.files[0].path})"
        )


def _by_type(skipped: list[Skipped]) -> tuple[list[Skipped], list[Skipped]]:
    """(the files of types no reader handles, the rest)."""
    types: list[Skipped] = []
    others: list[Skipped] = []
    for s in skipped:
        (types if s.reason.startswith(UNSUPPORTED) else others).append(s)
    return types, others


def skipped_lines(skipped: list[Skipped]) -> list[tuple[str, str]]:
    """(path, reason) rows to show for `skipped`: many unsupported files as one row."""
    types, others = _by_type(skipped)
    if len(types) <= _TYPES_LINE_AFTER:
        return [(s.path, s.reason) for s in skipped]
    rows = [(s.path, s.reason) for s in others]
    return rows + [(f"{len(types)} files", f"types augment does not read ({SkippedTypes(types).kinds()})")]


@dataclass
class IngestResult:
    documents: list[Document] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    files: int = 0


# Folders that hold what a build or a package manager wrote, not documents: Sphinx's and Jupyter
# Book's _build (an HTML copy of every page, and _sources/*.txt, a third), node_modules, caches.
BUILD_DIRS = frozenset({"_build", "__pycache__", "node_modules", "site-packages"})


def _is_hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _build_dir(path: Path, root: Path) -> Path | None:
    """The build folder under `root` that `path` is in, if any (`root` itself may be one)."""
    parts = path.relative_to(root).parts[:-1]
    for i, part in enumerate(parts):
        if part in BUILD_DIRS:
            return root.joinpath(*parts[: i + 1])
    return None


def discover(inputs: list[str], patterns: list[str] | None = None) -> tuple[list[Path], list[Skipped]]:
    """Expand inputs (folders recursively, files, glob patterns) into a sorted list of files.

    Files in a folder with an extension no reader handles come back as Skipped, unless `patterns`
    was given (then only matching files are considered at all). Build folders (BUILD_DIRS) in a
    folder come back as one Skipped each; a folder named as an input is read whatever its name.
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
            built: dict[Path, int] = {}
            for p in sorted(candidates):
                if not p.is_file() or _is_hidden(p, path):
                    continue
                if (folder := _build_dir(p, path)) is not None:
                    built[folder] = built.get(folder, 0) + 1
                    continue
                if p.suffix.lower() in READERS:
                    files.add(p)
                elif not patterns:
                    skipped.append(Skipped(str(p), f"{UNSUPPORTED} '{p.suffix or p.name}'"))
            for folder, n in built.items():
                what = f"a build folder ({n} file{'s' * (n != 1)}, not read); name it as an input to read it"
                skipped.append(Skipped(str(folder), what, files=n))
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
    on_skip: Callable[[Skipped | SkippedTypes], None] | None = None,
    on_read: Callable[[int, int], None] | None = None,
) -> IngestResult:
    """Read every document under `inputs`. Unusable files and rows are skipped, reported, counted.

    Documents are identified by a hash of their text, so the same content under two paths is
    read once (the second is reported as a duplicate). `on_read(done, total)` follows the files.
    """
    paths, skipped = discover(inputs, patterns)
    result = IngestResult(files=len(paths) + sum(s.files for s in skipped))
    seen: dict[str, str] = {}

    def skip(s: Skipped) -> None:
        result.skipped.append(s)
        if on_skip:
            on_skip(s)

    types, others = _by_type(skipped)
    if len(types) > _TYPES_LINE_AFTER:  # a docs folder's images, stylesheets, Makefile: one line
        result.skipped.extend(types)
        if on_skip:
            on_skip(SkippedTypes(types))
        skipped = others
    for s in skipped:
        skip(s)
    for done, path in enumerate(paths):
        if on_read:
            on_read(done, len(paths))
        reader = READERS.get(path.suffix.lower())
        if reader is None:
            skip(Skipped(str(path), f"{UNSUPPORTED} '{path.suffix or path.name}'"))
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
    if on_read:
        on_read(len(paths), len(paths))
    return result
