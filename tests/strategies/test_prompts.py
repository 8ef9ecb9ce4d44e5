from __future__ import annotations

from pathlib import Path

import pytest

from augment.errors import ConfigError, ParseError
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
    assert recs[0]["text"] == "Question: When was the Merrow light completed?\nAnswer: 1862"
    assert recs[0]["messages"][1] == {"role": "assistant", "content": "1862"}
    assert recs[0]["span"] == [10, 60] and recs[0]["prompt"]["version"] == "2"
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
        ConfigError,
        match=r"Unknown strategy 'quiz'. Available: active-reading, entigraph, inferences, notes, paraphrase, qa",
    ):
        load_strategies(["qa", "quiz"])


def test_completion_style_is_few_shot_and_ends_with_the_primer():
    for s in load_strategies(sorted(discover_prompts())):
        chat = s.build(CHUNK, backend="mock", model="m", seed=0)
        for req in s.build(CHUNK, backend="mock", model="m", seed=0, style="completion"):
            assert not req.chat and req.schema is None and req.stop[0] == "###"
            shot, query = req.prompt.split("\n###\n\n")
            assert shot.startswith("Document: Orlen Valley Railway\n\n")  # the worked example first
            assert query.startswith("Document: Merrow\n\n" + CHUNK.text)  # then this chunk
            assert req.prompt.endswith("\n" + req.primer if req.primer else ":\n")
            assert req.max_tokens <= s.header.max_tokens
        # the two styles never share a cache entry
        keys = {r.key for r in chat}
        assert not keys & {
            r.key for r in s.build(CHUNK, backend="mock", model="m", seed=0, style="completion")
        }


def test_a_reply_cut_off_by_max_tokens_loses_only_its_unfinished_end():
    (qa,) = load_strategies(["qa"])
    reply = "Q: When was the light completed?\nA: 1862\nQ: Who designed"
    assert len(qa.parse(reply, "length", chat=False).items) == 1  # the unfinished item lacks fields anyway
    cut = qa.parse(reply + " it?\nA: Ada Penhal", "length", chat=False)
    assert [i["answer"] for i in cut.items] == ["1862"] and "cut off" in cut.rejected[-1]
    assert qa.parse(reply + " it?\nA: Ada Penhal", "stop", chat=False).items[-1]["answer"] == "Ada Penhal"
    (notes,) = load_strategies(["notes"])
    text = "The Merrow light was completed in 1862. It was designed by Ada Penhallow. It is thirty"
    assert notes.parse(text, "length").items[0]["text"] == text[: text.rindex(".") + 1]
    with pytest.raises(ParseError, match="cut off"):
        qa.parse("Q: When was the light completed?\nA: 18", "length", chat=False)


def test_completion_examples_must_cover_every_variant(tmp_path: Path):
    text = (builtin_prompts_dir() / "paraphrase.md").read_text(encoding="utf-8")
    start = text.index("    simple: >-")
    end = text.index("    academic: >-")
    (tmp_path / "paraphrase.md").write_text(text[:start] + text[end:], encoding="utf-8")
    with pytest.raises(ConfigError, match="missing: \\['simple'\\]"):
        load_strategies(["paraphrase"], tmp_path)
