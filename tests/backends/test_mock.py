from __future__ import annotations

import asyncio

from augment.backends.mock import MockBackend, sentences
from augment.errors import BackendError
from augment.strategies import load_strategies
from augment.types import Chunk

TEXT = (
    "The lighthouse at Cape Merrow was designed by Ada Penhallow and completed in 1862. "
    "The tower is 31 metres tall and is built from local grey granite. "
    "In 1884 the keepers switched to paraffin, which gave a brighter flame. "
    "The last keeper, Tomas Rill, left the station in 1989."
)
CHUNK = Chunk("d:0000", "d", 0, 0, len(TEXT), TEXT, "Merrow", 60)


def replies(backend: MockBackend, name: str) -> list[tuple[object, str]]:
    (s,) = load_strategies([name])
    reqs = s.build(CHUNK, backend="mock", model="mock", seed=0)
    return [(r, asyncio.run(backend.generate(r)).text) for r in reqs]


def test_qa_answers_are_spans_and_evidence_is_verbatim():
    (s,) = load_strategies(["qa"])
    ((req, text),) = replies(MockBackend(), "qa")
    items = s.parse(text).items
    assert len(items) == 4
    for item in items:
        assert item["evidence"] in TEXT
        assert item["answer"] in item["evidence"]
        assert item["question"].count("_____") == 1
        filled = item["question"].replace("_____", item["answer"])
        assert item["evidence"].rstrip(".") in filled


def test_every_strategy_gets_a_reply_its_parser_accepts():
    b = MockBackend()
    for name in ("qa", "paraphrase", "inferences", "notes"):
        (s,) = load_strategies([name])
        for _req, text in replies(b, name):
            assert s.parse(text).items, (name, text)


def test_replies_are_deterministic_and_differ_between_samples():
    a = [t for _, t in replies(MockBackend(), "inferences")]
    b = [t for _, t in replies(MockBackend(), "inferences")]
    assert a == b
    (s,) = load_strategies(["inferences"])
    r0, r1 = s.build(CHUNK, backend="mock", model="mock", seed=0, samples=2)
    mock = MockBackend()
    assert asyncio.run(mock.generate(r0)).text != asyncio.run(mock.generate(r1)).text


def test_injected_failures_follow_the_rate_and_are_retryable():
    (s,) = load_strategies(["notes"])
    chunks = [Chunk(f"d:{i:04d}", "d", i, 0, 10, TEXT + f" Number {i}.", "t", 10) for i in range(400)]
    reqs = [s.build(c, backend="mock", model="mock", seed=0)[0] for c in chunks]
    b = MockBackend(fail_rate=0.3)
    failed = 0
    for r in reqs:
        try:
            asyncio.run(b.generate(r))
        except BackendError as e:
            assert e.retryable
            failed += 1
    assert 0.22 < failed / len(reqs) < 0.38

    bad = MockBackend(malformed_rate=0.5)
    malformed = sum(1 for r in reqs if asyncio.run(bad.generate(r)).text != MockBackend().reply(r))
    assert 0.4 < malformed / len(reqs) < 0.6


def test_sentences_and_usage():
    assert len(sentences(TEXT)) == 4
    req = load_strategies(["qa"])[0].build(CHUNK, backend="mock", model="mock", seed=0)[0]
    res = asyncio.run(MockBackend().generate(req))
    assert res.usage.prompt_tokens > 60 and res.usage.completion_tokens > 20
