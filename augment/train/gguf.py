"""Write a trained checkpoint as a GGUF file: for llama.cpp, Ollama, LM Studio and `--backend local`.

A checkpoint trained from a GGUF (the CPU loop's `gemma3-270m`, or any `.gguf` given to `augment
train`) is written back into that GGUF's form: the new file is the base file with every tensor
replaced by the trained weights, in the type asked for; its settings, tokenizer and chat template
are the base file's, as llama.cpp wrote them. Tensor names are mapped with transformers' own GGUF
map (the one it loaded the base with), and what transformers changed on loading is undone
(Gemma's norm weights are stored plus one, Llama's query and key rows permuted); each tensor so
changed is checked by applying transformers' loading step again and comparing with the trained
weights.

A checkpoint from a transformers folder has no GGUF to take the tokenizer from: that needs
llama.cpp's converter (`convert_hf_to_gguf.py`), which this module does not try to be.

Full weights are read one tensor at a time (memory: one tensor and its encoding); a LoRA adapter
is merged into its base in memory first. The file is written under a temporary name and renamed.

With `--adapter` a LoRA checkpoint is written as llama.cpp's LoRA adapter GGUF instead (A and B of
each adapted matrix, named after the base tensor), a few MB that llama.cpp, Ollama and LM Studio
apply to the base file at load time: on the very base file it was trained from, with no second
rounding of the base's weights.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from augment.errors import AugmentError
from augment.io import atomic_path

# --type: what the weight matrices are stored as; vectors (norms) stay float32 as llama.cpp keeps them.
# The first four are written here; the k-quants by llama.cpp's own quantiser (llama-cpp-python,
# extra `local`) from an f16 file, with its per-tensor recipe (e.g. Q4_K_M keeps some tensors at Q6_K).
# --type -> (gguf-py's tensor type, the file type llama.cpp reads from general.file_type)
WRITTEN = {
    "f16": ("F16", "MOSTLY_F16"),
    "bf16": ("BF16", "MOSTLY_BF16"),
    "q8_0": ("Q8_0", "MOSTLY_Q8_0"),
    "f32": ("F32", "ALL_F32"),
}
QUANTISED = ("q4_k_m", "q5_k_m", "q6_k")
TYPES = (*WRITTEN, *QUANTISED)


@dataclass
class GgufResult:
    output: Path
    base: Path
    qtype: str
    tensors: int
    parameters: int
    bytes: int


def base_model_of(ckpt: Path) -> str:
    """The base model a checkpoint was trained from, as `augment train --model` named it: from its
    train.json, a snapshot's run (the folder above), or an average's first source."""
    for folder in (ckpt, ckpt.parent):
        path = folder / "train.json"
        if path.is_file() and (folder == ckpt or (ckpt / "snapshot.json").is_file()):
            base = _json(path).get("base_model")
            if base:
                return str(base)
    path = ckpt / "average.json"
    if path.is_file():
        sources = _json(path).get("sources") or []
        if sources:
            return base_model_of(Path(sources[0]))
    raise AugmentError(
        f"{ckpt}: no train.json saying which model it was trained from; name the base GGUF with --base"
    )


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise AugmentError(f"{path}: cannot read it ({e})") from None
    return data if isinstance(data, dict) else {}


def _base_gguf(name: str, found_in: Path | None = None, adapter: bool = False) -> Path:
    """The base GGUF file; `found_in`: the checkpoint whose files named it (not --base)."""
    from augment.models import locate_model

    try:
        kind, where = locate_model(name, hub=False)
    except AugmentError as e:  # e.g. a relative path given to train in another folder
        if found_in is None:
            raise
        raise AugmentError(f"{e} (the base model {found_in} was trained from): name it with --base") from None
    if kind != "gguf" and adapter:
        raise AugmentError(
            f"base model {name} is not a GGUF file: name the GGUF of that model the adapter is for "
            "with --base (a download, or one llama.cpp's convert_hf_to_gguf.py wrote)"
        )
    if kind != "gguf":
        raise AugmentError(
            f"base model {name} is not a GGUF file: augment writes GGUF only for checkpoints trained "
            "from one (it takes the tokenizer and settings from it); for a transformers folder use "
            "llama.cpp's convert_hf_to_gguf.py"
        )
    return Path(where)


def _ckpt_files(ckpt: Path) -> tuple[str, list[Path]]:
    """("full", safetensors files) or ("adapter", [adapter file]) for a checkpoint folder."""
    if not ckpt.is_dir():
        raise AugmentError(f"{ckpt}: no such checkpoint folder")
    if (ckpt / "config.json").is_file():
        files = sorted(ckpt.glob("*.safetensors"))
        if files:
            return "full", files
    if (ckpt / "adapter_config.json").is_file() and (ckpt / "adapter_model.safetensors").is_file():
        return "adapter", [ckpt / "adapter_model.safetensors"]
    raise AugmentError(
        f"{ckpt}: not a checkpoint (no config.json with .safetensors weights, nor a LoRA adapter)"
    )


def _named_base(adapter: Path) -> Path | None:
    """The transformers folder a LoRA adapter's config says it was trained on, if it is there."""
    named = _json(adapter / "adapter_config.json").get("base_model_name_or_path")
    return Path(str(named)) if named and (Path(str(named)) / "config.json").is_file() else None


def _trained_on(adapter: Path, base_gguf: Path, trust_remote_code: bool) -> Path:
    """The transformers folder a LoRA adapter was trained on: the one its config names, else the
    base GGUF converted as augment train converts it (cached)."""
    from augment.models import convert_gguf

    return _named_base(adapter) or convert_gguf(base_gguf, trust_remote_code)


class _Weights:
    """The trained tensors by name, read when asked for (full weights) or merged in memory (LoRA)."""

    def __init__(self, ckpt: Path, trust_remote_code: bool, base_gguf: Path):
        import torch
        import transformers

        self.kind, files = _ckpt_files(ckpt)
        self._open: dict[str, Any] = {}
        self._merged: dict[str, Any] = {}
        if self.kind == "full":
            from safetensors import safe_open

            self.config = transformers.AutoConfig.from_pretrained(ckpt, trust_remote_code=trust_remote_code)
            for file in files:
                handle = safe_open(str(file), framework="pt")
                for name in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
                    self._open[name] = handle
        else:
            try:
                from peft import PeftModel
            except ImportError:
                raise AugmentError(
                    f"{ckpt} is a LoRA adapter: merging it needs peft (pip install 'augment[train]')"
                ) from None
            # on the model it was trained on, as it is (peft's AutoPeftModel would resize its
            # embeddings to the tokenizer saved beside the adapter, which may count other tokens)
            base = transformers.AutoModelForCausalLM.from_pretrained(
                _trained_on(ckpt, base_gguf, trust_remote_code),
                trust_remote_code=trust_remote_code,
                dtype=torch.float32,
            )
            model = PeftModel.from_pretrained(base, str(ckpt)).merge_and_unload()
            self.config = model.config
            self._merged = {k: v.detach() for k, v in model.state_dict().items()}
        with torch.device("meta"):
            self.meta = transformers.AutoModelForCausalLM.from_config(
                self.config, trust_remote_code=trust_remote_code
            )

    def names(self) -> set[str]:
        return set(self._open) | set(self._merged)

    def get(self, name: str) -> Any:
        """A float32 numpy array."""
        tensor = self._merged[name] if name in self._merged else self._open[name].get_tensor(name)
        return tensor.float().numpy()


def _undo(arch: str, config: Any) -> Callable[[Any, str], Any]:
    """The inverse of what transformers does to a GGUF tensor on loading (by its loader's processor
    for this architecture), or an error for an architecture whose loading step is not undone here."""
    from transformers.modeling_gguf_pytorch_utils import TENSOR_PROCESSORS

    kind = TENSOR_PROCESSORS.get(arch)
    name = kind.__name__ if kind else "TensorProcessor"
    if name == "TensorProcessor":
        return lambda w, gguf_name: w
    if name == "Gemma2TensorProcessor":
        return lambda w, gguf_name: w + 1 if "norm.weight" in gguf_name else w
    if name == "LlamaTensorProcessor":
        heads = config.num_attention_heads
        kv_heads = getattr(config, "num_key_value_heads", None) or heads

        def permute(w: Any, gguf_name: str) -> Any:
            n = heads if ".attn_q." in gguf_name else kv_heads if ".attn_k." in gguf_name else 0
            if not n:
                return w
            # llama.cpp's convert_hf_to_gguf stores each head's rotary halves interleaved
            return w.reshape(n, 2, w.shape[0] // n // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)

        return permute
    raise AugmentError(
        f"writing GGUF for architecture {arch!r} is not supported yet (transformers changes its "
        f"tensors on loading with {name}, which augment does not undo)"
    )


def _processor(arch: str, config: Any) -> Any:
    from transformers.modeling_gguf_pytorch_utils import TENSOR_PROCESSORS, TensorProcessor

    return TENSOR_PROCESSORS.get(arch, TensorProcessor)(config=config.to_dict())


def _field_value(field: Any) -> tuple[Any, Any, Any]:
    import gguf

    vtype = field.types[0]
    sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
    return field.contents(), vtype, sub


def write_gguf(
    ckpt: Path,
    output: Path,
    *,
    qtype: str = "f16",
    base: str | None = None,
    trust_remote_code: bool = False,
) -> GgufResult:
    """Write `ckpt`'s weights as a GGUF file at `output` in the form of its base GGUF."""
    if qtype not in TYPES:
        raise AugmentError(f"--type: {qtype!r} is not one of {', '.join(TYPES)}")
    try:
        import gguf
        import numpy as np
        import torch  # noqa: F401 (needed by transformers' map)
        from transformers.modeling_gguf_pytorch_utils import get_gguf_hf_weights_map
    except ImportError as e:
        raise AugmentError(f"augment gguf needs {e.name}: pip install 'augment[train]'") from None

    if qtype in QUANTISED:
        return _quantised(ckpt, output, qtype, base, trust_remote_code)
    base_path = _base_gguf(base) if base else _base_gguf(base_model_of(ckpt), found_in=ckpt)
    weights = _Weights(ckpt, trust_remote_code, base_path)
    reader = gguf.GGUFReader(str(base_path))
    field = reader.get_field(gguf.Keys.General.ARCHITECTURE)
    arch = str(field.contents()) if field else ""
    undo = _undo(arch, weights.config)
    processor = _processor(arch, weights.config)
    mapping = get_gguf_hf_weights_map(weights.meta, processor)

    tensor_type, file_type_name = WRITTEN[qtype]
    want = gguf.GGMLQuantizationType[tensor_type]
    file_type = gguf.LlamaFileType[file_type_name]

    # plan every tensor first: the header lists them all before any data
    plan: list[tuple[str, str | None, tuple[int, ...], Any]] = []
    used: set[str] = set()
    available = weights.names()
    for t in reader.tensors:
        shape = tuple(int(n) for n in reversed(t.shape.tolist()))  # GGUF lists dimensions innermost first
        hf = mapping.get(t.name)
        if hf is not None and hf not in available:
            raise AugmentError(
                f"{ckpt}: no tensor {hf} for {base_path.name}'s {t.name}: is --base the model it was trained from?"
            )
        if hf is None:  # not a weight transformers loads (e.g. precomputed rope factors): copied
            plan.append((t.name, None, shape, t.tensor_type))
            continue
        used.add(hf)
        if len(shape) == 1:
            ttype = gguf.GGMLQuantizationType.F32
        elif want == gguf.GGMLQuantizationType.Q8_0 and shape[-1] % gguf.GGML_QUANT_SIZES[want][0]:
            ttype = gguf.GGMLQuantizationType.F16  # rows that Q8_0's blocks do not divide
        else:
            ttype = want
        plan.append((t.name, hf, shape, ttype))
    # a model whose output layer is its embedding (no output.weight) may save the copy anyway
    tied = all(t.name != "output.weight" for t in reader.tensors)
    left = sorted(n for n in available - used if not (tied and n.endswith("lm_head.weight")))
    if left:
        raise AugmentError(
            f"{ckpt}: {len(left)} trained tensors have no place in {base_path.name} (first: {left[0]}): "
            "is --base the model it was trained from?"
        )

    def encoded() -> Iterator[Any]:
        source = {t.name: t for t in reader.tensors}
        for name, hf, shape, ttype in plan:
            if hf is None:
                yield source[name].data
                continue
            trained = weights.get(hf)
            if trained.shape != shape:
                raise AugmentError(
                    f"{ckpt}: {hf} has shape {list(trained.shape)}, {base_path.name}'s {name} "
                    f"{list(shape)}: is --base the model it was trained from?"
                )
            data = np.ascontiguousarray(undo(trained, name), dtype=np.float32)
            back = processor.process(weights=data, name=name).weights
            if back is not data and not _same(back, trained):
                raise AugmentError(f"{name}: writing it back to GGUF's form does not round-trip (a bug)")
            del trained, back
            yield gguf.quants.quantize(data, ttype)

    align = reader.get_field(gguf.Keys.General.ALIGNMENT)

    def settings(writer: Any) -> None:
        if align is not None:
            writer.data_alignment = int(align.contents())
        for f in reader.fields.values():
            if f.name.startswith("GGUF.") or f.name in (
                gguf.Keys.General.ARCHITECTURE,
                gguf.Keys.General.FILE_TYPE,
                gguf.Keys.General.FINETUNE,
            ):
                continue
            if f.name.startswith("quantize."):  # the base file's quantisation record, no longer true
                continue
            value, vtype, sub = _field_value(f)
            writer.add_key_value(f.name, value, vtype, sub_type=sub)
        writer.add_file_type(int(file_type))
        writer.add_finetune(ckpt.resolve().name)  # what apps show beside the base's general.name

    params = _write_file(output, arch, settings, [(n, shape, t) for n, _, shape, t in plan], encoded())
    return GgufResult(output, base_path, qtype, len(plan), params, output.stat().st_size)


def _quantised(ckpt: Path, output: Path, qtype: str, base: str | None, trust_remote_code: bool) -> GgufResult:
    """`qtype` by llama.cpp's quantiser, from an f16 file written first beside `output`."""
    try:
        import llama_cpp
    except ImportError:
        raise AugmentError(
            f"--type {qtype} uses llama.cpp's quantiser: pip install 'augment[local]' "
            f"(or write {', '.join(WRITTEN)})"
        ) from None
    from augment.backends.local import _cores, _quiet_native_stderr

    with atomic_path(output) as tmp:
        f16 = tmp.with_name(tmp.name + ".f16")
        try:
            first = write_gguf(ckpt, f16, qtype="f16", base=base, trust_remote_code=trust_remote_code)
            params = llama_cpp.llama_model_quantize_default_params()
            params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{qtype.upper()}")
            params.nthread = _cores()
            with _quiet_native_stderr():  # llama.cpp prints a line a tensor
                failed = llama_cpp.llama_model_quantize(str(f16).encode(), str(tmp).encode(), params)
        finally:
            f16.unlink(missing_ok=True)
        if failed:
            raise AugmentError(f"{output}: llama.cpp's quantiser failed to write {qtype} (code {failed})")
    return GgufResult(
        output=output,
        base=first.base,
        qtype=qtype,
        tensors=first.tensors,
        parameters=first.parameters,
        bytes=output.stat().st_size,
    )


# --adapter: llama.cpp applies an adapter's matrices as they are stored (k-quants need 256-wide rows,
# which a rank-16 B matrix does not have, and an adapter is small anyway)
ADAPTER_TYPES = tuple(WRITTEN)
_LORA_KEY = re.compile(r"^base_model\.model\.(?P<module>.+)\.lora_(?P<ab>[AB])\.weight$")


def adapter_folder(ckpt: Path) -> Path:
    """The LoRA adapter of a checkpoint: the folder itself, or CKPT/adapter beside merged weights."""
    for folder in (ckpt, ckpt / "adapter"):
        if (folder / "adapter_config.json").is_file() and (folder / "adapter_model.safetensors").is_file():
            return folder
    if not ckpt.is_dir():
        raise AugmentError(f"{ckpt}: no such checkpoint folder")
    raise AugmentError(
        f"{ckpt}: no LoRA adapter (adapter_config.json and adapter_model.safetensors); --adapter is "
        "for checkpoints of augment train --method lora: write full weights without it"
    )


def _lora_settings(folder: Path) -> tuple[float, bool]:
    """(lora_alpha, use_rslora) of a PEFT LoRA adapter, or an error for what a llama.cpp adapter
    (x + scale * B A x on each adapted matrix, nothing else) cannot hold."""
    path = folder / "adapter_config.json"
    cfg = _json(path)

    def refuse(what: str) -> AugmentError:
        return AugmentError(
            f"{path}: {what}, which a llama.cpp LoRA adapter cannot hold; write the merged model "
            "(without --adapter)"
        )

    if str(cfg.get("peft_type", "LORA")).upper() != "LORA":
        raise refuse(f"a {cfg.get('peft_type')} adapter, not LoRA")
    if cfg.get("use_dora"):
        raise refuse("DoRA (use_dora) rescales each weight's columns")
    if cfg.get("modules_to_save"):
        raise refuse(f"whole modules trained besides the adapter (modules_to_save: {cfg['modules_to_save']})")
    if cfg.get("bias", "none") != "none":
        raise refuse(f"trained biases (bias: {cfg['bias']})")
    if cfg.get("fan_in_fan_out"):
        raise refuse("transposed (Conv1D) layers (fan_in_fan_out)")
    if cfg.get("alpha_pattern"):
        raise refuse(f"a scale per module (alpha_pattern: {cfg['alpha_pattern']})")
    try:
        return float(cfg["lora_alpha"]), bool(cfg.get("use_rslora"))
    except (KeyError, TypeError, ValueError):
        raise AugmentError(f"{path}: no lora_alpha: not a PEFT LoRA adapter config") from None


def write_adapter_gguf(
    ckpt: Path,
    output: Path,
    *,
    qtype: str = "f16",
    base: str | None = None,
    trust_remote_code: bool = False,
) -> GgufResult:
    """Write the LoRA adapter of `ckpt` as a llama.cpp adapter GGUF for its base GGUF: each adapted
    matrix's A and B under the base tensor's name (`blk.0.attn_q.weight.lora_a`, `.lora_b`), in the
    base's form (rows permuted as the base's are), and `adapter.lora.alpha` so that llama.cpp's scale
    (alpha / rank) is PEFT's. Applied to the base file it was trained from, it is the trained model
    without rounding the base's weights again."""
    if qtype not in ADAPTER_TYPES:
        raise AugmentError(f"--type: an adapter is written as {', '.join(ADAPTER_TYPES)}, not {qtype!r}")
    try:
        import gguf
        import numpy as np
        import torch  # noqa: F401 (needed by transformers' map)
        import transformers
        from safetensors import safe_open
        from transformers.modeling_gguf_pytorch_utils import get_gguf_hf_weights_map
    except ImportError as e:
        raise AugmentError(f"augment gguf needs {e.name}: pip install 'augment[train]'") from None
    folder = adapter_folder(ckpt)
    alpha, rslora = _lora_settings(folder)
    base_path = _base_gguf(base) if base else _base_gguf(base_model_of(ckpt), found_in=ckpt, adapter=True)
    reader = gguf.GGUFReader(str(base_path))
    field = reader.get_field(gguf.Keys.General.ARCHITECTURE)
    arch = str(field.contents()) if field else ""
    # the model's settings, for the names of its tensors: from the folder the adapter was trained on
    # (augment train's conversion of the GGUF, or a transformers folder), else from the GGUF itself
    trained_on = _named_base(folder)
    source = (
        {"pretrained_model_name_or_path": str(trained_on)}
        if trained_on
        else {"pretrained_model_name_or_path": str(base_path.parent), "gguf_file": base_path.name}
    )
    config = transformers.AutoConfig.from_pretrained(**source, trust_remote_code=trust_remote_code)
    with torch.device("meta"):
        meta = transformers.AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    undo = _undo(arch, config)
    processor = _processor(arch, config)
    to_gguf = {hf: name for name, hf in get_gguf_hf_weights_map(meta, processor).items()}
    shapes = {t.name: tuple(int(n) for n in reversed(t.shape.tolist())) for t in reader.tensors}

    handle = safe_open(str(folder / "adapter_model.safetensors"), framework="pt")
    keys = list(handle.keys())  # noqa: SIM118 (safe_open is not a mapping)
    others = [k for k in keys if not _LORA_KEY.match(k)]
    if others:
        embedding = [k for k in others if ".lora_embedding_" in k]
        what = f"an adapter on embeddings ({embedding[0]})" if embedding else f"{others[0]}"
        raise AugmentError(
            f"{folder / 'adapter_model.safetensors'}: {what}: an adapter GGUF holds linear layers' "
            "LoRA matrices only; write the merged model (without --adapter)"
        )
    pairs: dict[str, dict[str, str]] = {}
    for key in keys:
        m = _LORA_KEY.match(key)
        pairs.setdefault(m["module"], {})[m["ab"]] = key
    if not pairs:
        raise AugmentError(f"{folder / 'adapter_model.safetensors'}: no LoRA matrices in it")

    # plan: (the file's tensor name, the base tensor's, the module, safetensors key, shape, type)
    plan: list[tuple[str, str, str, str, tuple[int, ...], Any]] = []
    ranks: dict[str, int] = {}
    for module in sorted(pairs):
        halves = pairs[module]
        if set(halves) != {"A", "B"}:
            raise AugmentError(f"{folder}: {module} has lora_{''.join(halves)} without its other half")
        name = to_gguf.get(module + ".weight")
        if name is None or name not in shapes:
            raise AugmentError(
                f"{folder}: {module} has no tensor in {base_path.name}: is --base the model it was "
                "trained from?"
            )
        a_shape = tuple(handle.get_slice(halves["A"]).get_shape())
        b_shape = tuple(handle.get_slice(halves["B"]).get_shape())
        out_dim, in_dim = shapes[name]
        if len(a_shape) != 2 or len(b_shape) != 2 or a_shape[1] != in_dim or b_shape[0] != out_dim:
            raise AugmentError(
                f"{folder}: {module}'s adapter is {list(b_shape)} x {list(a_shape)}, {base_path.name}'s "
                f"{name} {[out_dim, in_dim]}: is --base the model it was trained from?"
            )
        ranks[module] = a_shape[0]
        for ab, shape in (("A", a_shape), ("B", b_shape)):
            ttype = gguf.GGMLQuantizationType[WRITTEN[qtype][0]]
            if ttype == gguf.GGMLQuantizationType.Q8_0 and shape[-1] % gguf.GGML_QUANT_SIZES[ttype][0]:
                ttype = gguf.GGMLQuantizationType.F16  # rows that Q8_0's blocks do not divide (B's: rank)
            plan.append((f"{name}.lora_{ab.lower()}", name, module, halves[ab], shape, ttype))

    # llama.cpp scales B A by alpha / rank (rank: the A matrix's rows), PEFT by lora_alpha / r (or
    # / sqrt(r), rsLoRA). One alpha for the file, from the commonest rank; where a module's rank
    # differs (rank_pattern) under rsLoRA, the difference is folded into its B.
    rank = max(set(ranks.values()), key=list(ranks.values()).count)
    file_alpha = alpha * math.sqrt(rank) if rslora else alpha

    def factor(module: str) -> float:
        r = ranks[module]
        return (alpha / (math.sqrt(r) if rslora else r)) / (file_alpha / r)

    def encoded() -> Iterator[Any]:
        for name, weight, module, key, _, ttype in plan:
            data = handle.get_tensor(key).float().numpy()
            if name.endswith(".lora_b"):  # B's rows are the weight's rows
                f = factor(module)
                trained = data * f if f != 1.0 else data
                data = np.ascontiguousarray(undo(trained, weight), dtype=np.float32)
                back = processor.process(weights=data, name=weight).weights
                if back is not data and not _same(back, trained):
                    raise AugmentError(
                        f"{weight}: writing it back to GGUF's form does not round-trip (a bug)"
                    )
            yield gguf.quants.quantize(np.ascontiguousarray(data, dtype=np.float32), ttype)

    general_name = reader.get_field(gguf.Keys.General.NAME)

    def settings(writer: Any) -> None:
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, file_alpha)
        if general_name is not None:
            writer.add_name(str(general_name.contents()))
        writer.add_finetune(ckpt.resolve().name)
        writer.add_file_type(int(gguf.LlamaFileType[WRITTEN[qtype][1]]))

    tensors = [(n, shape, t) for n, _, _, _, shape, t in plan]
    params = _write_file(output, arch, settings, tensors, encoded())
    return GgufResult(output, base_path, qtype, len(plan), params, output.stat().st_size)


def _write_file(
    output: Path,
    arch: str,
    settings: Callable[[Any], None],
    tensors: list[tuple[str, tuple[int, ...], Any]],
    data: Iterator[Any],
) -> int:
    """A GGUF file at `output` (temp name, then renamed): `settings` adds its key-values, then the
    tensors' table (name, shape, type) and each one's encoded data as `data` yields it, one at a
    time; returns the parameters written."""
    import gguf
    import numpy as np

    params = 0
    with atomic_path(output) as tmp:
        writer = gguf.GGUFWriter(str(tmp), arch)
        try:
            settings(writer)
            for name, shape, ttype in tensors:
                nbytes = _nbytes(shape, ttype, gguf)
                writer.add_tensor_info(name, shape, np.dtype(np.float32), nbytes, raw_dtype=ttype)
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_ti_data_to_file()
            for encoded, (_, shape, _) in zip(data, tensors, strict=True):
                writer.write_tensor_data(np.asarray(encoded).view(np.uint8).reshape(-1))
                params += int(np.prod(shape))
        finally:
            writer.close()
    return params


def _same(a: Any, b: Any, rows: int = 4096) -> bool:
    """Equal to float32 rounding, compared a block of rows at a time (no whole-tensor temporaries)."""
    import numpy as np

    for i in range(0, max(len(a), 1), rows):
        x, y = a[i : i + rows], b[i : i + rows]
        if np.abs(x - y).max(initial=0.0) > 1e-5 * max(1.0, float(np.abs(y).max(initial=0.0))):
            return False
    return True


def _nbytes(shape: tuple[int, ...], ttype: Any, gguf: Any) -> int:
    block, size = gguf.GGML_QUANT_SIZES[ttype]
    count = 1
    for n in shape:
        count *= n
    return count // block * size
