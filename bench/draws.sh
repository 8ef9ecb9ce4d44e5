#!/usr/bin/env bash
# Registered uptake tests (bench/UPTAKE.md): a recipe's draws (five SQuAD or three film), each
# trained twice (--train-seed omitted, then seed + 1), every arm with the recipe's flags. Run it
# from the repository root, with ../shared/data beside it:
#
#   bash bench/draws.sh RECIPE run [SEED ...]   train and score the draws (default: the recipe's)
#   bash bench/draws.sh RECIPE keep SEED ...    copy a draw's finished runs to bench/results
#   bash bench/draws.sh RECIPE pool SEED ...    pool kept draws: per step, then best step,
#                                               written as ...-pooled-drawsN (N draws), and
#                                               -seeds20-24 (their seeds) after it unless they
#                                               are the first N of the recipe's own
#   bash bench/draws.sh RECIPE table SEED ...   the same tables, printed only (one draw's own)
#
# Recipes (the README's SQuAD command plus, unless they say otherwise):
#   answers-only     --answers-only; seeds 5 to 9 (read: not adopted)
#   rule-questions   qa-spans with model_question: false (a prompts folder made here from
#                    prompts/qa-spans.md, that line changed); seeds 10 to 14 (read: not
#                    adopted)
#   default          nothing added: the shipped defaults, as they stand; seeds 15 to 19, read at
#                    72 steps (registered 2026-12-03)
#   film-default     the README's film command (12 pages, generation at temperature 0.3, from a
#                    config written here) with the shipped defaults; seeds 15 to 17, read at 72
#                    steps (registered 2026-12-05)
# Set AUGMENT_DRAWS_RESULTS to keep and pool in another folder than bench/results.
# A new recipe is a case below (its tag names the kept files, its dir the runs) and its
# registration in bench/UPTAKE.md, written before its first draw runs.
#
# run skips a run whose uptake JSON exists, in runs/ or kept in bench/results; a killed run is
# restarted with the same command, which reuses cached generation and every arm whose train.json
# exists. keep stores the uptake JSONs and, slimmed to the fields uptake_pool.py reads, the draw's
# kept records, documents and passages, so a later checkout can pool with the split by
# anticipated and practised answers, or train a draw's second run without its first. Generation
# is deterministic: redone for seeds 5 and 6, it kept the same records as their first runs.
set -u
recipe=${1:-}
cmd=${2:-run}
shift $(($# < 2 ? $# : 2))
res=${AUGMENT_DRAWS_RESULTS:-bench/results}
qa=../shared/data/squad_dev200.jsonl passages=10 set=squad10
case $recipe in
  answers-only)
    tag=answersonly dir=sq-ao default="5 6 7 8 9"
    flags=(--answers-only)
    ;;
  rule-questions)
    tag=rulequestions dir=sq-rq default="10 11 12 13 14"
    prompts=runs/p-rulequestions
    mkdir -p "$prompts"
    sed 's/^model_question: true /model_question: false/' prompts/qa-spans.md >"$prompts/qa-spans.md"
    grep -q '^model_question: false ' "$prompts/qa-spans.md" || {
      echo "prompts/qa-spans.md: no 'model_question: true' line to turn off" >&2
      exit 1
    }
    flags=(--generate-args "--prompts-dir $PWD/$prompts")
    ;;
  default)
    tag=default dir=sq-df default="15 16 17 18 19"
    flags=()
    ;;
  film-default)
    tag=default dir=film-df default="15 16 17"
    qa=../shared/data/wikinewpages2023_film_dev.jsonl passages=12 set=film12
    mkdir -p runs
    echo "temperature = 0.3" >runs/t03.toml
    flags=(--generate-args "--config runs/t03.toml")
    ;;
  *) echo "usage: bash bench/draws.sh answers-only|rule-questions|default|film-default run|keep|pool|table [SEED ...]" >&2; exit 2 ;;
esac
seeds=${*:-$default}
name=uptake-$set-gemma270m-$tag-steps72-lr1e-4

# what a pool's files add to -drawsN: nothing when the seeds are the first N of the recipe's own
# (15, then 15 16, ... pool as -draws1, -draws2, ...), else the seeds, comma-separated with a run
# of consecutive ones as A-B: seeds 20 to 24 pool as -draws5-seeds20-24, 15 17 18 as
# -draws3-seeds15,17-18
pooled_suffix() {
  local s out="" start="" prev=""
  [[ " $default " == " $seeds "* ]] && return # the seeds open the recipe's own list
  for s in $seeds end; do
    if [ "$s" != end ] && [ -n "$prev" ] && [ "$s" -eq $((prev + 1)) ]; then
      prev=$s
      continue
    fi
    if [ -n "$start" ]; then
      out+=${out:+,}$start
      [ "$prev" != "$start" ] && out+=-$prev
    fi
    start=$s prev=$s
  done
  echo "-seeds$out"
}

runs() {
  for s in $seeds; do
    for t in "" $((s + 1)); do
      out=runs/$dir-s$s
      # done here, or kept in bench/results by an earlier checkout
      if [ -f "$out/uptake${t:+-t$t}.json" ] || [ -f "$res/$name-seed$s${t:+-t$t}.json" ]; then
        echo "seed $s train-seed ${t:-default}: done"
        continue
      fi
      start=$(date +%s)
      python bench/uptake.py --qa "$qa" --passages "$passages" \
        --strategies qa-spans,paraphrase --method full --steps 72 --score-steps 24,48 \
        --lr 1e-4 --batch-size 4 --max-seq-len 256 --replay 0.5 "${flags[@]}" \
        --seed "$s" ${t:+--train-seed "$t"} -o "$out"
      rc=$?
      echo "seed $s train-seed ${t:-default}: rc $rc, $((($(date +%s) - start) / 60)) min"
      [ $rc -eq 0 ] || exit $rc
      rm -rf "$out"/ckpt* # the scores are in the JSON; the checkpoints are ~1 GB an arm
    done
  done
}

keep() {
  for s in $seeds; do
    out=runs/$dir-s$s
    for t in "" "-t$((s + 1))"; do
      for step in -step24 -step48 ""; do
        # absent when only the generation was redone (bench/uptake.py --generate-only)
        [ -f "$out/uptake$t$step.json" ] && cp "$out/uptake$t$step.json" "$res/$name-seed$s$t$step.json"
      done
    done
    python - "$out" "$res/$name-seed$s-data" <<'PY' || exit 1
import sys
from pathlib import Path
from augment.io import read_jsonl, write_jsonl
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
(dst / "run_eval" / "curated").mkdir(parents=True, exist_ok=True)
def slim(rel, keys, fields=False):
    rows = []
    for r in read_jsonl(src / rel):
        row = {k: r[k] for k in keys if k in r}
        if fields:
            row["fields"] = {k: v for k, v in r["fields"].items() if k in ("question", "answer")}
        rows.append(row)
    write_jsonl(dst / rel, rows)
slim("run_eval/curated/kept.jsonl", ["doc_id"], fields=True)
slim("run_eval/documents.jsonl", ["doc_id", "title"])
slim("qa_eval.jsonl", ["id", "title"])
PY
  done
}

pool() { # $1: write the pooled JSONs (1) or only print the tables (0)
  write=$1
  pooled=pooled-draws$(echo "$seeds" | wc -w)$(pooled_suffix)
  save() { [ "$1" = 1 ] && echo -o "$2"; }
  tmp=$(mktemp -d)
  for s in $seeds; do
    mkdir -p "$tmp/s$s"
    [ -d "$res/$name-seed$s-data" ] && cp -r "$res/$name-seed$s-data/." "$tmp/s$s/"
  done
  all=()
  for step in -step24 -step48 ""; do
    these=()
    for s in $seeds; do
      for t in "" "-t$((s + 1))"; do
        cp "$res/$name-seed$s$t$step.json" "$tmp/s$s/uptake$t$step.json" || exit 1
        these+=("$tmp/s$s/uptake$t$step.json")
      done
    done
    label=${step#-}; echo "== ${label:-72 steps} =="
    python bench/uptake_pool.py "${these[@]}" $(save "$write" "$res/$name-$pooled$step.json") || exit 1
    all+=("${these[@]}")
  done
  echo "== best step per arm =="
  python bench/uptake_select.py "${all[@]}" \
    $(save "$write" "$res/uptake-$set-gemma270m-$tag-select-steps72-snapshots-$pooled.json")
  rm -rf "$tmp"
}

case $cmd in
  run) runs ;;
  keep) keep ;;
  pool) pool 1 ;;
  table) pool 0 ;;
  *) echo "usage: bash bench/draws.sh RECIPE run|keep|pool|table [SEED ...]" >&2; exit 2 ;;
esac
