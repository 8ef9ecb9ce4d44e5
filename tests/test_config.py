from __future__ import annotations

from pathlib import Path

import pytest

from augment.config import load_config
from augment.errors import ConfigError


def test_defaults_file_and_flags_in_order(tmp_path: Path):
    toml = tmp_path / "a.toml"
    toml.write_text('chunk_tokens = 300\nstrategies = ["qa"]\nprompts_dir = "mine"\n', encoding="utf-8")
    cfg = load_config(toml, {"chunk_tokens": 128, "seed": None})
    assert cfg.chunk_tokens == 128 and cfg.strategies == ["qa"] and cfg.seed == 0
    assert cfg.prompts_dir == (tmp_path / "mine").resolve()
    yaml_file = tmp_path / "a.yaml"
    yaml_file.write_text("chunk-tokens: 200\nstrategies: qa, notes\n", encoding="utf-8")
    cfg = load_config(yaml_file, {"strategies": ["paraphrase,inferences"]})
    assert cfg.chunk_tokens == 200 and cfg.strategies == ["paraphrase", "inferences"]


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        ("chunk_size = 3\n", ".toml", "unknown key 'chunk_size' (did you mean 'chunk_tokens'?)"),
        ('chunk_tokens = "big"\n', ".toml", "'chunk_tokens' input should be a valid integer"),
        ("chunk_tokens = [\n", ".toml", "invalid TOML"),
        ("format: parquet\n", ".yaml", "'format' input should be 'cpt' or 'chat'"),
        ("strategies: [qa\n", ".yaml", "invalid YAML at line"),
        ("- a\n- b\n", ".yaml", "expected a table of keys, got list"),
        (
            "chunk_tokens = 64\nchunk_overlap = 64\n",
            ".toml",
            "chunk_overlap (64) must be smaller than chunk_tokens (64)",
        ),
        ("x = 1", ".ini", "config must be .toml, .yaml or .yml"),
    ],
)
def test_bad_config_is_one_line_naming_the_file(tmp_path: Path, content: str, suffix: str, message: str):
    path = tmp_path / f"bad{suffix}"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    text = str(e.value)
    assert text.startswith(str(path)) and message in text and "\n" not in text, text


def test_missing_config_file():
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(Path("/nonexistent/augment.toml"))
