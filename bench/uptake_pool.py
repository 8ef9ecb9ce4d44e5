"""Pool several knowledge-uptake runs (bench/uptake.py) into one table.

One run evaluates a few dozen questions, so its intervals are wide (about ±0.08 F1 at 54
questions). Runs with different --seed draw different passages and train every arm again; pooled,
each question is one paired observation of the arms' difference, and the interval is the
bootstrap over all of them. Runs must share the model and the training settings (all but --seed
and --out), else the arms they pool are not the same treatment.

    python bench/uptake_pool.py runs/uptake-s0/uptake.json runs/uptake-s1/uptake.json -o pooled.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from uptake import PAIRS  # noqa: E402  (bench/ is this script's folder, first on sys.path)

from augment.eval.metrics import bootstrap_ci  # noqa: E402
from augment.io import write_json  # noqa: E402

ARMS = ("base", "raw", "augment", "format")
METRICS = ("f1", "answer_nll")
PER_RUN = ("seed", "out")  # the settings a pooled run may differ in


def pool(runs: list[tuple[Path, dict]]) -> dict:
    """Concatenated per-question scores of `runs`, each arm's mean and each difference's interval."""
    first_path, first = runs[0]
    fixed = {k: v for k, v in first["args"].items() if k not in PER_RUN}
    for path, run in runs[1:]:
        other = {k: v for k, v in run["args"].items() if k not in PER_RUN}
        diff = sorted(k for k in fixed.keys() | other.keys() if fixed.get(k) != other.get(k))
        if diff:
            raise SystemExit(f"{path}: settings differ from {first_path} in {', '.join(diff)}")
    per = {arm: {m: [] for m in METRICS} for arm in ARMS}
    for path, run in runs:
        for arm in ARMS:
            scores = run.get("per_question", {}).get(arm)
            if scores is None:
                raise SystemExit(f"{path}: no per-question scores for arm {arm!r} (rerun bench/uptake.py)")
            for m in METRICS:
                per[arm][m].extend(scores[m])
    arrays = {arm: {m: np.asarray(v, dtype=float) for m, v in d.items()} for arm, d in per.items()}
    return {
        "runs": [str(p) for p, _ in runs],
        "seeds": [run["args"].get("seed") for _, run in runs],
        "questions": int(len(arrays["base"]["f1"])),
        "settings": fixed,
        "closed": {arm: {m: float(a[m].mean()) for m in METRICS} for arm, a in arrays.items()},
        "differences": {
            name: {m: bootstrap_ci(arrays[hi][m] - arrays[lo][m]) for m in METRICS}
            for name, (lo, hi) in PAIRS.items()
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path, nargs="+", help="uptake.json files of bench/uptake.py")
    ap.add_argument("-o", "--out", type=Path, help="write the pooled table as JSON")
    args = ap.parse_args()
    runs = []
    for path in args.runs:
        try:
            runs.append((path, json.loads(path.read_text())))
        except (OSError, json.JSONDecodeError) as e:
            raise SystemExit(f"{path}: cannot read an uptake result ({e})") from None
    result = pool(runs)
    if args.out:
        write_json(args.out, result)
    print(f"\n{result['questions']} questions pooled from {len(runs)} runs (seeds {result['seeds']})\n")
    print("| arm | F1 | answer NLL |\n|---|---|---|")
    for arm, s in result["closed"].items():
        print(f"| {arm} | {s['f1']:.3f} | {s['answer_nll']:.3f} |")
    print("\n| difference | F1 [95% CI] | answer NLL [95% CI] |\n|---|---|---|")
    for name, d in result["differences"].items():
        cells = [f"{d[m][0]:+.3f} [{d[m][1]:+.3f}, {d[m][2]:+.3f}]" for m in METRICS]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
