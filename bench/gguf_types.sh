#!/usr/bin/env bash
# What each `augment gguf --type` keeps of a fine-tune: Gemma 3 270M trained as the README's
# uptake recipe trains arm (c) on 10 film pages (seed 7), written as f16, q8_0, q6_k, q5_k_m and
# q4_k_m, and scored closed-book on the pages' own questions (transformers on each file's weights).
# About 45 minutes on 2 CPU cores. Usage: bash bench/gguf_types.sh [OUT]  (default runs/gguf-types)
set -euo pipefail
out=${1:-runs/gguf-types}
qa=${QA:-../shared/data/wikinewpages2023_film_dev.jsonl}
mkdir -p "$out/docs"
python - "$qa" "$out" <<'PY'
import json, random, sys
from pathlib import Path
qa, out = sys.argv[1], Path(sys.argv[2])
rows = [json.loads(line) for line in open(qa)]
random.Random(7).shuffle(rows)
with open(out / "qa.jsonl", "w") as f:
    for i, r in enumerate(rows[:10]):
        (out / "docs" / f"p{i:02d}.md").write_text(f"# {r['title']}\n\n{r['text']}\n")
        f.write(json.dumps(r) + "\n")
PY
echo 'temperature = 0.3' > "$out/t03.toml"
augment generate "$out/docs" -o "$out/run" -s qa-spans,paraphrase -c "$out/t03.toml" \
  --decontaminate "$out/qa.jsonl" --quiet
augment train "$out/run/shards" --model gemma3-270m -o "$out/ckpt" --method full --lr 1e-4 \
  --replay 0.5 --max-steps 72 --batch-size 4 --max-seq-len 256
models=(-m gemma3-270m -m "$out/ckpt")
for t in f16 q8_0 q6_k q5_k_m q4_k_m; do
  augment gguf "$out/ckpt" --type "$t"
  models+=(-m "$out/ckpt-$t.gguf")
done
augment eval "${models[@]}" --qa "$out/qa.jsonl" --with-title -o "$out/report"
