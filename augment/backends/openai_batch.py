"""The Batch API as a transport of the openai backend (`batch_api = true`).

Requests go out as batch files and their replies come back when the batch ends: within 24 hours
at OpenAI, at half the price of the same requests sent one by one. `BatchQueue.post` takes one
request's body and returns what the endpoint answered for it (status, headers, body), so the
backend treats a batched reply as it treats a live one (refused fields, context errors, structured
output, cut prompts). The requests that arrive together go out as files of up to `batch_requests`,
up to `batches_at_once` batches out at a time (the runner hands over that many batches' worth of
requests); a task per batch checks its status every `poll` seconds and hands out the replies when
it ends.

A server's queue holds so much (OpenAI: a limit on the tokens of an organization's batches not yet
ended, per model). A batch that fails for it (`token_limit_exceeded`) while others of this run are
out goes again once one of them ends, and no more than those go out at once from then on; one that
fails alone goes again in halves. Creating a batch is not idempotent: where its reply is lost (a
dropped connection, a 5xx), the server's recent batches are searched for the one reading the file
just uploaded before it is created again.

A batch takes minutes to hours, so a run stopped meanwhile must not pay for it again. Each batch
sent is written to a ledger in the run directory (`batches.jsonl`: the batch's id and its requests'
ids, each a hash of the request's cache key and body), and a re-run waits for the batch that holds
a request rather than sending it again. Requests an earlier run's batch cannot answer (it failed,
or the server no longer has it) are sent again; so are those an expired batch left unanswered.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import sys
import tempfile
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from augment.errors import BackendError, FatalBackendError

#: OpenAI takes batch files up to 200 MB
MAX_FILE_BYTES = 190 * 2**20
#: a batch's statuses after which nothing changes
ENDED = ("completed", "expired", "cancelled", "failed")

#: checks of a batch between lines saying how many requests it has answered (30 s apart: 10 minutes)
SAY_EVERY = 20
#: tries to create a batch whose reply was lost (each after searching for it)
CREATE_TRIES = 4

Reply = tuple[int, dict[str, str], bytes]


def request_id(key: str, body: dict[str, Any]) -> str:
    """A request's `custom_id`: its cache key and the body sent. A body changed by what the server
    refused (max_tokens renamed, a field left out) is another request."""
    data = key.encode() + b"\x1f" + orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(data).hexdigest()[:40]


def _transient_kind(error: BaseException) -> bool:
    """An error of the kind a server or the network causes (the SDK's, its HTTP client's, the
    socket's), which may pass; not a bug here, which waiting would not end."""
    return isinstance(error, OSError | asyncio.TimeoutError) or type(error).__module__.split(".")[0] in (
        "openai",
        "httpx",
        "httpx2",
        "httpcore",
    )


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class BatchQueue:
    def __init__(
        self,
        client: Callable[[], Any],
        path: str,
        *,
        size: int,
        poll: float,
        at_once: int = 1,
        error: Callable[[BaseException, str], BaseException],
        say: Callable[[str], None] = _say,
    ):
        self._new_client = client  # -> an openai.AsyncOpenAI, made when first needed
        self._client: Any = None
        self.url = "/v1" + path  # as batch lines name their endpoint, whatever the base URL
        self.size = size  # halved by a batch too big for the server's queue alone
        self.poll = poll
        self.at_once = at_once  # most batches out at a time; lowered by a full queue
        self.gather = min(1.0, poll)  # a second without a new request ends a batch's gathering
        self.error = error  # (SDK exception, what was being done) -> the run's exception
        self.say = say
        self.ledger: Path | None = None
        self.sent = 0  # batches this process sent
        self._earlier: dict[str, str] | None = None  # request id -> an earlier run's batch holding it
        self._members: dict[str, list[str]] = {}  # batch id -> its request ids
        self._mine: set[str] = set()  # the batches this process sent
        self._waiting: dict[str, tuple[dict[str, Any], list[asyncio.Future[Reply]]]] = {}
        # replies of an earlier run's batch that no request has asked for yet
        self._ready: dict[str, Reply | BaseException] = {}
        self._pending: deque[tuple[str, dict[str, Any]]] = deque()
        self._gathering: asyncio.Task[None] | None = None
        self._followed: dict[str, asyncio.Task[None]] = {}
        self._out: set[str] = set()  # batches followed that have not ended (this run's or earlier)
        self._room: asyncio.Event | None = None  # set when one of them ends (made in the run's loop)

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._new_client()
        return self._client

    async def post(self, key: str, body: dict[str, Any]) -> Reply:
        rid = request_id(key, body)
        if rid in self._ready:
            reply = self._ready.pop(rid)
            if isinstance(reply, BaseException):
                raise reply
            return reply
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        _, futures = self._waiting.setdefault(rid, (body, []))
        futures.append(future)
        batch = self._earlier_batches().pop(rid, None)
        if batch is not None:
            self._follow(batch)
        elif len(futures) == 1:
            self._send_later(rid, body)
        return await future

    # ---- the ledger --------------------------------------------------------------------------
    def sent_before(self) -> list[tuple[str, list[str]]]:
        """The ledger's batches, in the order they were sent: (batch id, its request ids)."""
        rows = []
        if self.ledger is not None and self.ledger.exists():
            for line in self.ledger.read_bytes().splitlines():
                try:
                    row = orjson.loads(line)
                    rows.append((str(row["batch"]), [str(i) for i in row["ids"]]))
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    continue  # a line torn by a killed run: that batch is not waited for
        return rows

    def _earlier_batches(self) -> dict[str, str]:
        if self._earlier is None:
            self._earlier = {}
            for batch, ids in self.sent_before():
                self._members[batch] = ids
                self._earlier.update(dict.fromkeys(ids, batch))
        return self._earlier

    async def survey(self, cancel: bool = False) -> list[dict[str, Any]]:
        """Each batch of the ledger as the server has it now (`augment batches`); with `cancel`,
        those not ended are cancelled first (the server stops them; a re-run takes what they
        answered and sends the rest again)."""
        rows = []
        for batch_id, ids in self.sent_before():
            doing = f"checking batch {batch_id}"
            row: dict[str, Any] = {"batch": batch_id, "requests": len(ids), "cancelled": False}
            try:
                batch = await self.client.batches.retrieve(batch_id)
                if cancel and batch.status not in (*ENDED, "cancelling"):
                    doing = f"cancelling batch {batch_id}"
                    batch = await self.client.batches.cancel(batch_id)
                    row["cancelled"] = True
            except Exception as e:  # noqa: BLE001 - the SDK's errors, as the run's
                error = self.error(e, doing)
                if isinstance(error, FatalBackendError):
                    raise error from None
                rows.append({**row, "status": "unknown", "error": str(error)})  # 404: no longer kept
                continue
            counts = batch.request_counts
            row.update(
                status=batch.status,
                answered=counts.completed if counts else None,
                failed=counts.failed if counts else None,
                created_at=batch.created_at,
            )
            rows.append(row)
        return rows

    def _remember(self, batch: str, ids: list[str]) -> None:
        if self.ledger is None:
            return
        self.ledger.parent.mkdir(parents=True, exist_ok=True)
        with open(self.ledger, "ab") as f:
            f.write(orjson.dumps({"batch": batch, "ids": ids}) + b"\n")
            f.flush()
            os.fsync(f.fileno())

    # ---- sending -----------------------------------------------------------------------------
    def _send_later(self, rid: str, body: dict[str, Any]) -> None:
        self._pending.append((rid, body))
        if self._gathering is None or self._gathering.done():
            self._gathering = asyncio.create_task(self._gather())

    async def _gather(self) -> None:
        try:
            await self._gather_and_send()
        except Exception as e:  # noqa: BLE001 - (the ledger unwritable): no request waits forever
            error = FatalBackendError(f"sending a batch: {type(e).__name__}: {e}")
            self._hand_out(list(self._waiting), error)

    async def _gather_and_send(self) -> None:
        while self._pending:
            while len(self._out) >= self.at_once:  # the server's queue holds as many as it takes
                self._room = asyncio.Event()
                await self._room.wait()
            seen = -1
            while seen != len(self._pending) and len(self._pending) < self.size:
                seen = len(self._pending)
                await asyncio.sleep(self.gather)
            ids: list[str] = []
            size = 0
            # the batch file goes to disk line by line and is uploaded from there: in memory it
            # would be held two or three times (up to 190 MB each) while the upload is encoded
            where = self.ledger.parent if self.ledger and self.ledger.parent.is_dir() else None
            with tempfile.TemporaryFile(dir=where) as file:
                while self._pending and len(ids) < self.size:
                    rid, body = self._pending[0]
                    line = orjson.dumps({"custom_id": rid, "method": "POST", "url": self.url, "body": body})
                    if ids and size + len(line) + 1 > MAX_FILE_BYTES:
                        break
                    self._pending.popleft()
                    waiting = self._waiting.get(rid)
                    if waiting is None or all(f.done() for f in waiting[1]):  # no one waits (the run ends)
                        self._waiting.pop(rid, None)
                        continue
                    ids.append(rid)
                    file.write(line + b"\n")
                    size += len(line) + 1
                if ids:
                    file.flush()
                    file.seek(0)
                    await self._send(ids, file)

    async def _send(self, ids: list[str], data: BinaryIO) -> None:
        file = None
        try:
            file = await self.client.files.create(file=("augment-batch.jsonl", data), purpose="batch")
            batch = await self._create(file.id)
        except Exception as e:  # noqa: BLE001 - the SDK's errors, as the run's
            if file is not None:  # uploaded, but no batch reads it: not kept at the server
                with contextlib.suppress(Exception):
                    await self.client.files.delete(file.id)
            error = e if isinstance(e, BackendError | FatalBackendError) else self.error(e, "sending a batch")
            if isinstance(error, BackendError) and not error.retryable:  # the same for every batch
                error = FatalBackendError(f"the server refused a batch of {len(ids)} requests: {error}")
            self._hand_out(ids, error)
            return
        self.sent += 1
        self._mine.add(batch.id)
        self._members[batch.id] = ids
        self._remember(batch.id, ids)
        self.say(
            f"batch {batch.id}: {len(ids)} requests sent to the Batch API; the run waits for it "
            "(up to 24 h at OpenAI; a re-run waits for it rather than sending it again)"
        )
        self._follow(batch.id)

    async def _create(self, file_id: str) -> Any:
        """The batch reading `file_id`, created once: a failure that may have come after the server
        made it (a lost reply: a dropped connection, a 5xx) is followed by a search of the server's
        recent batches for it, and only where none reads the file is it created again (the SDK's
        own retries would run, and bill, the requests twice)."""
        create = self.client.with_options(max_retries=0).batches.create
        tries = 0
        while True:
            try:
                return await create(
                    input_file_id=file_id,
                    endpoint=self.url,
                    completion_window="24h",
                    # how a batch is told apart in the server's list (OpenAI's dashboard): the run's folder
                    metadata={
                        "made_by": "augment",
                        **({"run": self.ledger.parent.name[:512]} if self.ledger else {}),
                    },
                )
            except Exception as e:  # noqa: BLE001 - the SDK's errors, as the run's
                error = self.error(e, "sending a batch")
                tries += 1
                if not getattr(error, "retryable", False) or tries >= CREATE_TRIES:
                    raise error from None
            try:
                made = await self._patiently(
                    lambda: self._made_from(file_id), "looking for the batch just sent"
                )
            except BackendError:  # a server that does not list its batches: as the SDK would, again
                made = None
            if made is not None:
                return made
            await asyncio.sleep(min(self.poll, 2.0**tries))

    async def _made_from(self, file_id: str) -> Any:
        page = await self.client.batches.list(limit=100)  # the newest first
        return next((b for b in page.data if b.input_file_id == file_id), None)

    # ---- waiting -----------------------------------------------------------------------------
    def _follow(self, batch: str) -> None:
        if batch not in self._followed:
            self._out.add(batch)
            self._followed[batch] = asyncio.create_task(self._wait_for(batch))

    async def _patiently(self, call: Callable[[], Awaitable[Any]], doing: str) -> Any:
        """An SDK call that waits out what is transient (a server down for a while, 5xx, 429)
        however long it lasts: the batch goes on at the server meanwhile, and sending its requests
        again would pay for them twice. What is not transient is raised as the run's error."""
        said = False
        while True:
            try:
                return await call()
            except Exception as e:  # noqa: BLE001 - the SDK's errors, as the run's
                if not _transient_kind(e):
                    raise  # a bug, not the server: waiting would not end it
                error = self.error(e, doing)
                if not getattr(error, "retryable", False):
                    raise error from None
                if not said:
                    what = str(error) if str(error).startswith(doing) else f"{doing}: {error}"
                    self.say(f"{what}; trying again every {self.poll:g} s")
                    said = True
                await asyncio.sleep(self.poll)

    async def _wait_for(self, batch_id: str) -> None:
        try:
            await self._wait_for_one(batch_id)
        finally:
            self._out.discard(batch_id)
            if self._room is not None:
                self._room.set()

    async def _wait_for_one(self, batch_id: str) -> None:
        ids = self._members[batch_id]
        mine = batch_id in self._mine
        handed: set[str] = set()  # requests whose replies were handed out
        if not mine:
            self.say(f"batch {batch_id}: sent by an earlier run; waiting for it")
        doing = f"checking batch {batch_id}"
        status, said, checks = "", (), 0
        try:
            while True:
                batch = await self._patiently(lambda: self.client.batches.retrieve(batch_id), doing)
                status, counts = batch.status, batch.request_counts
                answered = (counts.completed, counts.total) if counts and counts.total else ()
                # a line when the status changes, and every `SAY_EVERY` checks while replies come in
                if status != "completed" and (
                    status != (said[0] if said else "") or (answered != said[1:] and checks >= SAY_EVERY)
                ):
                    done = f", {answered[0]:,} of {answered[1]:,} answered" if answered else ""
                    self.say(f"batch {batch_id}: {status}{done}")
                    said, checks = (status, *answered), 0
                if status in ENDED:
                    break
                checks += 1
                await asyncio.sleep(self.poll)
            with contextlib.suppress(Exception):  # its input is never read again: not kept at the server
                await self.client.files.delete(batch.input_file_id)
            if status == "failed":
                errors = (batch.errors.data if batch.errors else None) or []
                first = errors[0] if errors else None
                why = f"{first.code}: {first.message}" if first else "no reason given"
                if not mine:  # an earlier run's batch that never ran: send its requests now
                    self._send_again(ids)
                    return
                if first is not None and "limit" in str(first.code):  # the server's queue is full
                    self._queue_full(batch_id, ids, why)
                    return
                raise FatalBackendError(f"batch {batch_id} failed: {why}")
            members = set(ids)
            for file_id in (batch.output_file_id, batch.error_file_id):
                if file_id:
                    await self._patiently(lambda file_id=file_id: self._take(file_id, members, handed), doing)
        except (BackendError, FatalBackendError) as error:
            if not mine and isinstance(error, BackendError):
                self._send_again([i for i in ids if i not in handed])  # the server no longer has it (404)
            else:
                self._hand_out([i for i in ids if i not in handed], error)
            return
        except Exception as e:  # noqa: BLE001 - a reply unlike the API's: no request waits forever
            error = FatalBackendError(f"batch {batch_id}: {type(e).__name__}: {e}")
            self._hand_out([i for i in ids if i not in handed], error)
            return
        if status == "completed":
            self.say(f"batch {batch_id}: completed, {len(handed)} of {len(ids)} answered")
        if status == "cancelled" and mine:
            missing: BaseException = FatalBackendError(f"batch {batch_id} was cancelled before it ended")
        else:
            missing = BackendError(
                f"batch_{status}: batch {batch_id} ended ({status}) without answering this request",
                retryable=True,
                retry_after=0.0,  # at once: together they make the next batch
            )
        self._hand_out([i for i in ids if i not in handed], missing)

    def _queue_full(self, batch_id: str, ids: list[str], why: str) -> None:
        """A batch of this run failed for the server's queue (OpenAI: "Enqueued token limit reached
        ... try again once some in_progress batches have been completed"): with others out, its
        requests go again once one of those ends and no more go out at once from then on; alone,
        they go again in batches half its size."""
        others = len(self._out - {batch_id})
        if others:
            self.at_once = min(self.at_once, others)
            then = (
                f"once one of the {others} batches out ends (at most {self.at_once} out at once from now on)"
            )
        elif len(ids) > 1:
            self.size = min(self.size, len(ids) // 2)
            then = f"in batches of at most {self.size:,}"
        else:
            raise FatalBackendError(
                f"batch {batch_id} failed: {why} (the server's queue takes not even one request: "
                "other batches of the organization fill it)"
            )
        self.say(f"batch {batch_id} failed: {why}; its {len(ids):,} requests go again {then}")
        self._resend(ids)

    async def _take(self, file_id: str, members: set[str], handed: set[str]) -> None:
        """A batch's output or error file, read as it downloads: each line's reply is handed out
        as it is read (the requests it answers go on meanwhile), so neither the file nor its
        replies are held whole. Lines handed out by an earlier try (a download cut) are skipped."""
        async with self.client.files.with_streaming_response.content(file_id) as response:
            rest = b""
            async for chunk in response.iter_bytes():
                *lines, rest = (rest + chunk).split(b"\n")
                for line in lines:
                    self._take_line(line, members, handed)
                await asyncio.sleep(0)
            self._take_line(rest, members, handed)

    def _take_line(self, line: bytes, members: set[str], handed: set[str]) -> None:
        """One line of a batch's output or error file: its reply as the endpoint gave it, or the
        error the batch gave in its place, to the request it answers."""
        try:
            row = orjson.loads(line)
            rid = str(row["custom_id"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        if rid not in members or rid in handed:
            return
        handed.add(rid)
        response = row.get("response") or {}
        reply: Reply | BaseException
        if isinstance(response, dict) and response.get("status_code") and "body" in response:
            # a copy of its own size: orjson's bytes keep the (far larger) buffer they grew in
            reply = (int(response["status_code"]), {}, bytes(memoryview(orjson.dumps(response["body"]))))
        else:
            error = row.get("error")
            if not isinstance(error, dict):
                error = {"message": str(error or "")}
            code, message = error.get("code") or "batch_error", error.get("message") or ""
            reply = BackendError(f"{code}: {message}".strip(), retryable=True, retry_after=0.0)
        self._give(rid, reply)

    def _hand_out(self, ids: list[str], reply: BaseException) -> None:
        for rid in ids:
            self._give(rid, reply)

    def _give(self, rid: str, reply: Reply | BaseException) -> None:
        """A request's reply to whoever waits for it; an earlier run's reply no one waits for yet
        is kept for when it is asked for."""
        waiting = self._waiting.pop(rid, None)
        if waiting is None:
            earlier = self._earlier_batches()
            if rid in earlier:  # not asked for yet: from now on it is here
                del earlier[rid]
                self._ready[rid] = reply
            return
        for future in waiting[1]:
            if future.done():
                continue
            if isinstance(reply, BaseException):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    def _send_again(self, ids: list[str]) -> None:
        earlier = self._earlier_batches()
        for rid in ids:
            earlier.pop(rid, None)
        self._resend(ids)

    def _resend(self, ids: list[str]) -> None:
        for rid in ids:
            if rid in self._waiting:
                self._send_later(rid, self._waiting[rid][0])

    async def aclose(self) -> None:
        """Stop waiting (batches sent go on at the server; a re-run waits for them)."""
        tasks = [t for t in (self._gathering, *self._followed.values()) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._gathering, self._followed = None, {}
        self._out.clear()
        self._room = None
        self._pending.clear()
        self._waiting.clear()
        if self._client is not None:
            await self._client.close()
            self._client = None
