"""augment.console: print_table turns a table (columns become rows) when only that fits; Counter."""

from __future__ import annotations

import io

from rich.console import Console

from augment.console import print_table

METRICS = ["exact_match", "f1", "contains", "answer_nll", "answer_nll_source"]
ROWS = [
    ["runs/base-model", *["0.125 [0.000, 0.250]"] * 5],
    ["ckpt/mydocs", *["0.500 [0.250, 0.750]"] * 5],
    ["  difference", *["+0.375 [+0.125, +0.625]"] * 5],
]


def _printed(width: int, columns: list[str], rows: list[list]) -> list[str]:
    buf = io.StringIO()
    print_table(Console(file=buf, width=width, highlight=False), "closed-book QA", columns, rows)
    return buf.getvalue().splitlines()


def test_a_table_that_fits_is_printed_as_given():
    lines = _printed(200, ["model", *METRICS], ROWS)
    assert any(line.startswith("┃ model ") and "┃ answer_nll_source " in line for line in lines)
    assert any(line.startswith("│ ckpt/mydocs ") for line in lines)


def test_a_table_too_wide_for_the_terminal_is_turned_with_every_name_whole():
    lines = _printed(80, ["model", *METRICS], ROWS)
    assert "…" not in "".join(lines) and all(len(line) <= 80 for line in lines)
    header = next(line for line in lines if line.startswith("┃"))
    assert "runs/base-model" in header and "ckpt/mydocs" in header and "difference" in header
    assert [
        line.split("│")[1].strip() for line in lines if line.startswith("│ ") and line[2] != " "
    ] == METRICS


def test_a_table_that_turning_does_not_narrow_stays_as_given():
    # many rows of few columns: turned it would be wider still, so rich wraps it as given
    rows = [[f"strategy-{i}", i] for i in range(40)]
    lines = _printed(30, ["strategy", "kept"], rows)
    assert next(line for line in lines if line.startswith("┃")).split("┃")[1].strip() == "strategy"


def test_a_count_in_a_log_is_whole_lines_with_rate_over_what_was_done_here(monkeypatch):
    from augment import console as console_mod

    clock = iter([100.0, 104.0, 108.0, 120.0])  # the time at each of the four updates
    monkeypatch.setattr(console_mod.time, "monotonic", lambda: next(clock))
    buf = io.StringIO()
    log = Console(file=buf, width=40, highlight=False)  # not a terminal, and narrow
    with console_mod.Counter(log, "eval ckpt/mydocs", "questions") as counter:
        counter.update(32, 80)  # resumed: 32 were stored
        counter.update(40, 80)  # 4 s later: less than `interval`, no line
        counter.update(48, 80)  # 8 s after the start
        counter.update(80, 80)  # the last one always
    assert buf.getvalue().splitlines() == [
        "eval ckpt/mydocs: 32/80 questions",
        "eval ckpt/mydocs: 48/80 questions, 0.50 s/question, eta 16s",
        "eval ckpt/mydocs: 80/80 questions, 0.42 s/question, eta 0s",
    ]


def test_a_count_on_a_terminal_is_a_bar_and_quiet_prints_nothing():
    from augment.console import Counter

    buf = io.StringIO()
    tty = Console(file=buf, width=100, force_terminal=True, highlight=False)
    with Counter(tty, "eval base", "questions") as counter:
        for done in range(0, 41, 8):
            counter.update(done, 40)
    out = buf.getvalue()
    assert "40/40" in out and "━" in out and "s/question" not in out
    buf = io.StringIO()
    with Counter(Console(file=buf), "eval base", "questions", quiet=True) as counter:
        counter.update(40, 40)
    assert buf.getvalue() == ""
