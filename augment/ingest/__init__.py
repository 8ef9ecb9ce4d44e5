"""Ingest: find the input files, read each into Documents, and report every file that was skipped.

Files whose reading is slow (PDF, Word, PowerPoint, EPUB, HTML, reST: 5 to 100 ms and more
each) are read in worker processes when there are many of them; the documents come out in the same
order, with the same ids, duplicates and skips, as when read one by one in this process.
"""

from __future__ import annotations

import glob as globlib
import multiprocessing
import os
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Protocol

from augment.errors import AugmentError
from augment.ingest.chunking import Chunker
from augment.ingest.readers import READERS, RowSkipped, SkipFile
from augment.io import sha256_hex
from augment.types import Document

__all__ = [
    "Chunker",
    "IngestResult",
    "ReadStore",
    "Skipped",
    "SkippedTypes",
    "discover",
    "ingest",
    "skipped_lines",
    "auto_read_workers",
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
# Types a user can turn into one augment reads, and what to turn them into.
CONVERT = {
    ".doc": ".docx",
    ".rtf": ".docx",
    ".pages": ".docx",
    ".ppt": ".pptx",
    ".key": ".pptx",
    ".xls": ".xlsx",
}


def unsupported(path: Path) -> Skipped:
    suffix = path.suffix.lower()
    hint = f" (save it as {CONVERT[suffix]})" if suffix in CONVERT else ""
    return Skipped(str(path), f"{UNSUPPORTED} '{path.suffix or path.name}'{hint}")


@dataclass(slots=True)
class SkippedTypes:
    """Many files of types no reader handles, reported as one line (each is still in `skipped`)."""

    files: list[Skipped]

    def kinds(self) -> str:
        counts = Counter(Path(s.path).suffix.lower() or "no extension" for s in self.files)
        return ", ".join(f"{ext} {n}" for ext, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def __str__(self) -> str:
        found = {Path(s.path).suffix.lower() for s in self.files}
        convert = ", ".join(f"{ext} as {CONVERT[ext]}" for ext in sorted(found & set(CONVERT)))
        return (
            f"skipped {len(self.files)} files of types augment does not read ({self.kinds()};"
            f" first: {self.files[0].path})" + (f"; save {convert} to read them" if convert else "")
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
    workers: int = 1  # processes that read the slow files (1: this one)
    from_store: int = 0  # slow files whose reading was reused from an earlier run (unchanged)


# Folders that hold what a build or a package manager wrote, not documents: Sphinx's and Jupyter
# Book's _build (an HTML copy of every page, and _sources/*.txt, a third), node_modules, caches.
BUILD_DIRS = frozenset({"_build", "__pycache__", "node_modules", "site-packages"})

# Readers slow enough per file to be worth another process; the rest (plain text, Markdown, and
# the multi-document .jsonl/.parquet/.csv files, streamed row by row) are read in this one.
SLOW_READERS = frozenset(
    {".pdf", ".docx", ".pptx", ".odt", ".odp", ".epub", ".html", ".htm", ".rst", ".rest"}
)
SOFT_HYPHEN = "\u00ad"  # where a word may be broken: in HTML and some PDFs' text, inside words
POOL_AFTER = 8  # fewer slow files than this are read here: starting workers costs more
MAX_AUTO_WORKERS = 8


class ReadStore(Protocol):
    """What slow files read to, kept between runs (the pipeline's RUN/reads.sqlite): looked up by
    path, valid while the file's `stamp` (size, modification time, readers) is the same."""

    def get(self, path: str, stamp: str) -> tuple[str, object] | None: ...

    def put(self, path: str, stamp: str, outcome: tuple[str, object]) -> None: ...


@cache
def _readers_signature() -> str:
    """The readers' code and the versions of the libraries they read with: a change to either
    may read a file differently, so what was read before is read again."""
    import hashlib

    from augment.ingest import readers

    parts = [hashlib.sha256(Path(readers.__file__).read_bytes()).hexdigest()[:16]]
    for package in ("pypdf", "python-docx", "python-pptx", "docutils", "trafilatura", "lxml"):
        try:
            parts.append(f"{package}={version(package)}")
        except PackageNotFoundError:
            parts.append(f"{package}=-")
    return " ".join(parts)


def file_stamp(path: Path, text_field: str, title_field: str) -> str:
    st = path.stat()
    return f"{st.st_size} {st.st_mtime_ns} {text_field} {title_field} {_readers_signature()}"


def auto_read_workers() -> int:
    """The command line's default: the cores this process may run on (its CPU affinity, which a
    container's cpuset narrows), at most MAX_AUTO_WORKERS (each holds a reader's libraries)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS and Windows have no affinity call
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_AUTO_WORKERS))


def read_workers(requested: int | None, slow_files: int) -> int:
    """Processes to read `slow_files` with: `requested` (None: 1, this process; a script that
    asks for more needs the `if __name__ == "__main__":` guard that multiprocessing's spawn needs),
    and 1 for fewer than POOL_AFTER files."""
    if slow_files < POOL_AFTER or not requested:
        return 1
    return max(1, min(requested, slow_files))


def _read_items(path: Path, text_field: str, title_field: str) -> Iterator[tuple[str, str, str] | RowSkipped]:
    reader = READERS[path.suffix.lower()]
    return reader(path, text_field, title_field)


def _read_whole(path: Path, text_field: str, title_field: str) -> tuple[str, object]:
    """In a worker: ("items", [(location, title, text) | (location, reason)]) or ("skip", reason)."""
    try:
        items: list[object] = []
        for item in _read_items(path, text_field, title_field):
            items.append((item.location, str(item)) if isinstance(item, RowSkipped) else item)
        return "items", items
    except SkipFile as e:
        return "skip", str(e)
    except OSError as e:  # not kept: a file that cannot be read now may be readable later
        return "error", f"cannot read ({e.strerror or e})"


def _portable(got: object, path: Path) -> object:
    """Items as kept: the file's own path as a location becomes "", so that a later run that names
    the file another way (relative, absolute) gives its documents the path it was given."""
    if not isinstance(got, list):
        return got
    return [["", *item[1:]] if item and item[0] == str(path) else item for item in got]


def _placed(got: object, path: Path) -> object:
    """Kept items with the file's path put back as this run names it (see _portable)."""
    return [[str(path), *item[1:]] if item and item[0] == "" else item for item in got]  # type: ignore[union-attr]


def _worker_start() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle, once


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
                    skipped.append(unsupported(p))
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
    workers: int | None = None,
    store: ReadStore | None = None,
) -> IngestResult:
    """Read every document under `inputs`. Unusable files and rows are skipped, reported, counted.

    Documents are identified by a hash of their text, so the same content under two paths is
    read once (the second is reported as a duplicate). `on_read(done, total)` follows the files.
    `workers`: processes for the slow files (default 1: all are read in this process).
    `store`: what slow files read to in an earlier run, reused while a file is unchanged.
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
    stamps: dict[Path, str] = {}
    known: dict[Path, tuple[str, object]] = {}
    for p in (p for p in paths if p.suffix.lower() in SLOW_READERS):
        try:
            stamps[p] = file_stamp(p, text_field, title_field)
        except OSError:
            continue  # read below, which says why it cannot be
        if store is not None and (outcome := store.get(str(p.resolve()), stamps[p])) is not None:
            known[p] = outcome
    result.from_store = len(known)
    slow = [p for p in stamps if p not in known]
    result.workers = n_workers = read_workers(workers, len(slow))
    pool: ProcessPoolExecutor | None = None
    futures: dict[Path, Future[tuple[str, object]]] = {}
    if n_workers > 1:
        try:  # spawn, not fork: the caller may hold threads (a progress display, an event loop)
            pool = ProcessPoolExecutor(
                n_workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_start
            )
            futures = {p: pool.submit(_read_whole, p, text_field, title_field) for p in slow}
        except (OSError, NotImplementedError):  # no process support here (a container without /dev/shm)
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
            pool, futures, result.workers = None, {}, 1
    try:
        for done, path in enumerate(paths):
            if on_read:
                on_read(done, len(paths))
            if path.suffix.lower() not in READERS:  # a file named as an input
                skip(unsupported(path))
                continue
            try:
                if path in known:
                    kind, got = known[path]
                elif path in futures:
                    kind, got = futures[path].result()
                elif path in stamps:  # a slow file read here: whole, so that it can be kept
                    kind, got = _read_whole(path, text_field, title_field)
                else:
                    kind, got = "", None
            except BrokenProcessPool:  # a worker died (out of memory): read the rest here
                futures.clear()
                result.workers = 1
                kind, got = _read_whole(path, text_field, title_field)
            if store is not None and path in stamps and path not in known and kind in ("items", "skip"):
                store.put(str(path.resolve()), stamps[path], (kind, _portable(got, path)))
            elif path in known and kind == "items":
                got = _placed(got, path)
            if kind in ("skip", "error"):
                skip(Skipped(str(path), str(got)))
                continue
            try:
                items = got if kind == "items" else _read_items(path, text_field, title_field)
                for item in items:  # type: ignore[union-attr]
                    if isinstance(item, RowSkipped):
                        skip(Skipped(item.location, str(item)))
                        continue
                    if len(item) == 2:  # a row a worker skipped: (location, reason)
                        skip(Skipped(*item))
                        continue
                    location, title, text = item
                    if SOFT_HYPHEN in text:  # invisible where a line does not break; it splits words
                        text = text.replace(SOFT_HYPHEN, "")
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
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
    if on_read:
        on_read(len(paths), len(paths))
    return result
