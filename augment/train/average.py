"""Average the weights of checkpoints of one model: a run's last snapshots and its final weights.

The mean of a run's late checkpoints (checkpoint averaging) damps what the last steps' data order
did to the weights and costs no training. Every source must hold the same safetensors files with
the same tensors (names, shapes, dtypes): a full model (`model.safetensors`, or shards with their
index) or a LoRA adapter (`adapter_model.safetensors`). Tensors are read one at a time and summed
in float32, so memory is one output file plus one tensor per source. The folder's other files
(config, tokenizer, the index) are copied from the first source; `average.json` says what was
averaged. The output is written to a temporary folder and renamed, so a killed run leaves none.

LoRA adapters of one setting are averaged as the models they make: an adapted weight is W + s B A,
and the mean of the B's times the mean of the A's is not the mean of the B A's. The average is an
adapter of the sources' ranks summed, A's stacked and B's side by side, each B weighted: its
B A is the weighted mean of theirs exactly (two rank-16 adapters give one of rank 32).
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from augment.errors import AugmentError
from augment.io import write_json

# written by training and describing that run, not the average; average.json takes their place
_NOT_COPIED = {"train.json", "snapshot.json", "average.json"}
# a LoRA adapter's low-rank halves (PEFT's names): A (rank x in) and B (out x rank)
_LORA_A = re.compile(r"\.lora_(A|embedding_A)(\.|$)")
_LORA_B = re.compile(r"\.lora_(B|embedding_B)(\.|$)")
# adapter_config.json keys that name where an adapter came from, not what it computes
_PROVENANCE = {"base_model_name_or_path", "revision", "inference_mode"}


@dataclass
class AverageResult:
    output: Path
    files: list[str]
    tensors: int
    parameters: int


def _weight_files(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise AugmentError(f"{folder}: no such checkpoint folder")
    files = sorted(p.name for p in folder.glob("*.safetensors"))
    if not files:
        other = sorted(p.name for p in folder.glob("*.bin")) or sorted(p.name for p in folder.glob("*.pt"))
        found = f" (found {other[0]}: save it with safetensors first)" if other else ""
        raise AugmentError(f"{folder}: no .safetensors weights to average{found}")
    return files


def _weights(values: Sequence[float] | None, n: int) -> list[float]:
    if values is None:
        return [1.0 / n] * n
    if len(values) != n:
        raise AugmentError(f"--weights: {len(values)} weights for {n} checkpoints")
    if any(w < 0 for w in values) or sum(values) <= 0:
        raise AugmentError("--weights: weights must be non-negative and not all zero")
    total = float(sum(values))
    return [w / total for w in values]


def average_checkpoints(
    sources: Sequence[Path], output: Path, weights: Sequence[float] | None = None
) -> AverageResult:
    """Write the (weighted) mean of `sources`' weights to `output`; `weights` are normalised to sum 1."""
    try:
        import torch
        from safetensors import safe_open
        from safetensors.torch import save_file
    except ImportError as e:  # torch and safetensors come with the train extra
        raise AugmentError(
            f"augment average needs torch and safetensors: pip install 'augment[train]' ({e})"
        ) from e

    sources = [Path(s) for s in sources]
    if len(sources) < 2:
        raise AugmentError("augment average needs two checkpoint folders or more")
    if len({s.resolve() for s in sources}) < len(sources):
        raise AugmentError(
            "augment average: the same checkpoint is given twice (use --weights to weight one)"
        )
    share = _weights(weights, len(sources))
    output = Path(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        # a source among them too: averaging never writes over a checkpoint
        raise AugmentError(f"{output}: already exists and is not empty; averaging writes a new folder")
    files = _weight_files(sources[0])
    for s in sources[1:]:
        theirs = _weight_files(s)
        if theirs != files:
            raise AugmentError(f"{s}: holds {', '.join(theirs)}, but {sources[0]} holds {', '.join(files)}")

    lora = _lora_config(sources)
    # B's factor: the stacked adapter's rank is n times theirs, and PEFT divides by the rank (or its root)
    stack = (math.sqrt(len(sources)) if lora.get("use_rslora") else len(sources)) if lora else 1.0

    tmp = output.parent / f".{output.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    n_tensors = n_params = 0
    try:
        for name in files:
            handles = [safe_open(str(s / name), framework="pt") for s in sources]
            keys = sorted(handles[0].keys())
            for s, h in zip(sources[1:], handles[1:], strict=True):
                theirs = sorted(h.keys())
                if theirs != keys:
                    missing = sorted(set(keys) ^ set(theirs))[0]
                    raise AugmentError(
                        f"{s / name}: its tensors differ from {sources[0] / name} (e.g. {missing!r})"
                    )
            out: dict[str, torch.Tensor] = {}
            for key in keys:
                first = handles[0].get_tensor(key)
                tensors = [first]
                for s, h in zip(sources[1:], handles[1:], strict=True):
                    t = h.get_tensor(key)
                    if t.shape != first.shape or t.dtype != first.dtype:
                        raise AugmentError(
                            f"{s / name}: tensor {key!r} is {t.dtype} {tuple(t.shape)}, "
                            f"{sources[0] / name} has {first.dtype} {tuple(first.shape)}"
                        )
                    tensors.append(t)
                work = torch.float64 if first.dtype == torch.float64 else torch.float32
                if lora and _LORA_A.search(key):  # stacked: rank n x r
                    acc = torch.cat([t.to(work) for t in tensors], dim=0)
                elif lora and _LORA_B.search(key):  # side by side, each weighted
                    acc = torch.cat(
                        [t.to(work) * (w * stack) for t, w in zip(tensors, share, strict=True)], dim=1
                    )
                elif first.is_floating_point():
                    acc = sum(
                        (t.to(work) * w for t, w in zip(tensors, share, strict=True)),
                        torch.zeros((), dtype=work),
                    )
                else:  # an integer buffer (a position index) is not averaged
                    acc = first
                out[key] = acc.to(first.dtype).contiguous()
                n_tensors += 1
                n_params += out[key].numel()
                del tensors
            metadata = handles[0].metadata() or {"format": "pt"}
            save_file(out, str(tmp / name), metadata=metadata)
            del out
        for f in sorted(sources[0].iterdir()):
            # a .gguf written from a source (augment gguf -o) holds that source's weights, not the mean
            if f.is_file() and not f.name.endswith((".safetensors", ".gguf")) and f.name not in _NOT_COPIED:
                shutil.copy2(f, tmp / f.name)
        if lora:  # the stacked adapter's ranks
            n = len(sources)
            lora["r"] = int(lora["r"]) * n
            lora["rank_pattern"] = {k: int(v) * n for k, v in (lora.get("rank_pattern") or {}).items()}
            write_json(tmp / "adapter_config.json", lora)
        write_json(
            tmp / "average.json",
            {
                "sources": [str(s) for s in sources],
                "weights": share,
                "files": files,
                "tensors": n_tensors,
                "parameters": n_params,
                "trained": [_trained(s) for s in sources],
                **(
                    {"lora": f"ranks stacked: r {lora['r']} (B A is the weighted mean of theirs)"}
                    if lora
                    else {}
                ),
            },
        )
        if output.exists():
            output.rmdir()  # empty, checked above
        tmp.rename(output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return AverageResult(output=output, files=files, tensors=n_tensors, parameters=n_params)


def _lora_config(sources: Sequence[Path]) -> dict | None:
    """The sources' common LoRA adapter_config.json (a copy), None for full weights; an error when
    they differ in what they compute, or for DoRA, whose weights are not linear in its adapter."""
    paths = [s / "adapter_config.json" for s in sources]
    if not paths[0].is_file():
        return None
    configs = []
    for path in paths:
        try:
            configs.append(json.loads(path.read_text()))
        except (OSError, ValueError) as e:
            raise AugmentError(f"{path}: cannot read it ({e})") from None
    first = configs[0]
    for path, config in zip(paths[1:], configs[1:], strict=True):
        for key in sorted((set(first) | set(config)) - _PROVENANCE):
            if first.get(key) != config.get(key):
                raise AugmentError(
                    f"{path}: {key} is {config.get(key)!r}, {paths[0]} has {first.get(key)!r}; "
                    "only adapters of one LoRA setting are averaged"
                )
    if first.get("use_dora"):
        raise AugmentError(
            f"{paths[0]}: a DoRA adapter; its weights are not linear in the adapter, so no adapter is "
            "their mean: average checkpoints trained with --merge instead"
        )
    if str(first.get("peft_type", "LORA")).upper() != "LORA" or "r" not in first:
        raise AugmentError(f"{paths[0]}: not a LoRA adapter; augment averages LoRA adapters and full weights")
    return dict(first)


def _trained(source: Path) -> dict | None:
    """What a source is, from the files training wrote: its step (a snapshot) or its steps (a run)."""
    for name, key in (("snapshot.json", "step"), ("train.json", "steps")):
        path = source / name
        if path.is_file():
            try:
                return {"step": json.loads(path.read_text()).get(key)}
            except (OSError, ValueError):
                return None
    return None
