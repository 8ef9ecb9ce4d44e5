"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests and benchmarks.

It serves /v1/chat/completions, /v1/completions and /v1/models with aiohttp, writes replies the
way augment's mock backend does (from the document block at the start of the prompt), and can
inject faults: 429 with Retry-After, 500, dropped connections, bodies that are not JSON, and
replies that no parser accepts. Whether a request is hit depends on (prompt, how many times this
prompt was seen), so a retried request usually gets through. It counts requests per prompt, so
tests can check that nothing was paid for twice.

    python tests/fake_openai.py --latency 0.2 [--port 8000] [--fast]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from augment.backends.mock import MockBackend
from augment.types import GenRequest

_DOC = re.compile(
    r"\ADocument: (?P<title>[^\n]*)\n\n(?P<chunk>.*?)\n\n---\n\n(?P<instruction>.*)\Z", re.DOTALL
)


_GRADE = re.compile(r"^Gold answers: (?P<answers>[^\n]*)\nStudent's answer: (?P<prediction>[^\n]*)$", re.M)


def _unit(*parts: object) -> float:
    return int(hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:12], 16) / 16**12


def completion_reply_for(prompt: str) -> str:
    """A base model's continuation of a few-shot prompt: the part after the last `###` is the query."""
    query = prompt.rsplit("\n###\n\n", 1)[1]
    m = _DOC.match(query)
    if not m:
        return " I have no document to work with."
    instruction, _, primer = m.group("instruction").rpartition("\n")
    if primer == "Q:":
        parser, fields = "json_list", ("question", "answer")
    elif primer == "1.":
        parser, fields = "numbered_list", ("item",)
    else:
        parser, fields = "text", ("text",)
    words = {"simple words": "simple", "academic": "academic", "dialogue": "qa_dialogue", "notes": "notes"}
    variant = next((v for w, v in words.items() if w in instruction.lower()), "")
    return _mock_reply(prompt, m.group("chunk"), parser, fields, variant, chat=False, primer=primer)


def _mock_reply(prompt: str, chunk: str, parser: str, fields: tuple[str, ...], variant: str, **style) -> str:
    key = hashlib.sha256(prompt.encode()).hexdigest()
    req = GenRequest(
        key, prompt, 0.0, 0, 0, parser=parser, fields=fields, source=chunk, variant=variant, **style
    )
    return MockBackend().reply(req)


def reply_for(prompt: str) -> str:
    """What the mock backend would answer, recovered from the prompt text alone."""
    if "\n###\n\n" in prompt:
        return completion_reply_for(prompt)
    grade = _GRADE.search(prompt)
    if grade:  # augment eval's grader prompt
        rng = random.Random(prompt)
        return MockBackend._grade(grade.group("answers").split(" | "), grade.group("prediction"), rng)
    m = _DOC.match(prompt)
    if not m:
        return "I have no document to work with."
    instruction = m.group("instruction")
    example = re.search(r"<example>\n(.*)\n</example>", instruction, re.DOTALL)
    if '"faithfulness"' in instruction and example:  # augment's judge prompt
        return MockBackend._judge(m.group("chunk"), example.group(1))
    if "JSON list" in instruction:
        parser, fields = "json_list", tuple(re.findall(r'"(\w+)": "\.\.\."', instruction)) or ("text",)
    elif "numbered list" in instruction:
        parser, fields = "numbered_list", ("item",)
    else:
        parser, fields = "text", ("text",)
    variant = next((v for v in ("simple", "academic", "Student:") if v in instruction), "")
    return _mock_reply(
        prompt, m.group("chunk"), parser, fields, "qa_dialogue" if variant == "Student:" else variant
    )


def fast_reply(prompt: str) -> str:
    """A fixed short reply of the right shape: no reply-building cost on the server's CPU."""
    if "JSON list" in prompt:
        return (
            '[{"question": "When was the tower built?", "answer": "1862", "evidence": "completed in 1862"}]'
        )
    if "numbered list" in prompt:
        return "1. The tower is older than the fog signal.\n2. Keepers lived on site until 1989."
    return "The lighthouse at Cape Merrow was completed in 1862 and is 31 metres tall."


@dataclass
class Faults:
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_drop: float = 0.0
    rate_bad_json: float = 0.0
    rate_bad_content: float = 0.0
    retry_after: float = 0.2


@dataclass
class FakeOpenAI:
    latency: float = 0.0
    serial: bool = False  # answer one request at a time, as llama-cpp-python's server does
    _one_at_a_time: asyncio.Lock | None = field(default=None, init=False, repr=False)
    api_key: str | None = None
    models: tuple[str, ...] = ("fake-model",)
    lists_models: bool = True  # GET /v1/models lists them (else 404, as some gateways answer)
    faults: Faults = field(default_factory=Faults)
    fast: bool = False  # a fixed short reply (for throughput benchmarks: no reply-building cost)
    reply_pad: int = 0  # fast: characters added to each prose reply (a model's reply is 1-3 KB)
    # the response_format types accepted; another is answered with format_status, as servers do:
    # 400 (most), or 500 with the validation error's traceback (llama-cpp-python's, json_object only)
    formats: tuple[str, ...] = ("json_schema", "json_object")
    format_status: int = 400
    echo: bool = True  # accept echo with logprobs on /v1/completions (else 400, as OpenAI's newer models)
    # fields answered with OpenAI's 400 (its o-series and GPT-5 models): name -> code;
    # "unsupported_value" refuses any value but 1 (temperature), "unsupported_parameter" any value
    refuses: dict[str, str] = field(default_factory=dict)
    # a reasoning model: "inline" (<think>...</think> before the answer: a server without a reasoning
    # parser), "field" (message.reasoning_content: vLLM's parsers, DeepSeek), "hidden" (only counted
    # in usage, as OpenAI); `thought_words` of reasoning, so a limit at or below it ends in thought
    reasoning: str = ""
    thought_words: int = 40
    # a base model on /v1/completions sent no stop runs on into another few-shot example
    runs_on: bool = False
    # the model's context, in tokens as usage counts them (words); 0: none. A prompt and max_tokens
    # beyond it are answered as `context_style` servers do: "vllm", "openai" (code
    # context_length_exceeded), "tgi" (422), "llama-server" (only a prompt beyond it; a reply is cut),
    # "ollama" (no error: a longer prompt is cut to its last context // 2 + 2 words, usage counts those;
    # a reply runs on, the context shifting under it)
    context: int = 0
    context_style: str = "vllm"
    seen: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    requests: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    keep_bodies: bool = False
    events: list[tuple[str, float, int]] = field(default_factory=list)  # (prompt hash, time, status)
    in_flight: int = 0  # requests being answered now, and the most at once
    most_in_flight: int = 0
    # a real model behind /v1/completions: the request body -> the choice it answers with
    complete: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    # the Batch API (/v1/files, /v1/batches), as OpenAI's: a batch runs each line against this
    # server's own endpoint. `batch_hold`: batches stay in progress until `release_batches()`;
    # `batch_answers`: a batch answers that many lines, then expires; `batch_fails`: a new batch
    # fails with that error code; `has_batches` False: 404 for /v1/files (vLLM, Ollama)
    has_batches: bool = True
    batch_hold: bool = False
    batch_answers: int | None = None
    batch_fails: str = ""
    batch_refuses: str = ""  # POST /v1/batches answers 400 with this message
    batch_line_time: float = 0.0  # seconds a batch takes per line
    batch_outage: int = 0  # GET /v1/batches/ID answers this many 503s first (a server down a while)
    # most requests in batches not ended (OpenAI's enqueued-token limit): a batch that would pass
    # it fails with token_limit_exceeded
    batch_queue: int | None = None
    batch_upload_fails: int = 0  # POST /v1/files reads the upload, then answers 500, this many times
    batch_content_cut: int = 0  # GET /v1/files/ID/content sends half the file, then drops, this many times
    lists_batches: bool = True  # GET /v1/batches (the list) is served
    batch_create_lost: int = 0  # POST /v1/batches makes the batch, then answers 504, this many times
    most_batches_out: int = 0  # the most batches running at once
    files: dict[str, bytes] = field(default_factory=dict)
    files_made: int = 0
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    _queued: dict[str, int] = field(default_factory=dict, init=False, repr=False)  # running: its lines
    _released: asyncio.Event | None = field(default=None, init=False, repr=False)

    # ---- HTTP ----------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=256 * 2**20)  # batch files, as OpenAI takes (200 MB)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/completions", self.completions)
        app.router.add_get("/v1/models", self.list_models)
        if self.has_batches:
            app.router.add_post("/v1/files", self.upload)
            app.router.add_get("/v1/files/{id}/content", self.file_content)
            app.router.add_delete("/v1/files/{id}", self.delete_file)
            app.router.add_post("/v1/batches", self.create_batch)
            if self.lists_batches:
                app.router.add_get("/v1/batches", self.list_batches)
            app.router.add_get("/v1/batches/{id}", self.get_batch)
            app.router.add_post("/v1/batches/{id}/cancel", self.cancel_batch)
        return app

    # ---- the Batch API ---------------------------------------------------------------------
    def _file(self, data: bytes, filename: str, purpose: str) -> dict[str, Any]:
        self.files_made += 1
        file_id = f"file-{self.files_made}"
        self.files[file_id] = data
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }

    async def upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form["file"]
        if self.batch_upload_fails > 0:
            self.batch_upload_fails -= 1
            return self._error(500, "The server had an error while processing your request.")
        return web.json_response(self._file(upload.file.read(), upload.filename, str(form["purpose"])))

    async def file_content(self, request: web.Request) -> web.Response:
        data = self.files.get(request.match_info["id"])
        if data is None:
            return self._error(404, "No such File object")
        if self.batch_content_cut > 0:  # the connection drops halfway through the download
            self.batch_content_cut -= 1
            response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
            response.content_length = len(data)
            await response.prepare(request)
            await response.write(data[: len(data) // 2])
            request.transport.close()
            return response
        return web.Response(body=data, content_type="application/octet-stream")

    async def delete_file(self, request: web.Request) -> web.Response:
        file_id = request.match_info["id"]
        if self.files.pop(file_id, None) is None:
            return self._error(404, "No such File object")
        return web.json_response({"id": file_id, "object": "file", "deleted": True})

    async def create_batch(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body["input_file_id"] not in self.files:
            return self._error(400, "No such file")
        if self.batch_refuses:
            return self._error(400, self.batch_refuses)
        batch = {
            "id": f"batch_{len(self.batches) + 1}",
            "object": "batch",
            "endpoint": body["endpoint"],
            "input_file_id": body["input_file_id"],
            "completion_window": body["completion_window"],
            "status": "validating",
            "created_at": int(time.time()),
            "output_file_id": None,
            "error_file_id": None,
            "errors": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": body.get("metadata"),
        }
        self.batches[batch["id"]] = batch
        auth = request.headers.get("Authorization", "")
        asyncio.get_running_loop().create_task(self._run_batch(batch, auth, str(request.url.origin())))
        if self.batch_create_lost > 0:  # made, but its reply does not reach the client
            self.batch_create_lost -= 1
            return self._error(504, "Gateway timeout")
        return web.json_response(batch)

    async def list_batches(self, request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", 20))
        newest = list(reversed(self.batches.values()))
        after = request.query.get("after")
        if after in self.batches:
            newest = newest[[b["id"] for b in newest].index(after) + 1 :]
        data = newest[:limit]
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
                "has_more": len(newest) > limit,
            }
        )

    async def get_batch(self, request: web.Request) -> web.Response:
        if self.batch_outage > 0:
            self.batch_outage -= 1
            return self._error(503, "The server is overloaded.")
        batch = self.batches.get(request.match_info["id"])
        if batch is None:
            return self._error(404, "No such Batch object")
        return web.json_response(batch)

    async def cancel_batch(self, request: web.Request) -> web.Response:
        batch = self.batches.get(request.match_info["id"])
        if batch is None:
            return self._error(404, "No such Batch object")
        if batch["status"] in ("validating", "in_progress", "finalizing"):
            batch["status"] = "cancelling"  # the batch stops before its next line
        return web.json_response(batch)

    def release_batches(self) -> None:
        self.batch_hold = False
        if self._released is not None:
            self._loop.call_soon_threadsafe(self._released.set)

    async def _run_batch(self, batch: dict[str, Any], auth: str, origin: str) -> None:
        await asyncio.sleep(0.05)
        if self.batch_fails:
            message = f"The batch could not run ({self.batch_fails})."
            batch.update(status="failed", errors={"data": [{"code": self.batch_fails, "message": message}]})
            return
        lines = [orjson.loads(line) for line in self.files[batch["input_file_id"]].splitlines()]
        if self.batch_queue is not None and sum(self._queued.values()) + len(lines) > self.batch_queue:
            message = (
                f"Enqueued token limit reached for fake-model. Limit: {self.batch_queue} enqueued requests. "
                "Please try again once some in_progress batches have been completed."
            )
            errors = {"data": [{"code": "token_limit_exceeded", "message": message}]}
            batch.update(status="failed", errors=errors)
            return
        self._queued[batch["id"]] = len(lines)
        self.most_batches_out = max(self.most_batches_out, len(self._queued))
        try:
            await self._answer_batch(batch, lines, auth, origin)
        finally:
            self._queued.pop(batch["id"], None)

    async def _answer_batch(
        self, batch: dict[str, Any], lines: list[dict[str, Any]], auth: str, origin: str
    ) -> None:
        import aiohttp

        batch.update(status="in_progress", request_counts={"total": len(lines), "completed": 0, "failed": 0})
        if self.batch_hold:
            self._released = self._released or asyncio.Event()
            await self._released.wait()
        out, errors = [], []
        headers = {"Authorization": auth} if auth else {}
        async with aiohttp.ClientSession(headers=headers) as session:
            for i, line in enumerate(lines):
                if batch["status"] == "cancelling":
                    break
                row: dict[str, Any] = {"id": f"batch_req_{i}", "custom_id": line["custom_id"]}
                if self.batch_answers is not None and i >= self.batch_answers:
                    message = "This request could not be executed before the completion window expired."
                    errors.append(
                        {**row, "response": None, "error": {"code": "batch_expired", "message": message}}
                    )
                    continue
                url = origin + line["url"]
                async with session.post(url, json=line["body"]) as resp:
                    reply = {"status_code": resp.status, "request_id": f"req_{i}", "body": await resp.json()}
                (out if resp.status == 200 else errors).append({**row, "response": reply, "error": None})
                batch["request_counts"] = {"total": len(lines), "completed": len(out), "failed": len(errors)}
                await asyncio.sleep(self.batch_line_time)
        counts = {"total": len(lines), "completed": len(out), "failed": len(errors)}
        cancelled = batch["status"] == "cancelling"
        batch.update(status="cancelling" if cancelled else "finalizing", request_counts=counts)
        await asyncio.sleep(0.05)
        for rows, name in ((out, "output_file_id"), (errors, "error_file_id")):
            if rows:
                data = b"".join(orjson.dumps(r) + b"\n" for r in rows)
                batch[name] = self._file(data, f"{batch['id']}_{name}.jsonl", "batch_output")["id"]
        ended = "cancelled" if cancelled else "expired" if self.batch_answers is not None else "completed"
        batch["status"] = ended

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
        self.statuses[status] += 1
        body = {"error": {"message": message, "type": "invalid_request_error", "code": status}}
        return web.json_response(body, status=status, headers=headers)

    async def _common(
        self, request: web.Request
    ) -> tuple[dict[str, Any] | None, web.StreamResponse | None, str]:
        self.requests += 1
        auth = request.headers.get("Authorization", "")
        if self.api_key is not None and auth != f"Bearer {self.api_key}":
            # like OpenAI, echo (part of) the key back: augment must not print it
            return None, self._error(401, f"Incorrect API key provided: {auth.removeprefix('Bearer ')}."), ""
        body = await request.json()
        if self.keep_bodies:
            self.bodies.append(body)
        if body.get("model") not in self.models:
            return None, self._error(404, f"The model `{body.get('model')}` does not exist."), ""
        for name, code in self.refuses.items():
            if name not in body or (code == "unsupported_value" and body[name] == 1):
                continue
            if code == "unsupported_value":
                message = (
                    f"Unsupported value: '{name}' does not support {body[name]} with this model. "
                    "Only the default (1) value is supported."
                )
            else:
                message = f"Unsupported parameter: '{name}' is not supported with this model."
                if name == "max_tokens":
                    message += " Use 'max_completion_tokens' instead."
            self.statuses[400] += 1
            error = {"message": message, "type": "invalid_request_error", "param": name, "code": code}
            return None, web.json_response({"error": error}, status=400), ""
        wanted = (body.get("response_format") or {}).get("type", "text")
        if wanted != "text" and wanted not in self.formats:
            if self.format_status == 500:
                message = (
                    "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', "
                    f"'response_format', 'type'), 'msg': \"Input should be 'text' or "
                    f"'json_object'\", 'input': '{wanted}'}}\n\n  File \"app.py\", line 376"
                )
            else:
                message = "response_format is not supported by this server"
            return None, self._error(self.format_status, message), ""
        if self.context and (overflow := self._overflow(body)) is not None:
            return None, overflow, ""
        if body.get("echo") and not self.echo:
            return (
                None,
                self._error(400, "Setting 'echo' and 'logprobs' at the same time is not supported."),
                "",
            )
        prompt = body["messages"][-1]["content"] if "messages" in body else body["prompt"]
        key = hashlib.sha256(prompt.encode()).hexdigest()
        self.seen[key] += 1
        n = self.seen[key]
        if self.latency and self.serial:
            if self._one_at_a_time is None:
                self._one_at_a_time = asyncio.Lock()
            async with self._one_at_a_time:  # a request its client gave up on still takes its turn
                await asyncio.sleep(self.latency)
        elif self.latency:
            await asyncio.sleep(self.latency)
        f = self.faults
        if _unit(key, n, "429") < f.rate_429:
            self.events.append((key, time.monotonic(), 429))
            return None, self._error(429, "Rate limit reached.", {"Retry-After": str(f.retry_after)}), prompt
        if _unit(key, n, "500") < f.rate_500:
            self.events.append((key, time.monotonic(), 500))
            return None, self._error(500, "The server had an error."), prompt
        self.events.append((key, time.monotonic(), 200))
        if _unit(key, n, "drop") < f.rate_drop:
            request.transport.close()  # the client sees the connection drop mid-request
            raise asyncio.CancelledError
        if _unit(key, n, "bad_json") < f.rate_bad_json:
            self.statuses[200] += 1
            return (
                None,
                web.Response(text='{"id": "x", "choices": [', content_type="application/json"),
                prompt,
            )
        return body, None, prompt

    def _overflow(self, body: dict[str, Any]) -> web.Response | None:
        prompt = body["messages"][-1]["content"] if "messages" in body else body["prompt"]
        p, c = len(prompt.split()), self.context
        m = body.get("max_completion_tokens") or body.get("max_tokens") or 0
        if p + m <= c and p < c:
            return None
        style = self.context_style
        if style == "ollama" or (style == "llama-server" and p < c):
            return None  # it cuts the prompt (ollama) or the reply at the context's end instead
        self.statuses[422 if style == "tgi" else 400] += 1
        if style == "llama-server":
            error = {
                "code": 400,
                "message": "the request exceeds the available context size, try increasing it",
                "type": "exceed_context_size_error",
                "n_prompt_tokens": p,
                "n_ctx": c,
            }
            return web.json_response({"error": error}, status=400)
        if style == "tgi":
            message = (
                f"Input validation error: `inputs` tokens + `max_new_tokens` must be <= {c}. "
                f"Given: {p} `inputs` tokens and {m} `max_new_tokens`"
            )
            return web.json_response({"error": message, "error_type": "validation"}, status=422)
        if style == "openai":
            message = (
                f"This model's maximum context length is {c} tokens. However, you requested {p + m} "
                f"tokens ({p} in the messages, {m} in the completion). Please reduce the length of "
                "the messages or completion."
            )
            error = {"message": message, "type": "invalid_request_error", "param": "messages"}
            error["code"] = "context_length_exceeded"
            return web.json_response({"error": error}, status=400)
        if p >= c:
            message = (
                f"This model's maximum context length is {c} tokens. However, your request has {p} "
                "input tokens. Please reduce the length of the input messages."
            )
        else:
            message = (
                f"'max_tokens' or 'max_completion_tokens' is too large: {m}. This model's maximum "
                f"context length is {c} tokens and your request has {p} input tokens ({m} > {c} - {p})."
            )
        error = {"message": message, "type": "BadRequestError", "param": None, "code": 400}
        return web.json_response({"error": error}, status=400)

    def _content(self, prompt: str, key_n: tuple[str, int]) -> str:
        if _unit(*key_n, "bad_content") < self.faults.rate_bad_content:
            return "Sorry, I am unable to produce that."
        if self.fast:
            reply = fast_reply(prompt)
            if self.reply_pad and not reply.startswith(("[", "1.")):  # prose: as long as a model's
                reply += (" The keepers logged the weather every hour." * (self.reply_pad // 43 + 1))[
                    : self.reply_pad
                ]
            return reply
        return reply_for(prompt)

    async def _complete(self, request: web.Request, chat: bool) -> web.StreamResponse:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await self._answer(request, chat)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request, chat: bool) -> web.StreamResponse:
        body, resp, prompt = await self._common(request)
        if resp is not None:
            return resp
        key = hashlib.sha256(prompt.encode()).hexdigest()
        m = body.get("max_completion_tokens") or body.get("max_tokens") or 0
        keep = self.context // 2 + 2
        words = len(prompt.split())
        if self.context_style == "ollama" and self.context and words + m > self.context and words > keep:
            prompt = " ".join(prompt.split()[-keep:])  # what the model reads: its last `keep` words
        text = self._content(prompt, (key, self.seen[key]))
        self.statuses[200] += 1
        details: dict[str, int] = {}
        if chat and self.reasoning:
            text, message, finish, details = self._think(body, text)
            choice = {"index": 0, "message": message, "finish_reason": finish}
        elif chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        elif self.complete is not None:
            choice = self.complete(body)
            text = choice["text"]
        else:
            if self.runs_on and not body.get("stop"):
                text += "\n###\n\nDocument: Another page\n\n1. A made-up line the run must not keep."
            choice = {"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}
        p, c = len(prompt.split()), len(text.split())
        if self.context and self.context_style != "ollama":  # a reply ends at max_tokens or the context end
            limit = min(
                body.get("max_completion_tokens") or body.get("max_tokens") or 10**6, self.context - p
            )
            if c > limit:
                text, c = " ".join(text.split()[:limit]), limit
                if chat:
                    choice["message"] = {**choice["message"], "content": text}
                else:
                    choice["text"] = text
                choice["finish_reason"] = "length"
        return web.json_response(
            {
                "id": f"{'chatcmpl' if chat else 'cmpl'}-{key[:12]}",
                "object": "chat.completion" if chat else "text_completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [choice],
                "usage": {
                    "prompt_tokens": p,
                    "completion_tokens": c + details.get("reasoning_tokens", 0),
                    "total_tokens": p + c,
                    **({"completion_tokens_details": details} if details else {}),
                },
            }
        )

    def _think(self, body: dict[str, Any], answer: str) -> tuple[str, dict[str, Any], str, dict[str, int]]:
        """(content, message, finish_reason, usage details) of a reasoning model's reply."""
        # a reasoning model's thoughts hold what parsers look for: brackets, braces, numbered lines
        words = ('Okay, the user wants [a list] like {"question": "..."}. 1. Read the text. ' * 20).split()
        limit = body.get("max_completion_tokens") or body.get("max_tokens") or 10**6
        ends_in_thought = limit <= self.thought_words
        thought = " ".join(words[: min(self.thought_words, limit)])
        answer = "" if ends_in_thought else answer
        finish = "length" if ends_in_thought else "stop"
        if self.reasoning == "inline":
            content = f"<think>\n{thought}" + ("" if ends_in_thought else f"\n</think>\n\n{answer}")
            return content, {"role": "assistant", "content": content}, finish, {}
        message = {"role": "assistant", "content": answer or None}
        if self.reasoning == "field":
            message["reasoning_content"] = thought
        return answer, message, finish, {"reasoning_tokens": len(thought.split())}

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self._complete(request, chat=True)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self._complete(request, chat=False)

    async def list_models(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        if self.api_key is not None and auth != f"Bearer {self.api_key}":
            return self._error(401, f"Incorrect API key provided: {auth.removeprefix('Bearer ')}.")
        if not self.lists_models:
            return self._error(404, "Not Found")
        return web.json_response(
            {"object": "list", "data": [{"id": m, "object": "model"} for m in self.models]}
        )

    # ---- running it ------------------------------------------------------------------------
    def start(self, port: int = 0) -> str:
        """Serve in a background thread; returns the base URL (http://127.0.0.1:PORT/v1)."""
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._runner = web.AppRunner(self.app(), access_log=None)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", port, backlog=4096)
            self._loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait(10)
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        if not self._thread.is_alive():  # stopped already
            return

        async def shutdown() -> None:
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--fast", action="store_true")
    ap.add_argument("--reply-pad", type=int, default=0, help="--fast: characters added to each prose reply")
    ap.add_argument("--serial", action="store_true", help="answer one request at a time")
    ap.add_argument("--rate-429", type=float, default=0.0)
    ap.add_argument("--rate-500", type=float, default=0.0)
    ap.add_argument("--retry-after", type=float, default=1.0)
    args = ap.parse_args()
    server = FakeOpenAI(
        latency=args.latency,
        fast=args.fast,
        reply_pad=args.reply_pad,
        serial=args.serial,
        faults=Faults(rate_429=args.rate_429, rate_500=args.rate_500, retry_after=args.retry_after),
    )
    web.run_app(server.app(), host="127.0.0.1", port=args.port, access_log=None, print=lambda *a: None)


if __name__ == "__main__":
    main()
