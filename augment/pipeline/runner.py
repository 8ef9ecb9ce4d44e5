"""Run requests against a backend: cache first, then bounded, rate-limited, retried model calls.

This is the only module that uses asyncio. Up to `slots` calls are in flight at all times (a new
one starts as soon as one finishes, not in waves); outcomes come back in request order, so the
files written from them are identical from run to run whatever the timing. A reply is stored in
the cache before it is parsed; a reply that no parser accepts is asked again (another sample) up
to `max_parse_retries` times and then recorded as a failure with its reason.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from augment.backends.base import Backend
from augment.config import RunConfig
from augment.errors import BackendError, FatalBackendError, ParseError
from augment.io import sha256_hex
from augment.pipeline.cache import ResponseCache
from augment.pipeline.limits import Limits
from augment.strategies.parsers import Parsed
from augment.tokens import approx_count
from augment.types import GenRequest, GenResult

#: this many requests failing in a row (after their retries) means the server is down or misconfigured
BREAKER = 20


@dataclass(slots=True)
class Outcome:
    index: int
    request: GenRequest
    result: GenResult | None = None
    parsed: Parsed | None = None
    error: str | None = None
    cached: bool = False
    skipped: bool = False  # not sent: the budget was spent
    of_request: bool = False  # failed for what the request is, not for the server's state


@dataclass
class RunState:
    """Live counters, for progress display and the summary."""

    total: int = 0
    done: int = 0  # outcomes handed on, in request order
    answered: int = 0  # outcomes finished, in any order (an engine may run them out of order)
    failed: int = 0
    calls: int = 0  # new model requests (not from the cache)
    cached: int = 0
    retries: int = 0
    timeouts: int = 0  # calls with no reply within request_timeout (each retried or failed)
    reasks: int = 0
    prompt_tokens: int = 0  # of new requests
    completion_tokens: int = 0
    budget_stopped: str | None = None
    round: int = 0  # multi-step strategies: the wave of requests being sent (1 = the first)
    limits: Limits | None = field(default=None, repr=False)

    @property
    def in_flight(self) -> int:
        return self.limits.slots.in_flight if self.limits else 0


class Budget:
    """Hard limits on new requests and tokens per run; once hit, no new request is sent."""

    def __init__(
        self,
        max_requests: int | None,
        max_tokens_total: int | None,
        state: RunState,
        count_tokens: bool = False,
    ):
        self.max_requests = max_requests
        self.max_tokens = max_tokens_total
        self.count_tokens = count_tokens  # a tokens-per-minute limit needs the estimate too
        self.state = state
        self._reserved = 0

    def estimate(self, req: GenRequest) -> int:
        """Tokens a request may cost (prompt + max_tokens), when a token budget or limit needs it."""
        if self.max_tokens is None and not self.count_tokens:
            return 0
        return approx_count(req.prompt) + req.max_tokens

    def admit(self, estimate: int) -> bool:
        s = self.state
        if s.budget_stopped:
            return False
        if self.max_requests is not None and s.calls >= self.max_requests:
            s.budget_stopped = f"--max-requests {self.max_requests}"
            return False
        used = s.prompt_tokens + s.completion_tokens
        if self.max_tokens is not None and used + self._reserved + estimate > self.max_tokens:
            s.budget_stopped = f"--max-tokens-total {self.max_tokens}"
            return False
        s.calls += 1
        self._reserved += estimate
        return True

    def settle(self, estimate: int, result: GenResult | None) -> None:
        self._reserved -= estimate
        if result is not None:
            self.state.prompt_tokens += result.usage.prompt_tokens
            self.state.completion_tokens += result.usage.completion_tokens


def retry_delay(base: float, attempt: int, exc: BaseException | None) -> float:
    """Seconds before retry number `attempt` (1 = after the first failure): the server's Retry-After
    plus up to 10 % jitter when it gave one, else exponential backoff with full jitter (base,
    2 x base, 4 x base ... capped at 60 s)."""
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        return retry_after * random.uniform(1.0, 1.1)
    return random.uniform(0, min(60.0, base * 2 ** (attempt - 1))) if base > 0 else 0.0


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, BackendError) and exc.retryable


class Runner:
    def __init__(
        self,
        backend: Backend,
        *,
        cache: ResponseCache,
        parse: Callable[[GenRequest, GenResult], Parsed],
        limits: Limits,
        budget: Budget,
        state: RunState,
        max_retries: int = 5,
        max_parse_retries: int = 2,
    ):
        self.backend = backend
        self.cache = cache
        self.parse = parse
        self.limits = limits
        self.budget = budget
        self.state = state
        self.max_retries = max_retries
        self.max_parse_retries = max_parse_retries
        state.limits = limits
        if hasattr(backend, "keep_in"):  # a backend with state that outlives a run (batch_api's ledger)
            backend.keep_in(cache.path.parent)

    async def _attempt(self, req: GenRequest, estimate: int, retry: bool = False) -> GenResult:
        async with self.limits.call(estimate, retry):
            sent = time.monotonic()
            try:
                return await self.backend.generate(req)
            except BackendError as e:
                if e.rate_limited:
                    self.limits.slots.rate_limited()
                if e.timed_out:
                    self.state.timeouts += 1
                    self.limits.slots.timed_out(sent)
                raise

    async def _call(self, req: GenRequest, estimate: int) -> GenResult:
        try:  # the first attempt goes straight out; tenacity takes over only for retries
            return await self._attempt(req, estimate)
        except BackendError as e:
            if not e.retryable or self.max_retries == 0:
                raise
            first = e
        self.state.retries += 1
        await asyncio.sleep(retry_delay(self.backend.retry_wait, 1, first))

        def count_retry(_: RetryCallState) -> None:
            self.state.retries += 1

        retrying = AsyncRetrying(
            retry=retry_if_exception(_retryable),
            stop=stop_after_attempt(self.max_retries),
            # tenacity numbers its attempts from here; the first went out before it
            wait=lambda state: retry_delay(
                self.backend.retry_wait,
                state.attempt_number + 1,
                state.outcome.exception() if state.outcome else None,
            ),
            before_sleep=count_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._attempt(req, estimate, retry=True)
        raise AssertionError("unreachable")

    async def process(self, index: int, req: GenRequest) -> Outcome:
        last_error = "parse_error"
        result: GenResult | None = None
        for reask in range(self.max_parse_retries + 1):
            ask = (
                req
                if reask == 0
                else dataclasses.replace(req, key=f"{req.key}:reask{reask}", seed=req.seed + reask)
            )
            result = self.cache.get(ask.key)
            cached = result is not None
            if result is None:
                estimate = self.budget.estimate(ask)
                if not self.budget.admit(estimate):
                    return Outcome(index, req, skipped=True)
                try:
                    result = await self._call(ask, estimate)
                except BackendError as e:
                    self.budget.settle(estimate, None)
                    return Outcome(index, req, error=f"backend_error: {e}", of_request=e.of_request)
                self.budget.settle(estimate, result)
                self.cache.put(ask.key, result)
            if reask:
                self.state.reasks += 1
            try:
                return Outcome(index, req, result=result, parsed=self.parse(req, result), cached=cached)
            except ParseError as e:
                last_error = f"parse_error: {e}"
                if not e.reask:
                    break
        return Outcome(index, req, result=result, error=last_error)

    async def run(self, requests: Iterable[GenRequest]) -> AsyncIterator[Outcome]:
        """Yield one Outcome per request, in request order. Failures are outcomes, not exceptions.
        `requests` is read as far as the window ahead of the oldest unfinished one: a generator's
        are built as they go out."""
        # how far past the oldest unfinished request to start work: enough to keep every slot busy
        # while one slow request holds up the in-order output, bounded so memory stays flat
        # (a batch_api backend's tens of thousands of slots: those and a few more)
        window = max(4096, 64 * min(self.limits.slots.max, 1024), self.limits.slots.max + 1024)
        finished: asyncio.Queue[asyncio.Task[Outcome]] = asyncio.Queue()
        pending: dict[int, Outcome] = {}
        tasks: set[asyncio.Task[Outcome]] = set()
        next_in = next_out = 0
        failed_in_a_row = 0
        source = iter(requests)

        def launch() -> None:
            nonlocal next_in, source
            while source is not None and next_in - next_out < window:
                req = next(source, None)
                if req is None:
                    source = None
                    break
                task = asyncio.ensure_future(self.process(next_in, req))
                task.add_done_callback(finished.put_nowait)
                tasks.add(task)
                next_in += 1

        launch()
        try:
            while tasks:
                task = await finished.get()
                tasks.discard(task)
                self.state.answered += 1
                outcome = task.result()  # a FatalBackendError propagates from here
                pending[outcome.index] = outcome
                if outcome.error and outcome.error.startswith("backend_error") and not outcome.of_request:
                    failed_in_a_row += 1
                    if failed_in_a_row >= BREAKER:
                        raise FatalBackendError(
                            f"{failed_in_a_row} requests in a row failed, the last with: {outcome.error}. "
                            "Check the server and re-run: replies received so far are cached."
                        )
                elif outcome.result is not None:
                    failed_in_a_row = 0
                while next_out in pending:
                    yield pending.pop(next_out)
                    next_out += 1
                launch()
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)


def judge_request(
    backend: Backend,
    prompt: str,
    *,
    kind: str,
    version: str,
    max_tokens: int,
    seed: int,
    fields: tuple[str, ...],
    source: str,
    target: str,
) -> GenRequest:
    """A greedy request to a model that judges (`kind`: the curation judge, eval's grader), keyed
    by the backend, the prompt, the settings and the prompt file's version."""
    parts = (backend.identity, backend.model, prompt, 0.0, max_tokens, seed, kind, version)
    return GenRequest(
        key=sha256_hex("\x1f".join(map(str, parts))),
        prompt=prompt,
        temperature=0.0,
        max_tokens=max_tokens,
        seed=seed,
        strategy=kind,
        parser=kind,
        fields=fields,
        source=source,
        target=target,
    )


def run_calls(
    backend: Backend,
    requests: Iterable[GenRequest],
    parse: Callable[[GenRequest, GenResult], Parsed],
    cache_path: Path,
    config: RunConfig,
    on_start: Callable[[RunState], None] = lambda state: None,
    on_outcome: Callable[[Outcome], None] = lambda outcome: None,
    *,
    total: int | None = None,
    keep: Callable[[Outcome], Any] = lambda outcome: outcome,
) -> list[Any]:
    """What `keep` makes of every request's outcome (the outcome itself, unless given), in order:
    the run's retry, re-ask, rate and cache machinery for model calls outside a generation run (the
    judges). `requests` may be a generator, built as the requests go out (give its `total`); with a
    `keep` that drops the request and reply, memory stays flat. Closes the cache and the backend."""
    if total is None:  # a generator's count is its caller's to give
        assert isinstance(requests, Sized), "run_calls: give the total of a generator's requests"
        total = len(requests)
    count = total

    async def run() -> list[Any]:
        state = RunState(total=count)
        runner = Runner(
            backend,
            cache=ResponseCache(cache_path),
            parse=parse,
            limits=Limits.of(backend, config),
            budget=Budget(None, None, state, count_tokens=config.tpm is not None),
            state=state,
            max_retries=config.max_retries,
            max_parse_retries=config.max_parse_retries,
        )
        out: list[Any] = []
        on_start(state)
        try:
            async for o in runner.run(requests):
                state.done += 1
                state.cached += o.cached
                state.failed += o.parsed is None
                out.append(keep(o))
                on_outcome(o)
        finally:
            runner.cache.close()
            await backend.aclose()
        return out

    return asyncio.run(run())  # also with no requests: the backend is closed either way
