"""The response cache: every reply a model gave, in RUN/cache.sqlite, keyed by the request key.

The key is a hash of everything that changes the output (backend and endpoint, model, rendered
prompt, sampling parameters, sample index), so re-running a command makes no model call for a
reply already received, and editing one prompt file re-asks only that strategy. Replies are
committed in the event-loop turn they arrive in (one transaction for all that arrived together,
WAL journal), before any record is written from them, so a `kill -9` loses nothing received.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import zlib
from pathlib import Path

import orjson

from augment.errors import AugmentError
from augment.types import GenResult, Usage

# Schema changes are appended here, never edited: the database remembers how many it has applied.
_MIGRATIONS = [
    """CREATE TABLE responses (
        key TEXT PRIMARY KEY,
        text TEXT NOT NULL,
        finish_reason TEXT NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        created REAL NOT NULL
    )""",
]


def open_db(path: Path, migrations: list[str]) -> sqlite3.Connection:
    """A WAL database at `path` with `migrations` applied: the ones it has not seen, in order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a commit survives the process being killed; only a power cut can lose the last ones
        db.execute("PRAGMA synchronous=NORMAL")
        applied = db.execute("PRAGMA user_version").fetchone()[0]
        for i, sql in enumerate(migrations[applied:], start=applied):
            db.execute(sql)
            db.execute(f"PRAGMA user_version={i + 1}")
    except sqlite3.DatabaseError as e:
        db.close()
        raise AugmentError(
            f"{path}: not a database augment can read ({e}); move it away to start afresh"
        ) from None
    return db


class ResponseCache:
    def __init__(self, path: Path):
        self.path = path
        self._pending: list[tuple[object, ...]] = []
        self._db = open_db(path, _MIGRATIONS)

    def get(self, key: str) -> GenResult | None:
        if self._pending:
            self.flush()
        row = self._db.execute(
            "SELECT text, finish_reason, prompt_tokens, completion_tokens FROM responses WHERE key = ?",
            (key,),
        ).fetchone()
        if row is None:
            return None
        return GenResult(text=row[0], finish_reason=row[1], usage=Usage(row[2], row[3]))

    def put(self, key: str, result: GenResult) -> None:
        """Store a reply; inside an event loop the commit happens at the end of the current turn."""
        u = result.usage
        self._pending.append(
            (key, result.text, result.finish_reason, u.prompt_tokens, u.completion_tokens, time.time())
        )
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        if len(self._pending) == 1:
            loop.call_soon(self.flush)

    def flush(self) -> None:
        if self._pending:
            rows, self._pending = self._pending, []
            with self._db:  # one transaction
                self._db.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?)", rows)

    def forget(self, keys: list[str]) -> None:
        """Drop these replies: a re-run sends their requests again."""
        self.flush()
        with self._db:
            self._db.executemany("DELETE FROM responses WHERE key = ?", [(k,) for k in keys])

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def totals(self) -> tuple[int, int]:
        """Prompt and completion tokens of every reply stored (what the run has cost so far)."""
        row = self._db.execute("SELECT SUM(prompt_tokens), SUM(completion_tokens) FROM responses").fetchone()
        return int(row[0] or 0), int(row[1] or 0)

    def close(self) -> None:
        self.flush()
        self._db.close()


_READ_MIGRATIONS = [
    """CREATE TABLE reads (
        path TEXT PRIMARY KEY,
        stamp TEXT NOT NULL,
        outcome BLOB NOT NULL
    )""",
]


class ReadCache:
    """RUN/reads.sqlite: what each slow file (PDF, Word, EPUB, HTML, reST) read to, so that a
    re-run (a resumed run, one more document, an edited prompt) reads only the files that
    changed. A row holds for the file's stamp (size, modification time, the readers' code and
    library versions); what this run reads is kept by `save`, once the run's folder may be
    written. Derived data only: a file augment cannot open is left alone and read around."""

    def __init__(self, path: Path):
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._unusable = False
        self._new: list[tuple[str, str, bytes]] = []

    def _open(self) -> sqlite3.Connection | None:
        if self._db is None and not self._unusable:
            try:
                self._db = open_db(self.path, _READ_MIGRATIONS)
            except AugmentError:
                self._unusable = True
        return self._db

    def get(self, path: str, stamp: str) -> tuple[str, object] | None:
        if self._db is None and not self.path.is_file():
            return None
        db = self._open()
        try:
            row = (
                db.execute("SELECT outcome FROM reads WHERE path = ? AND stamp = ?", (path, stamp)).fetchone()
                if db
                else None
            )
            if row is None:
                return None
            kind, got = orjson.loads(zlib.decompress(row[0]))
        except (sqlite3.Error, zlib.error, orjson.JSONDecodeError, ValueError):
            return None  # a damaged row: read the file again
        return kind, got

    def put(self, path: str, stamp: str, outcome: tuple[str, object]) -> None:
        self._new.append((path, stamp, zlib.compress(orjson.dumps(outcome), 1)))

    def close(self) -> None:
        """Let go of the file after reading (SQLite then removes its -wal and -shm files): the run's
        folder is not this process's until it holds the run's lock, which comes after reading."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def save(self) -> None:
        """Keep what this run read (in one transaction), then close."""
        rows, self._new = self._new, []
        db = self._open() if rows else self._db
        try:
            if db is not None and rows:
                with db:
                    db.executemany("INSERT OR REPLACE INTO reads VALUES (?, ?, ?)", rows)
        except sqlite3.Error:
            pass  # not kept: the next run reads those files again
        finally:
            self.close()
