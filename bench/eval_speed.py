"""Speed of `augment eval`'s scoring against the plain way of scoring, measured in the same run.

    python bench/eval_speed.py [--qa ../shared/data/squad_dev200.jsonl] [--questions 40]
                               [--model gemma3-270m] [--batch-size 8] [--max-new-tokens 32]

For each mode (closed and open book), on the same questions and the same loaded model:

- augment: `score_model` (greedy batches that stop once every answer's first line is written;
  the gold answers' likelihoods several pairs a forward, logits kept for the answers only);
- the peer: the same batches generated to `--max-new-tokens`, and each gold answer's likelihood
  from its own forward with `labels` (transformers' loss), the way the eval first did it.

The table gives seconds per question for each and the ratio (peer / augment), and checks that the
two agree: the share of identical greedy answers and the largest difference in answer NLL.
augment's time includes loading the model (`score_model` loads its own); the peer's does not.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from augment.eval.metrics import answer_span  # noqa: E402
from augment.eval.runner import _load, first_line, likelihood_forms, prompts_for, score_model  # noqa: E402
from augment.qafile import load_qa  # noqa: E402


def peer(torch, tok, model, dev, items, prompts, batch_size: int, max_new_tokens: int):
    """Answers and best gold-answer NLLs, the plain way."""
    predictions, nll = [], []
    tok.padding_side = "left"
    for lo in range(0, len(items), batch_size):
        enc = tok(prompts[lo : lo + batch_size], return_tensors="pt", padding=True).to(dev)
        with torch.no_grad():
            out = model.generate(
                **enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id
            )
        predictions += [
            first_line(tok.decode(r, skip_special_tokens=True)) for r in out[:, enc.input_ids.shape[1] :]
        ]
    for prompt, item in zip(prompts, items, strict=True):
        scores = []
        for answer in likelihood_forms(item)[0]:
            p = tok(prompt, return_tensors="pt").input_ids
            a = tok(" " + answer_span(answer), add_special_tokens=False, return_tensors="pt").input_ids
            ids = torch.cat([p, a], dim=1).to(dev)
            labels = ids.clone()
            labels[:, : p.shape[1]] = -100
            with torch.no_grad():
                scores.append(float(model(ids, labels=labels).loss))
        nll.append(min(scores))
    return predictions, nll


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--qa", type=Path, default=REPO.parent / "shared/data/squad_dev200.jsonl")
    ap.add_argument("--questions", type=int, default=40)
    ap.add_argument("--model", default="gemma3-270m")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    args = ap.parse_args()

    items = load_qa(args.qa)[: args.questions]
    torch, tok, model, dev = _load(args.model, False)
    table = Table(
        title=f"augment eval scoring, {len(items)} questions of {args.qa.name}, {args.model} on {dev}"
    )
    for col in (
        "mode",
        "augment s/question",
        "peer s/question",
        "peer / augment",
        "same answers",
        "max |Δ NLL|",
    ):
        table.add_column(col, justify="left" if col == "mode" else "right")
    for mode in ("closed", "open"):
        prompts = prompts_for(items, mode, False, ())
        t0 = time.perf_counter()
        ours = score_model(
            args.model, items, mode=mode, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens
        )
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        predictions, nll = peer(torch, tok, model, dev, items, prompts, args.batch_size, args.max_new_tokens)
        t_peer = time.perf_counter() - t0
        same = sum(a == b for a, b in zip(ours.predictions, predictions, strict=True)) / len(items)
        delta = max(abs(a - b) for a, b in zip(ours.per_item["answer_nll"], nll, strict=True))
        table.add_row(
            mode,
            f"{t_ours / len(items):.3f}",
            f"{t_peer / len(items):.3f}",
            f"{t_peer / t_ours:.2f}",
            f"{same:.0%}",
            f"{delta:.1e}",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
