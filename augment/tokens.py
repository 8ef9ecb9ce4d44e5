"""Token counting, shared by chunking, length filters and the manifest's token totals.

`approx` (the default) needs no model files: it counts letter runs (long words as several
pieces), digit groups and punctuation, calibrated to within a few percent on average of the
o200k BPE on English prose (per text within about ±25 %). `hf:PATH` counts exactly with a
Hugging Face `tokenizer.json` (a file, or a model folder holding one), e.g. the tokenizer of
the model you will train.
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path

from augment.errors import ConfigError

_PIECES = re.compile(r"[^\W\d_]+|\d{1,3}|[^\s\w]|_", re.UNICODE)
_CHARS_PER_PIECE = 7  # calibrated against o200k on SQuAD and Wikipedia passages


_LONG_WORD = re.compile(rf"[^\W\d_]{{{_CHARS_PER_PIECE + 1},}}", re.UNICODE)


def approx_count(text: str) -> int:
    # One token per piece, and a word longer than _CHARS_PER_PIECE letters counts
    # ceil(len / _CHARS_PER_PIECE) pieces; findall keeps the loop in C (this runs on every chunk).
    n = len(_PIECES.findall(text))
    for word in _LONG_WORD.findall(text):
        n += (len(word) - 1) // _CHARS_PER_PIECE
    return n


class Tokenizer:
    """Counts tokens and builds a token-aware splitter for chunking."""

    def __init__(self, spec: str = "approx"):
        self.spec = spec
        if spec == "approx":
            self.path = None
        elif spec.startswith("hf:"):
            path = Path(spec[3:]).expanduser()
            if path.is_dir():
                path = path / "tokenizer.json"
            if not path.is_file():
                raise ConfigError(f"tokenizer '{spec}': no tokenizer.json at {path}")
            self.path = path
        else:
            raise ConfigError(
                f"tokenizer '{spec}' is not known. Use 'approx' or 'hf:PATH/TO/tokenizer.json'."
            )

    @cached_property
    def _hf(self):
        try:
            from tokenizers import Tokenizer as HFTokenizer
        except ImportError as e:
            raise ConfigError(
                f"tokenizer '{self.spec}' needs the tokenizers package: pip install 'augment[hf-tokenizer]'"
            ) from e
        tok = HFTokenizer.from_file(str(self.path))
        tok.no_truncation()
        return tok

    def count(self, text: str) -> int:
        if self.path is None:
            return approx_count(text)
        return len(self._hf.encode(text, add_special_tokens=False).ids)

    def splitter(self, capacity: int | tuple[int, int], overlap: int, markdown: bool = False):
        from semantic_text_splitter import MarkdownSplitter, TextSplitter

        cls = MarkdownSplitter if markdown else TextSplitter
        if self.path is None:
            return cls.from_callback(approx_count, capacity, overlap=overlap)
        return cls.from_huggingface_tokenizer_file(str(self.path), capacity, overlap=overlap)
