"""Run configuration: one flat, validated set of keys shared by the config file and the flags.

Precedence: built-in defaults < config file (TOML or YAML) < command-line flags.
"""

from __future__ import annotations

import difflib
import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from augment.errors import ConfigError

DEFAULT_STRATEGIES = ["qa", "paraphrase", "inferences", "notes"]


def split_commas(v: Any) -> Any:
    """'a,b' or ['a,b', 'c'] -> ['a', 'b', 'c'] (flags and config keys that take lists); other values as given."""
    if isinstance(v, str):
        v = [v]
    if isinstance(v, list | tuple):
        return [p.strip() for item in v for p in str(item).split(",") if p.strip()]
    return v


# Request fields the openai backend sets itself; `extra_body` may add others, not change these.
EXTRA_BODY_RESERVED = frozenset(
    {"model", "messages", "prompt", "stream", "n", "max_tokens", "max_completion_tokens", "temperature"}
    | {"seed", "stop", "response_format", "echo", "logprobs"}
)


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # ingest
    glob: list[str] | None = Field(None, description="file patterns to read inside a folder")
    text_field: str = Field("text", description="text field of .jsonl/.parquet rows, .csv/.tsv column")
    title_field: str = Field("title", description="title field of .jsonl/.parquet rows, .csv/.tsv column")
    read_workers: int | None = Field(
        None,
        ge=1,
        le=256,
        description="processes reading PDF, Office, EPUB, HTML and reST files (command line default: cores, up to 8)",
    )
    tokenizer: str = Field("approx", description="'approx' or 'hf:PATH' to a tokenizer.json")
    chunk_tokens: int = Field(512, ge=16, le=100_000)
    chunk_overlap: int = Field(64, ge=0)
    # generation
    backend: str = Field(
        "auto",
        description="auto | local | vllm | openai | mock (auto: openai if $OPENAI_BASE_URL, vllm on a GPU, else local)",
    )
    model: str | None = None
    prompt_style: Literal["auto", "chat", "completion"] = Field(
        "auto",
        description="chat prompts, or few-shot completion prompts for base models (auto: from the model)",
    )
    strategies: list[str] = Field(default_factory=lambda: list(DEFAULT_STRATEGIES))
    prompts_dir: Path | None = Field(None, description="extra prompt files; override built-ins by name")
    samples: int | None = Field(
        None, ge=1, le=1000, description="samples per request (overrides prompt files)"
    )
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    seed: int = 0
    concurrency: int = Field(64, ge=1, le=10_000)
    max_retries: int = Field(5, ge=0, le=100)
    max_parse_retries: int = Field(2, ge=0, le=20, description="re-asks after a reply no parser accepts")
    rpm: float | None = Field(None, gt=0, description="requests-per-minute limit")
    tpm: float | None = Field(
        None, gt=0, description="tokens-per-minute limit (prompt + max_tokens, estimated)"
    )
    max_requests: int | None = Field(None, ge=0, description="budget: new (uncached) model requests per run")
    max_tokens_total: int | None = Field(None, ge=0, description="budget: prompt + completion tokens per run")
    budget_tokens: int | None = Field(
        None, ge=1, description="entigraph/active-reading: tokens each may spend (default: its prompt file's)"
    )
    budget_scope: Literal["document", "corpus"] = Field(
        "document", description="budget_tokens per document or for the whole corpus"
    )
    price_prompt_per_m: float | None = Field(None, ge=0, description="price per million prompt tokens")
    price_completion_per_m: float | None = Field(
        None, ge=0, description="price per million completion tokens"
    )
    # openai backend
    base_url: str | None = Field(
        None, description="OpenAI-compatible server (default: $OPENAI_BASE_URL or OpenAI)"
    )
    api_key_env: str = Field("OPENAI_API_KEY", description="environment variable that holds the API key")
    endpoint: Literal["chat", "completions"] = "chat"
    http_client: Literal["aiohttp", "sdk"] = Field("aiohttp", description="aiohttp (fast) or the openai SDK")
    structured_output: Literal["auto", "on", "off"] = "auto"
    request_timeout: float = Field(600.0, gt=0, description="seconds per request")
    batch_api: bool = Field(
        False,
        description="send requests through the server's Batch API (OpenAI: half the price, replies "
        "within 24 h); a re-run waits for batches already sent instead of sending them again",
    )
    batch_requests: int = Field(
        50_000, ge=1, le=50_000, description="batch_api: most requests in one batch (OpenAI takes 50,000)"
    )
    batch_poll: float = Field(30.0, gt=0, description="batch_api: seconds between checks of a batch")
    batches_at_once: int = Field(
        4,
        ge=1,
        le=64,
        description="batch_api: most batches out at a time (fewer where the server's queue is full)",
    )
    check_model: bool = Field(True, description="check --model against the server's model list first")
    extra_body: dict[str, Any] = Field(
        default_factory=dict,
        description="fields added to every request (e.g. chat_template_kwargs, reasoning_effort, top_k)",
    )
    chat_template_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="variables for the model's chat template, e.g. {enable_thinking = false} (Qwen3): "
        "vllm, local with a transformers folder, and servers that take them (vLLM, SGLang, llama-server)",
    )
    # local and vllm backends (in-process models)
    threads: int | None = Field(None, ge=1, description="local backend: CPU threads (default: all cores)")
    context_tokens: int = Field(4096, ge=256, description="local/vllm: context window to allocate")
    lora: Path | None = Field(
        None,
        description="local backend with a GGUF model: a LoRA adapter GGUF (augment gguf --adapter) "
        "applied to it",
    )
    local_batch_size: int = Field(
        8, ge=1, le=4096, description="local backend with a transformers model: batch size"
    )
    device: str = Field("auto", description="local backend with a transformers model: auto | cpu | cuda[:N]")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="vllm: share of GPU memory to use")
    tensor_parallel_size: int = Field(1, ge=1, description="vllm: GPUs per model")
    trust_remote_code: bool = Field(False, description="local/vllm: run a model folder's own code")
    mock_fail_rate: float = Field(0.0, ge=0, le=1, description="mock backend: fraction of calls that fail")
    mock_malformed_rate: float = Field(
        0.0, ge=0, le=1, description="mock backend: fraction of malformed replies"
    )
    # curate (see augment/curate): each step can be turned off; thresholds here
    curate: bool = True
    decontaminate: list[Path] = Field(
        default_factory=list, description="JSONL eval files whose questions must not leak"
    )
    decontaminate_ngram: int = Field(13, ge=4, le=100)
    decontaminate_answers: bool = Field(
        False,
        description="match the eval file's answers too, not only its questions (a long gold answer is "
        "often a sentence of the documents themselves: every record quoting it would be dropped)",
    )
    min_record_tokens: int = Field(3, ge=0)
    max_record_tokens: int = Field(4096, ge=1)
    boilerplate_filter: bool = True
    repetition_filter: bool = Field(
        True, description="drop records that repeat themselves (a model in a loop)"
    )
    repetition_max_share: float = Field(
        0.2, ge=0, lt=1, description="share of a record's words that may lie in repeated word 8-grams"
    )
    copy_filter: bool = True
    copy_ngram: int = Field(8, ge=2, le=50)
    copy_threshold: float = Field(
        0.5, gt=0, le=1, description="n-gram containment in the source that counts as a copy"
    )
    copy_exempt: list[str] = Field(
        default_factory=lambda: ["qa"],
        description="strategies that may quote their source (strategies of kind spans always may)",
    )
    example_filter: bool = Field(
        True, description="drop records naming what only the prompt's few-shot example contains"
    )
    grounding: bool = True
    grounding_min_score: float = Field(90.0, ge=0, le=100)
    unsupported_filter: bool = Field(
        True, description="drop records whose names and numbers are mostly not in their source"
    )
    unsupported_max_share: float = Field(
        0.2, ge=0, lt=1, description="share of a record's names and numbers that may be unsupported"
    )
    unsupported_exempt: list[str] = Field(
        default_factory=list, description="strategies whose records may bring in outside names"
    )
    conflict_filter: bool = Field(
        False,
        description="drop every QA record of a question that one document's records answer in two ways",
    )
    exact_dedup: bool = True
    near_dedup: bool = True
    near_threshold: float = Field(0.8, gt=0, le=1)
    near_ngram: int = Field(5, ge=1, le=50)
    near_num_perm: int = Field(128, ge=16, le=1024)
    near_bands: int = Field(16, ge=1, le=512)
    semantic_dedup: bool = Field(False, description="embedding-based dedup (extra 'semantic')")
    semantic_threshold: float = Field(
        0.95, gt=0, le=1, description="cosine similarity that counts as a repeat"
    )
    semantic_scope: Literal["document", "corpus"] = "document"
    judge: bool = False
    judge_model: str | None = None
    judge_min_faithfulness: int = Field(4, ge=1, le=5)
    judge_min_usefulness: int = Field(3, ge=1, le=5)
    # export
    export: bool = True
    format: Literal["cpt", "chat"] = "cpt"
    file_formats: list[Literal["jsonl", "parquet"]] = Field(default_factory=lambda: ["jsonl", "parquet"])
    val_fraction: float = Field(0.05, ge=0, lt=1)
    shard_mb: float = Field(256.0, gt=0)

    @field_validator(
        "strategies",
        "glob",
        "file_formats",
        "copy_exempt",
        "unsupported_exempt",
        "decontaminate",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, v: Any) -> Any:
        return split_commas(v)

    @field_validator("extra_body")
    @classmethod
    def _extra_body(cls, v: dict[str, Any]) -> dict[str, Any]:
        own = sorted(set(v) & EXTRA_BODY_RESERVED)
        if own:
            raise ValueError(
                f"sets '{own[0]}', which augment sets itself from the prompt files and flags;"
                f" extra_body is for fields it does not send"
            )
        try:
            json.dumps(v)
        except (TypeError, ValueError) as e:
            raise ValueError(f"is not JSON ({e})") from None
        return v

    @field_validator("chat_template_kwargs")
    @classmethod
    def _template_kwargs(cls, v: dict[str, Any]) -> dict[str, Any]:
        try:
            json.dumps(v)
        except (TypeError, ValueError) as e:
            raise ValueError(f"is not JSON ({e})") from None
        return v

    @model_validator(mode="after")
    def _check(self) -> RunConfig:
        if self.chat_template_kwargs and "chat_template_kwargs" in self.extra_body:
            raise ValueError("chat_template_kwargs is set twice, alone and in extra_body: keep one")
        if self.chunk_overlap >= self.chunk_tokens:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_tokens ({self.chunk_tokens})"
            )
        if not self.strategies:
            raise ValueError("strategies is empty: name at least one (see 'augment strategies')")
        if not self.file_formats:
            raise ValueError("file_formats is empty: use jsonl, parquet or both")
        if self.near_num_perm % self.near_bands:
            raise ValueError(
                f"near_num_perm ({self.near_num_perm}) must be a multiple of near_bands ({self.near_bands})"
            )
        return self


KEYS = tuple(RunConfig.model_fields)


def _describe(
    err: dict[str, Any], source: str, keys: tuple[str, ...] = KEYS, flags: Mapping[str, str] | None = None
) -> str:
    loc = ".".join(str(p) for p in err["loc"]) or "config"
    if err["type"] == "extra_forbidden":
        close = difflib.get_close_matches(str(err["loc"][0]), keys, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else f" (known keys: {', '.join(keys)})"
        return f"{source}: unknown key '{loc}'{hint}"
    got = err.get("input")
    got_s = f", got {got!r}" if not isinstance(got, dict | list) else ""
    msg = err["msg"].removeprefix("Value error, ")
    if not err["loc"]:  # a rule across keys; from flags alone there is no file to name
        return msg if source == "flags" else f"{source}: {msg}"
    if flags and str(err["loc"][0]) in flags:  # a flag's value: name the flag, not the file
        return f"{flags[str(err['loc'][0])]}: {msg[0].lower() + msg[1:]}{got_s}"
    return f"{source}: '{loc}' {msg[0].lower() + msg[1:]}{got_s}"


def build_config(
    values: dict[str, Any],
    source: str = "config",
    model: type[BaseModel] | None = None,
    flags: Mapping[str, str] | None = None,
) -> Any:
    """Validate `values` into a RunConfig (or `model`); the first problem becomes a one-line ConfigError.

    `flags` maps the keys that came from the command line to their flags, so that a bad value
    given as a flag is reported against the flag rather than against `source` (the config file).
    """
    model = model or RunConfig
    values = {k.replace("-", "_"): v for k, v in values.items()}
    try:
        return model(**values)
    except ValidationError as e:
        raise ConfigError(_describe(e.errors()[0], source, tuple(model.model_fields), flags)) from None


def given_flags(overrides: Mapping[str, Any], names: Mapping[str, str] | None = None) -> dict[str, str]:
    """The flags among `overrides` that were given (not None), keyed by config key: `--key-name`
    (`val_fraction` -> `--val-fraction`) unless `names` says otherwise."""
    names = names or {}
    return {k: names.get(k, "--" + k.replace("_", "-")) for k, v in overrides.items() if v is not None}


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML or YAML config file into a dict of keys (paths resolved next to the file)."""
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        else:
            raise ConfigError(f"{path}: config must be .toml, .yaml or .yml")
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: invalid YAML{where}: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a table of keys, got {type(data).__name__}")
    data = {str(k).replace("-", "_"): v for k, v in data.items()}
    if isinstance(data.get("prompts_dir"), str):
        data["prompts_dir"] = str((path.parent / data["prompts_dir"]).resolve())
    if isinstance(data.get("decontaminate"), list):
        data["decontaminate"] = [
            str((path.parent / p).resolve()) for p in data["decontaminate"] if isinstance(p, str)
        ]
    return data


def load_config(
    path: Path | None = None,
    overrides: dict[str, Any] | None = None,
    flag_names: Mapping[str, str] | None = None,
) -> RunConfig:
    """Defaults < file < overrides (flags; None values mean 'not given').

    `flag_names` names the flag of an override whose flag is not `--key` (`--judge-model`).
    """
    values: dict[str, Any] = {}
    if path is not None:
        values.update(read_config_file(path))
        build_config(values, str(path))  # report file problems against the file
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    flags = given_flags(overrides or {}, flag_names)
    return build_config(values, str(path) if path else "flags", flags=flags)
