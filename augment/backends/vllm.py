"""vLLM in this process: batch generation on GPUs, with no server.

The runner hands every request of a run to this backend at once (its `concurrency` is unbounded);
`MicroBatcher` collects them and passes them to one `LLM.generate` (or `LLM.chat`) call, so vLLM
schedules the whole run itself: continuous batching, and prefix caching across the prompts of one
chunk, which share their document block. Replies are cached and written like any other backend's,
so a killed run resumes. Strategies with a JSON schema get guided (structured-output) decoding.
vLLM refuses a whole `generate` call when one prompt is longer than `context_tokens`, so each
prompt is counted first: one that leaves too little room fails alone, and `max_tokens` is lowered
to the room the others leave, as the local backend does.

vllm pins its own torch and transformers: install the `vllm` extra in an environment of its own,
not together with `train` (see the README).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from augment.backends.base import context_exceeded, cuda_available, reply_room, template_suffix
from augment.backends.batching import MicroBatcher, request_seed
from augment.config import RunConfig
from augment.errors import AugmentError, BackendError
from augment.models import GEMMA_ALIAS, resolve_model
from augment.types import GenRequest, GenResult, Usage


class VLLMBackend:
    name: ClassVar[str] = "vllm"
    retry_wait: ClassVar[float] = 0.0
    concurrency = 1_000_000  # every request at once: vLLM does the scheduling

    def __init__(
        self,
        llm: Any,
        model: str,
        vllm: Any,
        context_tokens: int | None = None,
        template_kwargs: dict[str, Any] | None = None,
    ):
        self.llm = llm
        self._model = model
        self._vllm = vllm
        self._tokenizer = llm.get_tokenizer()
        self._chat = getattr(self._tokenizer, "chat_template", None) is not None
        self.context_tokens = context_tokens
        self.template_kwargs = dict(template_kwargs or {})  # the chat template's variables
        self.batcher = MicroBatcher(self._run, max_batch=self.concurrency)

    @classmethod
    def from_config(cls, config: RunConfig) -> VLLMBackend:
        try:
            import vllm
        except ImportError:
            raise AugmentError(
                "the vllm backend needs vllm on a CUDA machine: pip install 'augment[vllm]' in an environment "
                "without the train extra (or use --backend local on a CPU)"
            ) from None
        if not cuda_available():
            raise AugmentError(
                "the vllm backend needs a CUDA GPU and none is visible: use --backend local on a CPU"
            )
        path = resolve_model(config.model or GEMMA_ALIAS, config.trust_remote_code)
        llm = vllm.LLM(
            model=path,
            enable_prefix_caching=True,
            seed=config.seed,
            max_model_len=config.context_tokens,
            gpu_memory_utilization=config.gpu_memory_utilization,
            tensor_parallel_size=config.tensor_parallel_size,
            trust_remote_code=config.trust_remote_code,
        )
        return cls(llm, config.model or GEMMA_ALIAS, vllm, config.context_tokens, config.chat_template_kwargs)

    @property
    def model(self) -> str:
        return self._model

    @property
    def identity(self) -> str:
        return f"{self.name}{template_suffix(self.template_kwargs)}"

    @property
    def chat(self) -> bool:
        return self._chat

    def _params(self, req: GenRequest, max_tokens: int) -> Any:
        options: dict[str, Any] = {
            "temperature": req.temperature,
            "max_tokens": max_tokens,
            "seed": request_seed(req),
            "stop": list(req.stop) or None,
        }
        if req.schema is not None and req.chat:
            from vllm.sampling_params import StructuredOutputsParams

            options["structured_outputs"] = StructuredOutputsParams(json=req.schema)
        return self._vllm.SamplingParams(**options)

    def prompt_tokens(self, reqs: list[GenRequest], chat: bool) -> list[int | None]:
        """Each prompt's tokens as vLLM reads it (through the chat template where `chat`), counted
        in one batch (a fast tokenizer spreads it over the cores); None where the tokenizer cannot
        say (vLLM then judges the prompts itself)."""
        if not reqs or not self.context_tokens:
            return [None] * len(reqs)
        try:
            if chat:
                conversations = [[{"role": "user", "content": r.prompt}] for r in reqs]
                ids = self._tokenizer.apply_chat_template(
                    conversations, add_generation_prompt=True, tokenize=True, **self.template_kwargs
                )
            else:
                ids = self._tokenizer([r.prompt for r in reqs])
            if isinstance(ids, Mapping):
                ids = ids["input_ids"]
            return [len(x) for x in ids]
        except Exception:  # tokenizers differ (a Mistral one, a template that wants a system turn)
            return [None] * len(reqs)

    def _fit(self, req: GenRequest, n: int | None) -> int | BackendError:
        """max_tokens for `req`, whose prompt is `n` tokens, within context_tokens; or its failure
        when the prompt leaves too little room (vLLM would refuse the whole batch for it)."""
        if n is None or not self.context_tokens:
            return req.max_tokens
        room = reply_room(self.context_tokens, n, req.max_tokens)
        if room is None:
            return context_exceeded(
                f"context_tokens={self.context_tokens}", "lower chunk_tokens or raise context_tokens"
            )
        return room

    def _run(self, reqs: list[GenRequest]) -> list[GenResult | BaseException]:
        results: list[GenResult | BaseException | None] = [None] * len(reqs)
        chat: list[tuple[int, int]] = []  # (index, max_tokens) of each request to send
        text: list[tuple[int, int]] = []
        for as_chat, send in ((True, chat), (False, text)):
            idx = [i for i, r in enumerate(reqs) if (r.chat and self._chat) == as_chat]
            counts = self.prompt_tokens([reqs[i] for i in idx], as_chat)
            for i, n in zip(idx, counts, strict=True):
                fit = self._fit(reqs[i], n)
                if isinstance(fit, BackendError):
                    results[i] = fit
                else:
                    send.append((i, fit))
        outputs: dict[int, Any] = {}
        if text:
            outs = self.llm.generate(
                [reqs[i].prompt for i, _ in text], [self._params(reqs[i], m) for i, m in text], use_tqdm=False
            )
            outputs.update(zip((i for i, _ in text), outs, strict=True))
        if chat:
            outs = self.llm.chat(
                [[{"role": "user", "content": reqs[i].prompt}] for i, _ in chat],
                [self._params(reqs[i], m) for i, m in chat],
                use_tqdm=False,
                **({"chat_template_kwargs": self.template_kwargs} if self.template_kwargs else {}),
            )
            outputs.update(zip((i for i, _ in chat), outs, strict=True))
        for i, out in outputs.items():
            completion = out.outputs[0]
            results[i] = GenResult(
                text=completion.text,
                finish_reason=completion.finish_reason or "stop",
                usage=Usage(len(out.prompt_token_ids or ()), len(completion.token_ids)),
            )
        return results  # type: ignore[return-value]  # every slot is filled

    async def generate(self, req: GenRequest) -> GenResult:
        return await self.batcher.submit(req)

    async def aclose(self) -> None:
        return None
