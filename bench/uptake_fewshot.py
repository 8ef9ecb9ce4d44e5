"""Does the answer format alone unlock what the base model already knows? A probe beside uptake.

The format control (arm d of bench/uptake.py) practises answering questions about *other*
passages and reads the evaluated ones as replay; on SQuAD it answers far better than the base
model or raw-passage training. Either it learned the facts from the replay, or the answer form
let it say what pretraining already taught it. This scores the base model once more, closed-book
with the title as uptake.py scores it, but with K worked examples before each question
(`augment eval --shots`), taken from the draw's format-control passages (never the evaluated
ones): the form shown in the prompt instead of trained. If few-shot base came near (d), the
control's lead would be prior knowledge that the form elicits.

    python bench/uptake_fewshot.py bench/results/uptake-squad10-...-seed15.json [...] --shots 4

Each RUN is a kept uptake.json (its draw is made again from its --qa, --passages and --seed); a
sibling `-tN.json` of the same draw, if given too, is averaged into the arms' columns, not scored
again. The table: per draw and pooled, F1 and gold-answer NLL of the base model zero-shot (from the
run), few-shot (scored here) and of arms (b), (c) and (d) (from the runs).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from uptake import split_passages  # noqa: E402  (bench/ is this script's folder, first on sys.path)
from uptake_pool import load_runs, qa_file  # noqa: E402

from augment.eval.metrics import bootstrap_ci  # noqa: E402
from augment.eval.runner import score_model  # noqa: E402
from augment.io import write_json  # noqa: E402
from augment.qafile import QAItem  # noqa: E402

ARMS = ("base", "raw", "augment", "format")


def draw_of(path: Path, run: dict) -> tuple[list[QAItem], list[QAItem]]:
    """The run's evaluated questions (in its order) and one example question from each of the
    format control's passages, drawn again the way bench/uptake.py drew them."""
    args = run["args"]
    qa = Path(args["qa"])
    found = qa_file(qa)
    if found is None:
        raise SystemExit(f"{path}: its QA file {qa} is not found")
    evaluated, other = split_passages(found, int(args["passages"]), int(args["seed"]))
    items = [
        QAItem(str(r["id"]), r.get("title", ""), r["text"], q["q"], list(q["answers"]))
        for r in evaluated
        for q in r["questions"]
        if not q.get("unanswerable_from_text")
    ]
    asked = [q["q"] for q in run.get("questions_asked", [])]
    if [it.question for it in items] != asked:
        raise SystemExit(f"{path}: {found} drawn again does not give the questions the run asked")
    shots = [
        QAItem(str(r["id"]), r.get("title", ""), r["text"], q["q"], list(q["answers"]))
        for r in other
        for q in r["questions"][:1]
        if not q.get("unanswerable_from_text")
    ]
    return items, shots


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path, nargs="+", help="kept uptake.json files (a draw's -tN files too)")
    ap.add_argument("--shots", type=int, default=4, help="worked examples before each question (default 4)")
    ap.add_argument("--model", help="the base model (default: the runs' own)")
    ap.add_argument("-o", "--out", type=Path, help="write the per-question scores and the table as JSON")
    args = ap.parse_args()
    if args.shots < 1:
        raise SystemExit(f"--shots {args.shots}: give at least one example")
    draws: dict[tuple[str, str], list[tuple[Path, dict]]] = {}
    for path, run in load_runs(args.runs):
        a = run.get("args", {})
        draws.setdefault((a.get("qa", ""), str(a.get("seed"))), []).append((path, run))
    rows, result = [], {"shots": args.shots, "draws": []}
    for (qa, seed), group in draws.items():
        path, run = group[0]
        items, shots = draw_of(path, run)
        if len(shots) < args.shots:
            raise SystemExit(f"{path}: {len(shots)} format-control passages, fewer than --shots {args.shots}")
        few = score_model(
            args.model or run["model"], items, mode="closed", with_title=True, shots=shots[: args.shots]
        )
        arms = {
            arm: {
                m: np.mean([r["per_question"][arm][m] for _, r in group], axis=0)
                for m in ("f1", "answer_nll")
            }
            for arm in ARMS
        }
        draw = {
            "qa": qa,
            "seed": seed,
            "runs": [str(p) for p, _ in group],
            "shots": [{"q": s.question, "answer": min(s.answers, key=len)} for s in shots[: args.shots]],
            "few_shot": {
                "f1": few.per_item["f1"],
                "answer_nll": few.per_item["answer_nll"],
                "prediction": few.predictions,
            },
            "arms": {arm: {m: v.tolist() for m, v in scores.items()} for arm, scores in arms.items()},
        }
        result["draws"].append(draw)
        rows.append((f"{Path(qa).stem} seed {seed}", draw))
    pooled = {}
    for qa in dict.fromkeys(d["qa"] for d in result["draws"]):
        mine = [d for d in result["draws"] if d["qa"] == qa]
        pooled[qa] = {
            "few_shot": {m: sum((d["few_shot"][m] for d in mine), []) for m in ("f1", "answer_nll")},
            "arms": {
                arm: {m: sum((d["arms"][arm][m] for d in mine), []) for m in ("f1", "answer_nll")}
                for arm in ARMS
            },
        }
        rows.append((f"{Path(qa).stem}, {len(mine)} draws", pooled[qa]))
    print(f"F1 / gold-answer NLL, closed-book with the title; few-shot: {args.shots} worked examples")
    print(
        f"{'':34} {'n':>4}  {'base 0-shot':>13}  {'base few-shot':>13}  {'(b) raw':>13}  {'(c) augment':>13}  {'(d) format':>13}"
    )
    for label, d in rows:
        cols = [d["arms"]["base"], d["few_shot"], d["arms"]["raw"], d["arms"]["augment"], d["arms"]["format"]]
        n = len(d["few_shot"]["f1"])
        print(
            f"{label:34} {n:>4}  "
            + "  ".join(f"{np.mean(c['f1']):.3f} / {np.mean(c['answer_nll']):.3f}" for c in cols)
        )
    for qa, p in pooled.items():
        diff = np.asarray(p["few_shot"]["f1"]) - np.asarray(p["arms"]["format"]["f1"])
        mean, lo, hi = bootstrap_ci(diff)
        print(f"{Path(qa).stem}: few-shot base - (d) F1 {mean:+.3f} [{lo:+.3f}, {hi:+.3f}] (over questions)")
        result.setdefault("few_shot_minus_format_f1", {})[qa] = {"mean": mean, "lo": lo, "hi": hi}
    if args.out:
        write_json(args.out, {**result, "pooled": pooled})


if __name__ == "__main__":
    main()
