"""Append-in-order JSONL that resumes into the same bytes an unbroken run would have written.

A run writes its records in request order. On a re-run the writer reads the existing file along
with the new records: while the lines match it only advances; at the first line that differs (a
torn last line from a killed run, or records of a prompt that changed) it truncates the file there
and appends from then on; at close it cuts anything left over. The result is byte-identical to a
run that was never interrupted, with no duplicate and no lost line, and a killed run leaves a
valid prefix behind.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Protocol

FSYNC_EVERY_S = 1.0


class Writer(Protocol):
    """Where the pipeline writes lines in request order: a file here, a batch's rows on Ray."""

    def write_line(self, line: str) -> None: ...

    def close(self, complete: bool = True) -> None: ...


class OrderedJsonlWriter:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._f = open(path, "r+b" if path.exists() else "w+b")  # noqa: SIM115 - closed in close()
        self._verifying = path.stat().st_size > 0
        self._offset = 0
        self._last_sync = time.monotonic()
        self.kept = 0  # lines already on disk that matched
        self.written = 0  # lines appended by this run

    def write_line(self, line: str) -> None:
        data = line.encode("utf-8")
        if self._verifying:
            self._f.seek(self._offset)
            existing = self._f.readline()
            if existing == data:
                self._offset += len(data)
                self.kept += 1
                return
            self._f.truncate(self._offset)  # first difference: everything after it is rewritten
            self._verifying = False
        self._f.seek(self._offset)
        self._f.write(data)
        self._offset += len(data)
        self.written += 1
        now = time.monotonic()
        if now - self._last_sync >= FSYNC_EVERY_S:
            self.sync()
            self._last_sync = now

    def sync(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self, complete: bool = True) -> None:
        """Flush and fsync; when the run completed, cut lines an earlier, longer output left behind."""
        if complete and self._verifying:
            self._f.truncate(self._offset)
        self.sync()
        self._f.close()
