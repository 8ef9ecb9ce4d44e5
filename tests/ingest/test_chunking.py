from __future__ import annotations

import json
from pathlib import Path

import pytest

from augment.ingest import Chunker
from augment.io import sha256_hex
from augment.tokens import Tokenizer, approx_count
from augment.types import Document

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def doc(text: str, path: str = "doc.txt") -> Document:
    return Document(sha256_hex(text)[:16], path, "Title", text, sha256_hex(text))


def paragraphs(n: int) -> str:
    return "\n\n".join(
        f"Paragraph {i} talks about café number {i}. It opened in {1900 + i} — naïvely, some say. "
        f"Its owner was Zoë {i}, who sold {i * 3} pastries a day."
        for i in range(n)
    )


@pytest.mark.parametrize("path", ["doc.txt", "doc.md"])
def test_chunk_ranges_map_back_to_the_exact_source_text(path: str):
    text = "# Heading\n\n" + paragraphs(40) + "\n\n## Tail\n\n" + "word " * 300
    d = doc(text, path)
    chunks = Chunker(Tokenizer(), 64, 16).chunk(d)
    assert len(chunks) > 10
    for i, c in enumerate(chunks):
        assert d.text[c.start : c.end] == c.text
        assert c.chunk_id == f"{d.doc_id}:{i:04d}" and c.index == i
        assert c.tokens == approx_count(c.text) <= 64
    # every non-space character of the document is in some chunk: no text is dropped
    covered = [False] * len(text)
    for c in chunks:
        covered[c.start : c.end] = [True] * (c.end - c.start)
    assert all(covered[i] for i, ch in enumerate(text) if not ch.isspace())


def test_chunks_prefer_paragraph_then_sentence_boundaries():
    d = doc(paragraphs(12))
    chunks = Chunker(Tokenizer(), 80, 0).chunk(d)
    # 80 tokens fit two or three ~32-token paragraphs but not four: chunks end on paragraph ends
    for c in chunks[:-1]:
        assert d.text[c.end : c.end + 2] == "\n\n", repr(d.text[c.end - 20 : c.end + 5])
    long_para = " ".join(f"Sentence {i} has exactly seven plain words." for i in range(40))
    for c in Chunker(Tokenizer(), 40, 0).chunk(doc(long_para))[:-1]:
        assert c.text.endswith("."), c.text[-30:]


def test_overlap_repeats_text_between_neighbours():
    d = doc(" ".join(f"Sentence {i} is here." for i in range(200)))
    chunks = Chunker(Tokenizer(), 50, 20).chunk(d)
    assert all(b.start < a.end for a, b in zip(chunks, chunks[1:], strict=False))
    no_overlap = Chunker(Tokenizer(), 50, 0).chunk(d)
    assert all(b.start >= a.end for a, b in zip(no_overlap, no_overlap[1:], strict=False))


def test_hf_tokenizer_counts_exactly(tmp_path: Path):
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import models, pre_tokenizers

    vocab = {
        "[UNK]": 0,
        **{
            w: i + 1
            for i, w in enumerate(["the", "light", "flashes", "white", "twice", "every", "seconds", "."])
        },
    }
    tok = tokenizers.Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    t = Tokenizer(f"hf:{tmp_path}")
    assert t.count("the light flashes white twice every 15 seconds .") == 9
    text = " ".join(["the light flashes white twice every seconds ."] * 50)
    chunks = Chunker(t, 20, 0).chunk(doc(text))
    assert all(t.count(c.text) <= 20 for c in chunks) and len(chunks) >= 20


@pytest.mark.skipif(not DATA.is_dir(), reason="shared/data not present")
def test_approx_count_is_close_to_bpe_on_real_passages():
    # Reference: o200k token counts of these passages, found by bisecting the splitter's capacity
    # (its tiktoken tables are built in, so this runs offline).
    from semantic_text_splitter import TextSplitter

    def exact(text: str) -> int:
        lo, hi = 1, 4096
        while lo < hi:
            mid = (lo + hi) // 2
            if len(TextSplitter.from_tiktoken_model("gpt-4o", mid, trim=False).chunks(text)) <= 1:
                hi = mid
            else:
                lo = mid + 1
        return lo

    texts = [json.loads(line)["text"] for line in (DATA / "squad_dev200.jsonl").open()][:25]
    ratios = [approx_count(t) / exact(t) for t in texts]
    assert 0.85 < sum(ratios) / len(ratios) < 1.15


def test_unknown_tokenizer_is_a_config_error():
    from augment.errors import ConfigError

    with pytest.raises(ConfigError, match="tokenizer 'gpt2' is not known"):
        Tokenizer("gpt2")
    with pytest.raises(ConfigError, match="no tokenizer.json"):
        Tokenizer("hf:/nonexistent/dir")
    assert approx_count("a b c") == 3 and approx_count("internationalisation") == 3  # 20 letters: 3 pieces
