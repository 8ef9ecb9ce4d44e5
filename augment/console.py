"""Terminal output: a rich progress bar on a TTY, plain progress lines otherwise, and summary tables."""

from __future__ import annotations

import sys
import time
from contextlib import AbstractContextManager
from typing import Any

from rich.console import Console
from rich.markup import escape
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


def _bar(console: Console, label: str, detail: str) -> Progress:
    """A started progress bar: label, bar, done/total, `detail` (a rich field template), time."""
    bar = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(detail),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
    bar.start()
    return bar


class _Bar(AbstractContextManager):
    _bar: Progress | None = None

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


class Reporter(_Bar):
    """Progress of a run: a bar on a terminal, a plain line every few seconds in a log (CI)."""

    def __init__(
        self,
        console: Console,
        quiet: bool = False,
        interval: float = 5.0,
        label: str = "generating",
        unit: str = "requests",
    ):
        self.console = console
        self.label = label
        self.unit = unit  # what `total` counts: requests (local engine) or documents (Ray)
        self.quiet = quiet
        self.interval = interval
        self.state: Any = None
        self._bar: Progress | None = None
        self._task: Any = None
        self._t0 = time.monotonic()
        self._last = 0.0
        self._read: tuple[float, float, bool] | None = None

    def skip(self, skipped: Any) -> None:
        if not self.quiet:
            self.console.print(f"[yellow]{escape(str(skipped))}[/yellow]", soft_wrap=True, highlight=False)

    #: reading that takes less than this says nothing (a docs folder is read in a blink)
    read_quiet_for = 2.0

    def read(self, done: int, total: int) -> None:
        """Files read of the inputs: a line once reading has taken `read_quiet_for` seconds, then one
        every `interval`, and one at the end (a corpus of large PDFs takes minutes to read)."""
        if self.quiet:
            return
        now = time.monotonic()
        if done == 0 or self._read is None:
            self._read = (now, now, False)  # (started, last line, said anything)
            return
        began, last, said = self._read
        due = now - last >= self.interval if said else now - began >= self.read_quiet_for
        if due or (said and done == total):
            rate = done / max(now - began, 1e-9)
            eta = (total - done) / rate if rate > 0 else 0.0
            line = f"reading: {done}/{total} files, {rate:.1f} files/s, eta {eta:.0f}s"
            self.console.print(line, soft_wrap=True, highlight=False)
            self._read = (began, now, True)

    def start(self, state: Any) -> None:
        self.state = state
        self._t0 = self._last = time.monotonic()
        if self.quiet:
            return
        if self.console.is_terminal:
            self._bar = _bar(self.console, self.label, "{task.fields[info]}")
            self._task = self._bar.add_task("generate", total=state.total, info="")
        else:
            self.console.print(f"{self.label}: {state.total} {self.unit}")

    def _info(self) -> tuple[str, float]:
        s = self.state
        elapsed = max(time.monotonic() - self._t0, 1e-9)
        tok_s = (s.prompt_tokens + s.completion_tokens) / elapsed
        answered = max(s.done, getattr(s, "answered", 0))
        rate = "req/s" if self.unit == "requests" else f"{self.unit}/s"
        info = (
            f"{answered / elapsed:.1f} {rate}, {tok_s:,.0f} tok/s, "
            f"{s.cached} cached, {s.retries} retries, {s.failed} failed"
        )
        if getattr(s, "limits", None) is not None:  # this process's own calls (not a Ray job's)
            info = f"{s.in_flight} in flight, {info}"
        else:
            info = f"{s.calls} model calls, {info}"

        if getattr(s, "round", 0) > 1:  # multi-step strategies send their tasks in waves
            info = f"wave {s.round}, {info}"

        return info, answered / elapsed

    def advance(self, outcome: Any) -> None:
        if self.quiet:
            return
        s = self.state
        now = time.monotonic()
        if self._bar is not None:
            if now - self._last >= 0.1 or s.done == s.total:
                self._last = now
                self._bar.update(self._task, completed=s.done, total=s.total, info=self._info()[0])
        elif now - self._last >= self.interval or s.done == s.total:
            self._last = now
            info, rate = self._info()
            eta = (s.total - max(s.done, getattr(s, "answered", 0))) / rate if rate > 0 else 0.0
            # one line a report, however narrow the log's terminal: a tool reading the log reads it whole
            line = f"{self.label}: {s.done}/{s.total} {self.unit}, {info}, eta {eta:.0f}s"
            self.console.print(line, soft_wrap=True)


class Counter(_Bar):
    """Progress of a count (questions scored): a bar on a terminal; in a log, one whole line at the
    start, then at most one every `interval` seconds, and one at the end. The rate and the time left
    count only what this process did: a resumed count starts where the last one stopped."""

    interval = 5.0

    def __init__(self, console: Console, label: str, unit: str, quiet: bool = False):
        self.console, self.label, self.unit, self.quiet = console, label, unit, quiet
        self._began: tuple[float, int] | None = None
        self._last = 0.0
        self._bar: Progress | None = None
        self._task: Any = None

    def update(self, done: int, total: int) -> None:
        now = time.monotonic()
        first = self._began is None
        if first:
            self._began = (now, done)
        if self.quiet:
            return
        if self.console.is_terminal:
            if self._bar is None:
                self._bar = _bar(self.console, self.label, self.unit)
                self._task = self._bar.add_task(self.label, total=total, completed=done)
            self._bar.update(self._task, completed=done, total=total)
        elif first or done == total or now - self._last >= self.interval:
            self._last = now
            t0, done0 = self._began
            line = f"{self.label}: {done}/{total} {self.unit}"
            if done > done0:
                rate = (now - t0) / (done - done0)
                line += f", {rate:.2f} s/{self.unit.removesuffix('s')}, eta {rate * (total - done):.0f}s"
            self.console.print(line, soft_wrap=True)  # one line, however narrow the log's terminal


def table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    # as wide as its title (within the terminal), so that a run's path in it is not broken
    t = Table(title=title, title_justify="left", min_width=len(title))
    for i, col in enumerate(columns):
        numeric = bool(rows) and all(isinstance(r[i], int | float) or r[i] is None for r in rows)
        t.add_column(col, justify="right" if numeric else "left")
    for row in rows:
        t.add_row(*[str(c) for c in row])
    return t


def print_table(console: Console, title: str, columns: list[str], rows: list[list[Any]]) -> None:
    """Print a table as given when it fits the terminal; when it does not and turning it (each column
    a row, each row a column, the first column the new header) is narrower, print it turned, so that
    rich does not cut every name to "answ…" and "copi…" on an 80-column terminal."""
    given = table(title, columns, rows)
    cells = list(zip(*rows, strict=True)) if rows else []
    turned = table(
        title,
        ["", *(str(c).strip() for c in cells[0])] if cells else [""],
        [[c, *v] for c, v in zip(columns[1:], cells[1:], strict=True)],
    )
    unbounded = console.options.update_width(10_000)  # measure() caps at the terminal's width
    need = {t: console.measure(t, options=unbounded).maximum for t in (given, turned)}
    console.print(given if need[given] <= console.width or need[turned] >= need[given] else turned)
