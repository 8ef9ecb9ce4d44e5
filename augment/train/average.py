"""Average the weights of checkpoints of one model: a run's last snapshots and its final weights.

The mean of a run's late checkpoints (checkpoint averaging) damps what the last steps' data order
did to the weights and costs no training. Every source must hold the same safetensors files with
the same tensors (names, shapes, dtypes): a full model (`model.safetensors`, or shards with their
index) or a LoRA adapter (`adapter_model.safetensors`). Tensors are read one at a time and summed
in float32, so memory is one output file plus one tensor per source. The folder's other files
(config, tokenizer, the index) are copied from the first source; `average.json` says what was
averaged. The output is written to a temporary folder and renamed, so a killed run leaves none.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from augment.errors import AugmentError
from augment.io import write_json

# written by training and describing that run, not the average; average.json takes their place
_NOT_COPIED = {"train.json", "snapshot.json", "average.json"}


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
                acc = first.to(torch.float64 if first.dtype == torch.float64 else torch.float32) * share[0]
                for s, h, w in zip(sources[1:], handles[1:], share[1:], strict=True):
                    t = h.get_tensor(key)
                    if t.shape != first.shape or t.dtype != first.dtype:
                        raise AugmentError(
                            f"{s / name}: tensor {key!r} is {t.dtype} {tuple(t.shape)}, "
                            f"{sources[0] / name} has {first.dtype} {tuple(first.shape)}"
                        )
                    acc += t.to(acc.dtype) * w
                if not first.is_floating_point():  # an integer buffer (a position index) is not averaged
                    acc = first
                out[key] = acc.to(first.dtype).contiguous()
                n_tensors += 1
                n_params += first.numel()
            metadata = handles[0].metadata() or {"format": "pt"}
            save_file(out, str(tmp / name), metadata=metadata)
            del out
        for f in sorted(sources[0].iterdir()):
            # a .gguf written from a source (augment gguf -o) holds that source's weights, not the mean
            if f.is_file() and not f.name.endswith((".safetensors", ".gguf")) and f.name not in _NOT_COPIED:
                shutil.copy2(f, tmp / f.name)
        write_json(
            tmp / "average.json",
            {
                "sources": [str(s) for s in sources],
                "weights": share,
                "files": files,
                "tensors": n_tensors,
                "parameters": n_params,
                "trained": [_trained(s) for s in sources],
            },
        )
        if output.exists():
            output.rmdir()  # empty, checked above
        tmp.rename(output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return AverageResult(output=output, files=files, tensors=n_tensors, parameters=n_params)


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
