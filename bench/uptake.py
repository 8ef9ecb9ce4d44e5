"""Knowledge uptake: does training on augment's output teach a model the documents' facts?

Four arms, the same base model, the same training steps, sequence length and hyper-parameters:

  a. base         the model as it is
  b. raw          trained on the evaluated passages themselves (repeated to the same token budget)
  c. augment      trained on augment's curated synthetic data from the evaluated passages, plus
                  replay of those passages (--replay)
  d. format       trained like (c), with the same replay of the evaluated passages, but on synthetic
                  data generated from *other* passages: it learns the answer format, not the facts

Closed-book QA on the evaluated passages' questions (never in the training data: generation
decontaminates against them) scores all four, plus the open-book base model as the ceiling.
Training on question-answer text moves answer likelihood and F1 by format alone, so the knowledge
gain is (c) - (d), reported with a paired bootstrap interval, next to (c) - (b) and (c) - (a).

    python bench/uptake.py --qa ../shared/data/wikinewpages2023_film_dev.jsonl --passages 20 -o runs/uptake

Every step is resumable (generation is cached, finished checkpoints are reused; scoring runs again), so a
killed run continues where it stopped. It runs augment's own CLI for generate and train, as a
user would, and its eval functions for scoring. `--train-seed N` trains every arm again on the
same passages and data in another order (a replicate; `bench/uptake_pool.py` averages replicates
question by question; `bench/uptake_select.py` gives every arm its best training setting
among several runs, chosen on held-out questions). `--score-steps 24,48` scores every arm also at
those steps of the same training run (snapshots), so one run gives the learning curve and
uptake_select.py its candidates. `--average 48` (with 48 among --score-steps) also scores every arm
at the mean of its weights at step 48 and at the end (`augment average`), as a result of its own.
`--raw-from PREFIX` takes arm (b)'s scores from a kept run of the same draw and training settings
(its results PREFIX{-tN}{-stepN}.json) instead of training (b) again: a screen that changes only
the synthetic data trains two arms, not three.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from augment.eval.metrics import normalize_answer  # noqa: E402
from augment.eval.runner import ModelScores, paired_differences, score_model, scores_from_predictions  # noqa: E402
from augment.io import read_jsonl, write_json, write_jsonl  # noqa: E402
from augment.qafile import load_qa  # noqa: E402
from augment.shards.writer import export  # noqa: E402
from augment.tokens import approx_count  # noqa: E402
from augment.train.args import step_list  # noqa: E402

METRICS = ("f1", "contains", "exact_match", "answer_nll", "answer_nll_source")
PER_QUESTION = ("f1", "answer_nll", "answer_nll_source")  # kept per question for pooling and selection
# the differences reported, (lower arm, higher arm): (c) - (d) is the knowledge gain
PAIRS = {
    "c-d (knowledge)": ("format", "augment"),
    "c-b": ("raw", "augment"),
    "c-a": ("base", "augment"),
    "d-a (format)": ("base", "format"),
    "b-a": ("base", "raw"),
}


def sh(*args: object) -> None:
    cmd = [str(a) for a in args]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def augment_beside(python: Path) -> Path:
    """The augment command installed with this python: the experiment runs the CLI a user runs."""
    exe = python.parent / "augment"
    if not exe.exists():
        raise SystemExit(
            f"{exe}: no augment command beside {python}; run bench/uptake.py with the python augment "
            "is installed in (e.g. after . .venv/bin/activate)"
        )
    return exe


def augment(*args: object) -> None:
    sh(augment_beside(Path(sys.executable)), *args)


def split_passages(qa: Path, n: int, seed: int) -> tuple[list[dict], list[dict]]:
    rows = [r for r in read_jsonl(qa) if any(not q.get("unanswerable_from_text") for q in r["questions"])]
    random.Random(seed).shuffle(rows)
    evaluated = rows[:n]
    # the format control's passages come from other pages: SQuAD has several passages per article
    titles = {r["title"] for r in evaluated}
    other = [r for r in rows[n:] if r["title"] not in titles][:n]
    if len(evaluated) < n or len(other) < n:
        raise SystemExit(
            f"{qa}: {len(rows)} passages with questions, {len(other)} of them outside the {len(evaluated)} "
            f"drawn to evaluate and their titles; --passages {n} needs {n} of each: give a smaller "
            "--passages, or more documents and questions"
        )
    return evaluated, other


def write_docs(folder: Path, rows: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(folder / "passages.jsonl", ({"title": r["title"], "text": r["text"]} for r in rows))
    return folder


def raw_arm(out: Path, rows: list[dict], tokens: int) -> Path:
    """Shards of the raw passages, cycled up to `tokens` (what the training steps consume).

    The budget depends on the training settings only, not on the synthetic arm's size, so arm (b)
    trains on the same sequence of tokens however the synthetic data changes."""
    run = out / "run_raw"
    if (run / "shards" / "manifest.json").is_file():
        return run / "shards"
    records, total, k = [], 0, 0
    while total < tokens:
        for r in rows:
            text = f"{r['title']}\n\n{r['text']}"
            records.append({"id": f"raw-{k}-{r['id']}", "strategy": "raw", "text": text, "messages": []})
            total += approx_count(text)
        k += 1
    (run / "curated").mkdir(parents=True, exist_ok=True)
    write_jsonl(run / "curated" / "kept.jsonl", records)
    export(run, val_fraction=0.0, file_formats=["jsonl"])
    return run / "shards"


def answer_coverage(items: list, run: Path, same_passage: bool = True) -> float:
    """Mean over questions of the best share of the gold answer's words found in one kept record:
    how much of what is asked the synthetic text states at all (0 to 1). `same_passage`: only
    records generated from the question's passage count; else any record (the floor that common
    words give, for the format control's data)."""
    titles = {d["doc_id"]: d.get("title", "") for d in read_jsonl(run / "documents.jsonl")}
    by_title: dict[str, list[set[str]]] = {}
    for r in read_jsonl(run / "curated" / "kept.jsonl"):
        key = titles.get(r["doc_id"], "") if same_passage else ""
        by_title.setdefault(key, []).append(set(normalize_answer(r["text"]).split()))
    total = 0.0
    for it in items:
        texts = by_title.get(it.title if same_passage else "", [])
        best = 0.0
        for a in it.answers:
            gold = normalize_answer(a).split()
            if gold and texts:
                best = max(best, max(sum(w in t for w in gold) / len(gold) for t in texts))
        total += best
    return round(total / max(len(items), 1), 3)


def with_replay_docs(shards: Path, dest: Path, eval_docs: Path) -> Path:
    """A copy of `shards` whose run folder holds the evaluated passages, so --replay draws on them."""
    import shutil

    if not (dest / "shards").is_dir():
        shutil.copytree(shards, dest / "shards")
    shutil.copy(eval_docs, dest / "documents.jsonl")
    return dest / "shards"


def with_restatements(
    shards: Path, dest: Path, passages: Path, copies: int, seed: int, held_replay: bool = False
) -> Path:
    """A copy of `shards` (synthetic records of `passages`) with `copies` restatements of each
    passage added as records of their own: its title line, then its sentences in a new order
    (`augment train`'s --replay-shuffle order, seeded per passage). What a rule-written restating
    strategy would add to an arm's synthetic data: (c) restates the evaluated passages, (d) the
    other ones. Their tokens count as synthetic, so --replay grows with them, unless `held_replay`
    (the manifest's token count, which sets the replay budget, stays as it was)."""
    from augment.train.data import shuffled_sentences

    rows, tokens = [], 0
    for doc in read_jsonl(passages):
        rng = random.Random(f"{seed}/{doc['title']}/{doc['text'][:64]}")
        for k in range(copies):
            text = f"{doc['title']}\n\n{shuffled_sentences(doc['text'], rng)}"
            rows.append({"id": f"restate-{k}-{len(rows)}", "text": text})
            tokens += approx_count(text)
    return with_records(shards, dest, "restated", rows, 0 if held_replay else tokens)


def with_other_records(shards: Path, other: Path, dest: Path) -> Path:
    """A copy of `shards` (arm (c)'s synthetic records of the evaluated passages) with the training
    records of `other` (arm (d)'s, from the other passages) added as a file of their own. Their
    tokens count as synthetic, so --replay keeps its share of the training stream: (c) reads the
    evaluated passages as much as (d) does, and practises questions on other passages as (d) does,
    besides its own."""
    manifest = json.loads((shards / "manifest.json").read_text())
    theirs = json.loads((other / "manifest.json").read_text())
    if theirs.get("format") != manifest.get("format"):
        raise SystemExit(
            f"{other}/manifest.json: format {theirs.get('format')!r}, where {shards} has "
            f"{manifest.get('format')!r}; both arms' records must be of one format to be mixed"
        )
    rows = [
        row
        for f in theirs["files"]
        if f["split"] == "train" and f["format"] == "jsonl"
        for row in read_jsonl(other / f["path"])
    ]
    if len(rows) != theirs["counts"]["train"]:
        raise SystemExit(
            f"{other}: manifest.json counts {theirs['counts']['train']} training records, "
            f"its JSONL files hold {len(rows)}"
        )
    return with_records(shards, dest, "other", rows, theirs["tokens"]["train"], "other passages")


def with_records(
    shards: Path, dest: Path, name: str, rows: list[dict], tokens: int, strategy: str | None = None
) -> Path:
    """A copy of `shards` at `dest` with `rows` added as train-NAME.jsonl, listed in its manifest
    under `strategy` (default `name`) and `tokens` added to the count that sets the --replay
    budget. Written as JSONL only (the copy's Parquet files are dropped from its manifest)."""
    if dest.is_dir():
        shutil.rmtree(dest)
    shutil.copytree(shards, dest)
    manifest = json.loads((dest / "manifest.json").read_text())
    for f in [f for f in manifest["files"] if f["format"] == "parquet"]:
        (dest / f["path"]).unlink()
    manifest["files"] = [f for f in manifest["files"] if f["format"] != "parquet"]
    path = dest / f"train-{name}.jsonl"
    write_jsonl(path, rows)
    manifest["files"].append(
        {
            "path": path.name,
            "split": "train",
            "format": "jsonl",
            "records": len(rows),
            "bytes": path.stat().st_size,
        }
    )
    manifest["counts"]["train"] += len(rows)
    manifest["counts"]["by_strategy"][strategy or name] = {"train": len(rows)}
    manifest["tokens"]["train"] += tokens
    write_json(dest / "manifest.json", manifest)
    return dest


def trained_as_asked(ckpt: Path, settings: dict) -> bool:
    """Whether `ckpt` holds a finished training run (reused, so a killed run resumes); exits when
    it was trained with other settings, which reusing would report under the wrong ones."""
    info = ckpt / "train.json"
    if not info.is_file():
        return False
    trained = json.loads(info.read_text()).get("hyperparameters", {})
    # checkpoints from before a setting existed were trained with its default
    known = {"answers_only": False, "replay_title": False, "replay_shuffle": False}
    diff = [
        f"{k}={trained.get(k, known.get(k))} (asked {v})"
        for k, v in settings.items()
        if trained.get(k, known.get(k)) != v
    ]
    if diff:
        raise SystemExit(
            f"{ckpt}: trained with {', '.join(diff)}; use another -o (copy run_eval/ and run_other/ "
            "there to reuse the generation)"
        )
    return True


# the arguments that decide arm (b)'s training and scoring (its shards are the evaluated passages
# cycled to the steps' token budget), so its scores carry over between runs that share them
RAW_SETTINGS = (
    "passages", "seed", "train_seed", "model", "method", "steps", "lr", "batch_size", "max_seq_len",
    "bf16", "answers_only", "at_step",
)  # fmt: skip


def kept_raw_scores(path: Path, args: argparse.Namespace, at_step: int | None, items: list) -> ModelScores:
    """Arm (b)'s scores from a kept result of another run with the same draw and training settings
    (`--raw-from`), so a screen that changes only the synthetic data does not train (b) again. The
    predictions and likelihoods are the kept ones; EM, F1 and containment are computed from the
    predictions again. Exits, naming the file, where the result is missing or was made otherwise."""
    if not path.is_file():
        raise SystemExit(
            f"{path}: no such file (--raw-from, arm (b)'s scores at step {at_step or args.steps})"
        )
    try:
        kept = json.loads(path.read_text())
        raw = kept["per_question"]["raw"]
        asked = kept["questions_asked"]
    except (ValueError, KeyError, TypeError) as e:
        raise SystemExit(f"{path}: not an uptake result with arm (b)'s questions ({e})") from None
    mine, theirs = run_arguments(args, at_step), kept.get("args", {})
    diff = [
        f"{k}={theirs.get(k)} (asked {mine.get(k)})" for k in RAW_SETTINGS if theirs.get(k) != mine.get(k)
    ]
    if diff:
        raise SystemExit(f"{path}: arm (b) made with {', '.join(diff)}; --raw-from needs the same settings")
    if [(q["q"], q["answers"]) for q in asked] != [(it.question, it.answers) for it in items]:
        raise SystemExit(f"{path}: not the questions of this draw ({args.qa.name}, seed {args.seed})")
    missing = [
        m for m in ("prediction", "answer_nll", "answer_nll_source") if len(raw.get(m, [])) != len(items)
    ]
    if missing:
        raise SystemExit(f"{path}: arm (b) lacks {', '.join(missing)} for its {len(items)} questions")
    return scores_from_predictions(
        f"raw, from {path}", items, raw["prediction"], raw["answer_nll"], raw["answer_nll_source"], 0.0
    )


def run_arguments(args: argparse.Namespace, at_step: int | None = None) -> dict[str, str]:
    """The arguments a result records (`args`): those set away from their defaults, as strings, so
    runs made before a flag existed read as made without it and pool with later ones."""
    # without --bf16, --answers-only, the replay forms, --restate or --mix-other the settings read
    # as before they existed, so such runs pool with earlier ones
    defaults = {
        ("bf16", None),
        ("answers_only", False),
        ("replay_title", False),
        ("replay_shuffle", False),
        ("restate", 0),
        ("restate_replay", "grown"),
        ("mix_other", False),
    }
    skip = {"score_steps", "average", "raw_from"}  # how it was run, not what was measured
    run_args = {k: str(v) for k, v in vars(args).items() if k not in skip and (k, v) not in defaults}
    if at_step is not None:
        run_args["at_step"] = str(at_step)  # uptake_select.py treats each step as a candidate
    return run_args


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qa", type=Path, default=REPO.parent / "shared/data/wikinewpages2023_film_dev.jsonl")
    ap.add_argument("--passages", type=int, default=20, help="evaluated passages (and as many 'other' ones)")
    ap.add_argument("--model", default="gemma3-270m", help="base model to train (train/eval)")
    ap.add_argument("--strategies", default="qa,paraphrase,inferences")
    ap.add_argument(
        "--generate-args", default="", help="extra flags for augment generate, e.g. '--backend openai'"
    )
    ap.add_argument("--generate-only", action="store_true", help="generate, print the answer coverage, stop")
    ap.add_argument("--method", default="lora", choices=["lora", "full"])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--max-seq-len", type=int, default=256)
    ap.add_argument(
        "--bf16", choices=["on", "off"], help="train's --bf16 (on a CPU with AMX: autocast, 1.3x tokens/s)"
    )
    ap.add_argument("--replay", type=float, default=0.2)
    ap.add_argument(
        "--answers-only",
        action="store_true",
        help="train every arm with augment train --answers-only (question-answer records train on "
        "their answers; the raw passages and replay on every token, as without it)",
    )
    ap.add_argument(
        "--replay-title",
        action="store_true",
        help="arms (c) and (d): augment train --replay-title (each replayed passage opens with its title)",
    )
    ap.add_argument(
        "--replay-shuffle",
        action="store_true",
        help="arms (c) and (d): augment train --replay-shuffle (a passage's later replayed copies with "
        "their sentences in a new order)",
    )
    ap.add_argument(
        "--restate",
        type=int,
        default=0,
        help="add this many restatements of each source passage (title line, sentences in a new "
        "order) to arms (c) and (d)'s synthetic data: (c) restates the evaluated passages, (d) the "
        "other ones (a screen of a rule-written restating strategy)",
    )
    ap.add_argument(
        "--restate-replay",
        choices=("grown", "held"),
        default="grown",
        help="with --restate: grown counts the restatements' tokens as synthetic, so the replay "
        "grows with them; held keeps the replay at the tokens it has without them",
    )
    ap.add_argument(
        "--mix-other",
        action="store_true",
        help="arm (c) also trains on arm (d)'s synthetic records (from the other passages), the replay "
        "counted over both: (c) practises questions on other passages as (d) does, besides its own",
    )
    ap.add_argument("--seed", type=int, default=0, help="draws the passages; also the training seed")
    ap.add_argument(
        "--train-seed",
        type=int,
        default=None,
        help="train the arms again with this seed on the same passages and data (a replicate: "
        "checkpoints in ckpt-tN/, result in uptake-tN.json; uptake_pool.py averages replicates)",
    )
    ap.add_argument(
        "--score-steps",
        default="",
        help="also score every arm at these earlier steps of the same training run (e.g. 24,48: "
        "snapshots of augment train --snapshot-steps; results in uptake-stepN.json, with at_step set, "
        "candidates for uptake_select.py)",
    )
    ap.add_argument(
        "--average",
        default="",
        help="also score every arm at the mean of its weights at these --score-steps and its final "
        "weights (augment average; e.g. 48: checkpoints in ckpt/ARM-avg48, result in uptake-avg48.json)",
    )
    ap.add_argument(
        "--raw-from",
        metavar="PREFIX",
        help="take arm (b)'s scores from kept results of a run with the same draw and training settings "
        "instead of training it again: PREFIX{-tN}{-stepN}.json for each step scored (e.g. "
        "bench/results/uptake-squad10-...-seed17); only the synthetic arms train",
    )
    ap.add_argument("-o", "--out", type=Path, default=REPO / "runs" / "uptake")
    args = ap.parse_args()
    augment_beside(Path(sys.executable))  # before anything is written, not after generation
    if args.train_seed == args.seed:
        raise SystemExit(
            f"--train-seed {args.train_seed}: --seed {args.seed} already trains with that seed, so it is "
            "the same training run as without --train-seed; give another to train again"
        )
    if args.restate_replay != "grown" and not args.restate:
        raise SystemExit(
            f"--restate-replay {args.restate_replay}: it sets how --restate counts; give --restate K"
        )
    if args.raw_from and args.average:
        raise SystemExit(f"--average with --raw-from: arm (b)'s averaged weights are not in {args.raw_from}")
    if args.mix_other and args.restate:
        raise SystemExit("--mix-other with --restate: screen one change at a time; give one of them")
    try:
        score_at = sorted(set(step_list(args.score_steps)))
    except ValueError as e:
        raise SystemExit(f"--score-steps: {e}") from None
    if any(not 0 < n < args.steps for n in score_at):
        raise SystemExit(f"--score-steps {args.score_steps}: each step must be between 1 and --steps - 1")
    try:
        average = sorted(set(step_list(args.average)))
    except ValueError as e:
        raise SystemExit(f"--average: {e}") from None
    if any(n not in score_at for n in average):
        raise SystemExit(
            f"--average {args.average}: each step must be one of --score-steps ({args.score_steps})"
        )
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()

    evaluated, other = split_passages(args.qa, args.passages, args.seed)
    write_jsonl(out / "qa_eval.jsonl", evaluated)
    eval_docs = write_docs(out / "docs_eval", evaluated)
    other_docs = write_docs(out / "docs_other", other)

    # generate + curate + export; the questions are kept out of both synthetic sets
    extra = args.generate_args.split()
    common = [
        "--strategies",
        args.strategies,
        "--decontaminate",
        out / "qa_eval.jsonl",
        "--val-fraction",
        "0",
        *extra,
    ]
    augment("generate", eval_docs, "-o", out / "run_eval", *common, "--quiet")
    augment("generate", other_docs, "-o", out / "run_other", *common, "--quiet")
    synthetic_tokens = json.loads((out / "run_eval" / "shards" / "manifest.json").read_text())["tokens"][
        "train"
    ]

    coverage = {
        "augment": answer_coverage(load_qa(out / "qa_eval.jsonl"), out / "run_eval"),
        "format": answer_coverage(load_qa(out / "qa_eval.jsonl"), out / "run_other", same_passage=False),
    }
    print(f"share of gold answer words stated in one synthetic record: {coverage}", flush=True)
    if args.generate_only:
        return

    raw_docs = out / "run_eval" / "documents.jsonl"
    shards = {
        "raw": raw_arm(out, evaluated, args.steps * args.batch_size * args.max_seq_len),
        "augment": with_replay_docs(out / "run_eval" / "shards", out / "train_augment", raw_docs),
        "format": with_replay_docs(out / "run_other" / "shards", out / "train_format", raw_docs),
    }
    if args.restate:
        held = args.restate_replay == "held"
        for arm, source in (("augment", eval_docs), ("format", other_docs)):
            shards[arm] = with_restatements(
                shards[arm],
                shards[arm].parent / ("shards-restated-held" if held else "shards-restated"),
                source / "passages.jsonl",
                args.restate,
                args.seed,
                held_replay=held,
            )
    if args.mix_other:
        shards["augment"] = with_other_records(
            shards["augment"], out / "run_other" / "shards", shards["augment"].parent / "shards-mixed"
        )
    hyper = [
        "--method",
        args.method,
        "--max-steps",
        args.steps,
        "--epochs",
        1000,
        "--batch-size",
        args.batch_size,
        "--max-seq-len",
        args.max_seq_len,
        "--seed",
        args.seed if args.train_seed is None else args.train_seed,
        "--save-steps",
        args.steps,
    ]
    if args.lr:
        hyper += ["--lr", args.lr]
    if args.bf16:
        hyper += ["--bf16", args.bf16]
    if args.answers_only:
        hyper += ["--answers-only"]
    if score_at:
        hyper += ["--snapshot-steps", ",".join(map(str, score_at))]
    replicate = "" if args.train_seed is None else f"-t{args.train_seed}"
    checkpoints = {"base": args.model}
    if args.raw_from:  # (b) is scored from the kept results; fail on them before any training
        del shards["raw"]
        asked = load_qa(out / "qa_eval.jsonl")
        raw_from = {
            step: Path(
                f"{args.raw_from}{replicate}" + ("" if step == args.steps else f"-step{step}") + ".json"
            )
            for step in [*score_at, args.steps]
        }
        kept_raw = {
            step: kept_raw_scores(path, args, step if score_at else None, asked)
            for step, path in raw_from.items()
        }
    for arm, path in shards.items():
        ckpt = out / f"ckpt{replicate}" / arm
        replay = ["--replay", args.replay] if arm != "raw" else []
        replay_form = {"replay_title": args.replay_title, "replay_shuffle": args.replay_shuffle}
        if arm != "raw":
            replay += [f"--{k.replace('_', '-')}" for k, on in replay_form.items() if on]
        settings = {
            "method": args.method,
            "max_steps": args.steps,
            "lr": args.lr,
            "batch_size": args.batch_size,
            "max_seq_len": args.max_seq_len,
            "seed": args.seed if args.train_seed is None else args.train_seed,
            "replay": args.replay if arm != "raw" else 0.0,
            **({"snapshot_steps": score_at} if score_at else {}),
            **({"bf16": args.bf16 == "on"} if args.bf16 else {}),
            "answers_only": args.answers_only,
            **(replay_form if arm != "raw" else {}),
            **({"shards": str(path)} if (args.restate or args.mix_other) and arm != "raw" else {}),
        }
        if not trained_as_asked(ckpt, settings):
            merge = ["--merge"] if args.method == "lora" else []
            augment("train", path, "--model", args.model, "-o", ckpt, *hyper, *replay, *merge)
        checkpoints[arm] = str(ckpt)
    averaged = {}
    if average:
        from augment.train.average import average_checkpoints

        tag = "avg" + "-".join(map(str, average))
        for arm in shards:
            ckpt = Path(checkpoints[arm])
            dest = ckpt.parent / f"{arm}-{tag}"
            info = dest / "average.json"
            if not info.is_file() or info.stat().st_mtime < (ckpt / "train.json").stat().st_mtime:
                shutil.rmtree(dest, ignore_errors=True)  # missing, or older than a new training run
                print(f"averaging {arm}'s weights at steps {average} and {args.steps}", flush=True)
                average_checkpoints([*(ckpt / f"step-{n}" for n in average), ckpt], dest)
            averaged[arm] = str(dest)

    items = load_qa(out / "qa_eval.jsonl")
    print(f"scoring base closed-book on {len(items)} questions", flush=True)
    base = score_model(args.model, items, mode="closed", with_title=True)
    print("scoring base open-book", flush=True)
    open_book = score_model(args.model, items, mode="open")
    for step in [*score_at, args.steps]:
        scores = {"base": base, **({"raw": kept_raw[step]} if args.raw_from else {})}
        for arm, ckpt in checkpoints.items():
            if arm != "base":
                model = ckpt if step == args.steps else str(Path(ckpt) / f"step-{step}")
                print(f"scoring {arm} at step {step} closed-book on {len(items)} questions", flush=True)
                scores[arm] = score_model(model, items, mode="closed", with_title=True)
        name = f"uptake{replicate}" + ("" if step == args.steps else f"-step{step}")
        extra = {
            "synthetic_tokens": synthetic_tokens,
            "answer_coverage": coverage,
            "seconds": round(time.monotonic() - t0),
            **({"raw_scores_from": str(raw_from[step])} if args.raw_from else {}),
        }
        at_step = step if score_at else None
        report(out / f"{name}.json", args, at_step, evaluated, items, scores, open_book, extra)
    if averaged:
        scores = {"base": base}
        for arm, model in averaged.items():
            print(f"scoring {arm} at the mean of steps {average} and {args.steps} closed-book", flush=True)
            scores[arm] = score_model(model, items, mode="closed", with_title=True)
        extra = {**extra, "seconds": round(time.monotonic() - t0)}
        name = f"uptake{replicate}-{tag}"
        report(
            out / f"{name}.json",
            args,
            None,
            evaluated,
            items,
            scores,
            open_book,
            extra,
            [*average, args.steps],
        )


def report(
    path: Path,
    args: argparse.Namespace,
    at_step: int | None,
    evaluated: list[dict],
    items: list,
    scores: dict,
    open_book,
    extra: dict,
    averaged: list[int] | None = None,
) -> None:
    """Write one scored point (the arms' checkpoints at `at_step`, at the end, or with `averaged` the
    mean of their weights at those steps) and print its tables."""
    diffs = {name: paired_differences(scores[lo], scores[hi]) for name, (lo, hi) in PAIRS.items()}
    run_args = run_arguments(args, at_step)
    if averaged:  # another treatment than the final weights: pooled only with its like
        run_args["averaged"] = ",".join(map(str, averaged))
    passage_ids = {r["text"]: str(r["id"]) for r in evaluated}
    result = {
        "qa": str(args.qa),
        "passages": args.passages,
        "questions": len(items),
        "model": args.model,
        "args": run_args,
        **extra,
        "closed": {arm: s.summary for arm, s in scores.items()},
        "open_base": open_book.summary,
        "differences": diffs,
        # per question, for reading what each arm answered (same order as qa_eval.jsonl's questions)
        "questions_asked": [{"q": it.question, "answers": it.answers} for it in items],
        # the passage each question is about (uptake_select.py folds by passage)
        "question_passages": [passage_ids[it.passage] for it in items],
        "per_question": {
            arm: {"prediction": s.predictions, **{m: s.per_item[m] for m in PER_QUESTION}}
            for arm, s in [*scores.items(), ("base, open book", open_book)]
        },
    }
    write_json(path, result)

    steps = args.steps if at_step is None else f"{at_step} (of {args.steps})"
    if averaged:
        steps = f"the mean of the weights at {', '.join(map(str, averaged))} of {args.steps}"
    print(
        f"\n{len(items)} questions on {args.passages} passages of {args.qa.name}; {args.model}, "
        f"{args.method}, {steps} steps x {args.batch_size} x {args.max_seq_len} tokens per arm -> {path}\n"
    )
    print("| arm | F1 | contains | EM | answer NLL | NLL, source wording |\n|---|---|---|---|---|---|")
    rows = [*((arm, s.summary) for arm, s in scores.items()), ("base, open book", open_book.summary)]
    for arm, summ in rows:
        print(f"| {arm} | " + " | ".join(f"{summ[m][0]:.3f}" for m in METRICS) + " |")
    print(
        "\n| difference | F1 [95% CI] | answer NLL [95% CI] | NLL, source wording [95% CI] |\n|---|---|---|---|"
    )
    for name, d in diffs.items():
        cells = (d[m] for m in ("f1", "answer_nll", "answer_nll_source"))
        print(f"| {name} | " + " | ".join(f"{v[0]:+.3f} [{v[1]:+.3f}, {v[2]:+.3f}]" for v in cells) + " |")


if __name__ == "__main__":
    main()
