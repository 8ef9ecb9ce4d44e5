"""augment gguf: a checkpoint trained from a GGUF written back as one, checked three ways — read by
transformers' GGUF loader (every trained weight back, exactly), run by llama.cpp (its logits those of
the checkpoint in transformers), and against the base (the training is in the file).

The base GGUFs are built here: tiny Gemma 3 and Llama models (2 layers, 64 wide, random weights
stored as Q8_0, as a quantised download is) and a small vocabulary of their own, which transformers
and llama.cpp both load; nothing is downloaded."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
gguf = pytest.importorskip("gguf")

from augment.errors import AugmentError  # noqa: E402
from augment.models import convert_gguf  # noqa: E402
from augment.train.gguf import base_model_of, write_adapter_gguf, write_gguf  # noqa: E402

needs_llama_cpp = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python (extra 'local') is not installed"
)
Q8 = gguf.GGMLQuantizationType.Q8_0
F32 = gguf.GGMLQuantizationType.F32
HIDDEN, FF, HEADS, KV_HEADS, LAYERS = 64, 128, 2, 1, 2
# Gemma 3's head width is 256: transformers' GGUF loader leaves its attention scale at 1/sqrt(256)
HEAD_DIM = {"gemma3": 256, "llama": HIDDEN // HEADS}


WORDS = "the a of and to in is that it for on with as was he by K estrel scanner reads handheld"


def _tokenizer_fields(writer) -> int:
    """A small SentencePiece-style vocabulary (special tokens, the 256 byte tokens, some words), as
    llama.cpp's GGUF files hold one; returns its size."""
    tokens = ["<pad>", "<eos>", "<bos>", "<unk>"] + [f"<0x{b:02X}>" for b in range(256)]
    tokens += ["\u2581" + w for w in WORDS.split()] + WORDS.split()
    kinds = [3, 3, 3, 2] + [6] * 256 + [1] * (len(tokens) - 260)  # control, unknown, byte, normal
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * 260 + [-float(i) for i in range(len(tokens) - 260)])
    writer.add_token_types(kinds)
    writer.add_bos_token_id(2)
    writer.add_eos_token_id(1)
    writer.add_unk_token_id(3)
    writer.add_pad_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_add_space_prefix(True)
    return len(tokens)


def build_base(path: Path, arch: str, seed: int = 0, ff: int = FF, matrices=Q8) -> Path:
    """A tiny `arch` ("gemma3" or "llama") GGUF with random weights: matrices Q8_0 (or `matrices`),
    norms F32."""
    rng = np.random.default_rng(seed)
    head = HEAD_DIM[arch]
    w = gguf.GGUFWriter(str(path), arch)
    vocab = _tokenizer_fields(w)
    w.add_context_length(256)
    w.add_embedding_length(HIDDEN)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(ff)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(10000.0)
    if arch == "gemma3":
        w.add_key_length(head)
        w.add_value_length(head)
        w.add_sliding_window(64)
    else:
        w.add_rope_dimension_count(head)

    def matrix(name: str, rows: int, cols: int) -> None:
        data = rng.normal(0, 0.08, (rows, cols)).astype(np.float32)
        w.add_tensor(name, gguf.quants.quantize(data, matrices), raw_dtype=matrices)

    def norm(name: str, n: int) -> None:
        # stored as llama.cpp stores them: Gemma's around 1 (its HF weights around 0), Llama's too
        w.add_tensor(name, (1 + rng.normal(0, 0.1, n)).astype(np.float32))

    matrix("token_embd.weight", vocab, HIDDEN)
    norm("output_norm.weight", HIDDEN)
    if arch == "llama":
        matrix("output.weight", vocab, HIDDEN)
    for i in range(LAYERS):
        b = f"blk.{i}"
        norm(f"{b}.attn_norm.weight", HIDDEN)
        matrix(f"{b}.attn_q.weight", HEADS * head, HIDDEN)
        matrix(f"{b}.attn_k.weight", KV_HEADS * head, HIDDEN)
        matrix(f"{b}.attn_v.weight", KV_HEADS * head, HIDDEN)
        matrix(f"{b}.attn_output.weight", HIDDEN, HEADS * head)
        norm(f"{b}.ffn_norm.weight", HIDDEN)
        matrix(f"{b}.ffn_gate.weight", ff, HIDDEN)
        matrix(f"{b}.ffn_up.weight", ff, HIDDEN)
        matrix(f"{b}.ffn_down.weight", HIDDEN, ff)
        if arch == "gemma3":
            norm(f"{b}.attn_q_norm.weight", head)
            norm(f"{b}.attn_k_norm.weight", head)
            norm(f"{b}.post_attention_norm.weight", HIDDEN)
            norm(f"{b}.post_ffw_norm.weight", HIDDEN)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AUGMENT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "cache"


def trained(base: Path, dest: Path, seed: int = 1) -> Path:
    """A "trained" checkpoint of `base`: its converted weights, every one moved, and a train.json
    naming the base as `augment train --model` does."""
    folder = convert_gguf(base)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    model.save_pretrained(dest, safe_serialization=True)
    transformers.AutoTokenizer.from_pretrained(folder).save_pretrained(dest)
    (dest / "train.json").write_text(json.dumps({"base_model": str(base), "steps": 3}))
    return dest


def weights_of(path: Path) -> dict[str, torch.Tensor]:
    """What transformers' own GGUF loader reads from a file (a folder: its safetensors)."""
    if path.suffix == ".gguf":
        model = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
    else:
        model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    return {k: v.float() for k, v in model.state_dict().items()}


PROMPT = "The Kestrel K2 is a handheld scanner that reads"


def hf_logits(ckpt: Path) -> tuple[list[int], np.ndarray]:
    """The prompt's token ids and the logits at each of them."""
    ids = transformers.AutoTokenizer.from_pretrained(ckpt)(PROMPT)["input_ids"]
    model = transformers.AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32).eval()
    with torch.no_grad():
        return ids, model(torch.tensor([ids])).logits[0].numpy()


def llama_cpp_logits(path: Path, ids: list[int]) -> np.ndarray:
    from llama_cpp import Llama

    llm = Llama(str(path), n_ctx=128, logits_all=True, verbose=False, n_threads=2)
    try:
        llm.eval(ids)  # the same ids (the tokenizer is the base's, copied, and not what is tested)
        return np.array(llm.scores[: len(ids)])
    finally:
        llm.close()


@pytest.mark.parametrize("arch", ["gemma3", "llama"])
def test_every_trained_weight_comes_back_through_transformers_gguf_loader(
    tmp_path: Path, cache: Path, arch: str
):
    """Gemma's norms (+1 in GGUF) and Llama's query/key rows (permuted in GGUF) are written in
    llama.cpp's form: the loader's own inverse gives the trained weights back."""
    base = build_base(tmp_path / f"{arch}.gguf", arch)
    ckpt = trained(base, tmp_path / "ckpt")
    result = write_gguf(ckpt, tmp_path / "out.gguf", qtype="f32")
    assert result.base == base and result.tensors == len(gguf.GGUFReader(str(base)).tensors)
    back, want = weights_of(result.output), weights_of(ckpt)
    assert back.keys() == want.keys()
    for name, tensor in want.items():
        assert torch.allclose(back[name], tensor, rtol=0, atol=2e-6), name
    # the training is in the file: the base's weights are not
    before = weights_of(convert_gguf(base))
    assert max((before[k] - want[k]).abs().max().item() for k in want) > 0.1


@needs_llama_cpp
@pytest.mark.parametrize("arch", ["gemma3", "llama"])
def test_llama_cpp_runs_the_file_as_transformers_runs_the_checkpoint(tmp_path: Path, cache: Path, arch: str):
    base = build_base(tmp_path / f"{arch}.gguf", arch)
    ckpt = trained(base, tmp_path / "ckpt")
    ids, want = hf_logits(ckpt)
    for qtype, close in (("f32", 1e-3), ("f16", 0.05), ("bf16", 0.1), ("q8_0", 0.5)):
        out = write_gguf(ckpt, tmp_path / f"out-{qtype}.gguf", qtype=qtype).output
        got = llama_cpp_logits(out, ids)
        scale = np.abs(want).max()
        assert np.abs(got - want).max() <= close * scale, qtype
        # the same top token (a random tiny model has near ties, which 8-bit mantissas can swap)
        same_top = {"f32": 1.0, "f16": 1.0, "bf16": 0.9, "q8_0": 0.8}[qtype]
        assert (got.argmax(-1) == want.argmax(-1)).mean() >= same_top, qtype
    # llama.cpp's own quantiser from an f16 file written first (k-quants need rows of 256: the tiny
    # model's fall back to its Q5_0/Q8_0, as Gemma 3 270M's 640-wide rows do in part)
    out = write_gguf(ckpt, tmp_path / "out-q4.gguf", qtype="q4_k_m")
    assert gguf.GGUFReader(str(out.output)).get_field("general.file_type").contents() == 15  # Q4_K_M
    assert out.bytes < (tmp_path / "out-q8_0.gguf").stat().st_size and not list(tmp_path.glob(".out-q4*"))
    got = llama_cpp_logits(out.output, ids)
    assert np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.95
    # and the base file's logits are not the checkpoint's: the comparison above can tell them apart
    assert np.abs(llama_cpp_logits(base, ids) - want).max() > 0.1 * np.abs(want).max()


def test_types_and_sizes(tmp_path: Path, cache: Path):
    base = build_base(tmp_path / "gemma3.gguf", "gemma3")
    ckpt = trained(base, tmp_path / "ckpt")
    sizes = {}
    for qtype, matrix in (
        ("f32", F32),
        ("f16", gguf.GGMLQuantizationType.F16),
        ("bf16", gguf.GGMLQuantizationType.BF16),
        ("q8_0", Q8),
    ):
        out = write_gguf(ckpt, tmp_path / f"{qtype}.gguf", qtype=qtype)
        reader = gguf.GGUFReader(str(out.output))
        kinds = {t.name: t.tensor_type for t in reader.tensors}
        assert kinds["blk.0.ffn_up.weight"] == matrix and kinds["token_embd.weight"] == matrix
        assert kinds["blk.0.attn_norm.weight"] == F32  # vectors stay float32
        assert reader.get_field("general.file_type").contents() == {
            "f32": 0, "f16": 1, "bf16": 32, "q8_0": 7
        }[qtype]  # fmt: skip
        # everything else is the base's: its tokenizer, settings
        assert (
            reader.get_field("tokenizer.ggml.tokens").contents()
            == gguf.GGUFReader(str(base)).get_field("tokenizer.ggml.tokens").contents()
        )
        assert reader.get_field("gemma3.attention.sliding_window").contents() == 64
        assert reader.get_field("general.finetune").contents() == "ckpt"  # the checkpoint's folder
        sizes[qtype] = out.bytes
    assert sizes["q8_0"] < sizes["f16"] == sizes["bf16"] < sizes["f32"]


def test_a_lora_adapter_is_merged_into_its_base(tmp_path: Path, cache: Path):
    peft = pytest.importorskip("peft")
    base = build_base(tmp_path / "gemma3.gguf", "gemma3")
    folder = convert_gguf(base)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    lora = peft.get_peft_model(
        model,
        peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    )
    ckpt = tmp_path / "ckpt"
    lora.save_pretrained(ckpt)
    (ckpt / "train.json").write_text(json.dumps({"base_model": str(base)}))
    merged = {k: v.float() for k, v in lora.merge_and_unload().state_dict().items()}
    back = weights_of(write_gguf(ckpt, tmp_path / "lora.gguf", qtype="f32").output)
    moved = [k for k in merged if "q_proj" in k]
    assert moved and all(torch.allclose(back[k], merged[k], rtol=0, atol=2e-6) for k in merged)
    plain = weights_of(folder)
    assert all((plain[k] - merged[k]).abs().max() > 1e-3 for k in moved)  # the adapter did something


def test_the_base_is_found_for_a_snapshot_and_the_cli_writes_beside_the_folder(
    tmp_path: Path, cache: Path, cli
):
    base = build_base(tmp_path / "gemma3.gguf", "gemma3")
    run = trained(base, tmp_path / "ckpt")
    snap = trained(base, run / "step-2", seed=2)
    (snap / "train.json").unlink()  # a snapshot has snapshot.json; its run's train.json names the base
    (snap / "snapshot.json").write_text(json.dumps({"step": 2}))
    # an average names its sources; the first one's base is the average's
    avg = tmp_path / "avg"
    avg.mkdir()
    (avg / "average.json").write_text(json.dumps({"sources": [str(snap), str(run)]}))
    assert base_model_of(avg) == str(base)
    r = cli("gguf", snap, "--type", "q8_0")
    out = run / "step-2-q8_0.gguf"
    assert r.code == 0 and f"wrote {out}: 28 tensors" in r.out
    assert out.is_file() and not list(snap.glob("*.gguf"))
    assert [p.name for p in run.glob("*.tmp")] == []


def test_what_it_cannot_write_is_one_line(tmp_path: Path, cache: Path, tiny_model: Path, cli):
    base = build_base(tmp_path / "gemma3.gguf", "gemma3")
    ckpt = trained(base, tmp_path / "ckpt")
    # a checkpoint of a transformers folder: no GGUF to take the tokenizer from
    (tmp_path / "hf").mkdir()
    hf = tmp_path / "hf" / "ckpt"
    hf.mkdir()
    for f in tiny_model.iterdir():
        (hf / f.name).write_bytes(f.read_bytes())
    (hf / "train.json").write_text(json.dumps({"base_model": str(tiny_model)}))
    with pytest.raises(AugmentError, match="is not a GGUF file.*convert_hf_to_gguf"):
        write_gguf(hf, tmp_path / "x.gguf")
    # a base that is not where train.json says (a relative path, run from another folder)
    (ckpt / "train.json").write_text(json.dumps({"base_model": "models/gemma.gguf"}))
    with pytest.raises(
        AugmentError, match="models/gemma.gguf: no such GGUF file .*ckpt was trained from.*--base"
    ):
        write_gguf(ckpt, tmp_path / "x.gguf")
    (ckpt / "train.json").unlink()
    with pytest.raises(AugmentError, match="no train.json.*--base"):
        write_gguf(ckpt, tmp_path / "x.gguf")
    # the wrong base: another architecture, or the same one in other sizes
    for other, match in (
        (
            build_base(tmp_path / "llama.gguf", "llama"),
            "no tensor lm_head.weight for llama.gguf's output.weight",
        ),
        (build_base(tmp_path / "wide.gguf", "gemma3", ff=256), "has shape \\[128, 64\\], wide.gguf's"),
    ):
        with pytest.raises(AugmentError, match=match + ".*is --base the model it was trained from"):
            write_gguf(ckpt, tmp_path / "x.gguf", base=str(other))
    assert not (tmp_path / "x.gguf").exists() and not list(tmp_path.glob(".x.gguf*"))
    # the CLI: one line, exit codes 2 (flags) and 1
    for args, code in (
        (["gguf", str(ckpt), "--base", str(base), "--type", "q4_k"], 2),
        (["gguf", str(ckpt), "--base", str(base), "-o", str(tmp_path)], 2),
        (["gguf", str(tmp_path / "missing")], 1),
    ):
        r = cli(*args)
        assert r.code == code and len(r.err.strip().splitlines()) == 1, (args, r.err)


def test_a_failure_half_way_leaves_the_earlier_file_whole(tmp_path: Path, cache: Path, monkeypatch):
    base = build_base(tmp_path / "gemma3.gguf", "gemma3")
    ckpt = trained(base, tmp_path / "ckpt")
    out = write_gguf(ckpt, tmp_path / "model.gguf", qtype="f16").output
    before = out.read_bytes()
    calls = {"n": 0}
    real = gguf.quants.quantize

    def fails_later(data, qtype):
        calls["n"] += 1
        if calls["n"] == 10:
            raise KeyboardInterrupt
        return real(data, qtype)

    monkeypatch.setattr(gguf.quants, "quantize", fails_later)
    with pytest.raises(KeyboardInterrupt):
        write_gguf(ckpt, out, qtype="q8_0")
    assert out.read_bytes() == before and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_train_from_a_gguf_then_write_it_back(cli, shards, tmp_path: Path, cache: Path):
    """The loop as a CPU user runs it: augment train --model BASE.gguf, then augment gguf."""
    base = build_base(tmp_path / "gemma3.gguf", "gemma3")
    ckpt = tmp_path / "ckpt"
    r = cli("train", shards["cpt"], "--model", base, "-o", ckpt, "--method", "full", "--max-steps", "2",
            "--batch-size", "2", "--max-seq-len", "64", "--lr", "1e-3")  # fmt: skip
    assert r.code == 0, r.err
    assert f"for llama.cpp and Ollama: augment gguf {ckpt}" in r.out
    r = cli("gguf", ckpt, "--type", "f32")
    assert r.code == 0, r.err
    back, want = weights_of(tmp_path / "ckpt-f32.gguf"), weights_of(ckpt)
    assert all(torch.allclose(back[k], want[k], rtol=0, atol=2e-6) for k in want)
    before = weights_of(convert_gguf(base))
    assert max((before[k] - want[k]).abs().max().item() for k in want) > 1e-4  # two steps moved them


def lora_checkpoint(
    base: Path, dest: Path, seed: int = 3, folder: Path | None = None, **settings
) -> tuple[Path, torch.nn.Module]:
    """A LoRA checkpoint of `base` (a GGUF, or a transformers `folder`) as augment train --method lora
    saves one (random, non-zero A and B on every linear layer), with its train.json; returns it and
    the PEFT model."""
    peft = pytest.importorskip("peft")
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        folder or convert_gguf(base), dtype=torch.float32
    )
    config = dict(
        r=4,
        lora_alpha=8,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        init_lora_weights=False,
    )
    lora = peft.get_peft_model(model, peft.LoraConfig(**{**config, **settings})).eval()
    lora.save_pretrained(dest)
    (dest / "train.json").write_text(json.dumps({"base_model": str(folder or base), "method": "lora"}))
    return dest, lora


def peft_logits(lora: torch.nn.Module, ids: list[int]) -> np.ndarray:
    with torch.no_grad():
        return lora(input_ids=torch.tensor([ids])).logits[0].numpy()


def llama_cpp_lora_logits(base: Path, adapter: Path | None, ids: list[int]) -> np.ndarray:
    from llama_cpp import Llama

    kwargs = {"lora_path": str(adapter)} if adapter else {}
    llm = Llama(str(base), n_ctx=128, logits_all=True, verbose=False, n_threads=2, **kwargs)
    try:
        llm.eval(ids)
        return np.array(llm.scores[: len(ids)])
    finally:
        llm.close()


@needs_llama_cpp
@pytest.mark.parametrize(
    "arch,settings,matrices",
    [
        ("gemma3", {}, F32),
        ("llama", {}, F32),  # its query and key rows are stored permuted: so are B's
        # rsLoRA scales by alpha / sqrt(r), and one module has a rank of its own: folded into its B
        ("llama", {"use_rslora": True, "rank_pattern": {"model.layers.1.mlp.up_proj": 8}}, F32),
        ("gemma3", {}, Q8),  # a quantised base, as a downloaded GGUF is
    ],
)
def test_llama_cpp_runs_the_adapter_on_its_base_as_the_merged_model(
    tmp_path: Path, cache: Path, arch: str, settings: dict, matrices
):
    base = build_base(tmp_path / f"{arch}.gguf", arch, matrices=matrices)
    ckpt, lora = lora_checkpoint(base, tmp_path / "ckpt", **settings)
    ids = transformers.AutoTokenizer.from_pretrained(convert_gguf(base))(PROMPT)["input_ids"]
    want = peft_logits(lora, ids)
    scale = np.abs(want).max()
    out = write_adapter_gguf(ckpt, tmp_path / "lora.gguf", qtype="f32")
    assert out.base == base and out.tensors == 2 * 7 * LAYERS
    got = llama_cpp_lora_logits(base, out.output, ids)
    # the adapter is what moves it: the base alone is far from the trained model
    assert np.abs(llama_cpp_lora_logits(base, None, ids) - want).max() > 0.5 * scale
    if matrices == F32:
        # llama.cpp on the merged weights (augment gguf without --adapter): the same model to float
        # rounding; both differ from PEFT's float32 by llama.cpp's arithmetic (its f16 KV cache)
        merged = write_gguf(ckpt, tmp_path / "merged.gguf", qtype="f32").output
        assert np.abs(llama_cpp_logits(merged, ids) - got).max() <= 5e-4 * scale
        assert np.abs(got - want).max() <= 0.01 * scale
    else:
        # llama.cpp multiplies Q8_0 matrices by activations rounded to 8 bits
        assert np.abs(got - want).max() <= 0.05 * scale
    assert (got.argmax(-1) == want.argmax(-1)).mean() >= 0.9


def test_the_adapter_file_holds_a_and_b_under_the_base_names(tmp_path: Path, cache: Path, cli):
    base = build_base(tmp_path / "gemma3.gguf", "gemma3")
    ckpt, lora = lora_checkpoint(base, tmp_path / "ckpt", lora_alpha=6)
    r = cli("gguf", ckpt, "--adapter")
    out = tmp_path / "ckpt-lora-f16.gguf"
    assert r.code == 0, r.err
    assert f"wrote {out}: LoRA adapter, {7 * LAYERS} matrices" in r.out and f"--lora {out}" in r.out
    reader = gguf.GGUFReader(str(out))
    assert reader.get_field("general.type").contents() == "adapter"
    assert reader.get_field("general.architecture").contents() == "gemma3"
    assert reader.get_field("adapter.type").contents() == "lora"
    alpha = reader.get_field("adapter.lora.alpha")
    assert alpha.types[0] == gguf.GGUFValueType.FLOAT32 and alpha.contents() == 6.0  # llama.cpp reads f32
    tensors = {t.name: t for t in reader.tensors}
    state = {k: v for k, v in lora.state_dict().items() if "lora_" in k}
    a = state["base_model.model.model.layers.1.mlp.down_proj.lora_A.default.weight"]
    b = state["base_model.model.model.layers.1.mlp.down_proj.lora_B.default.weight"]
    got_a = tensors["blk.1.ffn_down.weight.lora_a"]
    assert got_a.tensor_type == gguf.GGMLQuantizationType.F16 and list(got_a.shape) == [FF, 4]  # ne: in, r
    assert np.allclose(np.asarray(got_a.data, dtype=np.float32).reshape(4, FF), a.numpy(), atol=1e-3)
    got_b = tensors["blk.1.ffn_down.weight.lora_b"]
    assert np.allclose(np.asarray(got_b.data, dtype=np.float32).reshape(HIDDEN, 4), b.numpy(), atol=1e-3)
    assert len(tensors) == 2 * 7 * LAYERS and not any("norm" in n for n in tensors)
    # q8_0: A's rows (64 or 128 wide) in Q8_0 blocks; B's rows are the rank (4), which no block divides
    q8 = write_adapter_gguf(ckpt, tmp_path / "q8.gguf", qtype="q8_0").output
    kinds = {t.name: t.tensor_type for t in gguf.GGUFReader(str(q8)).tensors}
    assert (
        kinds["blk.0.attn_q.weight.lora_a"] == Q8
        and kinds["blk.0.attn_q.weight.lora_b"] == gguf.GGMLQuantizationType.F16
    )
    # augment train --merge keeps the adapter in CKPT/adapter beside the merged weights
    merged = tmp_path / "merged"
    lora.merge_and_unload().save_pretrained(merged)
    (ckpt).rename(merged / "adapter")
    (merged / "train.json").write_text(json.dumps({"base_model": str(base)}))
    r = cli("gguf", merged, "--adapter", "--type", "f32")
    assert r.code == 0 and (tmp_path / "merged-lora-f32.gguf").is_file(), r.err


def test_what_an_adapter_cannot_hold_is_one_line(tmp_path: Path, cache: Path, cli):
    base = build_base(tmp_path / "gemma3.gguf", "gemma3")
    full = trained(base, tmp_path / "full")
    with pytest.raises(AugmentError, match="full: no LoRA adapter .*--method lora"):
        write_adapter_gguf(full, tmp_path / "x.gguf")
    for name, settings, match in (
        ("dora", {"use_dora": True}, "DoRA"),
        ("saved", {"modules_to_save": ["lm_head"]}, "modules_to_save"),
        ("bias", {"bias": "lora_only"}, "trained biases"),
    ):
        ckpt, _ = lora_checkpoint(base, tmp_path / name, **settings)
        with pytest.raises(AugmentError, match=f"adapter_config.json: .*{match}.*without --adapter"):
            write_adapter_gguf(ckpt, tmp_path / "x.gguf")
    # an adapter on the embeddings: llama.cpp's adapters hold linear layers only here
    ckpt, _ = lora_checkpoint(base, tmp_path / "embed", target_modules=["q_proj", "embed_tokens"])
    with pytest.raises(
        AugmentError, match="an adapter on embeddings .*embed_tokens.lora_embedding_A.*merged"
    ):
        write_adapter_gguf(ckpt, tmp_path / "x.gguf")
    # the wrong base: the same architecture, other sizes
    ckpt, _ = lora_checkpoint(base, tmp_path / "ckpt")
    wide = build_base(tmp_path / "wide.gguf", "gemma3", ff=256)
    with pytest.raises(
        AugmentError,
        match="down_proj's adapter is \\[64, 4\\] x \\[4, 128\\], wide.gguf's blk.0.ffn_down.weight \\[64, 256\\]",
    ):
        write_adapter_gguf(ckpt, tmp_path / "x.gguf", base=str(wide))
    assert not (tmp_path / "x.gguf").exists()
    for args, code in (
        (["gguf", str(ckpt), "--adapter", "--type", "q4_k_m"], 2),
        (["gguf", str(full), "--adapter"], 1),
    ):
        r = cli(*args)
        assert r.code == code and len(r.err.strip().splitlines()) == 1, (args, r.err)


@needs_llama_cpp
def test_train_lora_from_a_gguf_then_write_the_adapter(cli, shards, tmp_path: Path, cache: Path):
    """The LoRA loop as a CPU user runs it: augment train --method lora on a GGUF, augment gguf
    --adapter, and llama.cpp runs the base file with it as PEFT runs the checkpoint."""
    peft = pytest.importorskip("peft")
    base = build_base(tmp_path / "gemma3.gguf", "gemma3", matrices=F32)
    ckpt = tmp_path / "ckpt"
    r = cli("train", shards["cpt"], "--model", base, "-o", ckpt, "--method", "lora", "--max-steps", "2",
            "--batch-size", "2", "--max-seq-len", "64", "--lr", "5e-2")  # fmt: skip
    assert r.code == 0, r.err
    assert f"augment gguf {ckpt} (or --adapter" in r.out
    r = cli("gguf", ckpt, "--adapter", "--type", "f32")
    assert r.code == 0, r.err
    plain = transformers.AutoModelForCausalLM.from_pretrained(convert_gguf(base), dtype=torch.float32)
    model = peft.PeftModel.from_pretrained(plain, str(ckpt)).eval()
    ids = transformers.AutoTokenizer.from_pretrained(convert_gguf(base))(PROMPT)["input_ids"]
    want = peft_logits(model, ids)
    got = llama_cpp_lora_logits(base, tmp_path / "ckpt-lora-f32.gguf", ids)
    before = llama_cpp_lora_logits(base, None, ids)
    moved = np.abs(before - want).max()
    assert moved > 1e-3 * np.abs(want).max()  # two steps moved it
    assert np.abs(got - want).max() <= 0.1 * moved
    # written whole at 4 bits instead, the line says what --adapter keeps
    r = cli("gguf", ckpt, "--type", "q4_k_m")
    assert r.code == 0 and "is a LoRA: augment gguf --adapter writes it alone" in r.out, r.err


@needs_llama_cpp
def test_an_adapter_trained_on_a_transformers_folder_is_written_for_that_models_gguf(
    tmp_path: Path, cache: Path
):
    """A LoRA trained on a model's safetensors (on a GPU, say), for a GGUF of the same model (a
    quantised download): the GGUF is named with --base, its settings give the tensors' names."""
    import shutil

    base = build_base(tmp_path / "llama.gguf", "llama")  # Q8_0, as a download would be
    folder = tmp_path / "hf-llama"
    shutil.copytree(convert_gguf(base), folder)
    ckpt, lora = lora_checkpoint(base, tmp_path / "ckpt", folder=folder)
    with pytest.raises(AugmentError, match="hf-llama is not a GGUF file: name the GGUF .* with --base"):
        write_adapter_gguf(ckpt, tmp_path / "x.gguf")
    ids = transformers.AutoTokenizer.from_pretrained(folder)(PROMPT)["input_ids"]
    want = peft_logits(lora, ids)
    shutil.rmtree(folder)  # the folder it was trained on is not needed: the GGUF has the settings
    out = write_adapter_gguf(ckpt, tmp_path / "lora.gguf", base=str(base)).output
    got = llama_cpp_lora_logits(base, out, ids)
    scale = np.abs(want).max()
    assert np.abs(got - want).max() <= 0.05 * scale
    assert np.abs(llama_cpp_lora_logits(base, None, ids) - want).max() > 0.5 * scale


@needs_llama_cpp
def test_the_local_backend_applies_an_adapter_to_its_gguf(tmp_path: Path, cache: Path):
    """augment generate --backend local --model BASE.gguf --lora ADAPTER.gguf: llama.cpp runs the
    adapted model, and its replies are cached apart from the base's (the identity holds the file's
    hash)."""
    from augment.backends.base import get_backend
    from augment.backends.local import LocalBackend
    from augment.config import RunConfig
    from augment.errors import ConfigError
    from augment.types import GenRequest

    base = build_base(tmp_path / "llama.gguf", "llama")  # (the tiny Gemma's sliding window trips generation)
    ckpt, _ = lora_checkpoint(base, tmp_path / "ckpt")
    adapter = write_adapter_gguf(ckpt, tmp_path / "lora.gguf").output
    req = GenRequest(key="0" * 64, prompt=PROMPT, temperature=0.0, max_tokens=8, seed=0, chat=False)

    def run(**extra) -> tuple[str, str]:
        config = RunConfig(backend="local", model=str(base), context_tokens=256, threads=2, **extra)
        backend = LocalBackend.from_config(config)
        return backend.identity, backend.engine.run([req])[0].text

    plain_id, plain = run()
    adapted_id, adapted = run(lora=adapter)
    assert adapted_id.startswith(plain_id + "/lora-") and adapted != plain
    with pytest.raises(ConfigError, match="missing.gguf: no such adapter file"):
        run(lora=tmp_path / "missing.gguf")
    with pytest.raises(ConfigError, match="applied by the local backend .*this run's is mock"):
        get_backend(RunConfig(backend="mock", lora=adapter))
    # what llama.cpp refuses (llama-cpp-python would go on without it, and crash at the first token)
    gemma = build_base(tmp_path / "gemma3.gguf", "gemma3")
    other = write_adapter_gguf(lora_checkpoint(gemma, tmp_path / "g")[0], tmp_path / "g.gguf").output
    (tmp_path / "bogus.gguf").write_bytes(b"GGUF not really")
    for bad in (tmp_path / "bogus.gguf", base, other):  # not a GGUF; a model; another model's adapter
        with pytest.raises(AugmentError, match=f"{bad.name}: llama.cpp cannot apply this adapter to"):
            run(lora=bad)
