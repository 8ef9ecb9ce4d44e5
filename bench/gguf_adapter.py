"""A LoRA fine-tune in llama.cpp: the adapter GGUF on the base file it was trained from, against the
merged model written whole (f16, and q4_k_m: the base file's own format).

    python bench/gguf_adapter.py [--out runs/gguf-adapter] [--qa FILM.jsonl] [--pages 10] [--steps 72]

Gemma 3 270M (the packaged Q4_K_M GGUF) is trained with LoRA (`augment train --method lora`, its
default lr and rank) on augment's data from 10 film pages (seed 7, as `bench/gguf_types.sh`), then
`augment gguf` writes the adapter (`--adapter`, f16) and the merged model (f16 and q4_k_m). Every
file is scored closed-book on the pages' questions by llama.cpp itself (greedy, the answer's first
line, the eval's prompt with the title), and the checkpoint by `augment eval` (transformers) as the
reference. LoRA was trained on the base's weights as they are in the Q4_K_M file (de-quantised), so
the adapter applied to that file is the trained model, while the merged model must be rounded to
some format again. Prints a table; writes `OUT/gguf-adapter.json`. About 35 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from augment.eval.metrics import bootstrap_ci, contains, exact_match, f1_score
from augment.eval.runner import first_line, prompt_for
from augment.models import packaged_gguf
from augment.qafile import load_qa


def augment(*args: object) -> None:
    cmd = [sys.executable, "-m", "augment", *map(str, args)]
    print("+ augment", *map(str, args), flush=True)
    subprocess.run(cmd, check=True)


def llama_cpp_answers(model: Path, lora: Path | None, prompts: list[str], threads: int) -> list[str]:
    from llama_cpp import Llama

    llm = Llama(
        str(model), n_ctx=512, n_threads=threads, verbose=False, lora_path=str(lora) if lora else None
    )
    try:
        out = []
        for p in prompts:
            text = llm.create_completion(p, max_tokens=32, temperature=0.0)["choices"][0]["text"]
            if not first_line(text) and text.strip():  # opened with a newline: as the eval takes it
                text = text.strip()
            out.append(first_line(text))
        return out
    finally:
        llm.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("runs/gguf-adapter"))
    ap.add_argument("--qa", type=Path, default=Path("../shared/data/wikinewpages2023_film_dev.jsonl"))
    ap.add_argument("--pages", type=int, default=10)
    ap.add_argument("--steps", type=int, default=72)
    ap.add_argument("--lr", default=None, help="augment train --lr (default: its own for LoRA, 2e-4)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("-o", "--result", type=Path, default=None, help="Also write the JSON here.")
    a = ap.parse_args()
    out = a.out
    (out / "docs").mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in a.qa.open()]
    random.Random(7).shuffle(rows)
    with (out / "qa.jsonl").open("w") as f:
        for i, r in enumerate(rows[: a.pages]):
            (out / "docs" / f"p{i:02d}.md").write_text(f"# {r['title']}\n\n{r['text']}\n")
            f.write(json.dumps(r) + "\n")
    (out / "t03.toml").write_text("temperature = 0.3\n")
    times: dict[str, float] = {}
    t = time.perf_counter()
    augment("generate", out / "docs", "-o", out / "run", "-s", "qa-spans,paraphrase", "-c", out / "t03.toml",
            "--decontaminate", out / "qa.jsonl", "--quiet")  # fmt: skip
    times["generate"] = time.perf_counter() - t
    ckpt = out / ("ckpt" if a.lr is None else f"ckpt-lr{a.lr}")
    lr = [] if a.lr is None else ["--lr", a.lr]
    t = time.perf_counter()
    augment("train", out / "run" / "shards", "--model", "gemma3-270m", "-o", ckpt, "--method", "lora",
            "--replay", "0.5", "--max-steps", a.steps, "--batch-size", 4, "--max-seq-len", 256, *lr)  # fmt: skip
    times["train"] = time.perf_counter() - t
    for label, extra in (("adapter", ["--adapter"]), ("f16", []), ("q4_k_m", ["--type", "q4_k_m"])):
        t = time.perf_counter()
        augment("gguf", ckpt, *extra)
        times[f"gguf {label}"] = time.perf_counter() - t
    report_dir = out / f"report-{ckpt.name}"
    augment("eval", "-m", "gemma3-270m", "-m", ckpt, "--qa", out / "qa.jsonl", "--with-title",
            "-o", report_dir)  # fmt: skip
    report = json.loads((report_dir / "report.json").read_text())

    items = load_qa(out / "qa.jsonl")
    prompts = [prompt_for(it, "closed", with_title=True) for it in items]
    groups = [it.title for it in items]  # intervals by passage as well: its questions go together
    base = packaged_gguf()
    files = {
        "base (Q4_K_M)": (base, None),
        "base + adapter (f16)": (base, out / f"{ckpt.name}-lora-f16.gguf"),
        "merged f16": (out / f"{ckpt.name}-f16.gguf", None),
        "merged q4_k_m": (out / f"{ckpt.name}-q4_k_m.gguf", None),
    }
    reference = report["models"][1]
    predictions = json.loads((report_dir / "predictions.json").read_text())
    ref_answers = [row[reference["model"]]["prediction"] for row in predictions]
    answers: dict[str, list[str]] = {}
    for label, (model, lora) in files.items():
        t = time.perf_counter()
        answers[label] = llama_cpp_answers(model, lora, prompts, a.threads)
        times[f"score {label}"] = time.perf_counter() - t

    def scores(preds: list[str]) -> dict[str, list[float]]:
        return {
            "exact_match": [exact_match(p, it.answers) for p, it in zip(preds, items, strict=True)],
            "f1": [f1_score(p, it.answers) for p, it in zip(preds, items, strict=True)],
            "contains": [contains(p, it.answers) for p, it in zip(preds, items, strict=True)],
        }

    per = {label: scores(p) for label, p in answers.items()}
    adapter_f1 = per["base + adapter (f16)"]["f1"]
    result = {
        "qa": str(a.qa), "pages": a.pages, "questions": len(items), "steps": a.steps, "lr": a.lr,
        "reference": {k: v for k, v in reference["scores"].items() if k in ("f1", "exact_match", "contains")},
        "files": {}, "seconds": {k: round(v, 1) for k, v in times.items()},
    }  # fmt: skip
    table = Table(
        title=f"Gemma 3 270M, LoRA {a.steps} steps (lr {a.lr or 'default'}), {len(items)} closed-book "
        "questions, llama.cpp"
    )
    for col in ("file", "MB", "F1 [95 % CI]", "EM", "as the checkpoint's", "F1 − adapter on base [95 % CI]"):
        table.add_column(col)
    ref = reference["scores"]["f1"]
    table.add_row("checkpoint (transformers, reference)", "", f"{ref['mean']:.3f} [{ref['lo']:.3f}, {ref['hi']:.3f}]",
                  f"{reference['scores']['exact_match']['mean']:.3f}", "", "")  # fmt: skip
    for label, (model, lora) in files.items():
        size = (lora or model).stat().st_size / 1e6
        f1 = bootstrap_ci(per[label]["f1"])
        delta = [x - y for x, y in zip(per[label]["f1"], adapter_f1, strict=True)]
        diff, by_passage = bootstrap_ci(delta), bootstrap_ci(delta, groups=groups)
        same = sum(x == y for x, y in zip(answers[label], ref_answers, strict=True))
        result["files"][label] = {
            "file": str(lora or model), "mb": round(size, 1),
            "f1": f1, "exact_match": bootstrap_ci(per[label]["exact_match"]),
            "contains": bootstrap_ci(per[label]["contains"]), "f1_minus_adapter": diff,
            "f1_minus_adapter_by_passage": by_passage,
            "same_answers_as_checkpoint": same, "answers": answers[label],
        }  # fmt: skip
        table.add_row(
            label, f"{size:,.1f}" + (" + base" if lora else ""), f"{f1[0]:.3f} [{f1[1]:.3f}, {f1[2]:.3f}]",
            f"{bootstrap_ci(per[label]['exact_match'])[0]:.3f}", f"{same} of {len(items)}",
            "" if label.startswith("base +") else f"{diff[0]:+.3f} [{diff[1]:+.3f}, {diff[2]:+.3f}]",
        )  # fmt: skip
    Console().print(table)
    (out / f"gguf-adapter-{ckpt.name}.json").write_text(json.dumps(result, indent=1))
    if a.result:
        a.result.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
