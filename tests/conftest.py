from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from augment.cli import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    """A private copy of examples/ (docs and config)."""
    dst = tmp_path / "examples"
    shutil.copytree(EXAMPLES, dst)
    return dst


class CliResult:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """Run `augment ARGS...` in-process; returns exit code, stdout and stderr."""
    monkeypatch.delenv("AUGMENT_DEBUG", raising=False)
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exc:
            main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(int(exc.value.code or 0), captured.out, captured.err)

    return run


def interruptible(cmd: list, **kwargs) -> subprocess.Popen:
    """`cmd` in a child process that Ctrl-C (SIGINT) stops as a terminal's would, also where the
    tests run with SIGINT ignored (a job started in the background), which the child would inherit
    and Python then leave ignored."""
    return subprocess.Popen(
        [str(a) for a in cmd],
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        **kwargs,
    )


def make_pdf(
    path: Path, paragraphs: list[str], title: str | None = None, password: str | None = None
) -> Path:
    """A real PDF with a text layer (fpdf2), optionally encrypted with a user password (pypdf)."""
    from fpdf import FPDF

    pdf = FPDF()
    if title:
        pdf.set_title(title)
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    for para in paragraphs:
        pdf.multi_cell(0, 6, para)
        pdf.ln(3)
    pdf.output(str(path))
    if password:
        from pypdf import PdfReader, PdfWriter

        writer = PdfWriter(clone_from=PdfReader(path))
        writer.encrypt(user_password=password, owner_password=password + "-owner")
        with open(path, "wb") as f:
            writer.write(f)
    return path


# Shared by the train and eval tests: a mock run on the examples, its shards, and a tiny model.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    from augment.config import load_config
    from augment.pipeline import generate

    run = tmp_path_factory.mktemp("run")
    cfg = load_config(EXAMPLES / "augment.toml", {"strategies": ["qa", "notes"]})
    generate([str(EXAMPLES / "docs")], run, cfg)
    return run


@pytest.fixture(scope="session")
def shards(run_dir: Path, tmp_path_factory) -> dict[str, Path]:
    from augment.shards import export

    out = {}
    for fmt in ("cpt", "chat"):
        export(run_dir, fmt=fmt, val_fraction=0.1)
        dst = tmp_path_factory.mktemp(fmt) / "run"
        dst.mkdir()
        shutil.copytree(run_dir / "shards", dst / "shards")
        shutil.copy(run_dir / "documents.jsonl", dst / "documents.jsonl")
        out[fmt] = dst / "shards"
    return out


@pytest.fixture(scope="session")
def tiny_model(run_dir: Path, tmp_path_factory) -> Path:
    """A 2-layer Llama and a byte-level BPE tokenizer trained on the run's own text: no download."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from augment.io import read_jsonl

    texts = [d["text"] for d in read_jsonl(run_dir / "documents.jsonl")]
    texts += [r["text"] for p in (run_dir / "generated").glob("*.jsonl") for r in read_jsonl(p)]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    hf_tok = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    hf_tok.chat_template = CHAT_TEMPLATE
    config = transformers.LlamaConfig(
        vocab_size=len(hf_tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,  # the examples' prompts fit
        bos_token_id=hf_tok.bos_token_id,
        eos_token_id=hf_tok.eos_token_id,
        pad_token_id=hf_tok.pad_token_id,
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny")
    transformers.LlamaForCausalLM(config).save_pretrained(path, safe_serialization=True)
    hf_tok.save_pretrained(path)
    return path


@pytest.fixture
def tiny_gpt2(tiny_model: Path, tmp_path: Path):
    """A 1-layer GPT-2 (a learned position table) with `n_positions`, and the tiny Llama's
    tokenizer and chat template: a model whose positions run out."""
    transformers = pytest.importorskip("transformers")

    def make(n_positions: int) -> Path:
        folder = tmp_path / f"gpt2-{n_positions}"
        folder.mkdir()
        for f in tiny_model.iterdir():
            if f.name.startswith(("tokenizer", "special_tokens", "chat_template")):
                shutil.copy(f, folder / f.name)
        tok = transformers.AutoTokenizer.from_pretrained(folder)
        config = transformers.GPT2Config(
            vocab_size=len(tok), n_positions=n_positions, n_embd=32, n_layer=1, n_head=2,
            bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        )  # fmt: skip
        transformers.GPT2LMHeadModel(config).save_pretrained(folder, safe_serialization=True)
        return folder

    return make
