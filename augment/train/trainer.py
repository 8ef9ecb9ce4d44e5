"""`augment train`: fine-tune a causal LM on the shards with TRL's SFTTrainer (LoRA via peft, or full).

The trainer does what transformers and TRL already do well — packing, chat templates with loss on
the assistant turns, gradient accumulation, bf16, gradient checkpointing, checkpoints, resuming,
multi-GPU under accelerate/torchrun — and augment adds the data (shards + replay), sensible
defaults for CPU and GPU, a progress line with loss and tokens/s, and train.json.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from augment.errors import AugmentError
from augment.io import sha256_file, write_json
from augment.models import resolve_model
from augment.train.args import TrainConfig
from augment.train.data import load_training_data, read_manifest, shards_fingerprint

_INSTALL = "pip install 'augment[train]' (after a torch build for your machine, e.g. pip install torch==2.13.0 on CPU)"


@dataclass
class TrainResult:
    output: Path
    steps: int
    tokens: int
    seconds: float
    final_loss: float | None
    eval_loss: float | None
    resumed_from: str | None
    loss_curve: list[dict[str, Any]] = field(default_factory=list)
    model: Any = None  # the trained model, in memory
    format: str = ""  # the shards' format: cpt or chat
    rows: int = 0  # training rows, replay included
    answer_only_rows: int = 0  # of which trained on their answer only (--answers-only)
    already_trained: bool = False  # OUTPUT held this run, finished: nothing was trained


# what a run's train.json records but does not decide its weights: where things are, how the run is
# watched, saved and resumed, and how each step is computed (its batch split into passes, its
# activations kept or recomputed: the same step)
_BOOKKEEPING = frozenset(
    {
        "output", "shards", "resume", "keep_checkpoints", "logging_steps", "save_steps", "micro_batch",
        "gradient_checkpointing", "overwrite",
    }
)  # fmt: skip


def _same_setting(key: str, before: Any, now: Any) -> bool:
    if before == now:
        return True
    if key == "bf16" and isinstance(before, bool):  # train.json holds what "auto" resolved to
        return now == "auto" or (now == "on") == before
    if key in ("model", "replay_corpus") and isinstance(before, str) and isinstance(now, str):
        a, b = Path(before).expanduser(), Path(now).expanduser()  # the same file, named otherwise
        return a.exists() and b.exists() and a.resolve() == b.resolve()
    return False


def finished_run(cfg: TrainConfig) -> TrainResult | None:
    """The finished run in cfg.output when it was trained as cfg asks (nothing to do), from its
    train.json; None when there is none, or with --overwrite (its train.json is removed, so a run
    killed from here on resumes as any other); an error naming the settings that differ otherwise:
    a finished checkpoint is not trained over by a command that asks for another."""
    path = cfg.output / "train.json"
    if not path.is_file():
        return None
    if cfg.overwrite:
        path.unlink()
        return None
    try:
        done = json.loads(path.read_text())
        stored = dict(done.get("hyperparameters") or {})
    except (OSError, ValueError, AttributeError, TypeError) as e:
        raise AugmentError(f"{path}: cannot read it ({e}); --overwrite trains again over it") from None
    diffs = []
    for key, now in cfg.model_dump(mode="json").items():
        if key in _BOOKKEEPING:
            continue
        # a run from before a setting existed was trained with its default
        default = TrainConfig.model_fields[key].get_default(call_default_factory=True)
        before = stored.get(key, default)
        if not _same_setting(key, before, now):
            diffs.append(f"{key} {before} -> {now}")
    manifest = cfg.shards / "manifest.json"
    if manifest.is_file():
        if done.get("shards_sha256"):
            other = done["shards_sha256"] != shards_fingerprint(read_manifest(cfg.shards))
        else:  # a run from before shards_sha256 was recorded: the manifest it read, byte for byte
            other = done.get("manifest_sha256") not in (None, sha256_file(manifest))
        if other:
            diffs.append(f"the shards ({manifest} lists other files than the run trained on)")
    if diffs:
        raise AugmentError(
            f"{cfg.output}: holds a finished training run with other settings ({'; '.join(diffs)}); "
            "name another --output, or --overwrite to train over it"
        )
    curve = list(done.get("loss_curve") or [])
    return TrainResult(
        output=cfg.output,
        steps=int(done.get("steps") or 0),
        tokens=int(done.get("tokens_seen") or 0),
        seconds=0.0,
        final_loss=curve[-1]["loss"] if curve else None,
        eval_loss=done.get("eval_loss"),
        resumed_from=None,
        loss_curve=curve,
        format=str(done.get("format") or ""),
        rows=int(done.get("train_rows") or 0),
        answer_only_rows=int(done.get("answer_only_rows") or 0),
        already_trained=True,
    )


def _imports():
    try:
        import torch
        import transformers
        import trl
    except ImportError as e:
        raise AugmentError(f"augment train needs {e.name}: {_INSTALL}") from None
    return torch, transformers, trl


def _progress_callback(transformers: Any, on_log: Callable[[dict[str, Any]], None]):
    class Progress(transformers.TrainerCallback):
        """Loss and tokens/s at every log step (TRL counts `num_tokens`)."""

        def __init__(self) -> None:
            self.t0 = time.monotonic()
            self.tokens0: float | None = None

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or "loss" not in logs:
                return
            tokens = float(logs.get("num_input_tokens_seen", logs.get("num_tokens", 0)))
            if self.tokens0 is None:  # first log of this process (a resumed run starts mid-way)
                self.tokens0, self.t0 = tokens, time.monotonic()
                rate = None
            else:
                rate = (tokens - self.tokens0) / max(time.monotonic() - self.t0, 1e-9)
            on_log(
                {
                    "step": state.global_step,
                    "max_steps": state.max_steps,
                    "loss": float(logs["loss"]),
                    "tokens": int(tokens),
                    "tokens_per_s": rate,
                    "epoch": logs.get("epoch"),
                }
            )

    return Progress()


def _save_weights(model: Any, tokenizer: Any, dest: Path, cfg: TrainConfig, copy: bool = False) -> Any:
    """Write `model` the way the final checkpoint is written: full weights, or the LoRA adapter, or
    with --merge the merged weights (adapter in dest/adapter); returns the model written. `copy`
    merges a copy, so training can go on with the adapter."""
    import copy as copy_

    dest.mkdir(parents=True, exist_ok=True)
    written = model
    if cfg.method == "lora" and cfg.merge:
        model.save_pretrained(dest / "adapter", safe_serialization=True)
        written = (copy_.deepcopy(model) if copy else model).merge_and_unload()
    written.save_pretrained(dest, safe_serialization=True)
    tokenizer.save_pretrained(dest)
    return written


def _snapshot_callback(transformers: Any, cfg: TrainConfig, tokenizer: Any):
    class Snapshots(transformers.TrainerCallback):
        """The weights at cfg.snapshot_steps, in OUTPUT/step-N (written whole, then renamed)."""

        def on_train_begin(self, args, state, control, **kwargs):
            # with --epochs the run's length is known only now
            late = [n for n in cfg.snapshot_steps if n >= state.max_steps]
            if late:
                raise AugmentError(
                    f"snapshot_steps: step {late[0]} is not before this run's last step {state.max_steps}"
                )

        def on_step_end(self, args, state, control, model=None, **kwargs):
            step = state.global_step
            if step not in cfg.snapshot_steps or not state.is_world_process_zero:
                return
            dest = cfg.output / f"step-{step}"
            tmp = cfg.output / f".step-{step}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            _save_weights(model, tokenizer, tmp, cfg, copy=True)
            loss = next((h["loss"] for h in reversed(state.log_history) if "loss" in h), None)
            write_json(
                tmp / "snapshot.json",
                {"step": step, "of_max_steps": state.max_steps, "last_logged_loss": loss},
            )
            shutil.rmtree(dest, ignore_errors=True)
            tmp.rename(dest)

    return Snapshots()


@dataclass
class MicroBatch:
    """How a step's batch is run: `size` sequences a forward pass, `passes` passes a step."""

    size: int
    passes: int
    free_bytes: int | None  # memory free for activations when it was chosen (None: not measured)
    sequence_bytes: int  # estimated memory one sequence of max_seq_len tokens needs in training


def _free_memory(torch: Any, cuda: bool) -> int | None:
    """Bytes free where the activations will live: the GPU's, else this machine's (or its cgroup's)."""
    if cuda:
        return int(torch.cuda.mem_get_info()[0])
    try:
        import psutil
    except ImportError:
        return None
    free = int(psutil.virtual_memory().available)
    cgroup = Path("/sys/fs/cgroup")  # a container's limit, which psutil does not see
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            free = min(free, int(limit) - int((cgroup / "memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return free


def plan_micro_batch(cfg: TrainConfig, model: Any, torch: Any, cuda: bool) -> MicroBatch:
    """The largest divisor of batch_size whose activations fit in the memory free (or --micro-batch).

    A small model's training memory is mostly its logits: each token holds about six float32
    copies of the vocabulary (logits, log-probabilities, their gradients). Gemma 3 270M (262k
    tokens) took 5.6 MB a token measured, 7.7 GB at one sequence of 1024 and 13.4 GB at two; the
    estimate here (7.4 MB) leaves a margin, and only 80 % of the free memory is planned on, after
    the weights and optimizer state. The
    step is the same either way: its sequences' gradients are accumulated, and the loss is
    normalised over the whole step's tokens.
    """
    text = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    vocab = int(getattr(text, "vocab_size", 0) or 0)
    width = int(getattr(text, "hidden_size", 0) or 0) * int(getattr(text, "num_hidden_layers", 0) or 0)
    sequence = 4 * (6 * vocab + 24 * width) * cfg.max_seq_len
    free = _free_memory(torch, cuda)
    if cfg.micro_batch is not None or free is None:
        size = cfg.micro_batch or cfg.batch_size
        return MicroBatch(size, cfg.batch_size // size, free, sequence)
    # the weights (not on the GPU yet, and perhaps only mapped, not read, on a CPU), and in full
    # fine-tuning their gradients and Adam's two moments (fp32 at most); LoRA's adapters are small
    params = list(model.parameters())
    weights = sum(p.numel() * p.element_size() for p in params)
    state = weights + (12 * sum(p.numel() for p in params) if cfg.method == "full" else 0)
    fit = max(1, int(0.8 * (free - state)) // max(sequence, 1))
    size = max(d for d in range(1, cfg.batch_size + 1) if cfg.batch_size % d == 0 and d <= fit)
    return MicroBatch(size, cfg.batch_size // size, free, sequence)


def _trainer_class(transformers: Any, trl: Any) -> Any:
    class Trainer(trl.SFTTrainer):
        """SFTTrainer's data preparation (packing, chat template, assistant-only labels) with the model's
        own loss. TRL's fused LM head also computes entropy and top-1 accuracy over the whole vocabulary
        for its logs; on Gemma 3 270M (262k-token vocabulary) that halved tokens/s (bench/train.py)."""

        _model_keys = ("input_ids", "attention_mask", "position_ids", "labels")

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs = {k: v for k, v in inputs.items() if k in self._model_keys}
            return transformers.Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)

    return Trainer


def _sft_config(cls: Any, **kwargs: Any) -> Any:
    """SFTConfig across transformers 4.x and 5.x, whose argument names moved."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(cls)}
    if "warmup_ratio" not in names:  # 5.x: warmup_steps takes a ratio when given a float below 1
        kwargs["warmup_steps"] = kwargs.pop("warmup_ratio")
    if "activation_checkpointing" in names:
        kwargs["activation_checkpointing"] = kwargs.pop("gradient_checkpointing")
    return cls(**{k: v for k, v in kwargs.items() if k in names})


def train(
    cfg: TrainConfig,
    on_log: Callable[[dict[str, Any]], None] = lambda e: None,
    callbacks: list[Any] | None = None,
    on_plan: Callable[[MicroBatch], None] = lambda plan: None,
) -> TrainResult:
    """Fine-tune cfg.model on cfg.shards into cfg.output; returns what happened (and the model).

    `on_plan` hears, before the first step, how each step's batch is run (`plan_micro_batch`).
    """
    torch, transformers, trl = _imports()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded: local folders and cache only
    import datasets

    # augment prints one progress line per log step; the libraries' own bars and deprecation
    # notices about their internals would bury it
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    for module in ("transformers", "trl", "peft", "accelerate"):
        warnings.filterwarnings("ignore", category=FutureWarning, module=module)
        warnings.filterwarnings("ignore", category=UserWarning, module=module)
    t0 = time.monotonic()
    done = finished_run(cfg)
    if done is not None:
        return done

    model_path = resolve_model(cfg.model, cfg.trust_remote_code)
    train_ds, val_ds, manifest, manifest_sha = load_training_data(
        cfg.shards,
        cfg.replay,
        cfg.replay_corpus,
        cfg.seed,
        cfg.answers_only,
        replay_title=cfg.replay_title,
        replay_shuffle=cfg.replay_shuffle,
    )
    fmt = manifest["format"]
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            model_path, trust_remote_code=cfg.trust_remote_code
        )
    except OSError as e:
        raise AugmentError(f"{cfg.model}: cannot load its tokenizer ({e})") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if fmt == "chat" and not tokenizer.chat_template:
        raise AugmentError(
            f"{cfg.model} has no chat template: export the run with --format cpt for this model"
        )

    cuda = torch.cuda.is_available()
    bf16 = cfg.bf16 == "on" or (cfg.bf16 == "auto" and cuda and torch.cuda.is_bf16_supported())
    checkpointing = cfg.gradient_checkpointing == "on" or (cfg.gradient_checkpointing == "auto" and cuda)
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(
            model_path,
            # a GPU holds a full model in bf16; a CPU keeps fp32 weights and computes under bf16 autocast
            dtype=torch.bfloat16 if bf16 and cfg.method == "full" and cuda else torch.float32,
            trust_remote_code=cfg.trust_remote_code,
        )
    except OSError as e:
        raise AugmentError(f"{cfg.model}: cannot load the model ({e})") from None

    micro = plan_micro_batch(cfg, model, torch, cuda)
    on_plan(micro)
    ckpt_dir = cfg.output / "checkpoints"
    args = _sft_config(
        trl.SFTConfig,
        output_dir=str(ckpt_dir),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps or -1,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.scheduler,
        warmup_ratio=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        per_device_train_batch_size=micro.size,
        per_device_eval_batch_size=micro.size,
        gradient_accumulation_steps=cfg.grad_accum * micro.passes,
        max_length=cfg.max_seq_len,
        # continued pretraining: concatenate and cut into full sequences; chat: one example per row
        packing=fmt == "cpt",
        packing_strategy="wrapped",
        dataset_text_field="text",
        bf16=bf16,
        gradient_checkpointing=checkpointing,
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=1,
        eval_strategy="epoch" if val_ds is not None and cfg.max_steps is None else "no",
        report_to=[],
        seed=cfg.seed,
        use_cpu=not cuda,
        disable_tqdm=True,
        include_num_input_tokens_seen="non_padding",
    )
    peft_config = None
    if cfg.method == "lora":
        from peft import LoraConfig

        targets = (
            cfg.lora_targets
            if cfg.lora_targets == "all-linear"
            else [t.strip() for t in cfg.lora_targets.split(",")]
        )
        peft_config = LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=targets,
            task_type="CAUSAL_LM",
        )
    trainer = _trainer_class(transformers, trl)(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=val_ds,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[
            _progress_callback(transformers, on_log),
            *([_snapshot_callback(transformers, cfg, tokenizer)] if cfg.snapshot_steps else []),
            *(callbacks or []),
        ],
    )
    # augment prints its own progress lines; the Trainer's would print every log as a dict
    trainer.remove_callback(transformers.PrinterCallback)
    last = (
        transformers.trainer_utils.get_last_checkpoint(str(ckpt_dir))
        if cfg.resume and ckpt_dir.is_dir()
        else None
    )
    output = trainer.train(resume_from_checkpoint=last)
    eval_loss = None
    if val_ds is not None:
        eval_loss = float(trainer.evaluate()["eval_loss"])

    # the checkpoint: full weights, or the LoRA adapter (transformers loads either with from_pretrained)
    final = _save_weights(trainer.model, tokenizer, cfg.output, cfg)

    history = trainer.state.log_history
    curve = [
        {
            "step": h["step"],
            "loss": h["loss"],
            "epoch": h.get("epoch"),
            "tokens": h.get("num_input_tokens_seen"),
        }
        for h in history
        if "loss" in h
    ]
    tokens = int(trainer.state.num_input_tokens_seen)
    # rows trained on their answer only (--answers-only); every other row trains on all its tokens
    answer_rows = sum(map(bool, train_ds["prompt"])) if cfg.answers_only and fmt == "cpt" else 0
    result = TrainResult(
        output=cfg.output,
        steps=trainer.state.global_step,
        tokens=tokens,
        seconds=time.monotonic() - t0,
        final_loss=curve[-1]["loss"] if curve else float(output.training_loss),
        eval_loss=eval_loss,
        resumed_from=Path(last).name if last else None,
        loss_curve=curve,
        model=final,
        format=fmt,
        rows=len(train_ds),
        answer_only_rows=answer_rows,
    )
    runtime = float(output.metrics.get("train_runtime", result.seconds))
    write_json(
        cfg.output / "train.json",
        {
            "base_model": cfg.model,
            "resolved_model": model_path,
            "method": cfg.method,
            "merged": cfg.merge,
            "format": fmt,
            "shards": str(cfg.shards),
            "manifest_sha256": manifest_sha,
            "shards_sha256": shards_fingerprint(manifest),
            "train_rows": len(train_ds),
            "answer_only_rows": answer_rows,
            "hyperparameters": {
                **cfg.model_dump(mode="json"),
                "learning_rate": cfg.learning_rate,
                "bf16": bf16,
                "gradient_checkpointing": checkpointing,
                "micro_batch_used": micro.size,
                "passes_per_step": micro.passes * cfg.grad_accum,
            },
            "loss_curve": curve,
            "eval_loss": eval_loss,
            "steps": result.steps,
            "tokens_seen": tokens,
            "train_runtime_s": round(runtime, 3),
            "tokens_per_s": round(tokens / runtime, 1) if runtime > 0 else None,
            "resumed_from": result.resumed_from,
            "snapshots": [f"step-{n}" for n in cfg.snapshot_steps if (cfg.output / f"step-{n}").is_dir()],
            "versions": {
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "trl": trl.__version__,
            },
        },
    )
    if not cfg.keep_checkpoints:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    return result
