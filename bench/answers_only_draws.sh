#!/usr/bin/env bash
# The registered answers-only test (bench/UPTAKE.md, "Answer-only loss"): SQuAD seeds 5 to 9, each
# trained twice. Kept for the commands the record quotes; bench/draws.sh runs every registered test:
#
#   bash bench/answers_only_draws.sh run|keep|pool|table [SEED ...]
exec bash "$(dirname "$0")/draws.sh" answers-only "$@"
