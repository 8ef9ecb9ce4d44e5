"""The evaluation report: a rich table, JSON, Markdown and (with matplotlib) a PNG plot."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from augment.eval.runner import JUDGE, ModelScores, metrics_of, paired_differences
from augment.io import atomic_path, write_json

LOWER_IS_BETTER = {"answer_nll", "answer_nll_source"}


def _no_nan(obj: Any) -> Any:
    """`obj` with NaN (a question the grader could not grade) as null, so the files are valid JSON."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _no_nan(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_no_nan(v) for v in obj]
    return obj


def fmt(ci: tuple[float, float, float]) -> str:
    mean, lo, hi = ci
    return "n/a" if math.isnan(mean) else f"{mean:.3f} [{lo:.3f}, {hi:.3f}]"  # n/a: nothing graded


def fmt_diff(d: dict[str, float]) -> str:
    """A paired difference from report.json: signed mean and interval."""
    return "n/a" if math.isnan(d["mean"]) else f"{d['mean']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]"


def build_report(
    qa: str,
    mode: str,
    items: int,
    results: list[ModelScores],
    shots: str | None = None,
    n_shots: int = 0,
    engine: str = "transformers",
) -> dict[str, Any]:
    """`engine`: what answered (transformers, vllm, or `server URL`)."""
    base = results[0]
    metrics = metrics_of(results)
    return {
        "qa": qa,
        "mode": mode,
        "questions": items,
        "engine": engine,
        **({"shots": shots, "n_shots": n_shots} if shots else {}),
        "metrics": list(metrics),
        "models": [
            {
                "model": r.model,
                "seconds": round(r.seconds, 2),
                "reused_answers": r.reused,
                **({"ungraded": r.ungraded} if JUDGE in metrics else {}),
                "scores": {m: dict(zip(("mean", "lo", "hi"), r.summary[m], strict=True)) for m in metrics},
                "difference_vs_first": None
                if r is base
                else {
                    m: dict(zip(("mean", "lo", "hi"), d, strict=True))
                    for m, d in paired_differences(base, r).items()
                },
            }
            for r in results
        ],
    }


def markdown(report: dict[str, Any]) -> str:
    metrics = report["metrics"]
    lines = [
        f"# augment eval: {report['qa']} ({report['mode']}-book, {report['questions']} questions)",
        "",
        *(
            [f"Every prompt opens with {report['n_shots']} worked examples from {report['shots']}.", ""]
            if report.get("shots")
            else []
        ),
        f"Answers from {report.get('engine', 'transformers')}. Means with 95 % bootstrap intervals; "
        "differences are paired by question, against the first model.",
        "Exact match, F1 and containment: higher is better; answer NLL (nats per token of the gold answer): lower;",
        "answer_nll_source also scores a gold answer the passage words differently in the passage's wording.",
        *(
            ["judge: the share of answers a grader model judged correct against the gold answers."]
            if JUDGE in metrics
            else []
        ),
        "",
        "| model | " + " | ".join(metrics) + " |",
        "|---|" + "---|" * len(metrics),
    ]
    for m in report["models"]:
        s = m["scores"]
        lines.append(
            f"| {m['model']} | "
            + " | ".join(fmt((s[k]["mean"], s[k]["lo"], s[k]["hi"])) for k in metrics)
            + " |"
        )
        d = m["difference_vs_first"]
        if d:
            lines.append("| &nbsp;&nbsp;difference | " + " | ".join(fmt_diff(d[k]) for k in metrics) + " |")
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> bool:
    """Bar charts of each metric per model with their intervals; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    metrics = report["metrics"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.5))
    names = [Path(m["model"]).name or m["model"] for m in report["models"]]
    for ax, metric in zip(axes, metrics, strict=True):
        s = [m["scores"][metric] for m in report["models"]]
        means = [x["mean"] for x in s]
        err = [[x["mean"] - x["lo"] for x in s], [x["hi"] - x["mean"] for x in s]]
        ax.bar(range(len(s)), means, yerr=err, capsize=4, color="#4C72B0")
        ax.set_xticks(range(len(s)), names, rotation=20, ha="right", fontsize=8)
        ax.set_title(metric + (" (lower is better)" if metric in LOWER_IS_BETTER else ""), fontsize=9)
    fig.suptitle(f"{report['mode']}-book QA, {report['questions']} questions", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return True


def write_report(
    report: dict[str, Any], out_dir: Path, results: list[ModelScores], items: list[Any]
) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "report.json", _no_nan(report))
    with atomic_path(out_dir / "report.md") as tmp:
        tmp.write_text(markdown(report), encoding="utf-8")
    write_json(
        out_dir / "predictions.json",
        _no_nan(
            [
                {
                    "id": it.id,
                    "question": it.question,
                    "answers": it.answers,
                    **{
                        r.model: {
                            "prediction": r.predictions[i],
                            **{m: r.per_item[m][i] for m in report["metrics"]},
                            **({"judge_reason": r.reasons[i]} if r.reasons else {}),
                        }
                        for r in results
                    },
                }
                for i, it in enumerate(items)
            ]
        ),
    )
    written = [out_dir / "report.json", out_dir / "report.md", out_dir / "predictions.json"]
    if plot(report, out_dir / "scores.png"):
        written.append(out_dir / "scores.png")
    return written
