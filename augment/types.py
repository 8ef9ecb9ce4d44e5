"""The records that flow through the pipeline. Plain dicts at I/O boundaries, dataclasses inside."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class Document:
    doc_id: str
    path: str
    title: str
    text: str
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Chunk:
    chunk_id: str
    doc_id: str
    index: int
    start: int  # character offsets into Document.text: text == doc.text[start:end]
    end: int
    text: str
    title: str
    tokens: int


@dataclass(slots=True)
class GenRequest:
    """One model call. `key` is a stable hash of everything that changes the output."""

    key: str
    prompt: str
    temperature: float
    max_tokens: int
    seed: int
    # What the request is for; backends other than mock ignore it.
    strategy: str = ""
    parser: str = "text"
    fields: tuple[str, ...] = ()
    source: str = ""
    variant: str = ""
    sample: int = 0
    # JSON schema of the reply, for servers that support structured output (json_list strategies)
    schema: dict[str, Any] | None = None
    target: str = ""  # judge requests: the text under review
    # Prompt style. chat: `prompt` is one user message. completion: `prompt` is raw text to continue
    # (few-shot, for base models); `primer` is the reply's beginning, already at the end of the prompt,
    # and is put back in front of the reply before parsing; generation ends at any of `stop`.
    chat: bool = True
    primer: str = ""
    stop: tuple[str, ...] = ()
    # completion only: score the prompt instead of continuing it. The reply's text is then JSON,
    # {"offsets": [...], "logprobs": [...]}: each prompt token's character offset and log-probability
    # (the server's echo; both null where it gives none, with "refused": its message where it
    # rejected the request). `augment eval --engine server` uses it.
    score_prompt: bool = False
    # Multi-step strategies (entigraph, active-reading): which step this request is, and the template
    # variables its prompt was rendered with (e.g. the entities whose relation it asks about).
    step: str = ""
    context: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(slots=True)
class GenResult:
    text: str
    finish_reason: str = "stop"
    usage: Usage = field(default_factory=Usage)
