from __future__ import annotations

import pytest

from augment.errors import ParseError
from augment.strategies.parsers import parse_json_list, parse_numbered_list, parse_text

QA = ("question", "answer", "evidence")
ITEM = '{"question": "When was it built?", "answer": "1862", "evidence": "completed in 1862"}'
EXPECTED = {"question": "When was it built?", "answer": "1862", "evidence": "completed in 1862"}


@pytest.mark.parametrize(
    "reply",
    [
        f"[{ITEM}]",
        f"```json\n[{ITEM}]\n```",
        f"Here are the pairs:\n```\n[{ITEM}]\n```\nI hope this helps!",
        f"Sure! Here you go:\n[{ITEM}]\n\nLet me know if you want more.",
        f"[{ITEM},]",  # trailing comma
        f'{{"pairs": [{ITEM}]}}',  # wrapped in an object
        ITEM,  # a single object
        "Question: When was it built?\nAnswer: 1862\nEvidence: completed in 1862",
        '1. **Q:** When was it built?\n   **A:** 1862\n   **Evidence:** "completed in 1862"',
        '[{"Question": "When was it built?", "Answer": 1862, "Evidence": "completed in 1862", "extra": 1}]',
    ],
)
def test_json_list_accepts_what_models_emit(reply: str):
    assert parse_json_list(reply, QA).items == [EXPECTED]


def test_json_list_keeps_good_items_and_reports_bad_ones():
    reply = f'[{ITEM}, {{"question": "Who?", "answer": ""}}, "a bare string"]'
    parsed = parse_json_list(reply, QA)
    assert parsed.items == [EXPECTED]
    assert parsed.rejected == ["item missing 'answer'", "item is a str, not an object"]


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("", "empty response"),
        ("I'm sorry, but I can't help with that request.", "no JSON list or labelled fields found"),
        ('[{"question": "What is', "no JSON list or labelled fields found"),
        ("[]", "empty JSON list"),
        ('[{"question": "Q only"}]', "item missing 'answer'"),
        ('"just a string"', "expected a JSON list, got str"),
    ],
)
def test_json_list_rejects_the_rest_with_a_reason(reply: str, reason: str):
    with pytest.raises(ParseError) as e:
        parse_json_list(reply, QA)
    assert str(e.value) == reason


def test_numbered_list_variants():
    reply = (
        "Here are the implications:\n\n"
        "1. The tower is older than the fog signal.\n"
        "2) Keepers lived on site until 1989,\n   when the light was automated.\n"
        "- **Cost:** paraffin was cheaper than colza oil.\n"
        "* Visitors can see the lantern.\n\n"
        "These follow directly from the text. Let me know if you need more!"
    )
    items = [i["inference"] for i in parse_numbered_list(reply, ("inference",)).items]
    assert items == [
        "The tower is older than the fog signal.",
        "Keepers lived on site until 1989, when the light was automated.",
        "Cost: paraffin was cheaper than colza oil.",
        "Visitors can see the lantern.",
    ]
    fenced = "```\n1. One thing.\n2. Another thing.\n```"
    assert len(parse_numbered_list(fenced, ("inference",)).items) == 2
    with pytest.raises(ParseError, match="no list items found"):
        parse_numbered_list("A paragraph with no list at all.", ("inference",))
    with pytest.raises(ParseError, match="empty response"):
        parse_numbered_list("   ", ("inference",))


def test_text_strips_fences_and_preamble():
    assert parse_text("Sure, here is the rewrite:\nThe tower is tall.", ("text",)).items == [
        {"text": "The tower is tall."}
    ]
    assert parse_text("```markdown\n- note one\n- note two\n```", ("text",)).items == [
        {"text": "- note one\n- note two"}
    ]
    assert parse_text("Plain text: with a colon inside.", ("text",)).items == [
        {"text": "Plain text: with a colon inside."}
    ]
    with pytest.raises(ParseError, match="empty response"):
        parse_text("```\n```", ("text",))
