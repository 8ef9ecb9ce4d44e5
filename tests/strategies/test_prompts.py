from __future__ import annotations

from pathlib import Path

import pytest

from augment.errors import ConfigError
from augment.strategies import builtin_prompts_dir, discover_prompts, load_strategies, load_strategy
from augment.strategies.parsers import Parsed
from augment.types import Chunk, GenResult

CHUNK = Chunk(
    "d:0000", "d", 0, 10, 60, "The Merrow light was completed in 1862 by Ada Penhallow.", "Merrow", 12
)
MINIMAL = """---
name: {name}
version: 2
parser: numbered_list
fields: [fact]
record:
  text: "{{{{ fact }}}}"
  user: "Tell me a fact about {{{{ title }}}}."
  assistant: "{{{{ fact }}}}"
---
List the facts.
"""


def test_every_shipped_prompt_loads_and_puts_the_chunk_first():
    names = sorted(discover_prompts())
    assert {"qa", "paraphrase", "inferences", "notes"} <= set(names)
    prompts = []
    for s in load_strategies(names):
        for req in s.build(CHUNK, backend="mock", model="m", seed=0):
            assert req.prompt.startswith("Document: Merrow\n\n" + CHUNK.text)
            assert req.prompt.index(CHUNK.text) < len(req.prompt) - 200  # the instruction comes after
            prompts.append(req.prompt)
    # all strategies on one chunk share the same prefix, so a server's prefix cache can serve them
    prefix = "Document: Merrow\n\n" + CHUNK.text + "\n\n---"
    assert all(p.startswith(prefix) for p in prompts)
    assert len(set(prompts)) == len(prompts)


def test_paraphrase_has_one_request_per_style_and_samples_multiply():
    (s,) = load_strategies(["paraphrase"])
    reqs = s.build(CHUNK, backend="mock", model="m", seed=0, samples=2)
    assert [(r.variant, r.sample) for r in reqs] == [
        (v, i) for v in ("encyclopedic", "simple", "academic", "qa_dialogue") for i in range(2)
    ]
    assert "encyclopedia" in reqs[0].prompt and "Student:" in reqs[-1].prompt
    assert len({r.key for r in reqs}) == 8
    # the key changes with anything that changes the output
    other = s.build(CHUNK, backend="mock", model="m", seed=1, samples=2)
    assert not {r.key for r in reqs} & {r.key for r in other}


def test_records_render_text_and_messages_and_have_stable_ids():
    (s,) = load_strategies(["qa"])
    req = s.build(CHUNK, backend="mock", model="m", seed=0)[0]
    parsed = Parsed(
        items=[
            {
                "question": "When was the Merrow light completed?",
                "answer": "1862",
                "evidence": "completed in 1862",
            }
        ]
    )
    recs = s.records(CHUNK, req, GenResult("..."), parsed, backend="mock", model="m")
    assert recs[0]["text"] == "Merrow\nQuestion: When was the Merrow light completed?\nAnswer: 1862"
    assert recs[0]["messages"][1] == {"role": "assistant", "content": "1862"}
    assert recs[0]["span"] == [10, 60] and recs[0]["prompt"]["version"] == "1"
    again = s.records(CHUNK, req, GenResult("other text"), parsed, backend="mock", model="m")
    assert again[0]["id"] == recs[0]["id"]


def test_user_prompt_dir_adds_and_overrides(tmp_path: Path):
    (tmp_path / "facts.md").write_text(MINIMAL.format(name="facts"), encoding="utf-8")
    (tmp_path / "qa.md").write_text(MINIMAL.format(name="qa"), encoding="utf-8")
    found = discover_prompts(tmp_path)
    assert found["facts"] == tmp_path / "facts.md"
    assert found["qa"] == tmp_path / "qa.md"
    assert found["notes"].parent == builtin_prompts_dir()
    (facts,) = load_strategies(["facts"], tmp_path)
    assert facts.header.parser == "numbered_list" and facts.version == "2"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no header here", "must start with a '---' YAML header"),
        ("---\nname: bad\n---\nx", "header 'version': Field required"),
        (MINIMAL.format(name="bad").replace("numbered_list", "xml"), "header 'parser': unknown parser 'xml'"),
        (
            MINIMAL.format(name="bad").replace("version: 2", "version: 2\ncolour: red"),
            "header 'colour': unknown key",
        ),
        (MINIMAL.format(name="other"), "header name 'other' must match the file name 'bad'"),
        (MINIMAL.format(name="bad").replace("{{ fact }}", "{{ fact }"), "record.text template error"),
        (
            MINIMAL.format(name="bad").replace("List the facts.", ""),
            "the instruction after the header is empty",
        ),
    ],
)
def test_bad_prompt_files_name_the_file_and_the_problem(tmp_path: Path, text: str, message: str):
    path = tmp_path / "bad.md"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_strategy(path)
    assert str(e.value).startswith(str(path)) and message in str(e.value), str(e.value)


def test_unknown_strategy_lists_the_available_ones():
    with pytest.raises(
        ConfigError, match=r"Unknown strategy 'quiz'. Available: inferences, notes, paraphrase, qa"
    ):
        load_strategies(["qa", "quiz"])
