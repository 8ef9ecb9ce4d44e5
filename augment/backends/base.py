"""The backend protocol and a lazy registry.

Backends are named in a table of import paths, so `augment --help` and the mock pipeline never
import an SDK they do not use. Third-party backends register through the `augment.backends`
entry-point group (value: "package.module:ClassName").
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any, ClassVar, Protocol, runtime_checkable

from augment.config import RunConfig
from augment.errors import ConfigError
from augment.types import GenRequest, GenResult

_BUILTIN = {
    "mock": "augment.backends.mock:MockBackend",
    "openai": "augment.backends.openai:OpenAIBackend",
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


def get_backend(config: RunConfig, **options: Any) -> Backend:
    table = _table()
    target = table.get(config.backend)
    if target is None:
        raise ConfigError(f"Unknown backend '{config.backend}'. Available: {', '.join(sorted(table))}")
    module_name, _, cls_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    return cls.from_config(config, **options)
