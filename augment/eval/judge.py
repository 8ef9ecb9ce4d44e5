"""`augment eval --judge`: a model grades each answer against the gold answers.

Token F1 and exact match miss answers in other words ("the US" for "United States") and give
credit for overlap that is wrong ("1990" for "1909" scores 0, "John Smith" for "John Brown"
scores 0.5). A grader model that sees the question, the gold answers and the prediction — not the
passage, so closed- and open-book answers are graded alike — says correct or not. It runs on any
backend (`--judge-backend`/`--judge-model`, or a run config's `base_url`, `concurrency`, `rpm`);
its prompt is `prompts/_grade.md`, which a `_grade.md` in the config's `prompts_dir` replaces. Replies
are cached by question, gold answers and prediction, so models that give the same answer cost one
call, and rerunning a report costs none. An empty answer is wrong without a call; a reply that
cannot be parsed after the retries leaves that question ungraded (NaN), counted in the report.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import jinja2

from augment.backends import Backend
from augment.config import RunConfig
from augment.errors import ConfigError, ParseError
from augment.io import sha256_hex
from augment.pipeline.runner import Outcome, judge_request, run_calls
from augment.qafile import QAItem
from augment.strategies import prompt_template
from augment.strategies.parsers import Parsed, _find_json, answer_of
from augment.types import GenRequest, GenResult

GRADE_PROMPT = "_grade.md"
_TRUE = {"true", "yes", "correct", "1"}
_FALSE = {"false", "no", "incorrect", "wrong", "0"}


def parse_grade(text: str) -> tuple[bool, str]:
    """(correct, reason) from a grader's reply: a JSON object with a boolean 'correct'."""
    data = _find_json(text)
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]
    if not isinstance(data, dict) or "correct" not in data:
        raise ParseError("grader reply has no 'correct' field")
    value = data["correct"]
    word = str(value).strip().lower()
    if isinstance(value, bool):
        correct = value
    elif word in _TRUE:
        correct = True
    elif word in _FALSE:
        correct = False
    else:
        raise ParseError(f"grader 'correct' is not true or false: {value!r}")
    return correct, str(data.get("reason", ""))[:300]


def grade_answers(
    items: list[QAItem],
    predictions: list[list[str]],
    backend: Backend,
    config: RunConfig,
    cache_path: Path,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> list[tuple[list[float], list[str]]]:
    """For each model's predictions (one list per model, in `items` order): per question 1.0
    (correct), 0.0 (wrong) or NaN (the grader failed), and the grader's reason."""
    source, template = prompt_template(config.prompts_dir, GRADE_PROMPT)
    version = sha256_hex(source)[:12]
    requests: dict[str, GenRequest] = {}
    keys: list[list[str | None]] = []
    for preds in predictions:
        row: list[str | None] = []
        for item, pred in zip(items, preds, strict=True):
            if not pred.strip():
                row.append(None)
                continue
            try:
                prompt = template.render(
                    question=item.question, answers=item.answers, prediction=pred
                ).strip()
            except jinja2.UndefinedError as e:
                raise ConfigError(
                    f"{GRADE_PROMPT}: {e.message} (in scope: question, answers, prediction)"
                ) from None
            req = judge_request(
                backend,
                prompt,
                kind="grade",
                version=version,
                max_tokens=128,
                seed=config.seed,
                fields=("correct", "reason"),
                source="\n".join(item.answers),
                target=pred,
            )
            requests.setdefault(req.key, req)
            row.append(req.key)
        keys.append(row)

    def parse(req: GenRequest, result: GenResult) -> Parsed:
        correct, reason = parse_grade(answer_of(result.text))
        return Parsed(items=[{"correct": "1" if correct else "0", "reason": reason}])

    def verdict(o: Outcome) -> tuple[float, str]:
        if o.parsed is None:
            return math.nan, f"grader failed: {o.error or 'no reply'}"
        return float(o.parsed.items[0]["correct"]), o.parsed.items[0]["reason"]

    outcomes = run_calls(
        backend,
        list(requests.values()),
        parse,
        cache_path,
        config,
        on_outcome=lambda o: on_progress(o.index + 1, len(requests)),  # outcomes come in request order
    )
    verdicts = {o.request.key: verdict(o) for o in outcomes}
    return [
        (
            [0.0 if k is None else verdicts[k][0] for k in row],
            ["empty answer" if k is None else verdicts[k][1] for k in row],
        )
        for row in keys
    ]
