"""augment average: the mean of checkpoints' weights, with the tiny Llama of conftest and real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
safetensors_torch = pytest.importorskip("safetensors.torch")

from augment.errors import AugmentError  # noqa: E402
from augment.train.average import average_checkpoints  # noqa: E402


@pytest.fixture
def two_checkpoints(tiny_model: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The tiny model as saved, and a copy whose every weight moved: two checkpoints of one model."""
    tok = transformers.AutoTokenizer.from_pretrained(tiny_model)
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model)
    a, b = tmp_path / "ckpt" / "step-2", tmp_path / "ckpt"
    model.save_pretrained(a, safe_serialization=True)
    tok.save_pretrained(a)
    (a / "snapshot.json").write_text(json.dumps({"step": 2}))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen))
    model.save_pretrained(b, safe_serialization=True)
    tok.save_pretrained(b)
    (b / "train.json").write_text(json.dumps({"steps": 4}))
    return a, b


def state(folder: Path) -> dict[str, torch.Tensor]:
    return transformers.AutoModelForCausalLM.from_pretrained(folder).state_dict()


def test_the_average_is_the_mean_of_every_weight_and_loads(two_checkpoints, tmp_path):
    a, b = two_checkpoints
    (a / "step-2-f16.gguf").write_bytes(b"GGUF")  # augment gguf -o into the folder: a's weights, not copied
    out = tmp_path / "avg"
    result = average_checkpoints([a, b], out)
    sa, sb, avg = state(a), state(b), state(out)
    assert set(avg) == set(sa)
    moved = 0
    for name, value in avg.items():
        assert torch.allclose(value, (sa[name] + sb[name]) / 2, atol=1e-6), name
        moved += not torch.equal(sa[name], sb[name])
    assert moved > 10  # the two checkpoints differ, so the test can tell a mean from a copy
    tok = transformers.AutoTokenizer.from_pretrained(out)  # copied from the first checkpoint
    assert tok("a fact").input_ids == transformers.AutoTokenizer.from_pretrained(a)("a fact").input_ids
    info = json.loads((out / "average.json").read_text())
    assert info["sources"] == [str(a), str(b)] and info["weights"] == [0.5, 0.5]
    assert info["trained"] == [{"step": 2}, {"step": 4}]
    assert result.parameters == sum(v.numel() for v in sa.values()) and result.files == ["model.safetensors"]
    assert not (out / "train.json").exists() and not (out / "snapshot.json").exists()
    assert not list(out.glob("*.gguf"))
    assert not list(tmp_path.glob(".avg*"))  # no temp folder left


def test_weights_are_normalised(two_checkpoints, tmp_path):
    a, b = two_checkpoints
    average_checkpoints([a, b], tmp_path / "w", weights=[1, 3])
    sa, sb, avg = state(a), state(b), state(tmp_path / "w")
    for name, value in avg.items():
        assert torch.allclose(value, 0.25 * sa[name] + 0.75 * sb[name], atol=1e-6), name


def test_dtypes_are_kept_and_integer_tensors_are_not_averaged(tmp_path):
    for i, folder in enumerate((tmp_path / "x", tmp_path / "y")):
        folder.mkdir()
        safetensors_torch.save_file(
            {
                "w": torch.full((3,), 1.0 + 2 * i, dtype=torch.bfloat16),
                "pos": torch.arange(4) + i,
            },
            str(folder / "model.safetensors"),
            metadata={"format": "pt"},
        )
        (folder / "config.json").write_text("{}")
    average_checkpoints([tmp_path / "x", tmp_path / "y"], tmp_path / "out")
    got = safetensors_torch.load_file(str(tmp_path / "out" / "model.safetensors"))
    assert got["w"].dtype == torch.bfloat16 and torch.equal(
        got["w"], torch.full((3,), 2.0, dtype=torch.bfloat16)
    )
    assert torch.equal(got["pos"], torch.arange(4))  # the first checkpoint's, as it was


def test_bad_input_is_one_clear_line_and_writes_nothing(two_checkpoints, tmp_path):
    a, b = two_checkpoints
    cases = []
    # a tensor of another shape in the second checkpoint: found while writing, and nothing is left
    odd = tmp_path / "odd"
    odd.mkdir()
    tensors = safetensors_torch.load_file(str(b / "model.safetensors"))
    name = sorted(tensors)[-1]
    tensors[name] = torch.zeros(1)
    safetensors_torch.save_file(tensors, str(odd / "model.safetensors"), metadata={"format": "pt"})
    cases.append(([a, odd], tmp_path / "o1", None, f"tensor '{name}' is torch.float32 (1,)"))
    fewer = tmp_path / "fewer"
    fewer.mkdir()
    del tensors[name]
    safetensors_torch.save_file(tensors, str(fewer / "model.safetensors"), metadata={"format": "pt"})
    cases.append(([a, fewer], tmp_path / "o2", None, "its tensors differ from"))
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    safetensors_torch.save_file({"x": torch.zeros(2)}, str(adapter / "adapter_model.safetensors"))
    cases.append(([a, adapter], tmp_path / "o3", None, "holds adapter_model.safetensors, but"))
    binary = tmp_path / "bin"
    binary.mkdir()
    (binary / "pytorch_model.bin").write_bytes(b"x")
    cases.append(
        ([binary, a], tmp_path / "o4", None, "found pytorch_model.bin: save it with safetensors first")
    )
    cases.append(([a], tmp_path / "o5", None, "needs two checkpoint folders or more"))
    cases.append(([a, a], tmp_path / "o6", None, "the same checkpoint is given twice"))
    cases.append(([a, b], tmp_path / "o7", [1.0], "1 weights for 2 checkpoints"))
    cases.append(([a, b], tmp_path / "o8", [1.0, -1.0], "must be non-negative"))
    cases.append(([a, tmp_path / "nope"], tmp_path / "o9", None, "no such checkpoint folder"))
    cases.append(([a, b], b, None, "already exists and is not empty"))
    for sources, out, weights, message in cases:
        with pytest.raises(AugmentError) as e:
            average_checkpoints(sources, out, weights)
        assert message in str(e.value) and "\n" not in str(e.value), (message, str(e.value))
        if out != b:
            assert not out.exists(), out
    assert not list(tmp_path.glob(".o*"))  # no temp folder left behind by a failure mid-way
    assert state(b)  # the existing folder was not touched and still loads


def test_cli_averages_and_rejects_bad_weights(cli, two_checkpoints, tmp_path):
    a, b = two_checkpoints
    r = cli("average", a, b, "-o", tmp_path / "avg", "--weights", "1,1")
    assert r.code == 0, r.err
    assert "averaged 2 checkpoints" in r.out and (tmp_path / "avg" / "model.safetensors").is_file()
    r = cli("average", a, b, "-o", tmp_path / "avg2", "--weights", "1,x")
    assert r.code == 2 and "is not a comma-separated list of numbers" in r.err
    assert len(r.err.strip().splitlines()) == 1 and not (tmp_path / "avg2").exists()


def lora_adapters(tiny_model: Path, tmp_path: Path, n: int, **settings) -> list[Path]:
    """`n` LoRA adapters of one setting on the tiny model, each with its own random A and B."""
    peft = pytest.importorskip("peft")
    config = dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "up_proj"], init_lora_weights=False)
    out = []
    for i in range(n):
        torch.manual_seed(i)
        model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model)
        lora = peft.get_peft_model(model, peft.LoraConfig(**{**config, **settings}))
        lora.save_pretrained(tmp_path / f"lora{i}")
        out.append(tmp_path / f"lora{i}")
    return out


def merged(tiny_model: Path, adapter: Path) -> dict[str, torch.Tensor]:
    """The weights an adapter makes of the tiny model (W + s B A on each adapted layer)."""
    peft = pytest.importorskip("peft")
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model)
    return peft.PeftModel.from_pretrained(model, str(adapter)).merge_and_unload().state_dict()


@pytest.mark.parametrize("settings", [{}, {"use_rslora": True, "rank_pattern": {"up_proj": 2}}])
def test_lora_adapters_average_to_the_mean_of_the_models_they_make(
    tiny_model: Path, tmp_path: Path, settings: dict
):
    """The mean of the B's times the mean of the A's is not the mean of the B A's: the average is
    an adapter of the ranks stacked, whose model is the weighted mean of the sources' models."""
    sources = lora_adapters(tiny_model, tmp_path, 3, **settings)
    weights = [1.0, 2.0, 1.0]
    out = tmp_path / "avg"
    average_checkpoints(sources, out, weights=weights)
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == 12 and config.get("rank_pattern", {}) == ({"up_proj": 6} if settings else {})
    models = [merged(tiny_model, s) for s in sources]
    want = {k: sum(m[k] * w / 4 for m, w in zip(models, weights, strict=True)) for k in models[0]}
    got = merged(tiny_model, out)
    moved = [k for k in want if "q_proj" in k or "up_proj" in k]
    assert moved and all(torch.allclose(got[k], want[k], atol=1e-5) for k in want)
    # and the two differ: averaging A and B one by one would not have given the mean model
    plain = tmp_path / "plain"
    plain.mkdir()
    halves = [safetensors_torch.load_file(str(s / "adapter_model.safetensors")) for s in sources]
    safetensors_torch.save_file(
        {k: sum(h[k] * w / 4 for h, w in zip(halves, weights, strict=True)) for k in halves[0]},
        str(plain / "adapter_model.safetensors"),
    )
    (plain / "adapter_config.json").write_text((sources[0] / "adapter_config.json").read_text())
    wrong = merged(tiny_model, plain)
    assert max((wrong[k] - want[k]).abs().max().item() for k in moved) > 1e-2


def test_lora_adapters_of_other_settings_or_dora_are_refused(tiny_model: Path, tmp_path: Path):
    a = lora_adapters(tiny_model, tmp_path / "a", 1)[0]
    b = lora_adapters(tiny_model, tmp_path / "b", 1, lora_alpha=16)[0]
    with pytest.raises(AugmentError, match="b/lora0/adapter_config.json: lora_alpha is 16, .* has 8; only"):
        average_checkpoints([a, b], tmp_path / "out")
    d1, d2 = lora_adapters(tiny_model, tmp_path / "d", 2, use_dora=True)
    with pytest.raises(AugmentError, match="a DoRA adapter; .*--merge"):
        average_checkpoints([d1, d2], tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
