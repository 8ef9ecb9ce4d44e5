"""augment.console.print_table: a table turns (columns become rows) when only that fits."""

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
