from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from augment.pipeline.cache import ResponseCache
from augment.pipeline.limits import Limits, Slots
from augment.strategies.base import _compile, _Substitution
from augment.types import GenResult, Usage


def test_slots_hand_over_in_order_and_retries_go_first():
    async def scenario() -> list[str]:
        slots = Slots(2)
        order: list[str] = []

        async def worker(name: str, first: bool = False) -> None:
            await slots.acquire(first=first)
            order.append(name)
            await asyncio.sleep(0.01)
            slots.release()

        await slots.acquire()
        await slots.acquire()  # both slots taken
        tasks = [asyncio.create_task(worker(n)) for n in ("a", "b", "c")]
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(worker("retry", first=True)))
        await asyncio.sleep(0)
        slots.release()
        slots.release()
        await asyncio.gather(*tasks)
        assert slots.in_flight == 0
        return order

    assert asyncio.run(scenario()) == ["retry", "a", "b", "c"]


def test_slots_halve_on_frequent_429_but_not_on_sparse_ones():
    slots = Slots(64)
    for _ in range(95):
        slots.in_flight += 1
        slots.release(ok=True)
    for _ in range(5):
        slots.rate_limited()  # 5 % of recent replies
    assert slots.limit == 64
    for _ in range(40):
        slots.rate_limited()
    assert slots.limit == 32  # at most one cut per second
    slots._last_cut -= 2
    slots.rate_limited()
    assert slots.limit == 16
    for _ in range(16 * 3):
        slots.in_flight += 1
        slots.release(ok=True)
    assert slots.limit == 18  # additive increase: +1 after 16 successes, +1 after 17 more


def test_slots_halve_once_for_calls_that_time_out_together_and_grow_back_below_that():
    slots = Slots(16)
    sent = time.monotonic()
    for _ in range(11):  # eleven calls queued together time out together: one cut
        slots.timed_out(sent)
    assert (slots.limit, slots.ceiling, slots.cuts) == (8, 15, 1)
    slots.timed_out(time.monotonic())  # one sent after the cut: the next round
    assert (slots.limit, slots.ceiling, slots.cuts) == (4, 7, 2)
    for _ in range(200):
        slots.in_flight += 1
        slots.release(ok=True)
    assert slots.limit == 7  # grows back, but not to 8, where a call timed out
    slots.timed_out(time.monotonic())
    assert (slots.limit, slots.ceiling) == (3, 6)


def test_tokens_per_minute_limit_paces_calls(tmp_path: Path):
    from augment.backends.mock import MockBackend
    from augment.pipeline.runner import Budget, Runner, RunState
    from augment.strategies.parsers import Parsed
    from augment.types import GenRequest

    # 40 requests of ~60 tokens (prompt + max_tokens) under 60,000 tokens/minute = 1,000/s: >= ~1.4 s
    reqs = [GenRequest(f"k{i}", "word " * 10, 0.0, 50, 0, source="A sentence here.") for i in range(40)]
    state = RunState()
    runner = Runner(
        MockBackend(),
        cache=ResponseCache(tmp_path / "c.sqlite"),
        parse=lambda req, res: Parsed(items=[{"text": res.text}]),
        limits=Limits(64, tpm=60_000),
        budget=Budget(None, None, state, count_tokens=True),
        state=state,
    )

    async def collect() -> float:
        t = time.monotonic()
        _ = [o async for o in runner.run(reqs)]
        return time.monotonic() - t

    assert asyncio.run(collect()) >= 1.2


def test_requests_per_minute_limit_paces_calls():
    async def scenario() -> float:
        limits = Limits(100, rpm=3000)  # 50 per second, bursts of a second's worth
        t = time.monotonic()

        async def one() -> None:
            async with limits.call(0):
                pass

        await asyncio.gather(*(one() for _ in range(100)))
        return time.monotonic() - t

    assert asyncio.run(scenario()) >= 0.9


@pytest.mark.parametrize(
    "source",
    [
        "{{ title }}\nQuestion: {{ question }}\nAnswer: {{ answer }}",
        "{{question}}{{answer}}",
        "plain text",
        "",
    ],
)
def test_substitution_matches_jinja(source: str):
    import jinja2

    ctx = {"title": "T <b>", "question": "Q & {{ x }}", "answer": "42"}
    fast = _compile(Path("p.md"), source, "record.text")
    assert isinstance(fast, _Substitution)
    expected = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(source).render(**ctx)
    assert fast.render(**ctx) == expected
    assert not isinstance(_compile(Path("p.md"), "{{ title | upper }}", "x"), _Substitution)


def test_cache_round_trip_and_reopen(tmp_path: Path):
    cache = ResponseCache(tmp_path / "cache.sqlite")
    cache.put("k1", GenResult("hello", "length", Usage(3, 5)))
    assert cache.get("k1") == GenResult("hello", "length", Usage(3, 5))
    assert cache.get("nope") is None
    cache.close()
    again = ResponseCache(tmp_path / "cache.sqlite")  # migrations are not applied twice
    assert len(again) == 1 and again.totals() == (3, 5)
    again.close()
