"""Training settings: one flat, validated set of keys shared by `augment train`'s flags and its config file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


def step_list(text: str) -> list[int]:
    """'24, 48' -> [24, 48]; a ValueError naming the text when it is not a list of whole numbers."""
    try:
        return [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise ValueError(f"snapshot_steps: {text!r} is not a comma-separated list of steps") from None


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    shards: Path = Field(description="RUN/shards folder written by 'augment export' (has manifest.json)")
    model: str = Field(
        description="base model: a local folder, a name in the local Hugging Face cache, or a .gguf"
    )
    output: Path = Field(description="checkpoint folder to write")
    method: Literal["lora", "full"] = "lora"
    epochs: float = Field(3.0, gt=0)
    max_steps: int | None = Field(
        None, ge=1, description="stop after this many optimizer steps (overrides epochs)"
    )
    lr: float | None = Field(None, gt=0, description="learning rate (default 2e-4 for LoRA, 2e-5 for full)")
    max_seq_len: int = Field(1024, ge=16)
    batch_size: int = Field(8, ge=1, description="sequences per device per step")
    grad_accum: int = Field(1, ge=1)
    micro_batch: int | None = Field(
        None,
        ge=1,
        description="sequences per forward pass, a divisor of batch_size; the step's batch is their "
        "accumulated gradient (default: the most that fit in the memory free)",
    )
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    scheduler: str = "cosine"
    seed: int = 0
    # replay (EntiGraph mixes raw data back in to limit forgetting)
    replay: float = Field(
        0.0, ge=0, lt=1, description="share of training tokens from the raw source documents"
    )
    replay_corpus: Path | None = Field(None, description="JSONL of generic text ({'text'}) to replay too")
    replay_title: bool = Field(
        False, description="open each replayed document with its title line, so its facts name their subject"
    )
    replay_shuffle: bool = Field(
        False,
        description="replay every copy of a document after the first with its sentences in a new order "
        "(each fact in other surroundings: knowledge augmentation, as in Allen-Zhu and Li's Physics of "
        "Language Models 3.1)",
    )
    answers_only: bool = Field(
        False,
        description="cpt shards: train question-answer records ('Question: ...\\nAnswer: ...') on the "
        "answer's tokens only, as closed-book QA asks them; other records and replay on every token",
    )
    # LoRA
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    lora_targets: str = Field("all-linear", description="'all-linear' or comma-separated module names")
    merge: bool = Field(False, description="LoRA: write merged full weights (adapter kept in OUTPUT/adapter)")
    # hardware
    bf16: Literal["auto", "on", "off"] = "auto"
    gradient_checkpointing: Literal["auto", "on", "off"] = "auto"
    # checkpoints
    save_steps: int = Field(200, ge=1)
    resume: bool = Field(True, description="continue from the last checkpoint in OUTPUT/checkpoints")
    keep_checkpoints: bool = False
    overwrite: bool = Field(
        False, description="train again into an OUTPUT that holds a finished run with other settings"
    )
    snapshot_steps: list[int] = Field(
        default_factory=list,
        description="also write the weights at these optimizer steps to OUTPUT/step-N, loadable like "
        "the final checkpoint (a learning curve from one run; '24,48' or a list)",
    )
    logging_steps: int = Field(10, ge=1)
    trust_remote_code: bool = False

    @field_validator("snapshot_steps", mode="before")
    @classmethod
    def _steps_list(cls, v: object) -> object:
        return step_list(v) if isinstance(v, str) else v

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.merge and self.method != "lora":
            raise ValueError("merge only applies to --method lora")
        if (self.replay_title or self.replay_shuffle) and self.replay == 0:
            raise ValueError(
                "replay_title and replay_shuffle shape the replayed documents: they need --replay > 0"
            )
        if self.micro_batch is not None and self.batch_size % self.micro_batch:
            raise ValueError(f"micro_batch {self.micro_batch} does not divide batch_size {self.batch_size}")
        for step in self.snapshot_steps:
            if step < 1:
                raise ValueError(f"snapshot_steps: step {step} is not a training step (they start at 1)")
            if self.max_steps is not None and step >= self.max_steps:
                raise ValueError(
                    f"snapshot_steps: step {step} is not before max_steps {self.max_steps} "
                    "(the final weights are OUTPUT itself)"
                )
        self.snapshot_steps = sorted(set(self.snapshot_steps))
        return self

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (2e-4 if self.method == "lora" else 2e-5)
