"""The `qa-spans` answer picker against a QA set's gold answers: a screen that needs no model.

    python bench/spans.py --qa ../shared/data/squad_dev200.jsonl --qa ../shared/data/wikinewpages2023_film_dev.jsonl

`qa-spans` writes a question for every answer span it picks from a passage, so a gold answer it
never picks can only be learned from paraphrases and replay (bench/UPTAKE.md: the knowledge
gain sits almost all on questions whose answer and wording the data anticipated). For each QA
file, this picks spans from every passage with the options the prompt's header sets (`--prompts-dir`,
as `augment generate` takes it), then with each span option the header leaves off switched on
alone, then with all of them, and counts the gold answers picked exactly (SQuAD-normalised), the best token F1 of any
picked span against the gold answers (a boundary off by a word still scores part), and the spans
per passage, which is what generation costs (one request each). Ratios are to the header's own
options, measured in the same run. The evaluated questions are never read, only their answers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from augment.errors import AugmentError
from augment.eval.metrics import f1_score, normalize_answer
from augment.qafile import QAItem, load_qa
from augment.strategies.base import load_strategies
from augment.strategies.spans import pick_spans

OPTIONS = ("phrases", "definitions", "lists", "prepositions", "tight", "chunks")


def screen(
    passages: dict[tuple[str, str], list[QAItem]], limit: int, options: dict[str, bool]
) -> dict[str, float]:
    """Spans per passage, share of questions whose gold answer is a picked span, mean best F1."""
    n_spans = n_questions = exact = 0
    f1 = 0.0
    for (title, text), questions in passages.items():
        spans = pick_spans(text, title, limit, **options)
        picked = {normalize_answer(s.answer) for s in spans}
        n_spans += len(spans)
        for q in questions:
            n_questions += 1
            exact += any(normalize_answer(a) in picked for a in q.answers)
            f1 += max((f1_score(s.answer, q.answers) for s in spans), default=0.0)
    return {
        "spans": n_spans / len(passages),
        "questions": n_questions,
        "exact": exact / n_questions,
        "f1": f1 / n_questions,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--qa", type=Path, action="append", required=True, help="QA file (augment eval's format)")
    ap.add_argument(
        "--prompts-dir", type=Path, default=None, help="a prompts folder, as augment generate takes"
    )
    ap.add_argument(
        "--max-items",
        type=int,
        default=None,
        help="answer spans per passage at most (default: the header's max_items); `chunks` wants more",
    )
    args = ap.parse_args()
    if args.max_items is not None and args.max_items < 1:
        sys.exit(f"--max-items must be 1 or more, not {args.max_items}")
    try:  # the prompts folder's qa-spans.md, else the built-in one, as augment generate picks it
        (strategy,) = load_strategies(["qa-spans"], args.prompts_dir)
    except AugmentError as e:
        sys.exit(str(e))
    header, path = strategy.header, strategy.path
    limit = args.max_items or header.max_items
    base = {o: bool(getattr(header, o)) for o in OPTIONS}
    off = [o for o in OPTIONS if not base[o]]
    rows = [("header", base)] + [(f"+ {o}", {**base, o: True}) for o in off]
    if len(off) > 1:
        rows.append(("+ all", {o: True for o in OPTIONS}))
    table = Table(title=f"qa-spans picker, max_items {limit} ({path})")
    for col in (
        "QA file",
        "options",
        "spans / passage",
        "gold picked exactly",
        "best-span F1",
        "exact vs header",
        "spans vs header",
    ):
        table.add_column(col, justify="left" if col in ("QA file", "options") else "right")
    for qa in args.qa:
        passages: dict[tuple[str, str], list[QAItem]] = {}
        try:
            items = load_qa(qa)
        except AugmentError as e:
            sys.exit(str(e))
        for item in items:
            if item.passage:
                passages.setdefault((item.title, item.passage), []).append(item)
        if not passages:
            sys.exit(f"{qa}: no question has its passage ('text'); the screen picks spans from passages")
        ref = None
        for name, opts in rows:
            got = screen(passages, limit, opts)
            ref = ref or got
            table.add_row(
                f"{qa.name} ({got['questions']} q)",
                name,
                f"{got['spans']:.1f}",
                f"{got['exact']:.1%}",
                f"{got['f1']:.3f}",
                f"{got['exact'] / max(ref['exact'], 1e-9):.2f}",
                f"{got['spans'] / max(ref['spans'], 1e-9):.2f}",
            )
    Console(file=sys.stdout, width=160).print(table)


if __name__ == "__main__":
    main()
