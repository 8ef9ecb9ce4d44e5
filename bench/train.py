"""Training throughput: `augment train` against a plain transformers (+ peft) loop, same run.

    python bench/train.py [--model tiny|gemma3-270m|PATH] [--method lora|full] [--seq-len 256]
                          [--batch-size 4] [--steps 6] [--bf16 auto|on|off[,...]]

Both train the same model on the same packed sequences of the same length and batch size for
the same number of steps (the first step, a warm-up, is not timed). The table gives tokens/s,
peak memory (GPU: allocated by torch; CPU: the process's resident set) and, on a GPU, model FLOPs
utilisation (6 x parameters x tokens/s over the GPU's dense bf16 peak), and augment's ratio to
the plain loop. `--bf16 off,on` measures both precisions in one run (on a CPU, `on` is bf16
autocast over fp32 weights in both trainers), with each row's ratio to the first row too.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def make_shards(folder: Path, rows: int, words: int) -> Path:
    from augment.io import write_json, write_jsonl

    rng = random.Random(0)
    vocab = [f"{rng.choice('bcdfghklmnprst')}{rng.choice('aeiou')}{rng.choice('nrst')}" for _ in range(2000)]
    recs = [{"id": f"r{i}", "text": " ".join(rng.choices(vocab, k=words))} for i in range(rows)]
    shards = folder / "shards"
    write_jsonl(shards / "train-00000-of-00001.jsonl", recs)
    write_json(
        shards / "manifest.json",
        {
            "format": "cpt",
            "counts": {"train": rows, "val": 0},
            "tokens": {"train": rows * words},
            "files": [
                {"path": "train-00000-of-00001.jsonl", "split": "train", "format": "jsonl", "records": rows}
            ],
        },
    )
    return shards


def tiny(folder: Path) -> Path:
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {
        "<unk>": 0,
        "<s>": 1,
        "</s>": 2,
        **{
            f"{a}{b}": 3 + i
            for i, (a, b) in enumerate(
                (a, b) for a in "abcdefghijklmnopqrstuvwxyz" for b in "abcdefghijklmnopqrstuvwxyz"
            )
        },
    }
    tok = Tokenizer(models.WordPiece(vocab, unk_token="<unk>", max_input_chars_per_word=100))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    hf = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="</s>"
    )
    cfg = transformers.LlamaConfig(
        vocab_size=len(hf),
        hidden_size=256,
        intermediate_size=768,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=2048,
    )
    transformers.LlamaForCausalLM(cfg).save_pretrained(folder / "tiny")
    hf.save_pretrained(folder / "tiny")
    return folder / "tiny"


def peak_memory_gb(torch) -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def plain_loop(
    model_path: str, shards: Path, method: str, seq_len: int, batch: int, steps: int, bf16: bool
) -> float:
    """tokens/s of a hand-written loop: packed sequences, AdamW, bf16 autocast when `bf16`."""
    import torch
    import transformers

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    tok = transformers.AutoTokenizer.from_pretrained(model_path)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_path).to(dev)
    if method == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            model,
            LoraConfig(
                r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM"
            ),
        )
    ids = [
        i
        for line in (shards / "train-00000-of-00001.jsonl").open()
        for i in tok(json.loads(line)["text"]).input_ids
    ]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()
    t = None
    for step in range(steps):
        if step == 1:
            t = time.perf_counter()
        start = step * batch * seq_len % max(len(ids) - batch * seq_len, 1)
        x = torch.tensor(ids[start : start + batch * seq_len]).view(batch, seq_len).to(dev)
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=bf16):
            loss = model(x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    if dev == "cuda":
        torch.cuda.synchronize()
    return (steps - 1) * batch * seq_len / (time.perf_counter() - t)


def measure(args: argparse.Namespace, which: str, bf16: str) -> dict:
    """One trainer in this process: tokens/s, peak memory, parameter count."""
    import torch
    import transformers

    from augment.models import resolve_model
    from augment.train.args import TrainConfig
    from augment.train.trainer import train

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        model = str(tiny(tmp_path)) if args.model == "tiny" else resolve_model(args.model)
        shards = make_shards(tmp_path / "run", rows=args.steps * args.batch_size * 2, words=args.seq_len)
        if which == "plain":
            cuda_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
            on = bf16 == "on" or (bf16 == "auto" and cuda_bf16)
            rate = plain_loop(model, shards, args.method, args.seq_len, args.batch_size, args.steps, on)
        else:
            times: list[float] = []

            class Clock(transformers.TrainerCallback):
                def on_step_end(self, a, state, control, **kw):
                    times.append(time.perf_counter())

            cfg = TrainConfig(
                shards=shards,
                model=model,
                output=tmp_path / "ckpt",
                method=args.method,
                max_steps=args.steps,
                max_seq_len=args.seq_len,
                batch_size=args.batch_size,
                logging_steps=1,
                save_steps=10**6,
                warmup_ratio=0.0,
                bf16=bf16,
            )
            train(cfg, callbacks=[Clock()])
            rate = (len(times) - 1) * args.batch_size * args.seq_len / (times[-1] - times[0])
        params = sum(p.numel() for p in transformers.AutoModelForCausalLM.from_pretrained(model).parameters())
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {"rate": rate, "memory": peak_memory_gb(torch), "params": params, "gpu": gpu}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--method", default="lora", choices=["lora", "full"])
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--bf16", default="auto", help="auto, on or off; several, comma-separated, to compare")
    ap.add_argument("--only", choices=["plain", "augment"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    precisions = args.bf16.split(",")
    if not set(precisions) <= {"auto", "on", "off"}:
        ap.error(f"--bf16: {args.bf16!r} is not a comma-separated list of auto, on and off")
    if args.only:  # a child process: one measurement, as JSON on the last line
        print(json.dumps(measure(args, args.only, args.bf16)))
        return
    results = {}
    for bf16 in precisions:
        for which in ("plain", "augment"):  # each in its own process, so that peak memory is its own
            out = subprocess.run(
                # argparse keeps the last --bf16: the child measures one precision
                [sys.executable, __file__, *sys.argv[1:], "--bf16", bf16, "--only", which],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            results[which, bf16] = json.loads(out.strip().splitlines()[-1])
    gpu, n_params = results["augment", precisions[0]]["gpu"], results["augment", precisions[0]]["params"]
    peak = next((v for k, v in PEAK_BF16.items() if gpu and k in gpu), None)
    table = Table(
        title=f"{args.model} ({n_params / 1e6:.0f}M params), {args.method}, {args.batch_size} x "
        f"{args.seq_len} tokens, {gpu or 'CPU'}"
    )
    for col in (
        "trainer",
        "bf16",
        "tokens/s",
        "peak memory GB",
        "MFU",
        "ratio to plain loop",
        "ratio to row 1",
    ):
        table.add_column(col, justify="left" if col in ("trainer", "bf16") else "right")
    first = results["plain", precisions[0]]["rate"]
    for bf16 in precisions:
        plain = results["plain", bf16]["rate"]
        for name, which in (("plain transformers loop", "plain"), ("augment train", "augment")):
            rate, mem = results[which, bf16]["rate"], results[which, bf16]["memory"]
            mfu = f"{6 * n_params * rate / peak:.1%}" if peak else "-"
            table.add_row(
                name, bf16, f"{rate:,.0f}", f"{mem:.2f}", mfu, f"{rate / plain:.2f}", f"{rate / first:.2f}"
            )
    Console(file=sys.stdout, width=140).print(table)


if __name__ == "__main__":
    main()
