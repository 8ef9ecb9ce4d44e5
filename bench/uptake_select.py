"""Every arm at its best training setting, chosen on held-out questions, then the uptake table.

Training longer can widen (c) - (d) without (c) learning more: the format control, trained longer
on other passages' questions, answers with their facts more surely and its likelihood of the gold
answers falls. A fair comparison lets every arm choose its own training setting (steps, learning
rate, ...) among the same candidates, and chooses on questions it does not report. The candidates
are runs of bench/uptake.py on the same passage draw (same --seed) that differ in training
settings. Each draw's passages are split into two folds (alternate passages, so questions about one
passage never choose for each other); for each fold, every arm takes the candidate whose mean
--by score on the *other* fold is best, and the fold's questions are scored with that choice.
Each question is scored by a checkpoint chosen without it, and every arm, the controls included,
gets the same procedure. Draws are then pooled question by question, as in uptake_pool.py, and
replicates (--train-seed) of one candidate are averaged first.

    python bench/uptake_select.py runs/s0-24/uptake.json runs/s0-48/uptake.json \\
        runs/s1-24/uptake.json runs/s1-48/uptake.json -o selected.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from uptake_pool import (  # noqa: E402
    ARMS,
    METRICS,
    OPTIONAL,
    SAME_HELP,
    _replicate_mean,
    differences,
    differences_by_run,
    load_runs,
    print_differences,
    question_passages,
    run_metrics,
    settings,
    trained_with,
    vouched,
)

from augment.eval.report import LOWER_IS_BETTER  # noqa: E402
from augment.io import write_json  # noqa: E402


def folds(passages: list[str]) -> np.ndarray:
    """Fold 0 or 1 per question: alternate passages in the order they first appear."""
    order = {p: k for k, p in enumerate(dict.fromkeys(passages))}
    return np.asarray([order[p] % 2 for p in passages])


def per_draw(runs: list[tuple[Path, dict]], fixed: list[dict], varying: list[str]) -> list[str]:
    """The varying settings no two draws share a value of: a setting each draw wrote its own way
    (a prompts folder's path), not a candidate one draw lacks."""
    values: dict[str, dict[str, set]] = {}
    for (_, run), s in zip(runs, fixed, strict=True):
        for k in varying:
            values.setdefault(k, {}).setdefault(str(run["args"].get("seed")), set()).add(str(s.get(k)))
    found = []
    for k, by_seed in values.items():
        sets = list(by_seed.values())
        if len(sets) > 1 and all(a.isdisjoint(b) for i, a in enumerate(sets) for b in sets[i + 1 :]):
            found.append(k)
    return found


def candidates(
    runs: list[tuple[Path, dict]], same: tuple[str, ...] = ()
) -> tuple[list[str], dict[str, dict[str, list]]]:
    """The training settings the runs differ in (but those of `same`), and per draw (--seed) its
    candidates by label ("steps=24"), each a list of replicate runs."""
    fixed = [settings(run, same) for _, run in runs]
    varying = sorted(k for k in set().union(*fixed) if len({s.get(k) for s in fixed}) > 1)
    draws: dict[str, dict[str, list]] = {}
    for (path, run), s in zip(runs, fixed, strict=True):
        label = ", ".join(f"{k}={s.get(k)}" for k in varying) or "as run"
        draws.setdefault(str(run["args"].get("seed")), {}).setdefault(label, []).append((path, run))
    labels = sorted({label for d in draws.values() for label in d})
    for seed, cands in draws.items():
        if sorted(cands) != labels:
            missing = next(label for label in labels if label not in cands)
            hint = "".join(
                f"; --same {k} if its values name one treatment" for k in per_draw(runs, fixed, varying)
            )
            raise SystemExit(f"seed {seed}: no run with {missing} (every draw needs every candidate{hint})")
        first_path, first = next(iter(cands.values()))[0]
        for group in cands.values():
            for path, run in group:
                if run.get("questions_asked") != first.get("questions_asked"):
                    raise SystemExit(f"{path}: same --seed as {first_path} but other questions")
    return varying, draws


def select(runs: list[tuple[Path, dict]], by: str = "answer_nll", same: tuple[str, ...] = ()) -> dict:
    """Per question, each arm's scores under the candidate chosen on the other fold; pooled."""
    treated = vouched(runs, same)
    varying, draws = candidates(runs, same)
    metrics = run_metrics(runs)
    if by not in metrics:
        raise SystemExit(f"--by {by}: not every run scored it (runs from before it existed)")
    better = np.argmin if by in LOWER_IS_BETTER else np.argmax
    per = {arm: {m: [] for m in metrics} for arm in ARMS}
    groups: list[str] = []
    chosen: dict[str, dict[str, list[str]]] = {}
    stacks: list[tuple[dict, list[str]]] = []
    for seed, cands in draws.items():
        labels = sorted(cands)
        means = {label: _replicate_mean(group, metrics) for label, group in cands.items()}
        path, run = cands[labels[0]][0]
        passages = question_passages(path, run)
        groups += [f"{seed}/{p}" for p in passages]
        fold = folds(passages)
        n = len(fold)
        # each training run (one --train-seed gives every candidate step of it) under the choices
        trained = {label: {trained_with(r): r for _, r in group} for label, group in cands.items()}
        same_runs = all(trained[label].keys() == trained[labels[0]].keys() for label in labels)
        stack: dict[str, dict[str, np.ndarray]] = {}
        for arm in ARMS:
            picked = np.empty(n, dtype=int)
            for f in (0, 1):
                held = fold != f
                score = [
                    np.mean(np.asarray(means[label][arm][by])[held]) if held.any() else 0.0
                    for label in labels
                ]
                picked[fold == f] = int(better(score))
            chosen.setdefault(arm, {})[seed] = [
                labels[picked[fold == f][0]] for f in (0, 1) if (fold == f).any()
            ]
            for m in metrics:
                table = np.asarray([means[label][arm][m] for label in labels], dtype=float)
                per[arm][m].extend(table[picked, np.arange(n)].tolist())
                if same_runs:
                    stack.setdefault(arm, {})[m] = np.asarray(
                        [
                            np.asarray(
                                [trained[label][t]["per_question"][arm][m] for label in labels], dtype=float
                            )[picked, np.arange(n)]
                            for t in trained[labels[0]]
                        ]
                    )
        stacks.append((stack, groups[-n:]) if same_runs else ({}, None))
    arrays = {arm: {m: np.asarray(v, dtype=float) for m, v in d.items()} for arm, d in per.items()}
    return {
        "runs": [str(p) for p, _ in runs],
        "candidates_differ_in": varying,
        "treated_as_same": treated,
        "chosen_by": by,
        "chosen": chosen,
        "questions": int(len(arrays["base"]["f1"])),
        "closed": {arm: {m: float(v.mean()) for m, v in a.items()} for arm, a in arrays.items()},
        "differences": differences(arrays),
        "differences_by_passage": differences(arrays, groups),
        "replicates": {seed: min(len(group) for group in cands.values()) for seed, cands in draws.items()},
        "differences_by_passage_and_run": differences_by_run(stacks),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path, nargs="+", help="uptake.json files of bench/uptake.py")
    ap.add_argument(
        "--by",
        default="answer_nll",
        choices=METRICS + OPTIONAL,
        help="the score that chooses (default: answer_nll)",
    )
    ap.add_argument("-o", "--out", type=Path, help="write the table as JSON")
    ap.add_argument("--same", action="append", default=[], metavar="SETTING", help=SAME_HELP)
    args = ap.parse_args()
    runs = load_runs(args.runs)
    result = select(runs, by=args.by, same=tuple(args.same))
    if args.out:
        write_json(args.out, result)
    print(
        f"\n{result['questions']} questions; every arm chose among runs differing in "
        f"{', '.join(result['candidates_differ_in']) or 'nothing'} by {args.by} on the other fold\n"
    )
    print("| arm | chosen (per seed: fold 0, fold 1) | F1 | answer NLL |\n|---|---|---|---|")
    for arm, s in result["closed"].items():
        picks = "; ".join(f"seed {seed}: {' / '.join(p)}" for seed, p in result["chosen"][arm].items())
        print(f"| {arm} | {picks} | {s['f1']:.3f} | {s['answer_nll']:.3f} |")
    print_differences(result)


if __name__ == "__main__":
    main()
