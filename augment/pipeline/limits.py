"""Flow control for model calls: an adaptive concurrency limit and optional rate limits.

`Slots` bounds the calls in flight. It starts at the configured concurrency, halves when 429s
become frequent (a quarter of recent replies; at most once per second) or when a call times out
(once per round: calls sent before the last cut do not cut again), and grows back by one slot per
`limit` successes — additive increase, multiplicative decrease, as TCP does — but never again to a
limit at which a call timed out. A call that waits out a Retry-After holds no slot, so the other
calls keep the server busy meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiolimiter import AsyncLimiter

from augment.config import RunConfig


class Slots:
    def __init__(self, limit: int):
        self.max = limit
        self.limit = limit
        self.in_flight = 0
        self._credit = 0
        self._last_cut = 0.0
        self._recent: deque[bool] = deque(maxlen=max(20, limit))  # was each recent reply a 429?
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.cuts = 0  # times the limit was cut for timeouts
        self.ceiling = limit  # below the lowest limit at which a call timed out

    async def acquire(self, first: bool = False) -> None:
        """Wait for a slot; `first` (a retry that has already waited its turn) goes ahead of the queue."""
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
            return
        fut = asyncio.get_running_loop().create_future()
        if first:
            self._waiters.appendleft(fut)
        else:
            self._waiters.append(fut)
        await fut  # release() hands its slot over (in_flight already counts us)

    def release(self, ok: bool = True) -> None:
        self.in_flight -= 1
        if ok:
            self._recent.append(False)
        if ok and self.limit < self.ceiling:  # the ceiling starts at max
            self._credit += 1
            if self._credit >= self.limit:
                self._credit = 0
                self.limit += 1
        while self._waiters and self.in_flight < self.limit:
            fut = self._waiters.popleft()
            if not fut.done():  # a cancelled waiter gives its turn to the next
                self.in_flight += 1
                fut.set_result(None)

    def rate_limited(self) -> None:
        """A 429: halve the limit (once a second at most) when 429s are a quarter of recent replies.

        Sparse 429s (a shared gateway's hiccups) are waited out per request; a steady stream of
        them means the server wants less load, and fewer calls in flight is what it gets.
        """
        self._recent.append(True)
        now = time.monotonic()
        if (
            now - self._last_cut >= 1.0
            and sum(self._recent) >= len(self._recent) / 4
            and len(self._recent) >= 8
        ):
            self._last_cut = now
            self.limit = max(1, self.limit // 2)
            self._credit = 0

    def timed_out(self, sent: float) -> None:
        """A call sent at `sent` (time.monotonic()) got no reply within request_timeout: the server
        has more in hand than it answers in that time (one that answers one at a time, with a long
        queue). Halve the limit, once for all the calls that were in flight together: they time out
        together, as the queue they waited in was one. The limit grows back, but not to this one:
        a server that answers one at a time has a fixed depth of queue it answers in time, and
        each probe past it costs the calls that time out, which it works through all the same."""
        if sent >= self._last_cut:
            self._last_cut = time.monotonic()
            self.ceiling = max(1, min(self.ceiling, self.limit - 1))
            self.limit = max(1, self.limit // 2)
            self._credit = 0
            self.cuts += 1


class Limits:
    """Slots plus optional requests-per-minute and tokens-per-minute buckets."""

    def __init__(self, concurrency: int, rpm: float | None = None, tpm: float | None = None):
        self.slots = Slots(concurrency)
        # aiolimiter is a leaky bucket; a bucket of a second's worth keeps bursts short
        self._rpm = AsyncLimiter(max(1.0, rpm / 60), 1) if rpm else None
        self._tpm_rate = tpm / 60 if tpm else None
        self._tpm = AsyncLimiter(self._tpm_rate, 1) if tpm else None

    @classmethod
    def of(cls, backend: object, config: RunConfig) -> Limits:
        """A run's limits: an in-process engine takes as many requests as it can batch, a server
        config.concurrency; a batch_api backend what its batches out at once hold, with no rate
        limits (the server paces a batch itself, and rpm or tpm would only slow its gathering)."""
        concurrency = getattr(backend, "concurrency", None) or config.concurrency
        if getattr(backend, "batch", None) is not None:
            return cls(concurrency)
        return cls(concurrency, config.rpm, config.tpm)

    @asynccontextmanager
    async def call(self, tokens: int, retry: bool = False) -> AsyncIterator[None]:
        if self._rpm is not None:
            await self._rpm.acquire()
        if self._tpm is not None:
            await self._tpm.acquire(min(tokens, self._tpm_rate))
        await self.slots.acquire(first=retry)
        ok = False
        try:
            yield
            ok = True
        finally:
            self.slots.release(ok)
