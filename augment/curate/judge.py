"""An optional model judge that scores each record against its own source chunk.

The judge sees the same document block as generation (title and chunk) and then the record, so
it can only reward what the source supports. Replies are cached like any other request, so
re-curating with a new threshold costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from augment.backends import Backend
from augment.config import RunConfig
from augment.curate.text import record_body
from augment.errors import ParseError
from augment.io import sha256_hex
from augment.pipeline.runner import Outcome, RunState, judge_request, run_calls
from augment.strategies import DOCUMENT_BLOCK, prompt_template
from augment.strategies.parsers import Parsed, _find_json, answer_of
from augment.types import GenRequest, GenResult

JUDGE_PROMPT = "_judge.md"
FIELDS = ("faithfulness", "usefulness", "reason")


@dataclass(slots=True)
class JudgeVerdict:
    faithfulness: int
    usefulness: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"faithfulness": self.faithfulness, "usefulness": self.usefulness, "reason": self.reason}


def parse_judge(text: str) -> JudgeVerdict:
    data = _find_json(text)
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]
    if not isinstance(data, dict):
        raise ParseError("judge reply is not a JSON object")
    scores = {}
    for key in ("faithfulness", "usefulness"):
        value = data.get(key)
        try:
            scores[key] = int(round(float(value)))
        except (TypeError, ValueError):
            raise ParseError(f"judge reply has no number '{key}'") from None
        if not 1 <= scores[key] <= 5:
            raise ParseError(f"judge '{key}' out of range: {value}")
    return JudgeVerdict(scores["faithfulness"], scores["usefulness"], str(data.get("reason", ""))[:500])


def _requests(
    records: Iterable[tuple[dict[str, Any], str, str]], backend: Backend, config: RunConfig
) -> Iterator[GenRequest]:
    """The judge's request for each (record, title, chunk), built as it is read."""
    source, template = prompt_template(config.prompts_dir, DOCUMENT_BLOCK, JUDGE_PROMPT)
    version = sha256_hex(source)[:12]
    for rec, title, chunk in records:
        example = record_body(rec) if rec.get("strategy") != "qa" else rec["text"]
        prompt = template.render(
            title=title, chunk=chunk, strategy=rec.get("strategy", ""), example=example
        ).strip()
        yield judge_request(
            backend,
            prompt,
            kind="judge",
            version=version,
            max_tokens=256,
            seed=config.seed,
            fields=FIELDS,
            source=chunk,
            target=example,
        )


def judge_records(
    records: Iterable[tuple[dict[str, Any], str, str]],
    total: int,
    backend: Backend,
    run_dir: Path,
    config: RunConfig,
    on_start: Callable[[RunState], None] = lambda s: None,
    on_advance: Callable[[Outcome], None] = lambda o: None,
) -> list[JudgeVerdict | str]:
    """A verdict (or the failure reason) for each of `total` (record, title, chunk), in order. The
    records are read, and their requests built, as the requests go out: a run's worth of prompts
    (each holds its chunk) is never held at once."""

    def parse(req: GenRequest, result: GenResult) -> Parsed:
        verdict = parse_judge(answer_of(result.text))
        return Parsed(
            items=[
                {
                    "faithfulness": str(verdict.faithfulness),
                    "usefulness": str(verdict.usefulness),
                    "reason": verdict.reason,
                }
            ]
        )

    def verdict(o: Outcome) -> JudgeVerdict | str:
        if o.parsed is None:
            return o.error or "judge_failed"
        item = o.parsed.items[0]
        return JudgeVerdict(int(item["faithfulness"]), int(item["usefulness"]), item["reason"])

    return run_calls(
        backend,
        _requests(records, backend, config),
        parse,
        run_dir / "cache.sqlite",
        config,
        on_start=on_start,
        on_outcome=on_advance,
        total=total,
        keep=verdict,  # not the request (its prompt holds a chunk) nor the reply
    )
