"""Compare two knowledge-uptake runs of the same questions, question by question: a paired screen.

A screen trains one draw again with one thing changed (a training option, a record form) and
asks whether it moved the arms. Two runs of the same draw, seed and train seed score the same
questions, so each question is one paired observation: for every arm, its score in the second
run minus the first; and for the knowledge gain, (c) − (d) in the second run minus (c) − (d) in
the first. Intervals are 95 % bootstraps over questions and, second, over whole passages (the
runs' `question_passages`).

    python bench/uptake_compare.py bench/results/...-seed14.json runs/x-rf-s14/uptake.json

Give the pairs of files of several steps at once (`OLD NEW OLD NEW ...`) to compare each step.
A side may be several training runs of the draw joined with `+` (`OLD1+OLD2 NEW1+NEW2`, e.g. the
`--train-seed` replicates): they are averaged question by question first, as uptake_pool.py
averages replicates, so a two-run screen reads the mean of both data orders.

Where each side's records are known (its uptake.json still in its run folder, beside run_eval/,
or a result kept in bench/results with the draw's PREFIX-data folder beside it), the questions are
also split by which side's kept records anticipated them (uptake_pool.py's test: a record asks
the question with its gold answer), with (c), (d) and (c) − (d) on each side: a change of records
shows whether it moved the questions it newly anticipates, or the ones both sides already did.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from uptake_pool import anticipated, load_runs  # noqa: E402  (bench/ is this script's folder, first on sys.path)

from augment.eval.metrics import bootstrap_ci  # noqa: E402
from augment.io import write_json  # noqa: E402

ARMS = ("base", "raw", "augment", "format")
METRICS = ("f1", "answer_nll")


def load(path: Path) -> dict:
    [(_, run)] = load_runs([path])
    if "per_question" not in run or "question_passages" not in run:
        raise SystemExit(f"{path}: no per-question scores (not a bench/uptake.py result)")
    return run


def load_mean(spec: str) -> dict:
    """One run, or the question-by-question mean of the runs `spec` joins with '+'."""
    paths = [Path(p) for p in spec.split("+")]
    runs = [load(p) for p in paths]
    first = runs[0]
    for path, run in zip(paths[1:], runs[1:], strict=True):
        if run["questions_asked"] != first["questions_asked"]:
            raise SystemExit(f"{path}: not the questions of {paths[0]}; only runs of one draw are averaged")
    per_question = {
        arm: {m: list(np.mean([run["per_question"][arm][m] for run in runs], axis=0)) for m in METRICS}
        for arm in first["per_question"]
        if all(arm in run["per_question"] for run in runs)
    }
    return {**first, "per_question": per_question, "folder": records_folder(paths[0])}


def records_folder(path: Path) -> Path:
    """Where a result's kept records are: its run folder (beside run_eval/), or for a result kept
    in bench/results the draw's `PREFIX-data` folder that `bench/draws.sh keep` writes beside it
    (PREFIX the file's name without its -tN, -stepN and -avgN parts: every training run and step
    of one draw shares the draw's records)."""
    if (path.parent / "run_eval").is_dir():
        return path.parent
    prefix = re.sub(r"(-t\d+)?(-step\d+|-avg\d+)?$", "", path.stem)
    kept = path.parent / f"{prefix}-data"
    return kept if (kept / "run_eval").is_dir() else path.parent


def compare(old: dict, new: dict, names: tuple[str, str]) -> dict:
    """Per arm and for (c) − (d): {metric: [mean, lo, hi]} over questions and by passage."""
    if old["questions_asked"] != new["questions_asked"]:
        raise SystemExit(f"{names[1]}: not the questions of {names[0]} (another draw?)")
    groups = old["question_passages"]

    def scores(run: dict, arm: str, metric: str) -> np.ndarray:
        return np.asarray(run["per_question"][arm][metric], dtype=float)

    rows: dict[str, dict] = {}
    for arm in ARMS:
        if arm in old["per_question"] and arm in new["per_question"]:
            rows[arm] = {m: scores(new, arm, m) - scores(old, arm, m) for m in METRICS}
    rows["c-d"] = {
        m: (scores(new, "augment", m) - scores(new, "format", m))
        - (scores(old, "augment", m) - scores(old, "format", m))
        for m in METRICS
    }
    out = {}
    for name, diffs in rows.items():
        out[name] = {
            m: {
                "questions": list(bootstrap_ci(d)),
                "by_passage": list(bootstrap_ci(d, groups=groups)),
                "changed": int(np.count_nonzero(np.abs(d) > 1e-9)),
            }
            for m, d in diffs.items()
        }
    out["c-d, each run"] = {
        label: {m: float(np.mean(scores(run, "augment", m) - scores(run, "format", m))) for m in METRICS}
        for label, run in (("old", old), ("new", new))
    }
    return out


GROUPS = ("old and new", "new only", "old only", "neither")


def by_anticipation(old: dict, new: dict) -> dict | None:
    """The questions split by which side's data anticipated them (a kept record of the run's
    folder asks them, uptake_pool.anticipated), with (c)'s, (d)'s and (c) − (d)'s mean on each
    side: where a change of records moved the scores. None when a side's folder does not hold
    its records (a result copied out of its run folder)."""
    flags = [anticipated(Path(run.get("folder", "")), run["questions_asked"]) for run in (old, new)]
    if flags[0] is None or flags[1] is None:
        return None
    was, now = (np.asarray(f, dtype=bool) for f in flags)
    masks = dict(zip(GROUPS, (was & now, now & ~was, was & ~now, ~was & ~now), strict=True))

    def means(run: dict, mask: np.ndarray) -> dict:
        pq = run["per_question"]
        arms = {
            arm: {m: float(np.mean(np.asarray(pq[arm][m], dtype=float)[mask])) for m in METRICS}
            for arm in ("augment", "format")
        }
        arms["c-d"] = {m: arms["augment"][m] - arms["format"][m] for m in METRICS}
        return arms

    return {
        name: {"questions": int(mask.sum()), "old": means(old, mask), "new": means(new, mask)}
        for name, mask in masks.items()
        if mask.any()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "runs", nargs="+", help="OLD NEW [OLD NEW ...]: uptake JSONs; RUN1+RUN2 averages a draw's runs"
    )
    ap.add_argument("-o", "--out", type=Path, help="write the comparisons as JSON")
    args = ap.parse_args()
    if len(args.runs) % 2:
        raise SystemExit("give the runs in pairs: OLD NEW [OLD NEW ...]")
    result = []
    for old_path, new_path in zip(args.runs[::2], args.runs[1::2], strict=True):
        old, new = load_mean(old_path), load_mean(new_path)
        cmp = compare(old, new, (str(old_path), str(new_path)))
        split = by_anticipation(old, new)
        result.append({"old": str(old_path), "new": str(new_path), **cmp, "by_anticipation": split})
        n = len(old["questions_asked"])
        print(f"\n{new_path} minus {old_path}, {n} questions (interval over questions; by passage)\n")
        print("| arm | F1, new − old | NLL, new − old | questions changed |\n|---|---|---|---|")
        for name in [*(a for a in ARMS if a in cmp), "c-d"]:
            cells = []
            for m in METRICS:
                q, p = cmp[name][m]["questions"], cmp[name][m]["by_passage"]
                cells.append(f"{q[0]:+.3f} [{q[1]:+.3f}, {q[2]:+.3f}]; [{p[1]:+.3f}, {p[2]:+.3f}]")
            print(f"| {name} | {cells[0]} | {cells[1]} | {cmp[name]['answer_nll']['changed']} of {n} |")
        each = cmp["c-d, each run"]
        print(
            f"\n(c) − (d): old {each['old']['f1']:+.3f} F1, {each['old']['answer_nll']:+.3f} nats; "
            f"new {each['new']['f1']:+.3f} F1, {each['new']['answer_nll']:+.3f} nats"
        )
        if split:
            print(
                "\n| anticipated by | questions | (c) F1 / NLL, old → new | (d) F1 / NLL, old → new "
                "| (c) − (d) F1, old → new |\n|---|---|---|---|---|"
            )
            for name, g in split.items():
                o, w = g["old"], g["new"]
                arms = [
                    f"{o[a]['f1']:.3f} → {w[a]['f1']:.3f}, {o[a]['answer_nll']:.3f} → {w[a]['answer_nll']:.3f}"
                    for a in ("augment", "format")
                ]
                cd = f"{o['c-d']['f1']:+.3f} → {w['c-d']['f1']:+.3f}"
                print(f"| {name} | {g['questions']} | {arms[0]} | {arms[1]} | {cd} |")
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    main()
