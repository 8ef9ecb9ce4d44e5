"""Load strategies from prompt files and turn chunks into requests and replies into records.

A prompt file is Markdown with a YAML front-matter header:

    ---
    name: qa
    version: 1
    parser: json_list            # json_list | numbered_list | text
    fields: [question, answer, evidence]
    temperature: 0.7
    max_tokens: 1024
    record:                      # how an item becomes training text (Jinja2, item fields in scope)
      text: "Question: {{ question }}\nAnswer: {{ answer }}"
      user: "{{ question }}"
      assistant: "{{ answer }}"
    completion:                  # optional: the few-shot form for base models (no chat template)
      instruction: "Questions about {{ title }}, each with its answer:"
      example: "Q: ...\nA: ..."   # the answer for the example document (or a mapping per variant)
      primer: "Q:"               # the reply's first characters, written into the prompt
      stop: []                   # extra stop strings
      fields: [question, answer]  # optional: fewer fields than the chat form asks for
      max_tokens: 384            # optional cap for this form (base models rarely end a list themselves)
      example_vars: {}           # multi-step: the worked example's task variables
    expect_completion: 1.2       # for `augment plan`: completion tokens per chunk token
    kind: single                 # or entigraph / active-reading (two steps, see strategies/deep.py):
    first: {...}                 #   the first step (instruction, parser, fields, completion ...)
    budget_tokens: 12000         #   tokens per document, first step included
    ---
    The instruction (Jinja2: title, chunk, variant, and a multi-step task's variables).

Chat style (models with a chat template, or any chat endpoint): the shared document block
(`_document.md`: the title and the chunk) comes first and the strategy's instruction follows it,
so the strategies run on one chunk share a prefix that a server's prefix cache can reuse.

Completion style (base models, as SEAL and EntiGraph prompt them): the example document
(`_example.md`) with the instruction and the worked example answer, a `###` line, then the chunk,
the instruction and the primer; the model continues from there and stops at the next `###`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import jinja2
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from augment.errors import ConfigError, ParseError
from augment.io import sha256_hex, stable_id
from augment.strategies.parsers import PARSERS, Parsed
from augment.types import Chunk, GenRequest, GenResult

DOCUMENT_BLOCK = "_document.md"
EXAMPLE_DOCUMENT = "_example.md"
SEPARATOR = "###"
# a base model that goes on past its answer starts the next document block or the line that ends one
COMPLETION_STOP = (SEPARATOR, "\nDocument:", "\n---")
_FRONT = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*\n?(.*)\Z", re.DOTALL)
_env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)


def builtin_prompts_dir() -> Path:
    """prompts/ inside an installed wheel, or at the repository root in a source checkout."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "prompts", here.parent / "prompts"):
        if candidate.is_dir():
            return candidate
    raise ConfigError("augment's prompts/ folder is missing from this installation; reinstall augment")


def prompt_template(prompts_dir: Path | None, *names: str) -> tuple[str, jinja2.Template]:
    """The named prompt files (each from `prompts_dir` when it has one, else built in), joined by a
    blank line, as one template and its source: the judges' prompts, which are not strategies."""
    parts = []
    for name in names:
        dirs = ([Path(prompts_dir)] if prompts_dir else []) + [builtin_prompts_dir()]
        path = next((p for d in dirs if (p := d / name).is_file()), None)
        if path is None:
            raise ConfigError(f"{name} is missing from the prompts folder")
        parts.append(path.read_text(encoding="utf-8").strip())
    source = "\n\n".join(parts)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    try:
        return source, env.from_string(source)
    except jinja2.TemplateSyntaxError as e:
        raise ConfigError(f"{names[-1]}: template error at line {e.lineno}: {e.message}") from None


class RecordTemplates(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str
    user: str
    assistant: str


class CompletionForm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    instruction: str
    example: str | dict[str, str]
    primer: str = ""
    stop: list[str] = Field(default_factory=list)
    # the fields this form asks for, if fewer than the chat form's (small models drop a third field)
    fields: list[str] | None = None
    # base models rarely end a list on their own: a tighter cap than the chat form's saves their loops
    max_tokens: int | None = Field(None, ge=1)
    # multi-step strategies: the template variables of the worked example (e.g. its entities)
    example_vars: dict[str, str] = Field(default_factory=dict)


def _known_parser(v: str) -> str:
    if v not in PARSERS:
        raise ValueError(f"unknown parser '{v}' (available: {', '.join(PARSERS)})")
    return v


class FirstStep(BaseModel):
    """The first step of a multi-step strategy: one request per chunk whose items the later step uses."""

    model_config = ConfigDict(extra="forbid")
    instruction: str
    parser: str
    fields: list[str]
    temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: int = Field(1024, ge=1)
    completion: CompletionForm | None = None
    # training text made from the reply's summary, if it has one (entigraph); none if omitted
    record: RecordTemplates | None = None
    # for `augment plan`: expected completion tokens per chunk token, and items per reply
    expect_completion: float = Field(0.5, gt=0)
    expect_items: int = Field(8, ge=1)

    _parser = field_validator("parser")(_known_parser)


class PromptHeader(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    version: str
    description: str = ""
    # single: one request per chunk (and variant, sample); entigraph / active-reading: the `first`
    # step's reply on a chunk gives the tasks (entity groups / study strategies) of the second step
    # spans: one request per answer span picked from the chunk (see strategies/spans.py)
    kind: Literal["single", "spans", "entigraph", "active-reading"] = "single"
    parser: str
    fields: list[str] = Field(default_factory=lambda: ["text"])
    temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: int = Field(1024, ge=1)
    samples: int = Field(1, ge=1)
    variants: list[str] = Field(default_factory=list)
    record: RecordTemplates
    completion: CompletionForm | None = None
    # for `augment plan`: expected completion tokens per chunk token (capped at max_tokens)
    expect_completion: float = Field(0.5, gt=0)
    # multi-step strategies only
    first: FirstStep | None = None
    budget_tokens: int | None = Field(None, ge=1, description="default token budget per document")
    max_items: int = Field(20, ge=1, description="most first-step items used (entities, study strategies)")
    cloze: bool = Field(
        False, description="spans: each span also gives a fill-in-the-blank question built from its sentence"
    )
    cloze_title: bool = Field(
        True,
        description="spans: the fill-in-the-blank question names the document ('... this sentence about "
        "Harrow Point: ...'); false leaves the name out, so the title is not tied to every answer",
    )
    wh: bool = Field(
        False, description="spans: each span also gives its sentence as a question asked in place, by rule"
    )
    front: bool = Field(
        False,
        description="spans: each span also gives a short question about the sentence's subject, "
        "its question word first ('Who directed Beginning?'), where the sentence's shape allows",
    )
    phrases: bool = Field(
        False,
        description="spans: also pick the object of a sentence's verb as an answer ('explored the "
        "mountains' -> 'the mountains', asked 'What did Tesla explore?'), not only names, dates and numbers",
    )
    definitions: bool = Field(
        False,
        description="spans: also pick what a definition says its subject is ('Sacramento is an American "
        "road film directed by ...' -> 'an American road film', asked 'What is Sacramento?')",
    )
    lists: bool = Field(
        False,
        description="spans: also pick each enumeration of three or more names whole ('starring A, B "
        "and C' -> 'A, B and C'); its names then get only fill-in-the-blank questions",
    )
    prepositions: bool = Field(
        False,
        description="spans: also pick the object of each preposition ('in case of cabin depressurization' "
        "-> 'cabin depressurization', 'saw the East as inferior' -> 'inferior')",
    )
    tight: bool = Field(
        False,
        description="spans: tighter answers: names joined by 'in', 'on', 'at' or 'and' are asked for one by "
        "one ('Continental Edison Company in France' -> 'Continental Edison Company', 'France'), a name "
        "keeps the number that ends it ('State Route 99', not '99'), a range of numbers and its unit is one "
        "answer ('8–15 per cell', '30 °C') and number words are numbers ('ten')",
    )
    chunks: bool = Field(
        False,
        description="spans: also pick each run of one to four content words between punctuation, function "
        "words and verbs ('works at constant pressure' -> 'constant pressure'): the common nouns and their "
        "adjectives that names, numbers and objects miss; raise max_items with it, or the cap leaves most out",
    )
    model_question: bool = Field(
        True,
        description="spans: keep the model's own question beside the rule-written ones; false keeps only "
        "the rule-written forms (cloze, wh, front). The request is still sent and cached, so a run with it "
        "off pairs record for record with one with it on",
    )
    group_sizes: list[int] = Field(
        default_factory=lambda: [2, 3], description="entigraph: pairs, then triples"
    )

    @field_validator("version", mode="before")
    @classmethod
    def _version_str(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int | float) else v

    _parser = field_validator("parser")(_known_parser)

    @model_validator(mode="after")
    def _steps(self) -> PromptHeader:
        if self.kind in ("single", "spans") and self.first is not None:
            raise ValueError("'first' is only for multi-step kinds (entigraph, active-reading)")
        if self.kind == "spans" and self.variants:
            raise ValueError("kind 'spans' takes no variants (its requests are the chunk's answer spans)")
        if self.kind not in ("single", "spans"):
            if self.first is None:
                raise ValueError(f"kind '{self.kind}' needs a 'first' step")
            if self.variants:
                raise ValueError(f"kind '{self.kind}' takes no variants (its tasks come from the first step)")
            if self.budget_tokens is None:
                raise ValueError(f"kind '{self.kind}' needs budget_tokens (tokens per document)")
        if self.kind == "spans" and not (self.model_question or self.cloze or self.wh or self.front):
            raise ValueError("model_question: false needs cloze, wh or front, or no question is ever kept")
        if not self.group_sizes or any(n < 1 for n in self.group_sizes):
            raise ValueError("group_sizes must list group sizes of 1 or more")
        return self


_VAR = re.compile(r"\{\{-?\s*([A-Za-z_]\w*)\s*-?\}\}")


class _Substitution:
    """A template made only of `{{ name }}` placeholders, rendered without Jinja's per-call setup.

    Record templates are rendered three times per item, so this path matters at thousands of
    replies per second; anything beyond plain names (filters, tags, comments) goes to Jinja.
    """

    def __init__(self, source: str):
        self.parts = _VAR.split(source)  # literal, name, literal, name, ..., literal

    def render(self, **ctx: Any) -> str:
        parts = self.parts
        out = [parts[0]]
        for i in range(1, len(parts), 2):
            name = parts[i]
            if name not in ctx:
                raise jinja2.UndefinedError(f"'{name}' is undefined")
            out.append(str(ctx[name]))
            out.append(parts[i + 1])
        return "".join(out)


def _compile(path: Path, source: str, what: str) -> jinja2.Template | _Substitution:
    try:
        template = _env.from_string(source)  # validates the syntax either way
    except jinja2.TemplateSyntaxError as e:
        raise ConfigError(f"{path}: {what} template error at line {e.lineno}: {e.message}") from None
    rest = _VAR.sub("", source)
    if "{{" in rest or "{%" in rest or "{#" in rest or "{{-" in source or "-}}" in source:
        return template
    return _Substitution(source)


def _render(path: Path, template: jinja2.Template | _Substitution, what: str, **ctx: Any) -> str:
    try:
        return template.render(**ctx).strip()
    except jinja2.UndefinedError as e:
        raise ConfigError(f"{path}: {what} uses an undefined name ({e.message})") from None


@dataclass
class Strategy:
    header: PromptHeader
    path: Path
    body: str
    document_block: str
    sha256: str
    example_document: tuple[str, str] = ("", "")  # (title, text) of _example.md, for completion style
    _templates: dict[str, jinja2.Template | _Substitution] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.header.name

    @property
    def version(self) -> str:
        return self.header.version

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.header.fields)

    def fields_for(self, chat: bool) -> tuple[str, ...]:
        form = self.header.completion
        return tuple(form.fields) if not chat and form is not None and form.fields else self.fields

    @cached_property
    def schema(self) -> dict[str, Any] | None:
        """JSON schema of a json_list reply, for servers with structured output.

        Structured output needs an object at the top level, so the list sits under "items"; the
        json_list parser reads both shapes.
        """
        if self.header.parser == "entities":
            return {
                "type": "object",
                "properties": {
                    "summary": {"type": "string"},
                    "entities": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["summary", "entities"],
                "additionalProperties": False,
            }
        if self.header.parser != "json_list":
            return None
        item = {
            "type": "object",
            "properties": {f: {"type": "string"} for f in self.fields},
            "required": list(self.fields),
            "additionalProperties": False,
        }
        return {
            "type": "object",
            "properties": {"items": {"type": "array", "items": item}},
            "required": ["items"],
            "additionalProperties": False,
        }

    @cached_property
    def _prompt_template(self) -> jinja2.Template | _Substitution:
        return _compile(self.path, self.document_block.rstrip() + "\n\n" + self.body.strip(), "prompt")

    def _template(self, what: str) -> jinja2.Template | _Substitution:
        if what not in self._templates:
            self._templates[what] = _compile(self.path, getattr(self.header.record, what), f"record.{what}")
        return self._templates[what]

    def render(self, chunk: Chunk, variant: str = "", context: dict[str, str] | None = None) -> str:
        return _render(
            self.path,
            self._prompt_template,
            "prompt",
            title=chunk.title,
            chunk=chunk.text,
            variant=variant,
            **(context or {}),
        )

    def _completion_template(self, what: str, source: str) -> jinja2.Template | _Substitution:
        key = f"completion.{what}"
        if key not in self._templates:
            self._templates[key] = _compile(self.path, source, key)
        return self._templates[key]

    def example_text(self) -> str:
        """Everything a few-shot prompt of this strategy shows the model besides the chunk: the
        example document and the worked answers (curate checks that records did not copy them)."""
        form = self.header.completion
        parts = list(self.example_document)
        if form is not None:
            parts += list(form.example.values()) if isinstance(form.example, dict) else [form.example]
            parts += list(form.example_vars.values())
        return "\n".join(parts)

    def render_completion(
        self, chunk: Chunk, variant: str = "", context: dict[str, str] | None = None
    ) -> tuple[str, str]:
        """(prompt, primer) in completion style; without a `completion` header, the chat prompt as text."""
        form = self.header.completion
        context = context or {}
        if form is None:
            return self.render(chunk, variant, context) + "\n\n", ""
        if isinstance(form.example, dict):
            if variant not in form.example:
                raise ConfigError(f"{self.path}: completion.example has no entry for variant '{variant}'")
            example = form.example[variant]
        else:
            example = form.example
        block = self._completion_template("document_block", self.document_block.rstrip())  # compiled once
        instruction = self._completion_template("instruction", form.instruction)
        ex_title, ex_text = self.example_document
        shot = "\n\n".join(
            [
                _render(self.path, block, "document block", title=ex_title, chunk=ex_text, variant=variant),
                _render(
                    self.path,
                    instruction,
                    "completion.instruction",
                    title=ex_title,
                    variant=variant,
                    **form.example_vars,
                ),
            ]
        )
        primer = _render(
            self.path,
            self._completion_template("primer", form.primer),
            "completion.primer",
            title=chunk.title,
            variant=variant,
            **context,
        )
        query = "\n\n".join(
            [
                _render(
                    self.path, block, "document block", title=chunk.title, chunk=chunk.text, variant=variant
                ),
                _render(
                    self.path,
                    instruction,
                    "completion.instruction",
                    title=chunk.title,
                    variant=variant,
                    **context,
                ),
            ]
        )
        prompt = f"{shot}\n{example.strip()}\n{SEPARATOR}\n\n{query}\n{primer}"
        return prompt, primer

    def build(
        self,
        chunk: Chunk,
        *,
        backend: str,
        model: str,
        seed: int,
        samples: int | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        style: str = "chat",
    ) -> list[GenRequest]:
        """One request per (variant, sample) of this chunk, in `style` chat or completion."""
        return [
            self.request(
                chunk,
                variant=variant,
                sample=sample,
                backend=backend,
                model=model,
                seed=seed,
                temperature=temperature,
                max_tokens=max_tokens,
                style=style,
                context=context,
            )
            for variant, context in self.variants_for(chunk)
            for sample in range(samples or self.header.samples)
        ]

    def count(self, chunk: Chunk, samples: int | None = None) -> int:
        """How many requests `build` makes for `chunk`, without rendering their prompts."""
        return len(self.variants_for(chunk)) * (samples or self.header.samples)

    def variants_for(self, chunk: Chunk) -> list[tuple[str, dict[str, str]]]:
        """(variant, template variables) of the requests for `chunk`: the header's variants."""
        return [(variant, {}) for variant in self.header.variants or [""]]

    def request(
        self,
        chunk: Chunk,
        *,
        variant: str,
        sample: int,
        backend: str,
        model: str,
        seed: int,
        temperature: float | None = None,
        max_tokens: int | None = None,
        style: str = "chat",
        context: dict[str, str] | None = None,
        step: str = "",
        strategy: str | None = None,
    ) -> GenRequest:
        """The request for one variant and sample of this chunk; `context` adds template variables."""
        chat = style == "chat"
        form = self.header.completion
        temperature = self.header.temperature if temperature is None else temperature
        if max_tokens is None:
            own = None if chat or form is None else form.max_tokens
            max_tokens = own or self.header.max_tokens
        if chat:
            prompt, primer, stop = self.render(chunk, variant, context), "", ()
        else:
            prompt, primer = self.render_completion(chunk, variant, context)
            stop = (*COMPLETION_STOP, *(form.stop if form else ()))
        parts: tuple[object, ...] = (backend, model, prompt, temperature, max_tokens, seed, sample)
        if not chat:
            parts += ("completion", primer, *stop)
        return GenRequest(
            key=sha256_hex("\x1f".join(map(str, parts))),
            prompt=prompt,
            temperature=temperature,
            max_tokens=max_tokens,
            seed=seed,
            strategy=strategy or self.name,
            parser=self.header.parser,
            fields=self.fields_for(chat),
            source=chunk.text,
            variant=variant,
            sample=sample,
            schema=self.schema if chat else None,
            chat=chat,
            primer=primer,
            stop=stop,
            step=step,
            context=dict(context or {}),
        )

    def parse(self, text: str, finish_reason: str = "stop", chat: bool = True, step: str = "") -> Parsed:
        """Items from a reply; a reply cut off by max_tokens loses its last, unfinished item or sentence."""
        try:
            parsed = PARSERS[self.header.parser](text, self.fields_for(chat))
        except ParseError:
            raise
        except Exception as e:  # a parser bug on odd input must not stop the run
            raise ParseError(f"parser {self.header.parser} failed: {type(e).__name__}") from e
        if finish_reason == "length":
            parsed = _drop_unfinished(parsed, self.header.parser, text)
        return parsed

    def parse_request(self, req: GenRequest, text: str, finish_reason: str) -> Parsed:
        """Items from the reply to `req` (its primer included): `parse`, plus what a kind needs of the request."""
        return self.parse(text, finish_reason, req.chat)

    def records(
        self,
        chunk: Chunk,
        req: GenRequest,
        result: GenResult,
        parsed: Parsed,
        *,
        backend: str,
        model: str,
        parents: list[dict[str, str]] | None = None,
    ) -> list[dict[str, Any]]:
        """Records from a parsed reply; `parents` names the earlier steps' requests it was built on."""
        out = []
        for i, item in enumerate(parsed.items):
            ctx = {"title": chunk.title, "variant": req.variant, **req.context, **item}
            user = _render(self.path, self._template("user"), "record.user", **ctx)
            assistant = _render(self.path, self._template("assistant"), "record.assistant", **ctx)
            out.append(
                {
                    "id": stable_id(chunk.chunk_id, self.name, self.version, req.variant, req.sample, i),
                    "doc_id": chunk.doc_id,
                    "chunk_id": chunk.chunk_id,
                    "span": [chunk.start, chunk.end],
                    "strategy": self.name,
                    "variant": req.variant,
                    "sample": req.sample,
                    "item": i,
                    "text": _render(self.path, self._template("text"), "record.text", **ctx),
                    "messages": [
                        {"role": "user", "content": user},
                        {"role": "assistant", "content": assistant},
                    ],
                    "fields": item,
                    "model": model,
                    "backend": backend,
                    "prompt": {"name": self.name, "version": self.version, "sha256": self.sha256},
                    "params": {
                        "temperature": req.temperature,
                        "max_tokens": req.max_tokens,
                        "seed": req.seed,
                    },
                    "finish_reason": result.finish_reason,
                    "usage": {
                        "prompt_tokens": result.usage.prompt_tokens,
                        "completion_tokens": result.usage.completion_tokens,
                    },
                    "request": req.key[:16],
                }
            )
            if req.step:
                out[-1]["step"] = req.step
                out[-1]["task"] = dict(req.context)
            if parents:
                out[-1]["parents"] = parents
        return out


_SENTENCE_END = re.compile(r"[.!?][\"')\]]?(?=\s|$)|\n")  # a sentence or a line (notes, dialogue)


def _drop_unfinished(parsed: Parsed, parser: str, text: str) -> Parsed:
    if parser != "text":
        tail = " ".join(list(parsed.items[-1].values())[-1].split())[-40:]
        if not " ".join(text.split()).endswith(tail):
            return parsed  # the unfinished end was no usable item: the parser has dropped it already
        if len(parsed.items) < 2:
            raise ParseError("reply cut off by max_tokens before its first item was finished")
        return Parsed(parsed.items[:-1], [*parsed.rejected, "last item cut off by max_tokens"])
    item = dict(parsed.items[0])
    name = next(iter(item))
    ends = [m.end() for m in _SENTENCE_END.finditer(item[name])]
    if not ends or ends[-1] < len(item[name]) // 2:
        raise ParseError("reply cut off by max_tokens mid-text")
    item[name] = item[name][: ends[-1]].rstrip()
    return Parsed([item], parsed.rejected)


def _read_prompt_file(path: Path) -> tuple[PromptHeader, str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read prompt file ({e})") from None
    m = _FRONT.match(text)
    if not m:
        raise ConfigError(f"{path}: prompt file must start with a '---' YAML header closed by '---'")
    try:
        raw = yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML header ({getattr(e, 'problem', e)})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the header must be a mapping of keys")
    try:
        header = PromptHeader(**raw)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(map(str, err["loc"])) or "header"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        raise ConfigError(f"{path}: header '{loc}': {msg}") from None
    if not m.group(2).strip():
        raise ConfigError(f"{path}: the instruction after the header is empty")
    return header, m.group(2), text


def discover_prompts(prompts_dir: Path | None = None) -> dict[str, Path]:
    """Strategy name -> prompt file; files in `prompts_dir` override built-ins of the same name."""
    found: dict[str, Path] = {}
    dirs = [builtin_prompts_dir()] + ([Path(prompts_dir)] if prompts_dir else [])
    for d in dirs:
        if not d.is_dir():
            raise ConfigError(f"{d}: prompts_dir is not a folder")
        for path in sorted(d.glob("*.md")):
            if not path.name.startswith("_"):
                found[path.stem] = path
    return found


def _document_block(prompts_dir: Path | None) -> tuple[Path, str]:
    for d in ([Path(prompts_dir)] if prompts_dir else []) + [builtin_prompts_dir()]:
        path = d / DOCUMENT_BLOCK
        if path.is_file():
            return path, path.read_text(encoding="utf-8")
    raise ConfigError(f"{DOCUMENT_BLOCK} is missing from the prompts folder")


def _example_document(prompts_dir: Path | None) -> tuple[str, str]:
    """(title, text) of the example document that completion-style prompts show first."""
    for d in ([Path(prompts_dir)] if prompts_dir else []) + [builtin_prompts_dir()]:
        path = d / EXAMPLE_DOCUMENT
        if path.is_file():
            raw = path.read_text(encoding="utf-8")
            m = _FRONT.match(raw)
            meta = yaml.safe_load(m.group(1)) if m else None
            if not m or not isinstance(meta, dict) or not meta.get("title") or not m.group(2).strip():
                raise ConfigError(f"{path}: needs a '---' YAML header with a title, then the document text")
            return str(meta["title"]), m.group(2).strip()
    raise ConfigError(f"{EXAMPLE_DOCUMENT} is missing from the prompts folder")


def load_strategy(path: Path, prompts_dir: Path | None = None) -> Strategy:
    header, body, text = _read_prompt_file(path)
    if header.name != path.stem:
        raise ConfigError(f"{path}: header name '{header.name}' must match the file name '{path.stem}'")
    block_path, block = _document_block(prompts_dir)
    # the example document is part of every completion-style prompt, hence of its request keys
    ex_title, ex_text = _example_document(prompts_dir)
    from augment.strategies.deep import DeepStrategy  # deep.py and spans.py build on this module
    from augment.strategies.spans import SpanStrategy

    cls = {"single": Strategy, "spans": SpanStrategy}.get(header.kind, DeepStrategy)
    strategy = cls(header, path, body, block, sha256_hex(block + "\x1f" + text), (ex_title, ex_text))
    parts = [strategy] + ([strategy.first] if isinstance(strategy, DeepStrategy) else [])
    for part in parts:
        _check_templates(part, path)
    return strategy


def _check_templates(strategy: Strategy, path: Path) -> None:
    """Fail at load time on a template syntax error or an inconsistent completion form, not mid-run."""
    for what in ("text", "user", "assistant"):
        strategy._template(what)
    _ = strategy._prompt_template
    header = strategy.header
    form = header.completion
    if form is not None:
        if form.fields and not set(form.fields) <= set(header.fields):
            raise ConfigError(f"{path}: completion.fields must be a subset of fields {header.fields}")
        missing = [v for v in header.variants if isinstance(form.example, dict) and v not in form.example]
        if missing or (isinstance(form.example, dict) and not header.variants):
            raise ConfigError(f"{path}: completion.example needs one entry per variant (missing: {missing})")


def load_strategies(names: list[str], prompts_dir: Path | None = None) -> list[Strategy]:
    available = discover_prompts(prompts_dir)
    missing = [n for n in names if n not in available]
    if missing:
        raise ConfigError(f"Unknown strategy '{missing[0]}'. Available: {', '.join(sorted(available))}")
    return [load_strategy(available[n], prompts_dir) for n in dict.fromkeys(names)]
