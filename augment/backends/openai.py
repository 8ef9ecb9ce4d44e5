"""Any OpenAI-compatible server: vLLM, SGLang, llama.cpp's server, Ollama, OpenRouter, OpenAI.

Two HTTP clients speak the same protocol (Bearer auth, /chat/completions and /completions, the
`{"error": {"message"}}` error body):

- `aiohttp` (default): one pooled aiohttp session and plain JSON. Profiling the SDK at 256
  requests in flight showed ~4 ms of CPU per request (httpx, then pydantic models for every
  response), which caps a 2-core client near 250 requests/s; this client spends a tenth of that.
- `sdk`: `openai.AsyncOpenAI`, for endpoints that need the SDK's extras (Azure deployments, custom
  auth); its own retries are off, augment's runner retries.

Both map failures the same way: 429, 408/409 and 5xx, timeouts, dropped connections and unreadable
bodies are retryable (honouring Retry-After); 401/403 (key) and 404 (model or URL) stop the run
with one line; other 4xx fail only their request. The API key is sent in the header and nowhere
else: it is never logged, stored in run.json, or kept in an error message.

What a server refuses, augment stops sending, for that request and every later one, and says so
at the end of the run (`adjusted`): a form of structured output; `max_tokens` (OpenAI's reasoning
models take `max_completion_tokens`); a temperature other than the model's own, a seed or stop
sequences (OpenAI's o-series and GPT-5 models, some hosted open models). A request whose prompt and
`max_tokens` together exceed the server's context (a vLLM started with --max-model-len 4096, a
llama.cpp server with -c 2048) is sent again with `max_tokens` lowered to what is left, as the
local backend does; one whose prompt alone leaves too little fails with that reason.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email.utils
import json
import os
import re
import time
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlparse

import orjson

from augment.backends.base import context_exceeded, reply_room, settings_suffix
from augment.backends.openai_batch import BatchQueue
from augment.config import RunConfig
from augment.errors import BackendError, ConfigError, FatalBackendError, redact
from augment.strategies.parsers import THINK_OPEN
from augment.tokens import approx_count
from augment.types import GenRequest, GenResult, Usage

OPENAI_URL = "https://api.openai.com/v1"

# Request fields a server may refuse and a run can do without (max_tokens is renamed instead), and
# what is said of each at the end of the run.
_LEAVE_OUT = {
    "max_tokens": "max_tokens sent as max_completion_tokens (the model refused max_tokens)",
    "temperature": "temperature left out: the model takes only its own (the prompt files' were not used)",
    "seed": "seed left out (the model refused it): a re-asked request is not a reproducible sample",
    "stop": "stop sequences left out (the model refused them)",
}
_REFUSES = re.compile(
    r"unsupported|not supported|only .{0,60}\b(?:allowed|supported)|unrecognized|not permitted"
    r"|extra (?:inputs|fields)|unknown (?:parameter|field|argument)",
    re.IGNORECASE,
)

# A server's "prompt plus max_tokens exceed the context" error, in the words of OpenAI, vLLM,
# SGLang, llama-cpp-python, TGI and oMLX: the context's size, and the prompt's tokens where it
# says them (llama.cpp's llama-server gives both as fields: n_ctx, n_prompt_tokens).
_OVERFLOW = re.compile(r"context (?:length|size|window)|max_model_len|max_new_tokens", re.IGNORECASE)
_CONTEXT_SIZE = re.compile(
    r"(?:context (?:length|size|window)|max_model_len)\D{0,40}?(\d[\d,]*)|must be <= (\d[\d,]*)",
    re.IGNORECASE,
)
_PROMPT_SIZE = re.compile(
    r"(\d[\d,]*) (?:tokens )?in (?:the messages|your prompt)|(\d[\d,]*) (?:input|prompt) tokens"
    r"|(\d[\d,]*) tokens from the input|(\d[\d,]*) `?inputs`? tokens|input \((\d[\d,]*) tokens\)"
    r"|prompt (?:is )?too long:? (\d[\d,]*) tokens",
    re.IGNORECASE,
)


# prompt tokens below which a server's count is not read for a cut: a context is never this short
CUT_MIN = 100


def _number(match: re.Match[str] | None) -> int | None:
    if match is None:
        return None
    return int(next(g for g in match.groups() if g is not None).replace(",", ""))


def context_overflow(status: int, body: bytes | str | None) -> tuple[int, int | None] | None:
    """(the server's context in tokens, the prompt's tokens or None where unsaid) when an error
    says a request does not fit the model's context; None for any other reply."""
    if status not in (400, 413, 422) or not body:
        return None
    message, _, code = _error(body)
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        err = json.loads(body).get("error")
        if isinstance(err, dict) and isinstance(err.get("n_ctx"), int):  # llama.cpp's llama-server
            prompt = err.get("n_prompt_tokens")
            return err["n_ctx"], prompt if isinstance(prompt, int) else None
    if code != "context_length_exceeded" and not _OVERFLOW.search(message):
        return None
    context = _number(_CONTEXT_SIZE.search(message))
    if not context:
        return None
    return context, _number(_PROMPT_SIZE.search(message))


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `Retry-After` as seconds or an HTTP date."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        with contextlib.suppress(ValueError):
            return max(0.0, float(ms) / 1000)
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        with contextlib.suppress(TypeError, ValueError):
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    return None


def _error(body: bytes | str | None) -> tuple[str, str, str]:
    """(message, param, code) of an error body: OpenAI's `{"error": {"message", "param", "code"}}`,
    other servers' `{"detail"}` or a text page. The message is one line (some servers send a
    traceback); param and code are "" where the server names none."""
    if not body:
        return "", "", ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
    except ValueError:  # a text or HTML page (a proxy's): one line of it
        return " ".join(text.split())[:300], "", ""
    err = data.get("error", data) if isinstance(data, dict) else data
    param = code = ""
    if isinstance(err, dict):
        param = err.get("param") if isinstance(err.get("param"), str) else ""
        code = str(err.get("code") or "")
        err = err.get("message") or err.get("detail") or err
    return " ".join(str(err).split())[:300], param, code


def _error_message(body: bytes | str | None) -> str:
    return _error(body)[0]


def _lists(served: list[str], name: str) -> bool:
    """Whether a server's model list holds `name`, as itself, as Ollama's NAME:latest or under a
    prefix ending in "/" (Gemini lists models/NAME)."""
    return name in served or f"{name}:latest" in served or any(s.endswith("/" + name) for s in served)


def chat_template_field(config: RunConfig) -> dict[str, Any]:
    """`chat_template_kwargs` as a request field, on the chat endpoint, where the config sets it."""
    if not config.chat_template_kwargs or config.endpoint != "chat":
        return {}
    return {"chat_template_kwargs": dict(config.chat_template_kwargs)}


def base_url_of(config: RunConfig) -> str:
    """The URL requests go to: the config's base_url, else $OPENAI_BASE_URL, else OpenAI's."""
    return (config.base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL).rstrip("/")


def api_key_of(config: RunConfig, base_url: str) -> str | None:
    """The API key from the variable api_key_env names; None for a server that needs none."""
    api_key = os.environ.get(config.api_key_env) or None
    if api_key is None and config.api_key_env != "OPENAI_API_KEY":
        raise ConfigError(f"api_key_env names ${config.api_key_env}, which is not set")
    if api_key is None and base_url.rstrip("/") == OPENAI_URL:
        raise ConfigError(
            "No API key for api.openai.com: set OPENAI_API_KEY (or name another variable with api_key_env), "
            "or point --base-url at your own server"
        )
    return api_key


def survey_batches(folder: Path, config: RunConfig, cancel: bool = False) -> list[dict[str, Any]]:
    """The batches of `folder`/batches.jsonl (a run's, or an eval's judge's) as the server has them
    now, each a dict (batch, requests, status, answered, failed, created_at, cancelled); with
    `cancel`, those not ended are cancelled first."""
    import asyncio

    base_url = base_url_of(config)
    backend = OpenAIBackend(
        config.model or "",
        base_url=base_url,
        api_key=api_key_of(config, base_url),
        timeout=config.request_timeout,
        batch_requests=config.batch_requests,
        batch_poll=config.batch_poll,
    )
    backend.keep_in(folder)
    assert backend.batch is not None

    async def survey() -> list[dict[str, Any]]:
        try:
            return await backend.batch.survey(cancel)  # type: ignore[union-attr]
        finally:
            await backend.aclose()

    return asyncio.run(survey())


class OpenAIBackend:
    name: ClassVar[str] = "openai"
    retry_wait: ClassVar[float] = 0.5  # first backoff without Retry-After, as the openai SDK does

    def __init__(
        self,
        model: str,
        *,
        base_url: str = OPENAI_URL,
        api_key: str | None = None,
        endpoint: str = "chat",
        http_client: str = "aiohttp",
        structured_output: str = "auto",
        timeout: float = 600.0,
        concurrency: int = 64,
        extra_body: dict[str, Any] | None = None,
        check_model: bool = True,
        batch_requests: int | None = None,
        batch_poll: float = 30.0,
        batches_at_once: int = 1,
    ):
        self._model = model
        self.check_model = check_model
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.endpoint = endpoint
        self.http_client = http_client
        # the response_format forms still to try, best first: OpenAI's json_schema (OpenAI, vLLM,
        # SGLang, llama.cpp's llama-server, Ollama), then the json_object with a schema that
        # llama-cpp-python's server takes; none left: plain text and the strategy's parser
        self.formats: list[str] = [] if structured_output == "off" else ["json_schema", "json_object"]
        self._structured_required = structured_output == "on"
        self.timeout = timeout
        self.concurrency = concurrency
        self._session: Any = None
        self._sdk: Any = None
        self._sdk_fields: dict[str, set[str]] = {}
        self._connected = False  # a request has succeeded: connection errors are transient from now on
        self._path = "/chat/completions" if endpoint == "chat" else "/completions"
        self.extra_body = dict(extra_body or {})
        # what the server refused and this run stopped sending (see the module's docstring)
        self.token_field = "max_tokens"
        self.left_out: set[str] = set()
        self.adjusted: list[str] = []
        # a server that cuts a prompt longer than its context without an error (Ollama) reports the
        # same prompt tokens for prompts of different lengths: the most any reply reported, and the
        # (length in characters, key) of the replies that reported it, until that is seen
        self._most_read = 0
        self._at_most: list[tuple[int, str]] = []
        self.cut_at: int | None = None  # the tokens such a server reads of a prompt, once seen
        self.cut_keys: list[str] = []  # replies to cut prompts returned before it was seen
        self.batch: BatchQueue | None = None  # batch_api: requests go out in batch files
        if batch_requests is not None:
            self.batch = BatchQueue(
                lambda: self._client(max_retries=2),
                self._path,
                size=batch_requests,
                poll=batch_poll,
                at_once=batches_at_once,
                error=self._batch_error,
            )
            # the runner hands over as many requests as the batches out at once take
            self.concurrency = batch_requests * batches_at_once

    @classmethod
    def from_config(cls, config: RunConfig) -> OpenAIBackend:
        if not config.model:
            raise ConfigError("the openai backend needs --model (the model name the server serves)")
        base_url = base_url_of(config)
        return cls(
            config.model,
            base_url=base_url,
            api_key=api_key_of(config, base_url),
            endpoint=config.endpoint,
            http_client=config.http_client,
            structured_output=config.structured_output,
            timeout=config.request_timeout,
            concurrency=config.concurrency,
            # the chat template's variables go as vLLM, SGLang and llama.cpp's llama-server take them
            extra_body={**config.extra_body, **chat_template_field(config)},
            check_model=config.check_model,
            batch_requests=config.batch_requests if config.batch_api else None,
            batch_poll=config.batch_poll,
            batches_at_once=config.batches_at_once,
        )

    @property
    def model(self) -> str:
        return self._model

    def keep_in(self, directory: Path) -> None:
        """Where what outlives this process is kept: the ledger of batches sent (batch_api)."""
        if self.batch is not None:
            self.batch.ledger = directory / "batches.jsonl"

    @property
    def identity(self) -> str:
        # extra fields change the replies (a chat template's switch, a sampler): part of the cache key
        return f"{self.name}/{self.endpoint}{settings_suffix('extra', self.extra_body)}"

    @property
    def chat(self) -> bool:
        return self.endpoint == "chat"

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIBackend(model={self._model!r}, base_url={self.base_url!r}, endpoint={self.endpoint!r})"

    def served_models(self) -> list[str] | None:
        """The model names the server lists (GET /models), or None where it lists none or cannot be
        reached (the first request says so): a check before anything is sent. A wrong key is a
        one-line error."""
        import openai

        client = openai.OpenAI(
            base_url=self.base_url,
            api_key=self._api_key or "EMPTY",
            max_retries=1,
            timeout=min(self.timeout, 30),
        )
        try:
            return [m.id for m in client.models.list()]
        except openai.APIConnectionError:
            return None
        except openai.AuthenticationError as e:
            raise self._status_error(
                e.status_code, e.response.headers, e.response.content, "/models"
            ) from None
        except openai.APIError:
            return None  # no model list (404, or a reply that is not one): the first request will tell
        finally:
            client.close()

    def check_served(self, names: list[str] | None = None) -> None:
        """Every name (by default this backend's model) is one the server lists, before anything is
        sent: some servers answer under any name (llama-cpp-python's echoes it back), so a typo
        would label every record with a model that did not write it. A server that lists none, or
        cannot be reached, is taken at its word (the first request says it is down); Ollama's
        "NAME:latest" answers to NAME, and a listed "models/NAME" (Gemini's) to NAME. Azure's list
        holds models, not the deployment names requests use: not checked there."""
        if not self.check_model or (urlparse(self.base_url).hostname or "").endswith(".azure.com"):
            return
        served = self.served_models()
        if not served:
            return
        missing = [m for m in names or [self._model] if not _lists(served, m)]
        if missing:
            shown = ", ".join(served[:8]) + (f" ... ({len(served)} in all)" if len(served) > 8 else "")
            raise ConfigError(
                f"--model {missing[0]}: {self.base_url} serves no model of that name (it serves: {shown}). "
                "A name the list does not show (an alias)? Set check_model = false."
            )

    # ---- requests ----------------------------------------------------------------------------
    def _body(self, req: GenRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self._model,
            "temperature": req.temperature,
            self.token_field: req.max_tokens,
            "seed": req.seed,
        }
        if req.stop:
            body["stop"] = list(req.stop[:4])  # OpenAI accepts at most four
        for name in self.left_out:
            body.pop(name, None)
        if self.endpoint == "chat":
            body["messages"] = [{"role": "user", "content": req.prompt}]
            if req.schema is not None and self.formats:
                if self.formats[0] == "json_schema":
                    body["response_format"] = {
                        "type": "json_schema",
                        "json_schema": {"name": req.strategy or "reply", "schema": req.schema},
                    }
                else:
                    body["response_format"] = {"type": "json_object", "schema": req.schema}
        else:
            body["prompt"] = req.prompt
            if req.score_prompt:  # the prompt's own tokens' log-probabilities (vLLM, OpenAI's legacy models)
                body.update(echo=True, logprobs=1)
        body.update(self.extra_body)  # none of augment's own fields (config checks)
        return body

    async def generate(self, req: GenRequest, *, fits: int = 0) -> GenResult:
        body = self._body(req)
        try:
            if self.batch is not None:
                status, headers, data = await self.batch.post(req.key, body)
            else:
                status, headers, data = await self._post(body)
        except BackendError as e:  # the same failure, with the key kept out of its message
            raise BackendError(
                redact(str(e), self._api_key),
                retryable=e.retryable,
                retry_after=e.retry_after,
                rate_limited=e.rate_limited,
                timed_out=e.timed_out,
                of_request=e.of_request,
            ) from None
        if (name := self._refused_field(status, data, body)) is not None:
            # first: a field this model does not take (OpenAI's reasoning models: max_tokens, temperature,
            # stop): without it, for this request and every later one
            if name == "max_tokens":
                self.token_field = "max_completion_tokens"
            else:
                self.left_out.add(name)
            self._adjust(_LEAVE_OUT[name])
            return await self.generate(req, fits=fits)
        if (overflow := context_overflow(status, data)) is not None:
            return await self._fit(req, *overflow, fits=fits)
        if "response_format" in body and self._rejects_format(status, data):
            # the server has not this form of structured output: the next form, else plain text
            # and the strategy's parser, for this request and every later one
            with contextlib.suppress(ValueError):
                self.formats.remove(body["response_format"]["type"])
            if self.formats or not self._structured_required:
                self._adjust(
                    "structured output as json_object with a schema (the server refused json_schema)"
                    if self.formats
                    else "no structured output (the server refused response_format): replies parsed as text"
                )
                return await self.generate(req, fits=fits)
            raise FatalBackendError(
                f"--structured-output on: {self.base_url}{self._path} takes neither form of "
                f"response_format (json_schema, json_object with a schema): "
                f"{redact(_error_message(data), self._api_key)}"
            )
        if status in (400, 422) and req.score_prompt:
            # a server that will not echo the prompt's log-probabilities (OpenAI's newer models): no
            # likelihood for it, not a failed request
            refused = redact(_error_message(data), self._api_key) or f"http_{status}"
            text = json.dumps({"offsets": None, "logprobs": None, "refused": refused})
            return GenResult(text=text, finish_reason="refused", usage=Usage(approx_count(req.prompt), 0))
        if status != 200:
            raise self._status_error(status, headers, data)
        self._connected = True
        result = self._result(req, data)
        if result.usage.prompt_tokens >= CUT_MIN and not req.score_prompt:
            self._check_cut(req, result.usage.prompt_tokens)
        return result

    def _check_cut(self, req: GenRequest, read: int) -> None:
        """Fail a reply to a prompt the server cut: two prompts whose lengths differ by a tenth or
        more never count the same tokens, unless the server read only that many of each."""
        if self.cut_at is not None:
            if read >= self.cut_at:
                raise self._cut()
            return
        if read > self._most_read:
            self._most_read, self._at_most = read, []
        if read < self._most_read:
            return
        self._at_most.append((len(req.prompt), req.key))
        sizes = [n for n, _ in self._at_most]
        if max(sizes) >= 1.1 * min(sizes):
            self.cut_at = read
            self.cut_keys = [key for _, key in self._at_most if key != req.key]
            self._adjust(
                f"prompts longer than {read} tokens were cut to their last {read} by the server, "
                "without an error (as Ollama does past its context, 4096 tokens unless "
                "OLLAMA_CONTEXT_LENGTH says more): their replies failed as prompt_cut and are "
                "sent again on a re-run"
            )
            raise self._cut()

    def _cut(self) -> BackendError:
        return BackendError(
            f"prompt_cut: the server read only the last {self.cut_at} tokens of the prompt (start it "
            "with a longer context, or lower chunk_tokens)",
            of_request=True,
        )

    async def _fit(self, req: GenRequest, context: int, prompt: int | None, *, fits: int) -> GenResult:
        """Send `req` again with max_tokens lowered to the room its prompt leaves in the server's
        context (where the server did not say the prompt's size, from an estimate with a margin;
        twice at most), or fail it where the prompt leaves too little (base.reply_room)."""
        if prompt is None:  # a chat template adds some tokens; tokenizers differ from the estimate
            prompt = int(approx_count(req.prompt) * 1.25) + 32
        room = reply_room(context, prompt, req.max_tokens)
        if fits < 2 and room is not None and room < req.max_tokens:
            self._adjust(
                f"max_tokens lowered where prompt and reply would not fit the server's context "
                f"of {context} tokens"
            )
            return await self.generate(dataclasses.replace(req, max_tokens=room), fits=fits + 1)
        raise context_exceeded(
            f"the server's context of {context} tokens",
            "lower chunk_tokens, or start the server with a longer context",
        )

    def _adjust(self, note: str) -> None:
        if note not in self.adjusted:
            self.adjusted.append(note)

    def _refused_field(self, status: int, data: bytes, body: dict[str, Any]) -> str | None:
        """The field of `body` that a 400/422 says the model does not take, if it is one a run can
        do without: OpenAI names it (`"param": "max_tokens"`, code `unsupported_parameter` or
        `unsupported_value`); other servers say it in words ("only 1 is allowed")."""
        if status not in (400, 422):
            return None
        message, param, code = _error(data)
        if code not in ("unsupported_parameter", "unsupported_value") and not _REFUSES.search(message):
            return None
        named = [param, *re.findall(r"\b(?:max_tokens|temperature|seed|stop)\b", message)]
        return next((n for n in named if n in _LEAVE_OUT and n in body), None)

    def _rejects_format(self, status: int, data: bytes) -> bool:
        """Whether a reply refuses the request's response_format. A 400 or 422 that names it or
        says something is not supported; a 5xx only where it names it (llama-cpp-python's server
        answers json_schema with a 500 that holds its validation error)."""
        if status in (200, 401, 403, 404, 429):
            return False
        message, param, _ = _error(data)
        if param and not param.startswith("response_format"):
            return False  # OpenAI names the field it refuses, and it is another one
        message = message.lower()
        if "response_format" in message or "json_schema" in message:
            return True
        return status in (400, 422) and ("schema" in message or "not supported" in message)

    def _timed_out(self) -> BackendError:
        return BackendError(
            f"no reply within request_timeout ({self.timeout:g} s)", retryable=True, timed_out=True
        )

    def _cannot_connect(self, cause: object) -> FatalBackendError:
        return FatalBackendError(
            f"cannot connect to {self.base_url} ({cause}). Is the server running? Check --base-url."
        )

    def _status_error(self, status: int, headers: Any, data: bytes, path: str | None = None) -> Exception:
        message = redact(_error_message(data), self._api_key) or "(no message)"
        url = f"{self.base_url}{path or self._path}"
        if status in (401, 403):
            return FatalBackendError(
                f"{status} from {url}: {message} Check the API key (OPENAI_API_KEY, or the variable named by api_key_env)."
            )
        if status == 404:
            return FatalBackendError(
                f"404 from {url}: {message} Check --model '{self._model}' and --base-url "
                f"(it should end in /v1 for most servers; try '{self.base_url}/models')."
            )
        if status == 429:
            return BackendError(
                f"429 rate limited: {message}",
                retryable=True,
                retry_after=retry_after_seconds(headers),
                rate_limited=True,
            )
        if status in (408, 409) or status >= 500:
            return BackendError(
                f"http_{status}: {message}", retryable=True, retry_after=retry_after_seconds(headers)
            )
        return BackendError(f"http_{status}: {message}")

    def _result(self, req: GenRequest, data: bytes) -> GenResult:
        try:
            payload = orjson.loads(data)
            choice = payload["choices"][0]
            text = choice["message"].get("content") if self.endpoint == "chat" else choice.get("text")
            if not text and self.endpoint == "chat" and choice.get("finish_reason") == "length":
                # max tokens spent reasoning, no answer: the server kept the reasoning apart (vLLM's
                # reasoning parsers, Ollama, DeepSeek) or to itself (OpenAI counts it in usage)
                thought = choice["message"].get("reasoning_content") or choice["message"].get("reasoning")
                details = (payload.get("usage") or {}).get("completion_tokens_details") or {}
                if thought or details.get("reasoning_tokens"):
                    text = THINK_OPEN + str(thought or "")
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
            raise BackendError("malformed response body (not an OpenAI completion)", retryable=True) from None
        text = text or ""
        if req.score_prompt:
            logprobs = choice.get("logprobs") or {}
            offsets, values = logprobs.get("text_offset"), logprobs.get("token_logprobs")
            if not (isinstance(offsets, list) and isinstance(values, list) and len(offsets) == len(values)):
                offsets = values = None  # a server that does not echo the prompt's log-probabilities
            text = json.dumps({"offsets": offsets, "logprobs": values})
        usage = payload.get("usage") or {}
        return GenResult(
            text=text,
            finish_reason=choice.get("finish_reason") or "stop",
            usage=Usage(
                int(usage.get("prompt_tokens") or approx_count(req.prompt)),
                int(usage.get("completion_tokens") or approx_count(text)),
            ),
        )

    # ---- transports --------------------------------------------------------------------------
    async def _post(self, body: dict[str, Any]) -> tuple[int, Any, bytes]:
        if self.http_client == "sdk":
            return await self._post_sdk(body)
        return await self._post_aiohttp(body)

    async def _post_aiohttp(self, body: dict[str, Any]) -> tuple[int, Any, bytes]:
        import aiohttp

        if self._session is None:
            headers = {"Content-Type": "application/json"}
            if self._api_key:
                headers["Authorization"] = f"Bearer {self._api_key}"
            self._session = aiohttp.ClientSession(
                headers=headers,
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                json_serialize=json.dumps,
            )
        try:
            async with self._session.post(self.base_url + self._path, data=orjson.dumps(body)) as resp:
                return resp.status, resp.headers, await resp.read()
        except aiohttp.ClientConnectorError as e:
            if not self._connected:
                raise self._cannot_connect(e.os_error or e) from None
            raise BackendError(f"connection error: {e}", retryable=True) from None
        except TimeoutError:
            raise self._timed_out() from None
        except aiohttp.ClientError as e:
            raise BackendError(f"connection error: {type(e).__name__}: {e}", retryable=True) from None

    def _client(self, max_retries: int) -> Any:
        import openai

        return openai.AsyncOpenAI(
            base_url=self.base_url,
            api_key=self._api_key or "EMPTY",
            max_retries=max_retries,
            timeout=self.timeout,
        )

    def _batch_error(self, error: BaseException, doing: str) -> BaseException:
        """An SDK error of the Batch API's calls (files, batches) as the run's error."""
        import openai

        if isinstance(error, openai.APIStatusError):
            status, response = error.status_code, error.response
            if status in (404, 405) and doing == "sending a batch":
                return FatalBackendError(
                    f"{status} from {response.url}: {self.base_url} has no Batch API (batch_api works with "
                    "OpenAI and servers that offer /v1/files and /v1/batches); turn batch_api off"
                )
            if status == 404:  # a batch the server no longer has (OpenAI keeps them about 30 days)
                return BackendError(f"404 {doing}: the server has no such batch or file")
            return self._status_error(status, response.headers, response.content, response.url.path)
        if isinstance(error, openai.APIConnectionError):
            if not self._connected:
                return self._cannot_connect(error.__cause__ or error)
            return BackendError(f"connection error while {doing}", retryable=True)
        return BackendError(
            redact(f"{doing}: {type(error).__name__}: {error}", self._api_key), retryable=True
        )

    async def _post_sdk(self, body: dict[str, Any]) -> tuple[int, Any, bytes]:
        import openai

        if self._sdk is None:
            self._sdk = self._client(max_retries=0)
        create = (
            self._sdk.chat.completions.with_raw_response.create
            if self.endpoint == "chat"
            else self._sdk.completions.with_raw_response.create
        )
        known = self._sdk_fields.get(self.endpoint)
        if known is None:
            import inspect

            known = set(inspect.signature(create).parameters) - {"extra_body", "extra_headers"}
            self._sdk_fields[self.endpoint] = known
        try:  # fields the SDK has no argument for (extra_body's) go as its extra_body
            raw = await create(
                **{k: v for k, v in body.items() if k in known},
                extra_body={k: v for k, v in body.items() if k not in known} or None,
            )
            return raw.http_response.status_code, raw.headers, raw.http_response.content
        except openai.APIStatusError as e:
            return e.status_code, e.response.headers, e.response.content
        except openai.APITimeoutError:
            raise self._timed_out() from None
        except openai.APIConnectionError as e:
            if not self._connected and "connect" in str(e.__cause__ or e).lower():
                raise self._cannot_connect(e.__cause__ or e) from None
            raise BackendError(f"connection error: {type(e).__name__}", retryable=True) from None

    async def aclose(self) -> None:
        if self.batch is not None:
            await self.batch.aclose()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._sdk is not None:
            await self._sdk.close()
            self._sdk = None
