"""Shared pieces of the in-process backends (local, vllm): request batching and per-request seeds.

The runner calls `generate` once per request, from many tasks at once. An in-process engine is
fastest when it gets those requests together, so `MicroBatcher` collects every request submitted
while the event loop is busy, hands them to the engine in one call on a worker thread, and
resolves each request's future with its own result. Requests that arrive while a batch runs form
the next batch; the event loop (cache writes, record files) keeps going meanwhile.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence

from augment.errors import BackendError
from augment.types import GenRequest, GenResult

RunBatch = Callable[[list[GenRequest]], Sequence[GenResult | BaseException]]


def shared_prefix(a: str, b: str) -> int:
    return len(os.path.commonprefix([a, b]))


def request_seed(req: GenRequest) -> int:
    """A sampling seed from the request key: the same request samples the same reply, samples differ."""
    return int(req.key[:8], 16)


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """`text` up to the first stop string, and whether one was found."""
    cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class MicroBatcher:
    """`max_batch` 1 with `prefix_order`: one request at a time, the next being the waiting request
    whose prompt shares the longest prefix with the last one (an engine that keeps the evaluated
    prefix, like llama.cpp, then skips re-reading it)."""

    def __init__(self, run: RunBatch, max_batch: int, prefix_order: bool = False):
        self.run = run
        self.max_batch = max_batch
        self.prefix_order = prefix_order and max_batch == 1
        self._last = ""
        self.batches = 0  # engine calls so far
        self._pending: list[tuple[GenRequest, asyncio.Future[GenResult]]] = []
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, req: GenRequest) -> GenResult:
        future: asyncio.Future[GenResult] = asyncio.get_running_loop().create_future()
        self._pending.append((req, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            seen = -1
            while seen != len(self._pending):  # let every request of this loop turn join the batch
                seen = len(self._pending)
                await asyncio.sleep(0)
            if self.prefix_order:
                pick = max(
                    range(len(self._pending)),
                    key=lambda i: shared_prefix(self._last, self._pending[i][0].prompt),
                )
                batch = [self._pending.pop(pick)]
                self._last = batch[0][0].prompt
            else:
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            self.batches += 1
            try:
                results = list(await asyncio.to_thread(self.run, [req for req, _ in batch]))
            except BackendError as e:
                results = [e] * len(batch)
            except Exception as e:  # an engine failure fails its batch, not the process
                results = [BackendError(f"{type(e).__name__}: {e}")] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():  # cancelled while the batch ran
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
