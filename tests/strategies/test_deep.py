"""Multi-step strategies: entity lists parsed, task order deterministic and without repeats."""

from __future__ import annotations

import math
from itertools import combinations
from pathlib import Path

import pytest

from augment.errors import ConfigError, ParseError
from augment.strategies import load_strategies, load_strategy
from augment.strategies.deep import DeepStrategy, mentions
from augment.strategies.parsers import Parsed, parse_entities
from augment.types import Chunk

TEXT = (
    "Ada Penhallow kept the Cape Merrow lighthouse from 1871 to 1902. The lamp of Cape Merrow was made "
    "in Birmingham by Tomas Rill. Ada Penhallow rowed to the wreck of the Vell in 1889. Tomas Rill later "
    "visited Cape Merrow and Port Anselm. Port Anselm lies north of Cape Merrow. Ada Penhallow wrote "
    "to Tomas Rill about the Vell."
)
CHUNK = Chunk("doc:0000", "doc", 0, 0, len(TEXT), TEXT, "Cape Merrow Lighthouse", 70)


@pytest.fixture(scope="module")
def entigraph() -> DeepStrategy:
    strategy = load_strategies(["entigraph"])[0]
    assert isinstance(strategy, DeepStrategy)
    return strategy


@pytest.mark.parametrize(
    "reply",
    [
        '{"summary": "A keeper and her lighthouse.", "entities": ["Ada Penhallow", "Cape Merrow", "Vell"]}',
        '```json\n{"summary": "A keeper and her lighthouse.", "entities": ["Ada Penhallow", "Cape Merrow", '
        '"Vell"]}\n```\nThese are the main ones.',
        "Summary: A keeper and her\nlighthouse.\nEntities:\n1. Ada Penhallow\n2. **Cape Merrow**\n3. Vell.",
        "Summary: A keeper and her lighthouse.\nEntities: Ada Penhallow; Cape Merrow, Vell",
    ],
)
def test_entity_replies_in_every_shape_parse_to_the_same_items(reply: str):
    parsed = parse_entities(reply, ("entity",))
    assert [it["entity"] for it in parsed.items] == ["Ada Penhallow", "Cape Merrow", "Vell"]
    assert parsed.meta["summary"] == "A keeper and her lighthouse."


def test_entity_parser_drops_repeats_and_sentences_and_rejects_an_empty_list():
    parsed = parse_entities(
        '["Vell", "vell", "a very long description that is not the name of anything at all"]', ()
    )
    assert [it["entity"] for it in parsed.items] == ["Vell"] and len(parsed.rejected) == 1
    with pytest.raises(ParseError, match="no entities"):
        parse_entities('{"summary": "x", "entities": []}', ("entity",))


def test_entities_must_occur_in_the_chunk_and_come_most_mentioned_first(entigraph: DeepStrategy):
    reply = '{"summary": "s", "entities": ["Vell", "Port Anselm", "Atlantis", "Cape Merrow", "Rill"]}'
    parsed = entigraph.parse(reply, step="entities", source=TEXT)
    names = [it["entity"] for it in parsed.items]
    assert names == ["Cape Merrow", "Rill", "Vell", "Port Anselm"]  # 4, 3, then 2 and 2 in the model's order
    assert parsed.rejected == ["entity 'Atlantis' does not occur in the chunk"]
    assert mentions("B", "Birmingham by boat") == 0  # whole words, not letters
    with pytest.raises(ParseError, match="none of the entities"):
        entigraph.parse('{"summary": "s", "entities": ["Atlantis"]}', step="entities", source=TEXT)


def _items(names: list[str]) -> Parsed:
    return Parsed([{"entity": n, "mentions": str(mentions(n, TEXT))} for n in names])


NAMES = ["Cape Merrow", "Ada Penhallow", "Tomas Rill", "Port Anselm", "Vell", "Birmingham", "1871"]


def test_task_order_is_deterministic_for_a_seed_and_never_repeats_a_group(entigraph: DeepStrategy):
    tasks = entigraph.tasks(CHUNK, _items(NAMES), seed=0)
    again = entigraph.tasks(CHUNK, _items(NAMES), seed=0)
    other = entigraph.tasks(CHUNK, _items(NAMES), seed=1)
    assert tasks == again and tasks != other
    groups = [frozenset(t.label.split(" | ")) for t in tasks]
    assert len(groups) == len(set(groups)) == math.comb(7, 2) + math.comb(7, 3)
    assert set(groups) == {frozenset(g) for n in (2, 3) for g in combinations(NAMES, n)}
    sizes = [len(g) for g in groups]
    assert sizes == sorted(sizes)  # every pair before any triple
    assert tasks[0].context == {"entities": tasks[0].label.replace(" | ", " and ")}


def test_often_mentioned_entities_tend_to_come_first(entigraph: DeepStrategy):
    # over seeds, pairs with the most mentioned entity rank ahead of pairs with a once-mentioned one
    top, rare = [], []
    for seed in range(40):
        pairs = [t.label for t in entigraph.tasks(CHUNK, _items(NAMES), seed=seed) if t.label.count("|") == 1]
        top += [i for i, p in enumerate(pairs) if "Cape Merrow" in p]
        rare += [i for i, p in enumerate(pairs) if "Birmingham" in p]
    assert sum(top) / len(top) < 0.7 * sum(rare) / len(rare)


def test_samples_repeat_every_task_after_the_first_round(entigraph: DeepStrategy):
    tasks = entigraph.tasks(CHUNK, _items(NAMES[:3]), seed=0, samples=2)
    assert [t.sample for t in tasks] == [0] * 4 + [1] * 4
    assert [t.label for t in tasks[:4]] == [t.label for t in tasks[4:]]


def test_active_reading_tasks_are_the_proposed_strategies_with_unique_labels():
    strategy = load_strategies(["active-reading"])[0]
    assert isinstance(strategy, DeepStrategy) and strategy.steps == ("plan", "apply")
    reply = "1. Timeline: order the dates 1871, 1889, 1902.\n2. Self-quiz: questions on Ada Penhallow.\n3. Timeline: again."
    parsed = strategy.parse(reply, step="plan", source=TEXT)
    tasks = strategy.tasks(CHUNK, parsed, seed=0)
    assert [t.label for t in tasks] == ["Timeline", "Self-quiz", "Timeline #2"]
    assert tasks[1].context == {"study": "Self-quiz: questions on Ada Penhallow."}


def test_second_step_prompts_carry_the_task_in_both_styles(entigraph: DeepStrategy):
    task = entigraph.tasks(CHUNK, _items(NAMES[:2]), seed=0)[0]
    kw = dict(backend="mock", model="m", seed=0)
    chat = entigraph.task_request(CHUNK, task, **kw)
    completion = entigraph.task_request(CHUNK, task, style="completion", **kw)
    assert "Cape Merrow and Ada Penhallow" in chat.prompt or "Ada Penhallow and Cape Merrow" in chat.prompt
    assert chat.step == "relate" and chat.variant == task.label and chat.key != completion.key
    # the worked example shows its own entities; the query names this task's
    assert "How Mara Kovel and the river Orle relate" in completion.prompt
    assert completion.prompt.rstrip().endswith("relate in the document above about Cape Merrow Lighthouse:")
    first = entigraph.build(CHUNK, style="completion", **kw)[0]
    assert first.step == "entities" and first.primer == "Summary:" and first.prompt.endswith("Summary:")


def test_prompt_files_of_multi_step_kinds_are_checked(tmp_path: Path):
    source = (load_strategies(["entigraph"])[0].path).read_text(encoding="utf-8")
    bad = tmp_path / "entigraph.md"
    bad.write_text(source.replace("kind: entigraph", "kind: entigraph\nvariants: [a, b]"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"entigraph.md: .*takes no variants"):
        load_strategy(bad)
    start, end = source.index("first:"), source.index('completion:\n  instruction: "How')
    bad.write_text(source[:start] + source[end:], encoding="utf-8")
    with pytest.raises(ConfigError, match=r"entigraph.md: .*needs a 'first' step"):
        load_strategy(bad)
