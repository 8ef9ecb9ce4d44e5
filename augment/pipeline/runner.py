"""Run requests against a backend with bounded concurrency and retries, yielding in request order.

This is the only module that uses asyncio. `concurrency` requests are kept in flight all the
time (a new one starts as soon as any finishes, not in waves); results are handed back in the
order of the requests, so output files are identical from run to run whatever the timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from augment.backends.base import Backend
from augment.errors import BackendError
from augment.types import GenRequest, GenResult


@dataclass(slots=True)
class Outcome:
    index: int
    request: GenRequest
    result: GenResult | None = None
    error: str | None = None
    attempts: int = 1


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, BackendError) and exc.retryable


async def _call(backend: Backend, req: GenRequest, max_retries: int, on_retry: Callable[[], None]) -> Outcome:
    attempts = 0

    def before_sleep(state: RetryCallState) -> None:
        on_retry()

    wait = backend.retry_wait
    retrying = AsyncRetrying(
        retry=retry_if_exception(_retryable),
        stop=stop_after_attempt(max_retries + 1),
        wait=wait_exponential_jitter(initial=wait, max=60, jitter=wait) if wait > 0 else (lambda _s: 0),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                attempts += 1
                result = await backend.generate(req)
        return Outcome(-1, req, result=result, attempts=attempts)
    except BackendError as e:
        return Outcome(-1, req, error=f"backend_error: {e}", attempts=attempts)


async def run_requests(
    backend: Backend,
    requests: Sequence[GenRequest],
    *,
    concurrency: int = 64,
    max_retries: int = 3,
    on_retry: Callable[[], None] = lambda: None,
) -> AsyncIterator[Outcome]:
    """Yield one Outcome per request, in request order. Failures are outcomes, not exceptions."""
    pending: dict[int, Outcome] = {}
    next_out = 0
    queue = iter(enumerate(requests))
    in_flight: set[asyncio.Task[Outcome]] = set()

    def launch() -> bool:
        try:
            i, req = next(queue)
        except StopIteration:
            return False
        task = asyncio.ensure_future(_call(backend, req, max_retries, on_retry))
        task.index = i  # type: ignore[attr-defined]
        in_flight.add(task)
        return True

    while len(in_flight) < concurrency and launch():
        pass
    try:
        while in_flight:
            done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                in_flight.discard(task)
                outcome = task.result()
                outcome.index = task.index  # type: ignore[attr-defined]
                pending[outcome.index] = outcome
                launch()
            while next_out in pending:
                yield pending.pop(next_out)
                next_out += 1
    finally:
        for task in in_flight:
            task.cancel()
