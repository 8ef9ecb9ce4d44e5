"""Small file helpers: atomic writes and JSONL reading that tolerates a torn last line."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import orjson

from augment.errors import AugmentError

T = TypeVar("T")

_UMASK = os.umask(0)
os.umask(_UMASK)


LOCK_NAME = ".augment.lock"
_held: set[Path] = set()  # run folders this process holds the lock of


@contextlib.contextmanager
def run_lock(folder: Path) -> Iterator[None]:
    """Hold FOLDER/.augment.lock while this process writes the run in it.

    A second augment process that would write the same run stops with one line instead of
    interleaving its lines with this one's. Reentrant within a process (an export that merges);
    the OS lets go of it when the process dies, so a killed run leaves nothing to clean up. A
    folder that does not exist yet has nothing to protect.
    """
    key = folder.resolve()
    if key in _held or not folder.is_dir():
        yield
        return
    from filelock import FileLock, Timeout

    lock = FileLock(str(folder / LOCK_NAME), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise AugmentError(
            f"{folder}: another augment command is writing this run ({LOCK_NAME} is held); "
            "wait for it to end, or write to another folder"
        ) from None
    _held.add(key)
    try:
        yield
    finally:
        _held.discard(key)
        lock.release()


def locks_run(fn: Callable[..., T]) -> Callable[..., T]:
    """`fn(run_dir, ...)` runs holding run_dir's `run_lock`."""

    @functools.wraps(fn)
    def locked(run_dir: Path, *args: Any, **kwargs: Any) -> T:
        with run_lock(Path(run_dir)):
            return fn(run_dir, *args, **kwargs)

    return locked


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success fsync it and rename it over `path`.

    A killed process leaves at most a stray `.tmp` file, never a torn `path`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
    try:
        yield tmp_path
        with open(tmp_path, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_write(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    with atomic_path(path) as tmp, open(tmp, mode, encoding=None if "b" in mode else "utf-8") as f:
        yield f


def dumps(obj: Any) -> str:
    """Compact JSON, UTF-8 kept as is (orjson: the record writer's hot path)."""
    return orjson.dumps(obj).decode("utf-8")


def write_jsonl(path: Path, rows: Any) -> int:
    n = 0
    with atomic_write(path) as f:
        for row in rows:
            f.write(dumps(row) + "\n")
            n += 1
    return n


def write_json(path: Path, obj: Any) -> None:
    with atomic_write(path) as f:
        json.dump(obj, f, ensure_ascii=False, indent=2)
        f.write("\n")


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the objects of a JSONL file; a torn (unterminated, unparsable) last line is skipped."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                if line.endswith("\n"):
                    raise
                return  # torn last line of a killed writer


def sha256_hex(data: str | bytes) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def stable_id(*parts: object, n: int = 16) -> str:
    """A short deterministic id from the parts (joined with an unlikely separator)."""
    return sha256_hex("\x1f".join(str(p) for p in parts))[:n]
