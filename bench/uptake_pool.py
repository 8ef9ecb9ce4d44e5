"""Pool several knowledge-uptake runs (bench/uptake.py) into one table.

One run evaluates a few dozen questions, so its intervals are wide (about ±0.08 F1 at 54
questions). Runs with different --seed draw different passages and train every arm again; pooled,
each question is one paired observation of the arms' difference, and the interval is the
bootstrap over all of them. Runs must share the model and the training settings (all but --seed
and --out, and any setting named with --same), else the arms they pool are not the same treatment.

Runs of the same --seed with another --train-seed are *replicates*: the same passages, data and
questions, every arm trained again in another order. One 24-step training run moves with its data
order as much as the intervals are wide, so replicates are averaged question by question first;
the interval is then over questions of the mean over training runs. Each training run's own
(c) - (d) and (c) - (b) are kept too (`training_runs`), with how far apart they are: the spread
the data order alone gives, which no interval over questions holds.

Questions about one passage are not independent (a model that learned the passage answers all of
them), so each difference also gets an interval that resamples whole passages ("by passage"):
what the mean would do with other passages, not only other questions. It needs each question's
passage: the run's `question_passages`, else drawn again from its --qa file. Where every draw was
trained at least twice, a third interval resamples training runs within each draw as well as
passages ("by passage and training run"): what the mean would do with other passages *and*
other data orders, the one interval that holds all three sources of noise.

    python bench/uptake_pool.py runs/uptake-s0/uptake.json runs/uptake-s1/uptake.json -o pooled.json

It also splits the questions by whether arm (c)'s data *anticipated* them: a kept record of the
run's `run_eval/` holds a question whose answer is one of the gold answers and that shares at least
half of the evaluated question's content words. Generating such questions from the passage alone
(the evaluated questions are never shown to the generator, and decontamination drops records that
repeat them) is what the method is for, but a reader should see how much of the gain comes from
questions the generator happened to ask, and how much carries over to the rest. One run alone is
a pool of one.

And it counts, per arm, the questions answered wrongly with an answer (c)'s data practised for
the same passage ("Who was the V&A's first director?" -> "1851", a date (c) was drilled on): how
much drilling one passage's answers crowds out what was not asked. The other arms never saw (c)'s
data; their share is the floor that a passage's salient phrases give by chance.
"""

from __future__ import annotations

import argparse
import json
import sys
from itertools import compress
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from uptake import PAIRS, split_passages  # noqa: E402  (bench/ is this script's folder, first on sys.path)

from augment.eval.metrics import bootstrap_ci, normalize_answer  # noqa: E402
from augment.io import read_jsonl, write_json  # noqa: E402
from augment.strategies.spans import FUNCTION_WORDS  # noqa: E402

ARMS = ("base", "raw", "augment", "format")
METRICS = ("f1", "answer_nll")
# pooled too where every run scored it (runs before it existed did not)
OPTIONAL = ("answer_nll_source",)
PER_RUN = ("seed", "train_seed", "out")  # the settings a pooled run may differ in


SAME_HELP = (
    "a setting (a key of the runs' args) that may differ because you know the runs are the same "
    "treatment anyway, e.g. generate_args naming one prompts folder by two paths; repeatable; "
    "the values are kept in the output's treated_as_same"
)


def settings(run: dict, same: tuple[str, ...] = ()) -> dict:
    """The run's settings that every run it is pooled or compared with must share: all but the
    per-run ones (PER_RUN) and those the caller vouches are the same treatment (`--same`)."""
    return {k: v for k, v in run["args"].items() if k not in PER_RUN and k not in same}


def vouched(runs: list[tuple[Path, dict]], same: tuple[str, ...]) -> dict[str, list[str]]:
    """Each `--same` setting with the values the runs really have, for the output file."""
    for k in same:
        if not any(k in run["args"] for _, run in runs):
            raise SystemExit(f"--same {k}: no run has that setting (one of: {', '.join(runs[0][1]['args'])})")
    return {k: sorted({str(run["args"].get(k)) for _, run in runs}) for k in same}


def _content_words(text: str) -> set[str]:
    return {w for w in normalize_answer(text).split() if w not in FUNCTION_WORDS}


def anticipated(run_dir: Path, questions: list[dict], share: float = 0.5) -> list[bool] | None:
    """Per evaluated question: does a kept record of `run_dir/run_eval` ask it (its answer a gold
    answer, its question holding >= `share` of the question's content words)? None when the run's
    folder is not beside its uptake.json."""
    kept = run_dir / "run_eval" / "curated" / "kept.jsonl"
    if not kept.is_file():
        return None
    by_answer: dict[str, list[set[str]]] = {}
    for r in read_jsonl(kept):
        fields = r.get("fields") or {}
        if fields.get("question") and fields.get("answer"):
            by_answer.setdefault(normalize_answer(fields["answer"]), []).append(
                _content_words(fields["question"])
            )
    flags = []
    for q in questions:
        words = _content_words(q["q"])
        asked = [w for a in q["answers"] for w in by_answer.get(normalize_answer(a), [])]
        flags.append(bool(words) and any(len(words & w) >= share * len(words) for w in asked))
    return flags


def practised(run_dir: Path, passages: list[str] | None) -> list[set[str]] | None:
    """Per evaluated question, the answers (normalised) that arm (c)'s kept records give for the
    question's passage: what (c) practised answering about it. None when the run's folder, its
    documents or the questions' passages are not known."""
    kept, docs, qa = (
        run_dir / "run_eval" / "curated" / "kept.jsonl",
        run_dir / "run_eval" / "documents.jsonl",
        run_dir / "qa_eval.jsonl",
    )
    if passages is None or not (kept.is_file() and docs.is_file() and qa.is_file()):
        return None
    doc_title = {d["doc_id"]: d.get("title", "") for d in read_jsonl(docs)}
    by_title: dict[str, set[str]] = {}
    for r in read_jsonl(kept):
        answer = (r.get("fields") or {}).get("answer")
        if answer and r.get("doc_id") in doc_title:
            by_title.setdefault(doc_title[r["doc_id"]], set()).add(normalize_answer(answer))
    passage_title = {str(r["id"]): r.get("title", "") for r in read_jsonl(qa)}
    return [by_title.get(passage_title.get(p, ""), set()) for p in passages]


def practised_wrong(run: dict, answers: list[set[str]]) -> dict[str, np.ndarray]:
    """Per arm and question: the arm answered with one of (c)'s practised answers for that passage
    and was wrong (token F1 < 0.5): the interference of what (c) was drilled on with what it was
    not asked. For the other arms, which never saw (c)'s data, the same test is the floor that
    a passage's own salient phrases give."""
    per = run.get("per_question", {})
    return {
        arm: np.array(
            [
                normalize_answer(pred) in practised_answers and f1 < 0.5
                for pred, f1, practised_answers in zip(
                    per[arm].get("prediction", []), per[arm]["f1"], answers, strict=True
                )
            ]
        )
        for arm in ARMS
        if arm in per and len(per[arm].get("prediction", [])) == len(answers)
    }


def qa_file(qa: Path) -> Path | None:
    """A run's --qa file: as written, from the repository root, or in ../shared/data."""
    return next((p for p in (qa, REPO / qa, REPO.parent / "shared" / "data" / qa.name) if p.is_file()), None)


def question_passages(path: Path, run: dict, required: bool = True) -> list[str] | None:
    """The passage each evaluated question is about, in the run's question order: as the run wrote
    it, else drawn again from its --qa, --passages and --seed the way bench/uptake.py drew them
    (None, or with `required` a line naming the run, when neither can be had)."""
    if run.get("question_passages"):
        return [str(p) for p in run["question_passages"]]
    args = run.get("args", {})
    qa = Path(args.get("qa", ""))
    found = qa_file(qa)
    if found is None or "passages" not in args or "seed" not in args:
        if not required:
            return None
        raise SystemExit(f"{path}: no question_passages and its QA file {qa} is not found")
    evaluated, _ = split_passages(found, int(args["passages"]), int(args["seed"]))
    ids = [str(r["id"]) for r in evaluated for q in r["questions"] if not q.get("unanswerable_from_text")]
    if len(ids) != len(run.get("questions_asked", [])):
        raise SystemExit(
            f"{path}: {found} gives {len(ids)} questions, the run asked {len(run['questions_asked'])}"
        )
    return ids


def run_metrics(runs: list[tuple[Path, dict]]) -> tuple[str, ...]:
    """METRICS, and each OPTIONAL one that every run scored per question for every arm."""
    return METRICS + tuple(
        m
        for m in OPTIONAL
        if all(m in run.get("per_question", {}).get(arm, {}) for _, run in runs for arm in ARMS)
    )


def differences(arrays: dict, groups: list | None = None) -> dict | None:
    """Each pair's per-metric interval over questions — or, with `groups` (draw/passage per
    question), resampling whole passages; None when some question's passage is not known."""
    if groups is not None and any(g is None for g in groups):
        return None
    return {
        name: {m: bootstrap_ci(arrays[hi][m] - arrays[lo][m], groups=groups) for m in arrays[hi]}
        for name, (lo, hi) in PAIRS.items()
    }


def bootstrap_runs_and_groups(
    draws: list[tuple[np.ndarray, list[str]]], n: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean and 95 % interval of the per-question mean over training runs, resampling whole groups
    (passages) over all draws and, within each draw, its training runs: two-stage bootstrap.

    `draws` holds per draw a (runs, questions) array and each question's group label (unique across
    draws). Every draw needs two runs or more. A draw's runs are resampled with replacement and the
    deviation of their mean from the draw's run mean is scaled by sqrt(R / (R - 1)), so that the
    resampled run mean varies as much as a mean of R runs does (plain resampling of 2 runs gives half
    that). Groups are picked as `bootstrap_ci(groups=...)` picks them (same generator, same seed),
    so runs that agree exactly give its by-passage interval."""
    run_rng = np.random.default_rng(seed + 1)
    sums, sizes = [], []
    for values, labels in draws:
        values = np.atleast_2d(np.asarray(values, dtype=float))
        runs = values.shape[0]
        if runs < 2:
            raise ValueError("every draw needs two training runs or more")
        order = {g: k for k, g in enumerate(dict.fromkeys(labels))}
        index = np.asarray([order[g] for g in labels])
        per_run = np.stack([np.bincount(index, weights=row, minlength=len(order)) for row in values])
        mean = per_run.mean(axis=0)
        weights = run_rng.multinomial(runs, [1 / runs] * runs, size=n) / runs
        sums.append(mean + np.sqrt(runs / (runs - 1)) * (weights @ per_run - mean))
        sizes.append(np.bincount(index, minlength=len(order)))
    group_sums, group_sizes = np.concatenate(sums, axis=1), np.concatenate(sizes)
    total = len(group_sizes)
    picks = np.random.default_rng(seed).integers(0, total, size=(n, total))
    means = np.take_along_axis(group_sums, picks, axis=1).sum(axis=1) / group_sizes[picks].sum(axis=1)
    point = float(np.mean(np.concatenate([np.asarray(v, dtype=float).mean(axis=0) for v, _ in draws])))
    return point, float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def differences_by_run(stacks: list[tuple[dict, list[str] | None]]) -> dict | None:
    """Each pair's per-metric interval by passage and training run (`bootstrap_runs_and_groups`),
    from per draw {arm: {metric: (runs, questions) array}} and each question's passage label; None
    when a draw was trained once or a question's passage is not known."""
    if not stacks or any(g is None or np.shape(a["base"]["f1"])[0] < 2 for a, g in stacks):
        return None
    return {
        name: {
            m: bootstrap_runs_and_groups([(a[hi][m] - a[lo][m], g) for a, g in stacks])
            for m in stacks[0][0][hi]
        }
        for name, (lo, hi) in PAIRS.items()
    }


def print_differences(result: dict) -> None:
    by_passage = result.get("differences_by_passage")
    print(
        "\n| difference | F1 [95% CI] | F1, by passage | answer NLL [95% CI] | NLL, by passage |"
        "\n|---|---|---|---|---|"
    )
    for name, d in result["differences"].items():
        cells = []
        for m in METRICS:
            cells.append(f"{d[m][0]:+.3f} [{d[m][1]:+.3f}, {d[m][2]:+.3f}]")
            g = by_passage[name][m] if by_passage else None
            cells.append(f"[{g[1]:+.3f}, {g[2]:+.3f}]" if g else "n/a")
        print(f"| {name} | " + " | ".join(cells) + " |")
    if not by_passage:
        print("(no interval by passage: a run records no question_passages and its QA file is not found)")
    by_run = result.get("differences_by_passage_and_run")
    if by_run:
        runs = ", ".join(f"seed {seed}: {k}" for seed, k in result["replicates"].items())
        print(f"\nby passage and training run (training runs per draw: {runs})\n")
        print("| difference | F1 [95% CI] | answer NLL [95% CI] |\n|---|---|---|")
        for name, d in by_run.items():
            cells = " | ".join(f"{d[m][0]:+.3f} [{d[m][1]:+.3f}, {d[m][2]:+.3f}]" for m in METRICS)
            print(f"| {name} | {cells} |")
    elif by_passage and any(k > 1 for k in result.get("replicates", {}).values()):
        once = ", ".join(seed for seed, k in result["replicates"].items() if k < 2)
        print(f"(no interval by passage and training run: seed {once} trained once)")
    for m in OPTIONAL:
        if m in result["differences"]["c-d (knowledge)"]:
            print(
                f"\n{m}: "
                + "; ".join(
                    f"{name} {d[m][0]:+.3f} [{d[m][1]:+.3f}, {d[m][2]:+.3f}]"
                    for name, d in result["differences"].items()
                )
            )


def print_training_runs(runs: dict[str, dict]) -> None:
    if not runs:
        return
    print(
        "\neach training run of a draw trained more than once (data order alone moves these)\n\n"
        "| seed | train seed | (c) - (d) F1 [95% CI] | (c) - (d) NLL [95% CI] |\n|---|---|---|---|"
    )
    for seed, d in runs.items():
        for r in d["runs"]:
            cd = r["c-d (knowledge)"]
            cells = " | ".join(f"{cd[m][0]:+.3f} [{cd[m][1]:+.3f}, {cd[m][2]:+.3f}]" for m in METRICS)
            print(f"| {seed} | {r['train_seed']} | {cells} |")
        sp = d["spread"]["c-d (knowledge)"]
        print(f"| {seed} | spread (max - min) | {sp['f1']:.3f} | {sp['answer_nll']:.3f} |")


def _part(arrays: dict, part: np.ndarray) -> dict:
    """Arm means and the (c) - (d), (c) - (b) intervals over the questions `part` selects."""
    if not part.any():
        return {"questions": 0, "closed": {}, "differences": {}}
    return {
        "questions": int(part.sum()),
        "closed": {arm: {m: float(v[part].mean()) for m, v in a.items()} for arm, a in arrays.items()},
        "differences": {
            pair: {m: bootstrap_ci(arrays[hi][m][part] - arrays[lo][m][part]) for m in arrays[hi]}
            for pair, (lo, hi) in PAIRS.items()
            if pair in ("c-d (knowledge)", "c-b")
        },
    }


def trained_with(run: dict) -> str:
    """The seed a run trained its arms with: --train-seed, else --seed."""
    seed = run["args"].get("train_seed", "None")
    return run["args"].get("seed") if seed == "None" else seed


def _replicate_mean(
    group: list[tuple[Path, dict]], metrics: tuple[str, ...] = METRICS
) -> dict[str, dict[str, list[float]]]:
    """Per arm and metric, the per-question mean over runs that trained again on the same
    passages (same --seed, other --train-seed)."""
    first_path, first = group[0]
    trained: dict[str, Path] = {}
    for path, run in group:
        seed = trained_with(run)
        if seed in trained:
            raise SystemExit(f"{path}: the same training run as {trained[seed]} (pool it once)")
        trained[seed] = path
        if run.get("questions_asked") != first.get("questions_asked"):
            raise SystemExit(f"{path}: same --seed as {first_path} but other questions")
        missing = [arm for arm in ARMS if arm not in run.get("per_question", {})]
        if missing:
            raise SystemExit(f"{path}: no per-question scores for arm {missing[0]!r} (rerun bench/uptake.py)")
    return {
        arm: {m: np.mean([run["per_question"][arm][m] for _, run in group], axis=0).tolist() for m in metrics}
        for arm in ARMS
    }


def runs_by_question(group: list[tuple[Path, dict]], metrics: tuple[str, ...] = METRICS) -> dict:
    """Per arm and metric, a (training runs, questions) array of one draw's runs."""
    return {
        arm: {m: np.asarray([run["per_question"][arm][m] for _, run in group], dtype=float) for m in metrics}
        for arm in ARMS
    }


def training_runs(draws: dict[str, list[tuple[Path, dict]]]) -> dict[str, dict]:
    """For each draw trained more than once: each training run's (c) - (d) and (c) - (b) with its
    interval over the draw's questions, and how far apart the runs' means are (the spread the data
    order alone gives, which the pooled intervals over questions do not hold)."""
    out = {}
    for seed, group in draws.items():
        if len(group) < 2:
            continue
        stacked = runs_by_question(group)
        every = np.ones(stacked["base"]["f1"].shape[1], dtype=bool)
        per_run = [
            {"run": str(path), "train_seed": trained_with(run)}
            | _part({arm: {m: v[k] for m, v in a.items()} for arm, a in stacked.items()}, every)[
                "differences"
            ]
            for k, (path, run) in enumerate(group)
        ]
        spread = {
            pair: {
                m: max(r[pair][m][0] for r in per_run) - min(r[pair][m][0] for r in per_run) for m in METRICS
            }
            for pair in ("c-d (knowledge)", "c-b")
        }
        out[seed] = {"runs": per_run, "spread": spread}
    return out


def pool(runs: list[tuple[Path, dict]], same: tuple[str, ...] = ()) -> dict:
    """Per-question scores of `runs` (replicates of one passage draw averaged first), concatenated
    over draws; each arm's mean and each difference's interval over questions. The runs may differ
    in the settings of `same` besides PER_RUN."""
    treated = vouched(runs, same)
    first_path, first = runs[0]
    fixed = settings(first, same)
    for path, run in runs[1:]:
        other = settings(run, same)
        diff = sorted(k for k in fixed.keys() | other.keys() if fixed.get(k) != other.get(k))
        if diff:
            raise SystemExit(
                f"{path}: settings differ from {first_path} in {', '.join(diff)} "
                f"(--same {diff[0]} if they are the same treatment)"
            )
    draws: dict[str, list[tuple[Path, dict]]] = {}
    for path, run in runs:
        draws.setdefault(str(run["args"].get("seed")), []).append((path, run))
    metrics = run_metrics(runs)
    per = {arm: {m: [] for m in metrics} for arm in ARMS}
    flags: list[bool] | None = []
    groups: list[str | None] = []
    wrong: dict[str, list[np.ndarray]] | None = {arm: [] for arm in ARMS}
    stacks: list[tuple[dict, list[str] | None]] = []
    for seed, group in draws.items():
        path, run = group[0]
        passages = question_passages(path, run, required=False)
        n = len(run.get("per_question", {}).get("base", {}).get("f1", []))
        labels = [f"{seed}/{p}" for p in passages] if passages and len(passages) == n else None
        groups += labels or [None] * n
        run_flags = anticipated(path.parent, run.get("questions_asked", []))
        flags = None if flags is None or run_flags is None else flags + run_flags
        answers = practised(path.parent, passages if passages and len(passages) == n else None)
        runs_wrong = [practised_wrong(r, answers) for _, r in group] if answers is not None else []
        if wrong is None or not runs_wrong or any(set(w) != set(ARMS) for w in runs_wrong):
            wrong = None
        else:  # replicates answer differently: a question counts by the share of runs that did
            for arm in ARMS:
                wrong[arm].append(np.mean([w[arm] for w in runs_wrong], axis=0))
        for arm, scores in _replicate_mean(group, metrics).items():
            for m in metrics:
                per[arm][m].extend(scores[m])
        stacks.append((runs_by_question(group, metrics), labels))
    arrays = {arm: {m: np.asarray(v, dtype=float) for m, v in d.items()} for arm, d in per.items()}
    split = None
    if flags is not None and len(flags) == len(arrays["base"]["f1"]):
        mask = np.asarray(flags, dtype=bool)
        split = {"anticipated": _part(arrays, mask), "not anticipated": _part(arrays, ~mask)}
    interference = None
    if wrong is not None and all(wrong[arm] for arm in ARMS):
        shares = {arm: np.concatenate(wrong[arm]) for arm in ARMS}
        masks = {"all": np.ones(len(shares["base"]), dtype=bool)}
        if split is not None:
            masks["not anticipated"] = ~np.asarray(flags, dtype=bool)
        interference = {
            name: {"questions": int(m.sum()), **{arm: float(shares[arm][m].mean()) for arm in ARMS}}
            for name, m in masks.items()
            if m.any()
        }
    return {
        "runs": [str(p) for p, _ in runs],
        "seeds": [run["args"].get("seed") for _, run in runs],
        "replicates": {seed: len(group) for seed, group in draws.items()},
        "training_runs": training_runs(draws),
        "questions": int(len(arrays["base"]["f1"])),
        "shared_passages": shared_passages(groups),
        "settings": fixed,
        "treated_as_same": treated,
        "closed": {arm: {m: float(v.mean()) for m, v in a.items()} for arm, a in arrays.items()},
        "differences": differences(arrays),
        "differences_by_passage": differences(arrays, groups),
        "differences_by_passage_and_run": differences_by_run(stacks),
        "by_anticipation": split,
        "practised_wrong": interference,
    }


def shared_passages(groups: list[str | None]) -> dict[str, list[str]]:
    """Passages that more than one draw evaluated, with those draws' seeds. Each draw trains its own
    arms, so the intervals count such a passage once per draw; its questions, though, are the same,
    which a reader weighing the intervals should know."""
    seeds: dict[str, list[str]] = {}
    for label in dict.fromkeys(g for g in groups if g is not None):
        seed, passage = label.split("/", 1)
        seeds.setdefault(passage, []).append(seed)
    return {passage: s for passage, s in seeds.items() if len(s) > 1}


def without_passages(
    runs: list[tuple[Path, dict]], others: list[tuple[Path, dict]]
) -> tuple[list[tuple[Path, dict]], list[str]]:
    """`runs` with the questions about every passage that a run of `others` evaluated taken out
    (e.g. the pages earlier draws were tuned on), and the ids of those it took out. A run left with
    no question is dropped."""
    dropped = {p for path, run in others for p in question_passages(path, run)}
    kept, removed = [], set()
    for path, run in runs:
        passages = question_passages(path, run)
        keep = [p not in dropped for p in passages]
        removed |= {p for p in passages if p in dropped}
        n = len(keep)
        run = dict(run, question_passages=list(compress(passages, keep)))
        if len(run.get("questions_asked", [])) == n:
            run["questions_asked"] = list(compress(run["questions_asked"], keep))
        run["per_question"] = {
            arm: {
                m: list(compress(v, keep)) if isinstance(v, list) and len(v) == n else v
                for m, v in scores.items()
            }
            for arm, scores in run.get("per_question", {}).items()
        }
        if any(keep):
            kept.append((path, run))
    if not kept:
        raise SystemExit("--without-passages-of: every question is about a passage those runs evaluated")
    return kept, sorted(removed)


def load_runs(paths: list[Path]) -> list[tuple[Path, dict]]:
    """Each uptake.json with its path; a line naming the file when one cannot be read."""
    runs = []
    for path in paths:
        try:
            runs.append((path, json.loads(path.read_text())))
        except (OSError, json.JSONDecodeError) as e:
            raise SystemExit(f"{path}: cannot read an uptake result ({e})") from None
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path, nargs="+", help="uptake.json files of bench/uptake.py")
    ap.add_argument("-o", "--out", type=Path, help="write the pooled table as JSON")
    ap.add_argument("--same", action="append", default=[], metavar="SETTING", help=SAME_HELP)
    ap.add_argument(
        "--without-passages-of",
        type=Path,
        action="append",
        default=[],
        metavar="RUN",
        help="leave out the questions about every passage this uptake.json evaluated (repeatable): "
        "e.g. the pages earlier draws chose the settings on",
    )
    args = ap.parse_args()
    runs = load_runs(args.runs)
    dropped: list[str] = []
    if args.without_passages_of:
        runs, dropped = without_passages(runs, load_runs(args.without_passages_of))
    result = pool(runs, same=tuple(args.same))
    if args.without_passages_of:
        result["without_passages_of"] = [str(p) for p in args.without_passages_of]
        result["passages_left_out"] = dropped
    if args.out:
        write_json(args.out, result)
    reps = ", ".join(f"{n} of seed {seed}" for seed, n in result["replicates"].items())
    print(f"\n{result['questions']} questions pooled from {len(runs)} runs ({reps})")
    if dropped:
        print(f"left out: the questions about {len(dropped)} passages --without-passages-of evaluated")
    for passage, seeds in result["shared_passages"].items():
        print(f"passage {passage} is evaluated by seeds {', '.join(seeds)}: counted once per draw")
    print()
    print("| arm | F1 | answer NLL |\n|---|---|---|")
    for arm, s in result["closed"].items():
        print(f"| {arm} | {s['f1']:.3f} | {s['answer_nll']:.3f} |")
    print_differences(result)
    print_training_runs(result["training_runs"])
    shares = result["practised_wrong"]
    if shares:
        print(
            "\nshare of questions answered wrongly (F1 < 0.5) with an answer (c)'s data practised for "
            "the same passage\n\n| questions | n | (a) base | (b) raw | (c) augment | (d) format |\n|---|---|---|---|---|---|"
        )
        for name, s in shares.items():
            print(f"| {name} | {s['questions']} | " + " | ".join(f"{s[arm]:.3f}" for arm in ARMS) + " |")
    split = result["by_anticipation"]
    if split is None:
        print("\n(no split by anticipated questions: a run's folder is not beside its uptake.json)")
        return
    print("\nquestions (c)'s data anticipated (its gold answer, half its content words) and the rest\n")
    print(
        "| questions | n | (c) F1 | (d) F1 | (c) - (d) F1 [95% CI] | (c) - (d) NLL [95% CI] | (c) - (b) F1 | (c) - (b) NLL |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, part in split.items():
        if not part["questions"]:
            continue
        cd, cb = part["differences"]["c-d (knowledge)"], part["differences"]["c-b"]
        cells = [f"{cd[m][0]:+.3f} [{cd[m][1]:+.3f}, {cd[m][2]:+.3f}]" for m in METRICS]
        cells += [f"{cb[m][0]:+.3f} [{cb[m][1]:+.3f}, {cb[m][2]:+.3f}]" for m in METRICS]
        arms = part["closed"]
        print(
            f"| {name} | {part['questions']} | {arms['augment']['f1']:.3f} | {arms['format']['f1']:.3f} | "
            + " | ".join(cells)
            + " |"
        )


if __name__ == "__main__":
    main()
