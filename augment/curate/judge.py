"""An optional model judge that scores each record against its own source chunk.

The judge sees the same document block as generation (title and chunk) and then the record, so
it can only reward what the source supports. Replies are cached like any other request, so
re-curating with a new threshold costs nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from augment.backends import Backend
from augment.config import RunConfig
from augment.curate.text import record_body
from augment.errors import ConfigError, ParseError
from augment.io import sha256_hex
from augment.pipeline.cache import ResponseCache
from augment.pipeline.limits import Limits
from augment.pipeline.runner import Budget, Outcome, Runner, RunState
from augment.strategies import DOCUMENT_BLOCK, builtin_prompts_dir
from augment.strategies.parsers import Parsed, _find_json
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


def _template(prompts_dir: Path | None) -> tuple[str, jinja2.Template]:
    parts = []
    for name in (DOCUMENT_BLOCK, JUDGE_PROMPT):
        path = next(
            (
                p
                for d in ([prompts_dir] if prompts_dir else []) + [builtin_prompts_dir()]
                if (p := Path(d) / name).is_file()
            ),
            None,
        )
        if path is None:
            raise ConfigError(f"{name} is missing from the prompts folder")
        parts.append(path.read_text(encoding="utf-8").strip())
    source = parts[0] + "\n\n" + parts[1]
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    try:
        return source, env.from_string(source)
    except jinja2.TemplateSyntaxError as e:
        raise ConfigError(f"{JUDGE_PROMPT}: template error at line {e.lineno}: {e.message}") from None


def judge_records(
    records: list[tuple[dict[str, Any], str, str]],
    backend: Backend,
    run_dir: Path,
    config: RunConfig,
    on_start: Callable[[RunState], None] = lambda s: None,
    on_advance: Callable[[Outcome], None] = lambda o: None,
) -> list[JudgeVerdict | str]:
    """A verdict (or the failure reason) for each (record, title, chunk), in order."""
    source, template = _template(config.prompts_dir)
    version = sha256_hex(source)[:12]
    requests = []
    for rec, title, chunk in records:
        example = record_body(rec) if rec.get("strategy") != "qa" else rec["text"]
        prompt = template.render(
            title=title, chunk=chunk, strategy=rec.get("strategy", ""), example=example
        ).strip()
        key = sha256_hex(
            "\x1f".join(
                map(str, (backend.identity, backend.model, prompt, 0.0, 256, config.seed, "judge", version))
            )
        )
        requests.append(
            GenRequest(
                key=key,
                prompt=prompt,
                temperature=0.0,
                max_tokens=256,
                seed=config.seed,
                strategy="judge",
                parser="judge",
                fields=FIELDS,
                source=chunk,
                target=example,
            )
        )

    def parse(req: GenRequest, result: GenResult) -> Parsed:
        verdict = parse_judge(result.text)
        return Parsed(
            items=[
                {
                    "faithfulness": str(verdict.faithfulness),
                    "usefulness": str(verdict.usefulness),
                    "reason": verdict.reason,
                }
            ]
        )

    async def run() -> list[JudgeVerdict | str]:
        state = RunState(total=len(requests))
        runner = Runner(
            backend,
            cache=ResponseCache(run_dir / "cache.sqlite"),
            parse=parse,
            limits=Limits(
                getattr(backend, "concurrency", None) or config.concurrency, config.rpm, config.tpm
            ),
            budget=Budget(None, None, state, count_tokens=config.tpm is not None),
            state=state,
            max_retries=config.max_retries,
            max_parse_retries=config.max_parse_retries,
        )
        out: list[JudgeVerdict | str] = []
        on_start(state)
        try:
            async for o in runner.run(requests):
                state.done += 1
                state.cached += o.cached
                state.failed += o.parsed is None
                if o.parsed is not None:
                    item = o.parsed.items[0]
                    out.append(
                        JudgeVerdict(int(item["faithfulness"]), int(item["usefulness"]), item["reason"])
                    )
                else:
                    out.append(o.error or "judge_failed")
                on_advance(o)
        finally:
            runner.cache.close()
            await backend.aclose()
        return out

    return asyncio.run(run())
