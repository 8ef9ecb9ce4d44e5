"""Which generation settings make arm (c)'s data ask the evaluated questions: a screen that
needs generation only, no training.

In the knowledge-uptake experiment (bench/uptake.py, bench/UPTAKE.md) the gain concentrates on
the questions (c)'s data *anticipated*: a kept record asks the evaluated question, its answer a
gold answer (uptake_pool.py's test). A training draw takes over an hour on a CPU; generating one
draw's data takes minutes. So before a recipe change is registered and trained, screen it here:
for each seed (the same passages uptake.py --seed evaluates) and each setting (flags for
`augment generate`), generate the evaluated passages' data and count

  - the kept QA records (one per question written; cloze and in-place forms are records too),
  - the questions whose gold answer is a kept answer for their passage ("gold kept"),
  - the anticipated questions (the gold answer, and half the question's content words).

Ratios are to the first setting, measured in the same run on the same passages.

    python bench/anticipate.py --qa ../shared/data/squad_dev200.jsonl --seeds 5 6 \\
        --setting header= --setting "tight=--prompts-dir runs/p-tight" -o runs/anticipate

--cache PATTERN names a run folder per seed ({seed} is replaced) whose cache.sqlite is copied into
each setting's run before it starts, so requests a setting shares with that run (the same
rendered prompt) are answered from it instead of the model: a setting that adds spans pays only
for the new ones. Generation is resumable, so a killed screen is restarted with the same command.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from uptake import augment, split_passages, write_docs  # noqa: E402
from uptake_pool import anticipated, practised  # noqa: E402

from augment.eval.metrics import normalize_answer  # noqa: E402
from augment.io import read_jsonl, write_json, write_jsonl  # noqa: E402


def questions_of(rows: list[dict]) -> list[dict]:
    """The evaluated questions of a draw's passages, each with its passage's id."""
    return [
        {"q": q["q"], "answers": q["answers"], "passage": str(r["id"])}
        for r in rows
        for q in r["questions"]
        if not q.get("unanswerable_from_text")
    ]


def count(folder: Path, questions: list[dict]) -> dict:
    """Kept QA records, gold answers kept for their passage, and anticipated questions, of a
    setting's `folder`, laid out as uptake.py lays out a draw (run_eval/, qa_eval.jsonl)."""
    kept = folder / "run_eval" / "curated" / "kept.jsonl"
    if not kept.is_file():
        raise SystemExit(f"{kept}: not found (did augment generate finish?)")
    fields = [r.get("fields") or {} for r in read_jsonl(kept)]
    records = sum(bool(f.get("question") and f.get("answer")) for f in fields)
    answers = practised(folder, [q["passage"] for q in questions])
    if answers is None:
        raise SystemExit(f"{folder}: needs run_eval/documents.jsonl and qa_eval.jsonl beside kept records")
    gold = [
        any(normalize_answer(a) in given for a in q["answers"])
        for q, given in zip(questions, answers, strict=True)
    ]
    return {
        "questions": len(questions),
        "qa_records": records,
        "gold_kept": sum(gold),
        "anticipated": sum(anticipated(folder, questions) or []),
    }


def parse_setting(text: str) -> tuple[str, list[str]]:
    name, sep, flags = text.partition("=")
    if not sep or not name or "/" in name:
        raise SystemExit(
            f"--setting {text!r}: expected NAME=FLAGS (flags for augment generate, may be empty)"
        )
    return name, shlex.split(flags)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--qa", type=Path, required=True, help="QA file (augment eval's format)")
    ap.add_argument("--passages", type=int, default=10, help="evaluated passages per draw (as uptake.py)")
    ap.add_argument("--seeds", type=int, nargs="+", required=True, help="draws: uptake.py --seed values")
    ap.add_argument("--strategies", default="qa-spans,paraphrase", help="as uptake.py --strategies")
    ap.add_argument(
        "--setting",
        action="append",
        required=True,
        help="NAME=FLAGS: a setting and its extra augment generate flags; the first is the reference",
    )
    ap.add_argument("--cache", help="run folder per seed ({seed}) whose cache.sqlite seeds each run")
    ap.add_argument("-o", "--out", type=Path, default=Path("runs") / "anticipate")
    args = ap.parse_args()
    if not args.qa.is_file():
        raise SystemExit(f"--qa {args.qa}: no such file")
    settings = [parse_setting(s) for s in args.setting]
    if len({name for name, _ in settings}) < len(settings):
        raise SystemExit("--setting: two settings share a name")

    results: dict[str, dict[int, dict]] = {name: {} for name, _ in settings}
    for seed in args.seeds:
        evaluated, _ = split_passages(args.qa, args.passages, seed)
        draw = args.out / f"seed{seed}"
        write_jsonl(draw / "qa_eval.jsonl", evaluated)
        docs = write_docs(draw / "docs_eval", evaluated)
        questions = questions_of(evaluated)
        for name, flags in settings:
            folder = draw / name
            run = folder / "run_eval"
            if args.cache and not (run / "cache.sqlite").exists():
                source = Path(args.cache.format(seed=seed)) / "cache.sqlite"
                if not source.is_file():
                    raise SystemExit(f"--cache: {source}: no such file")
                run.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, run / "cache.sqlite")
            write_jsonl(folder / "qa_eval.jsonl", evaluated)  # where uptake_pool's readers look
            try:
                augment(
                    "generate", docs, "-o", run, "--strategies", args.strategies,
                    "--decontaminate", draw / "qa_eval.jsonl", "--val-fraction", "0", "--quiet", *flags,
                )  # fmt: skip
            except subprocess.CalledProcessError as e:
                raise SystemExit(
                    f"setting {name}, seed {seed}: augment generate exited {e.returncode}"
                ) from None
            stats = json.loads((run / "stats.json").read_text())
            results[name][seed] = {**count(folder, questions), "requests": stats.get("requests", 0)}

    totals = {
        name: {k: sum(r[k] for r in per.values()) for k in next(iter(per.values()))}
        for name, per in results.items()
    }
    ref = totals[settings[0][0]]
    table = Table(
        title=f"{args.qa.name}: seeds {', '.join(map(str, args.seeds))} ({ref['questions']} questions)"
    )
    for col in (
        "setting",
        "requests",
        "QA records kept",
        "gold kept",
        "anticipated",
        "anticipated vs first",
        "records vs first",
    ):
        table.add_column(col, justify="left" if col == "setting" else "right")
    for name, t in totals.items():
        n = max(t["questions"], 1)
        table.add_row(
            name,
            str(t["requests"]),
            str(t["qa_records"]),
            f"{t['gold_kept']} ({t['gold_kept'] / n:.1%})",
            f"{t['anticipated']} ({t['anticipated'] / n:.1%})",
            f"{t['anticipated'] / max(ref['anticipated'], 1):.2f}",
            f"{t['qa_records'] / max(ref['qa_records'], 1):.2f}",
        )
    Console(file=sys.stdout, width=160).print(table)
    write_json(
        args.out / "anticipate.json",
        {
            "qa": str(args.qa),
            "seeds": args.seeds,
            "settings": dict(settings),
            "per_seed": results,
            "totals": totals,
        },
    )


if __name__ == "__main__":
    main()
