"""Flow control for model calls: an adaptive concurrency limit and optional rate limits.

`Slots` bounds the calls in flight. It starts at the configured concurrency, halves when the
server answers 429 (at most once per second, so a burst of 429s counts once) and grows back by
one slot per `limit` successes — additive increase, multiplicative decrease, as TCP does. A call
that waits out a Retry-After holds no slot, so the other calls keep the server busy meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiolimiter import AsyncLimiter


class Slots:
    def __init__(self, limit: int):
        self.max = limit
        self.limit = limit
        self.in_flight = 0
        self._credit = 0
        self._last_cut = 0.0
        self._cond = asyncio.Condition()

    async def acquire(self) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1

    async def release(self, ok: bool = True) -> None:
        async with self._cond:
            self.in_flight -= 1
            if ok and self.limit < self.max:
                self._credit += 1
                if self._credit >= self.limit:
                    self._credit = 0
                    self.limit += 1
            self._cond.notify(self.limit - self.in_flight if self.limit > self.in_flight else 0)

    def rate_limited(self) -> None:
        now = time.monotonic()
        if now - self._last_cut >= 1.0:
            self._last_cut = now
            self.limit = max(1, self.limit // 2)
            self._credit = 0


class Limits:
    """Slots plus optional requests-per-minute and tokens-per-minute buckets."""

    def __init__(self, concurrency: int, rpm: float | None = None, tpm: float | None = None):
        self.slots = Slots(concurrency)
        # aiolimiter is a leaky bucket; a bucket of a second's worth keeps bursts short
        self._rpm = AsyncLimiter(max(1.0, rpm / 60), 1) if rpm else None
        self._tpm_rate = tpm / 60 if tpm else None
        self._tpm = AsyncLimiter(self._tpm_rate, 1) if tpm else None

    @asynccontextmanager
    async def call(self, tokens: int) -> AsyncIterator[None]:
        if self._rpm is not None:
            await self._rpm.acquire()
        if self._tpm is not None:
            await self._tpm.acquire(min(tokens, self._tpm_rate))
        await self.slots.acquire()
        ok = False
        try:
            yield
            ok = True
        finally:
            await self.slots.release(ok)
