"""vLLM in this process: batch generation on GPUs, with no server.

The runner hands every request of a run to this backend at once (its `concurrency` is unbounded);
`MicroBatcher` collects them and passes them to one `LLM.generate` (or `LLM.chat`) call, so vLLM
schedules the whole run itself: continuous batching, and prefix caching across the prompts of one
chunk, which share their document block. Replies are cached and written like any other backend's,
so a killed run resumes. Strategies with a JSON schema get guided (structured-output) decoding.

vllm pins its own torch and transformers: install the `vllm` extra in an environment of its own,
not together with `train` (see the README).
"""

from __future__ import annotations

from typing import Any, ClassVar

from augment.backends.base import cuda_available
from augment.backends.batching import MicroBatcher, request_seed
from augment.config import RunConfig
from augment.errors import AugmentError
from augment.models import GEMMA_ALIAS, resolve_model
from augment.types import GenRequest, GenResult, Usage


class VLLMBackend:
    name: ClassVar[str] = "vllm"
    retry_wait: ClassVar[float] = 0.0
    concurrency = 1_000_000  # every request at once: vLLM does the scheduling

    def __init__(self, llm: Any, model: str, vllm: Any):
        self.llm = llm
        self._model = model
        self._vllm = vllm
        self._chat = getattr(llm.get_tokenizer(), "chat_template", None) is not None
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
        return cls(llm, config.model or GEMMA_ALIAS, vllm)

    @property
    def model(self) -> str:
        return self._model

    @property
    def identity(self) -> str:
        return self.name

    @property
    def chat(self) -> bool:
        return self._chat

    def _params(self, req: GenRequest) -> Any:
        options: dict[str, Any] = {
            "temperature": req.temperature,
            "max_tokens": req.max_tokens,
            "seed": request_seed(req),
            "stop": list(req.stop) or None,
        }
        if req.schema is not None and req.chat:
            from vllm.sampling_params import StructuredOutputsParams

            options["structured_outputs"] = StructuredOutputsParams(json=req.schema)
        return self._vllm.SamplingParams(**options)

    def _run(self, reqs: list[GenRequest]) -> list[GenResult]:
        chat = [i for i, r in enumerate(reqs) if r.chat and self._chat]
        text = [i for i, r in enumerate(reqs) if not (r.chat and self._chat)]
        outputs: dict[int, Any] = {}
        if text:
            outs = self.llm.generate(
                [reqs[i].prompt for i in text], [self._params(reqs[i]) for i in text], use_tqdm=False
            )
            outputs.update(zip(text, outs, strict=True))
        if chat:
            outs = self.llm.chat(
                [[{"role": "user", "content": reqs[i].prompt}] for i in chat],
                [self._params(reqs[i]) for i in chat],
                use_tqdm=False,
            )
            outputs.update(zip(chat, outs, strict=True))
        results = []
        for i in range(len(reqs)):
            completion = outputs[i].outputs[0]
            results.append(
                GenResult(
                    text=completion.text,
                    finish_reason=completion.finish_reason or "stop",
                    usage=Usage(len(outputs[i].prompt_token_ids or ()), len(completion.token_ids)),
                )
            )
        return results

    async def generate(self, req: GenRequest) -> GenResult:
        return await self.batcher.submit(req)

    async def aclose(self) -> None:
        return None
