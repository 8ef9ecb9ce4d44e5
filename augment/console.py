"""Terminal output: a rich progress bar on a TTY, plain progress lines otherwise, and summary tables."""

from __future__ import annotations

import sys
import time
from contextlib import AbstractContextManager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table


def err_console() -> Console:
    return Console(file=sys.stderr, highlight=False)


def out_console() -> Console:
    return Console(file=sys.stdout, highlight=False)


class Reporter(AbstractContextManager):
    """Progress of a run: a bar with rate and ETA on a terminal, a line every few seconds in a log."""

    def __init__(self, console: Console, quiet: bool = False, interval: float = 5.0):
        self.console = console
        self.quiet = quiet
        self.interval = interval
        self.total = 0
        self.done = 0
        self.failed = 0
        self.retries = 0
        self._bar: Progress | None = None
        self._task = None
        self._t0 = time.monotonic()
        self._last = 0.0

    def skip(self, skipped: Any) -> None:
        if not self.quiet:
            self.console.print(f"[yellow]{skipped}[/yellow]", markup=True, soft_wrap=True)

    def start(self, total: int) -> None:
        self.total = total
        self._t0 = self._last = time.monotonic()
        if self.quiet:
            return
        if self.console.is_terminal:
            self._bar = Progress(
                TextColumn("generating"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:.1f} req/s"),
                TextColumn("[red]{task.fields[failed]} failed"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task("generate", total=total, rate=0.0, failed=0)
        else:
            self.console.print(f"generating: {total} requests")

    def advance(self, ok: bool) -> None:
        self.done += 1
        self.failed += 0 if ok else 1
        now = time.monotonic()
        rate = self.done / max(now - self._t0, 1e-9)
        if self._bar is not None:
            self._bar.update(self._task, advance=1, rate=rate, failed=self.failed)
        elif not self.quiet and (now - self._last >= self.interval or self.done == self.total):
            self._last = now
            eta = (self.total - self.done) / rate if rate > 0 else 0.0
            self.console.print(
                f"generating: {self.done}/{self.total} requests, {self.failed} failed, "
                f"{self.retries} retries, {rate:.1f} req/s, eta {eta:.0f}s"
            )

    def retry(self) -> None:
        self.retries += 1

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    t = Table(title=title, title_justify="left")
    for i, col in enumerate(columns):
        numeric = bool(rows) and all(isinstance(r[i], int | float) or r[i] is None for r in rows)
        t.add_column(col, justify="right" if numeric else "left")
    for row in rows:
        t.add_row(*[str(c) for c in row])
    return t
