"""The backend protocol and a lazy registry.

Backends are named in a table of import paths, so `augment --help` and the mock pipeline never
import an SDK they do not use. Third-party backends register through the `augment.backends`
entry-point group (value: "package.module:ClassName").
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from importlib.metadata import entry_points
from typing import Any, ClassVar, Protocol, runtime_checkable

from augment.config import RunConfig
from augment.errors import BackendError, ConfigError
from augment.types import GenRequest, GenResult

#: the fewest reply tokens worth asking for where the context leaves less than max_tokens: a prompt
#: that leaves fewer fails (lower chunk_tokens), in every backend that knows its context
REPLY_ROOM = 64


def reply_room(context: int, prompt_tokens: int, max_tokens: int) -> int | None:
    """The max_tokens a request can have in `context` after its prompt: its own where they fit,
    else the room left; None where that is under REPLY_ROOM (or max_tokens, if smaller), and the
    request cannot be answered as it is. Every backend that knows its context, and `plan`, use it."""
    room = context - prompt_tokens
    return None if room < min(max_tokens, REPLY_ROOM) else min(max_tokens, room)


def context_exceeded(where: str, fix: str) -> BackendError:
    """The failure of a request whose prompt leaves too little room for a reply in `where`."""
    return BackendError(
        f"context_exceeded: the prompt leaves too little room for a reply in {where} ({fix})", of_request=True
    )


def settings_suffix(label: str, values: dict[str, Any] | None) -> str:
    """What a backend's identity (part of every cache key) adds for settings that change the
    replies (request fields, chat-template variables): nothing when there are none, so earlier
    runs' replies stay valid."""
    if not values:
        return ""
    import hashlib
    import json

    digest = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:12]
    return f"/{label}-{digest}"


def template_suffix(template_kwargs: dict[str, Any] | None) -> str:
    return settings_suffix("template", template_kwargs)


_BUILTIN = {
    "local": "augment.backends.local:LocalBackend",
    "mock": "augment.backends.mock:MockBackend",
    "openai": "augment.backends.openai:OpenAIBackend",
    "vllm": "augment.backends.vllm:VLLMBackend",
}


@runtime_checkable
class Backend(Protocol):
    name: ClassVar[str]
    #: first wait (seconds) before retrying a retryable failure; doubled each attempt, with jitter
    retry_wait: ClassVar[float]

    @property
    def model(self) -> str: ...

    @property
    def identity(self) -> str:
        """Name plus whatever else changes replies for the same prompt (e.g. the endpoint); part of cache keys."""
        ...

    @property
    def chat(self) -> bool:
        """Whether the model takes chat messages (has a chat template); if not, prompts are few-shot text."""
        ...

    async def generate(self, req: GenRequest) -> GenResult:
        """Answer one request; raise BackendError(retryable=...) on failure."""
        ...

    async def aclose(self) -> None: ...


def _table() -> dict[str, str]:
    table = dict(_BUILTIN)
    for ep in entry_points(group="augment.backends"):
        table.setdefault(ep.name, ep.value)
    return table


def available_backends() -> list[str]:
    return sorted(_table())


def cuda_available() -> bool:
    """A CUDA GPU that torch can use (False without torch; torch is imported only if it is installed)."""
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def resolve_auto(config: RunConfig) -> str:
    """`auto`: a server named by $OPENAI_BASE_URL or --base-url, else vLLM on a GPU, else the local CPU model."""
    if config.base_url or os.environ.get("OPENAI_BASE_URL"):
        return "openai"
    if importlib.util.find_spec("vllm") is not None and cuda_available():
        return "vllm"
    return "local"


def backend_name(config: RunConfig) -> str:
    """The backend a run uses: the configured one, or what `auto` resolves to."""
    return resolve_auto(config) if config.backend == "auto" else config.backend


def get_backend(config: RunConfig, **options: Any) -> Backend:
    table = _table()
    name = backend_name(config)
    target = table.get(name)
    if target is None:
        raise ConfigError(f"Unknown backend '{config.backend}'. Available: auto, {', '.join(sorted(table))}")
    if config.batch_api and name != "openai":
        raise ConfigError(f"batch_api needs the openai backend (a server's Batch API); this run's is {name}")
    if config.lora and name != "local":
        raise ConfigError(
            f"lora: an adapter GGUF is applied by the local backend (llama.cpp); this run's is {name} "
            "(a server applies its own: llama-server --lora)"
        )
    if name != config.backend:
        config = config.model_copy(update={"backend": name})
    module_name, _, cls_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    return cls.from_config(config, **options)
