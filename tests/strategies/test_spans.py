from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from augment.cli import app
from augment.curate.filters import GroundingFilter
from augment.errors import ConfigError, ParseError
from augment.strategies import load_strategy
from augment.strategies.spans import (
    SpanStrategy,
    chunk_spans,
    definition_spans,
    front_question,
    in_list,
    list_spans,
    paired,
    phrase_spans,
    pick_spans,
    preposition_spans,
    sentences,
    wh_question,
)
from augment.types import Chunk, GenResult, Usage

TEXT = (
    "Harrow Point is a 2019 Irish drama film directed by Nuala Brennan. It premiered at the Galway Film "
    "Fleadh on 9 July 2019 and won the Best Irish Feature award. Brennan's brother Ciaran Brennan wrote "
    'the score. The film was shot in 23 days on Achill Island, and Dr. Brennan later called it "a '
    'postcard to the west".'
)
CHUNK = Chunk("h:0000", "h", 0, 0, len(TEXT), TEXT, "Harrow Point (film)", 80)


def test_sentences_split_at_ends_but_not_after_abbreviations():
    got = [s for _, s in sentences(TEXT)]
    assert len(got) == 4
    assert got[3].startswith("The film was shot in 23 days") and "Dr. Brennan" in got[3]
    for offset, s in sentences(TEXT):
        assert TEXT[offset : offset + len(s)] == s
    assert len(sentences("It stars Bobby Simha and R. K. Suresh. It was shot in Chennai.")) == 2
    assert [s for _, s in sentences("Condensers run at around 30 °C. This gives 63% at most.")] == [
        "Condensers run at around 30 °C.",
        "This gives 63% at most.",
    ]
    # a capital letter ends a sentence before a word that opens one, and nowhere else
    assert [
        s for _, s in sentences("It was named Super Bowl 50, not Super Bowl L. The use of numerals returns.")
    ] == [
        "It was named Super Bowl 50, not Super Bowl L.",
        "The use of numerals returns.",
    ]
    assert len(sentences("Its music is by Girishh G. The film was released in 2019.")) == 2
    for joined in ("It stars J. A. Smith and Franklin D. Roosevelt.", "It was led by John F. Kennedy."):
        assert len(sentences(joined)) == 1


def test_spans_are_names_dates_numbers_and_quotes_never_the_title():
    answers = [s.answer for s in pick_spans(TEXT, CHUNK.title, 50)]
    assert "9 July 2019" in answers  # a date whole, not "9" and "2019"
    assert "Nuala Brennan" in answers and "Ciaran Brennan" in answers
    assert "Brennan" not in answers  # the surname alone is asked through the full name
    assert "a postcard to the west" in answers  # quoted, without its quotes
    assert "23 days" in answers and "Achill Island" in answers
    assert "Galway Film Fleadh" in answers and "Best Irish Feature" in answers
    assert not any("Harrow" in a or a in ("The", "It", "The film") for a in answers)
    assert len(answers) == len({a.lower() for a in answers})
    for span in pick_spans(TEXT, CHUNK.title, 50):
        assert span.answer in span.sentence and TEXT[span.start :].startswith(span.answer)


def test_a_capped_chunk_asks_about_every_sentence_first():
    spans = pick_spans(TEXT, CHUNK.title, 4)
    assert len(spans) == 4
    assert len({s.sentence for s in spans}) == 4  # one per sentence before any second one
    assert [s.answer for s in pick_spans(TEXT, CHUNK.title, 4)] == [s.answer for s in spans]


@pytest.fixture
def spans() -> SpanStrategy:
    s = load_strategy(Path(__file__).parents[2] / "prompts" / "qa-spans.md")
    assert isinstance(s, SpanStrategy)
    return s


def _reply(s: SpanStrategy, req, text: str):
    result = GenResult(text=text, finish_reason="stop", usage=Usage(10, 10))
    parsed = s.parse_request(req, req.primer + text, "stop")
    return parsed, s.records(CHUNK, req, result, parsed, backend="mock", model="m")


def test_one_request_per_span_with_the_answer_in_the_prompt(spans: SpanStrategy):
    reqs = spans.build(CHUNK, backend="mock", model="m", seed=0)
    assert [r.variant for r in reqs] == [s.answer for s in pick_spans(TEXT, CHUNK.title, 24, phrases=True)]
    date = next(r for r in reqs if r.variant == "9 July 2019")
    assert '"9 July 2019"' in date.prompt and date.context["sentence"] in date.prompt
    completion = spans.build(CHUNK, backend="mock", model="m", seed=0, style="completion")
    assert completion[0].prompt.rstrip().endswith("Question about Harrow Point (film):")
    assert completion[0].stop and "\n" in completion[0].stop
    assert len({r.key for r in reqs + completion}) == 2 * len(reqs)


def test_a_question_about_its_sentence_is_kept_with_the_chunks_answer_and_a_cloze(spans: SpanStrategy):
    req = next(r for r in spans.build(CHUNK, backend="mock", model="m", seed=0) if r.variant == "9 July 2019")
    parsed, records = _reply(spans, req, "When did Harrow Point premiere at the Galway Film Fleadh?")
    assert [it["form"] for it in parsed.items] == ["model", "cloze", "wh"] and not parsed.rejected
    model, cloze, wh = records
    assert model["text"] == (
        "Question: When did Harrow Point premiere at the Galway Film Fleadh?\nAnswer: 9 July 2019"
    )
    assert model["fields"]["evidence"] == req.context["sentence"]
    assert "_____" in cloze["fields"]["question"] and "9 July 2019" not in cloze["fields"]["question"]
    assert cloze["fields"]["answer"] == "9 July 2019" and cloze["id"] != model["id"]
    assert wh["text"] == (
        "Question: Harrow Point premiered at the Galway Film Fleadh on what date and "
        "won the Best Irish Feature award?\nAnswer: 9 July 2019"
    )
    assert len({model["id"], cloze["id"], wh["id"]}) == 3
    grounding = GroundingFilter()
    assert all(isinstance(grounding.check(r, TEXT), float) for r in records)


@pytest.mark.parametrize(
    "reply, reason",
    [
        ("What is the name of the film?", "does not ask about its sentence"),
        ("When did the film premiere on 9 July 2019 at the Fleadh?", "contains its own answer"),
        ("The film premiered in July.", "not a question"),
        ("When?", "too short"),
    ],
)
def test_a_bad_question_is_reported_and_only_the_cloze_is_kept(spans: SpanStrategy, reply: str, reason: str):
    req = next(r for r in spans.build(CHUNK, backend="mock", model="m", seed=0) if r.variant == "9 July 2019")
    parsed, records = _reply(spans, req, reply)
    assert [it["form"] for it in parsed.items] == ["cloze", "wh"]
    assert len(parsed.rejected) == 1 and reason in parsed.rejected[0]
    assert [r["fields"]["answer"] for r in records] == ["9 July 2019"] * 2
    spans.header.cloze = False
    assert [it["form"] for it in spans.parse_request(req, reply, "stop").items] == ["wh"]
    spans.header.wh = False
    try:
        with pytest.raises(ParseError, match=reason):
            spans.parse_request(req, reply, "stop")
    finally:
        spans.header.cloze = spans.header.wh = True


@pytest.mark.parametrize(
    "sentence, answer, question",
    [
        # the answer's place asked by what it is; "It" / "The film" name the title's subject
        ("It was directed by Nuala Brennan.", "Nuala Brennan", "Harrow Point was directed by whom?"),
        ("Its budget was cut by the recession.", "the recession", "Harrow Point's budget was cut by what?"),
        ("The film was shot in 23 days.", "23 days", "Harrow Point was shot in how many days?"),
        ("Its budget was $5 million.", "$5 million", "Harrow Point's budget was how much?"),
        ("It was released in 2019 in Ireland.", "2019", "Harrow Point was released in what year in Ireland?"),
        ("The crew met in Galway.", "Galway", "The crew met where?"),
        ("Mara Kovel wrote it in 1898.", "Mara Kovel", "Who wrote it in 1898?"),
        ("Euston Films made it in 1974.", "Euston Films", "What made it in 1974?"),
        # the question ends with the answer's clause
        (
            'It won the "Best Irish Feature" award, and Brennan left.',
            "Best Irish Feature",
            "Harrow Point won the what title award?",
        ),
        ("It premiered on 9 July 2019, a Tuesday.", "9 July 2019", "Harrow Point premiered on what date?"),
        ("It ran from June 3 to 9, 2023.", "June 3 to 9, 2023", "Harrow Point ran from what dates?"),
        # no question word fits: an ordinal, a year used as an adjective, an aside in brackets
        ("The 27th edition was held in Cork.", "27th", None),
        ("Harrow Point is a 2019 drama.", "2019", None),
        ("The awards (known as the AFI Awards) were held in Melbourne.", "AFI Awards", None),
        ("It was directed by Nuala Brennan.", "Ciaran Brennan", None),  # not in the sentence
    ],
)
def test_wh_question_asks_for_the_span_in_place(sentence: str, answer: str, question: str | None):
    assert wh_question(sentence, answer, "Harrow Point (film)") == question


@pytest.mark.parametrize(
    "sentence, answer, question",
    [
        # <subject> is/was ... <participle> [preposition] <answer>: the question word first
        (
            "Harrow Point is a 2019 Irish drama film directed by Nuala Brennan.",
            "Nuala Brennan",
            "Who directed Harrow Point?",
        ),
        (
            "Harrow Point is a 2019 film, produced by Euston Films.",
            "Euston Films",
            "Who produced Harrow Point?",
        ),
        ("It was written by Mara Kovel in Cork.", "Mara Kovel", "By whom was Harrow Point written?"),
        ("It was released on 9 July 2019.", "9 July 2019", "When was Harrow Point released?"),
        ("The ceremony was held in Melbourne.", "Melbourne", "Where was the ceremony held?"),
        ("The film was shot in 23 days.", "23 days", "How many days was Harrow Point shot in?"),
        ('It is based on "The Long Road" by Ann Lee.', "The Long Road", "What is Harrow Point based on?"),
        ("The Long Road was adapted by Ann Lee.", "Ann Lee", "Who adapted The Long Road?"),
        # the answer may belong to another subject, or there is no plain subject: no question
        ("It was released in 2019, and the sequel was directed by Ann Lee.", "Ann Lee", None),
        ("It is a drama which was directed by Ann Lee.", "Ann Lee", None),
        ("In 2019, the film was directed by Ann Lee.", "Ann Lee", None),
        ("It was directed by Ann Lee and starring Tom Cole.", "Tom Cole", None),  # no participle before
        ("Harrow Point premiered in Galway.", "Galway", None),  # no is/was
        ("Ann Lee was the director.", "Ann Lee", None),  # the answer is the subject
        ("They were transported to camps in Germany.", "Germany", None),  # a pronoun is no subject
        ("The 27th edition was held in Cork.", "27th", None),
    ],
)
def test_front_question_asks_about_the_subject_question_word_first(
    sentence: str, answer: str, question: str | None
):
    assert front_question(sentence, answer, "Harrow Point (film)") == question


@pytest.mark.parametrize(
    "sentence, objects",
    [
        ("There, he explored the mountains in hunter's garb.", ["the mountains"]),  # up to a preposition
        ("He read many books while in Tomingaj.", ["many books"]),  # up to a clause word
        (
            "This concept contrasted and contradicted the principles of pre-allocation of bandwidth, largely.",
            ["the principles of pre-allocation of bandwidth"],  # "of" does not end it; two verbs, one object
        ),
        # a relative clause's verb has its object too
        (
            "Many governments operate teacher's colleges, which certify teachers.",
            ["teacher's colleges", "teachers"],
        ),
        ("The series consists of three horror films.", ["three horror films"]),  # the verb's preposition
        ("Tesla said that this contact with nature made him stronger.", []),  # a clause, a pronoun
        ("The plant was located near the river.", []),  # after an auxiliary: no active verb
        ("There are bodies designed to instill and update the knowledge.", []),  # an infinitive alone
        ("The festival took place in Sudbury.", []),  # an idiom's noun
        ("It premiered at the Galway Film Fleadh.", []),  # a name with no lower-case word: a name span
    ],
)
def test_phrase_spans_are_the_objects_of_verbs(sentence: str, objects: list[str]):
    got = phrase_spans(sentence)
    assert [a for _, a in got] == objects
    assert all(sentence[lo : lo + len(a)] == a for lo, a in got)


@pytest.mark.parametrize(
    "sentence, answer, title, question",
    [
        (
            "In 1874, Tesla evaded being drafted into the army.",
            "being drafted",
            "Nikola Tesla",
            "What did Tesla evade?",
        ),
        # "he" is a person's title; the same sentence about a thing has no subject to name
        (
            "There, he explored the mountains in garb.",
            "the mountains",
            "Nikola Tesla",
            "What did Nikola Tesla explore?",
        ),
        ("There, he explored the mountains in garb.", "the mountains", "Packet switching", None),
        (
            "The new concept found little resonance among engineers.",
            "little resonance",
            "Packet switching",
            "What did the new concept find?",
        ),
        (
            "Many governments operate teacher's colleges.",
            "teacher's colleges",
            "Teacher",
            "What do many governments operate?",
        ),
        (
            "The series consists of three horror films.",
            "three horror films",
            "Hostel (film series)",
            "What does Hostel consist of?",
        ),
        (
            "It follows a woman's thoughts.",
            "a woman's thoughts",
            "Beneath the Skin (film)",
            "What does Beneath the Skin follow?",
        ),
        # an opening phrase that is no introduction, a second verb, a clause: no question
        (
            "Around the world many governments operate teacher's colleges.",
            "teacher's colleges",
            "Teacher",
            None,
        ),
        ("He restored the Secretariat and left the old structure.", "the old structure", "Kublai Khan", None),
        ("Tesla, who was ill, explored the mountains.", "the mountains", "Nikola Tesla", None),
        ("They explored the mountains.", "the mountains", "Nikola Tesla", None),
    ],
)
def test_front_question_for_a_verbs_object_asks_what_the_subject_did(
    sentence: str, answer: str, title: str, question: str | None
):
    assert front_question(sentence, answer, title) == question


def test_phrases_are_picked_only_when_asked_for():
    plain = {s.answer for s in pick_spans(TEXT, CHUNK.title, 50)}
    more = {s.answer for s in pick_spans(TEXT, CHUNK.title, 50, phrases=True)}
    assert more - plain == {"the score", "the Best Irish Feature award"}


@pytest.mark.parametrize(
    ("sentence", "title", "answer", "question"),
    [
        (
            "Sacramento is an upcoming American comedy road trip film directed by Michael Angarano, who wrote it.",
            "Sacramento (upcoming film)",
            "an upcoming American comedy road trip film",
            "What is Sacramento?",
        ),
        # a parenthesis after the subject; "written and directed by" ends the phrase
        (
            "Nothing But Lies (French: Rien que des mensonges) is a 1933 French comedy film written and "
            "directed by Karl Anton.",
            "Nothing But Lies (1933 film)",
            "a 1933 French comedy film",
            "What is Nothing But Lies?",
        ),
        # a clause word ends it; "he" is the person the title names
        (
            "He was an Indian actor and politician who is known for his work.",
            "Tapas Paul",
            "an Indian actor and politician",
            "Who was Tapas Paul?",
        ),
        (
            "It was the first film shot on the island.",
            "Harrow Point (film)",
            "the first film",
            "What was Harrow Point?",
        ),
        (
            "A bin location is the smallest addressable storage place in a warehouse.",
            "Bin location",
            "the smallest addressable storage place",
            "What is a bin location?",
        ),
        (
            "The film was a commercial success.",
            "Harrow Point (film)",
            "a commercial success",
            "What was Harrow Point?",
        ),
        # an opening phrase before the subject: the phrase is asked for, but no subject to name
        ("In 2019 the film was a hit.", "Harrow Point (film)", "a hit", None),
        (
            "Today the keepers' cottages are a small museum, open in summer.",
            "Cape Merrow",
            "a small museum",
            None,
        ),
    ],
)
def test_definition_spans_say_what_the_subject_is(
    sentence: str, title: str, answer: str, question: str | None
):
    assert [a for _, a in definition_spans(sentence)] == [answer]
    assert front_question(sentence, answer, title) == question


@pytest.mark.parametrize(
    "sentence",
    [
        "The reorder point is the stock level at which a new purchase order is raised.",  # the clause defines
        "The ceremony was held in Melbourne.",  # no article: not a definition
        "Its director is a Brennan.",  # no lower-case word after the article
    ],
)
def test_definition_spans_leave_out_what_is_no_definition(sentence: str):
    assert definition_spans(sentence) == []


def test_definitions_are_picked_only_when_asked_for():
    plain = {s.answer for s in pick_spans(TEXT, CHUNK.title, 50, phrases=True)}
    more = {s.answer for s in pick_spans(TEXT, CHUNK.title, 50, phrases=True, definitions=True)}
    assert more - plain == {"a 2019 Irish drama film"}


CAST = (
    "Thugs is a 2023 Tamil-language action film directed by Brinda and starring Hridhu Haroon, "
    "Anaswara Rajan, Bobby Simha, Munishkanth and R. K. Suresh in the lead roles."
)


@pytest.mark.parametrize(
    ("sentence", "lists"),
    [
        (CAST, ["Hridhu Haroon, Anaswara Rajan, Bobby Simha, Munishkanth and R. K. Suresh"]),
        (
            "It stars Angarano, Michael Cera, Kristen Stewart and Maya Erskine.",
            ["Angarano, Michael Cera, Kristen Stewart and Maya Erskine"],
        ),
        ("It was held in Sudbury, Ontario, Canada from 15 September.", ["Sudbury, Ontario, Canada"]),
        ("The pump comes in Basic, Plus, or Pro editions.", ["Basic, Plus, or Pro"]),
        # two names are no enumeration; a sentence's opening phrase is no name of a list
        ("It was produced by Euston Films in conjunction with Thames Television.", []),
        ("In Paris, Smith met Jones.", []),
        ("In Paris, Smith, Jones and Brown founded it.", ["Smith, Jones and Brown"]),
        ("In 2019, Smith, Jones and Brown founded it.", ["Smith, Jones and Brown"]),
        ("The Bank of England, London, raised rates.", []),
    ],
)
def test_list_spans_are_enumerations_of_three_or_more_names(sentence: str, lists: list[str]):
    got = list_spans(sentence)
    assert [a for _, a in got] == lists
    assert all(sentence[lo : lo + len(a)] == a for lo, a in got)


def test_lists_are_picked_only_when_asked_for_and_keep_their_names():
    text = f"{CAST} It was released on 24 February 2023."
    plain = {s.answer for s in pick_spans(text, "Thugs (film)", 50, phrases=True)}
    more = {s.answer for s in pick_spans(text, "Thugs (film)", 50, phrases=True, lists=True)}
    whole = "Hridhu Haroon, Anaswara Rajan, Bobby Simha, Munishkanth and R. K. Suresh"
    assert more - plain == {whole}
    assert {"Hridhu Haroon", "Bobby Simha", "Brinda", "24 February 2023"} <= more
    assert in_list(CAST, "Bobby Simha") and not in_list(CAST, whole) and not in_list(CAST, "Brinda")


def test_a_lists_names_get_only_blanks_and_the_list_is_asked_in_place(tmp_path: Path):
    src = (Path(__file__).parents[2] / "prompts" / "qa-spans.md").read_text()
    assert "\nlists: false" in src  # off by default until measured
    on = tmp_path / "qa-spans.md"
    on.write_text(src.replace("\nlists: false", "\nlists: true"))
    chunk = Chunk("t:0000", "t", 0, 0, len(CAST), CAST, "Thugs (film)", 40)
    forms: dict[bool, dict[str, set[str]]] = {}
    for lists, strategy in (
        (False, load_strategy(Path(__file__).parents[2] / "prompts" / "qa-spans.md")),
        (True, load_strategy(on)),
    ):
        assert isinstance(strategy, SpanStrategy)
        got: dict[str, set[str]] = {}
        for req in strategy.build(chunk, backend="mock", model="m", seed=0):
            parsed = strategy.parse_request(req, req.primer + "no question here", "stop")
            got[req.variant] = {item["form"] for item in parsed.items}
        forms[lists] = got
    whole = "Hridhu Haroon, Anaswara Rajan, Bobby Simha, Munishkanth and R. K. Suresh"
    assert forms[False]["Bobby Simha"] == {
        "cloze",
        "wh",
    }  # "... starring Hridhu Haroon, Anaswara Rajan, what?"
    assert forms[True]["Bobby Simha"] == {"cloze"}
    assert forms[True][whole] == {"cloze", "wh"} and whole not in forms[False]
    assert forms[True]["Brinda"] == forms[False]["Brinda"] == {"cloze", "wh", "front"}


@pytest.mark.parametrize(
    ("sentence", "objects"),
    [
        (
            "Passengers have a supply of oxygen supplied to them in case of cabin depressurization.",
            ["cabin depressurization"],  # "in case of" is one preposition; "to them" no object
        ),
        (
            "Early texts describe the people of the East as irrational and backward.",
            ["irrational and backward"],  # "of" starts no object; "and" joins two words of one
        ),
        ("The West saw the East as inferior, and itself as progressive.", ["inferior", "progressive"]),
        ("The City Council divides itself into committees.", ["committees"]),
        ("The government held monopolies on salt and iron.", ["salt and iron"]),
        ("There, he explored the mountains in hunter's garb.", ["hunter's garb"]),
        (
            "Singlet oxygen is formed by photosynthesis and in the troposphere by the photolysis of ozone.",
            ["photosynthesis", "the troposphere", "the photolysis of ozone"],
        ),
        ("Pharmacists are increasingly paid for medicine use reviews.", ["medicine use reviews"]),
        # an infinitive, a clause, a pronoun and names, dates and numbers are no such object
        ("It was designed to provide routing.", []),
        ("He left as he came.", []),
        ("It was released in 2023 by Netflix in France.", []),
        ("She gave it to them.", []),
    ],
)
def test_preposition_spans_are_the_objects_of_prepositions(sentence: str, objects: list[str]):
    got = preposition_spans(sentence)
    assert [a for _, a in got] == objects
    assert all(sentence[lo : lo + len(a)] == a for lo, a in got)


def test_prepositions_are_picked_only_when_asked_for():
    text = (
        "Passengers have a supply of oxygen supplied to them in case of cabin depressurization. "
        "A stream of oxygen gas is then produced by the exothermic reaction in 1950."
    )
    plain = {s.answer for s in pick_spans(text, "Oxygen", 50, phrases=True)}
    more = {s.answer for s in pick_spans(text, "Oxygen", 50, phrases=True, prepositions=True)}
    assert more - plain == {"cabin depressurization"}  # "produced by ...": a verb's object already
    assert plain < more and {"the exothermic reaction", "1950"} <= plain
    src = (Path(__file__).parents[2] / "prompts" / "qa-spans.md").read_text()
    assert "\nprepositions: false" in src  # off by default until measured


@pytest.mark.parametrize(
    ("sentence", "loose", "tight"),
    [
        (  # names joined by "in" or "on": each name, and the pair
            "In 1882, Tesla began working for the Continental Edison Company in France.",
            {"1882", "Tesla", "Continental Edison Company in France"},
            {"1882", "Tesla", "Continental Edison Company", "France", "Continental Edison Company in France"},
        ),
        (
            "He was hired to work at the Edison Machine Works on Manhattan's lower east side.",
            {"Edison Machine Works on Manhattan"},
            {"Edison Machine Works", "Manhattan", "Edison Machine Works on Manhattan"},
        ),
        (  # a name keeps the number that ends it; a sentence's "In 1990" is a year, not a name
            "Fresno is served by State Route 99 and Article 102 of the treaty.",
            {"99", "102"},
            {"State Route 99", "Article 102", "State Route 99 and Article 102"},
        ),
        ("In 1990, Murphy stayed on as chairman.", {"1990", "Murphy"}, {"1990", "Murphy"}),
        (  # a rising range is one answer with its unit, and its ends; a score is whole only
            "Guard cells hold 8–15 per cell, at 30 °C, from 1939–45, after a 15–1 season.",
            {"15", "30", "1939", "45", "1 season"},
            {"8–15 per cell", "15", "30 °C", "1939–45", "1939", "45", "15–1 season"},
        ),
        (  # number words are numbers; names joined by "and" are asked one by one and whole
            "The term refers to ten counties and began the French and Indian War.",
            {"French and Indian War"},
            {"ten", "French", "Indian War", "French and Indian War"},
        ),
        (  # "bin" stays inside a name, and "and" does not join two people into one
            "One result was a civil war in Algeria and Osama bin Laden's terror attacks on 9/11.",
            {"Algeria and Osama", "Laden", "11"},
            {"Algeria", "Osama bin Laden", "Algeria and Osama bin Laden"},
        ),
        (  # any capital letter opens a name; an opening preposition is no part of one
            "Under Genghis's successor Ögedei Khan the speed of expansion reached its peak.",
            {"Under Genghis", "Khan"},
            {"Genghis", "Ögedei Khan"},
        ),
        (  # a word capitalised inside itself is a name at a sentence start too
            "CrossCountry trains serve Yorkshire. Bus routes serve Leeds.",
            {"Yorkshire", "Leeds"},
            {"CrossCountry", "Yorkshire", "Leeds"},
        ),
        (  # a number with a letter ends a name; eras, "ago" and compass degrees stay with numbers
            "It used the Astra 2A satellite at 28.5°E. By 9000 BP, Europe had warmed since 22,000 years ago.",
            {"Astra", "28.5", "9000", "Europe", "22,000 years"},
            {"Astra 2A", "28.5°E", "9000 BP", "Europe", "22,000 years ago"},
        ),
        (  # a page citation is no answer; a possessive ends a name before a year
            "A page cite:57–60 is no answer, nor is BSkyB's 2014 a name.",
            {"57", "60", "2014"},
            {"BSkyB", "2014"},
        ),
        (  # one name with a number inside swallowed every name of the sentence before
            "It began at the Continental Edison Company in France on State Route 99, ten years after.",
            {"99"},
            {
                "Continental Edison Company",
                "France",
                "State Route 99",
                "Continental Edison Company in France",
                "France on State Route 99",
                "ten years",
            },
        ),
    ],
)
def test_tight_spans_part_joined_names_and_keep_numbers_whole(
    sentence: str, loose: set[str], tight: set[str]
):
    assert {s.answer for s in pick_spans(sentence, "Doc", 50)} == loose
    spans = pick_spans(sentence, "Doc", 50, tight=True)
    assert {s.answer for s in spans} == tight
    assert all(sentence[s.start :].startswith(s.answer) for s in spans)


def test_tight_asks_a_name_inside_a_phrase_and_names_first():
    sentence = "The show featured the British rock group Coldplay in its final year."
    loose = {s.answer for s in pick_spans(sentence, "Doc", 50, phrases=True, prepositions=True)}
    tight = {s.answer for s in pick_spans(sentence, "Doc", 50, phrases=True, prepositions=True, tight=True)}
    # the object phrase holds the name: without tight, "Coldplay" is asked only through it
    assert "the British rock group Coldplay" in loose and "Coldplay" not in loose
    assert {"the British rock group Coldplay", "Coldplay"} <= tight
    # a word of a longer *name* is still asked only through the name
    named = {
        s.answer for s in pick_spans("He met Cecelia Condit in Ohio. Condit agreed.", "Doc", 50, tight=True)
    }
    assert "Cecelia Condit" in named and "Condit" not in named
    # under the cap a sentence's names and numbers come before its phrases
    capped = pick_spans(
        "By 1995 the firm had bought the old factory near the river from Daewoo.",
        "Doc",
        2,
        phrases=True,
        prepositions=True,
        tight=True,
    )
    assert [s.answer for s in capped] == ["1995", "Daewoo"]


@pytest.mark.parametrize(
    ("sentence", "answer", "question"),
    [
        (
            "The term usually refers to ten counties of the state.",
            "ten",
            "The term usually refers to how many counties of the state?",
        ),
        ("The war lasted from 1939–45 in Europe.", "1939–45", "The war lasted from what years in Europe?"),
        (
            "Guard cells hold 8–15 per cell in most plants.",
            "8–15 per cell",
            "Guard cells hold how many per cell in most plants?",
        ),
        ("The team finished with a 15–1 regular season record.", "15–1", None),
        ("Version 1.2.3–4 fixed it.", "1.2.3–4", None),  # no range: no count to ask
    ],
)
def test_tight_asks_number_words_and_ranges_as_counts(sentence: str, answer: str, question: str | None):
    assert wh_question(sentence, answer, "Doc", tight=True) == question


def test_tight_is_off_by_default_and_changes_nothing_when_off(spans: SpanStrategy):
    src = (Path(__file__).parents[2] / "prompts" / "qa-spans.md").read_text()
    assert "\ntight: false" in src  # off by default until measured
    assert spans.header.tight is False
    assert wh_question("It lasted ten days in all.", "ten days", "Doc") == "Doc lasted what in all?"
    assert (
        wh_question("It lasted ten days in all.", "ten days", "Doc", tight=True)
        == "Doc lasted how many days in all?"
    )


def test_tight_header_reaches_the_requests(tmp_path: Path, spans: SpanStrategy):
    src = (Path(__file__).parents[2] / "prompts" / "qa-spans.md").read_text()
    on = tmp_path / "qa-spans.md"
    on.write_text(src.replace("\ntight: false", "\ntight: true"))
    strategy = load_strategy(on)
    text = "Fresno is served by State Route 99, which heads north."
    chunk = Chunk("f:0000", "f", 0, 0, len(text), text, "Fresno", 20)
    assert "State Route 99" in [r.variant for r in strategy.build(chunk, backend="mock", model="m", seed=0)]
    assert "State Route 99" not in [r.variant for r in spans.build(chunk, backend="mock", model="m", seed=0)]


def test_tight_asks_a_name_of_an_and_pair_by_its_blank_alone(tmp_path: Path, spans: SpanStrategy):
    src = (Path(__file__).parents[2] / "prompts" / "qa-spans.md").read_text()
    on = tmp_path / "qa-spans.md"
    on.write_text(src.replace("\ntight: false", "\ntight: true"))
    strategy = load_strategy(on)
    assert isinstance(strategy, SpanStrategy)
    text = "The result was a civil war in Algeria and Osama bin Laden's attacks. It was held in Paris by Mara Kovel."
    chunk = Chunk("w:0000", "w", 0, 0, len(text), text, "Islamism", 40)
    forms = {
        req.variant: {
            it["form"] for it in strategy.parse_request(req, req.primer + "no question here", "stop").items
        }
        for req in strategy.build(chunk, backend="mock", model="m", seed=0)
    }
    # in place, "Algeria" would leave "... war where and Osama bin Laden's attacks?"
    assert forms["Algeria"] == forms["Osama bin Laden"] == forms["Algeria and Osama bin Laden"] == {"cloze"}
    assert {"cloze", "wh"} <= forms["Paris"]  # a name on its own is still asked in place
    assert paired(text, "Algeria") and not paired(text, "Paris") and not paired(text, "Mara Kovel")
    # without tight the loose name is asked as before
    loose = {req.variant for req in spans.build(chunk, backend="mock", model="m", seed=0)}
    assert "Algeria and Osama" in loose and "Osama bin Laden" not in loose


def test_cloze_title_false_leaves_the_documents_name_out_of_the_blank(tmp_path: Path, spans: SpanStrategy):
    src = (Path(__file__).parents[2] / "prompts" / "qa-spans.md").read_text()
    assert "\ncloze_title: true" in src and spans.header.cloze_title is True  # the default, unchanged
    off = tmp_path / "qa-spans.md"
    off.write_text(src.replace("\ncloze_title: true", "\ncloze_title: false"))
    strategy = load_strategy(off)
    assert isinstance(strategy, SpanStrategy)
    reply = "When did Harrow Point premiere at the Galway Film Fleadh?"
    clozes, others = [], []
    for s in (spans, strategy):
        req = next(r for r in s.build(CHUNK, backend="mock", model="m", seed=0) if r.variant == "9 July 2019")
        parsed, records = _reply(s, req, reply)
        clozes.append(next(r for r in records if r["fields"]["form"] == "cloze"))
        others.append([r["text"] for r in records if r["fields"]["form"] != "cloze"])
    named, unnamed = (c["fields"]["question"] for c in clozes)
    blank = "It premiered at the Galway Film Fleadh on _____ and won the Best Irish Feature award"
    assert named == f'What fills the blank in this sentence about Harrow Point (film): "{blank}"?'
    assert unnamed == f'What fills the blank in this sentence: "{blank}"?'
    assert unnamed in clozes[1]["text"] and "Harrow" not in clozes[1]["text"]
    # only the cloze changes: the model's question and the one asked in place are the same
    assert others[0] == others[1] and len(others[0]) == 2


def test_a_span_whose_answer_occurs_earlier_in_its_sentence_is_blanked_where_it_stands(spans: SpanStrategy):
    # "90" is the span of "90%"; the first "90" in the sentence is inside "1990s"
    text = "In the 1990s about 90% of the world's electricity came from steam turbines."
    chunk = Chunk("s:0000", "s", 0, 0, len(text), text, "Steam turbine", 20)
    span = next(s for s in pick_spans(text, chunk.title, 20) if s.answer == "90")
    assert span.sentence[span.at :].startswith("90%") and text[span.start :].startswith("90%")
    req = next(r for r in spans.build(chunk, backend="mock", model="m", seed=0) if r.variant == "90")
    assert req.context["at"] == str(span.at)
    items = spans.parse_request(req, req.primer + "no question here", "stop").items
    cloze = next(it for it in items if it["form"] == "cloze")["question"]
    assert "In the 1990s about _____% of the world's electricity" in cloze and "19_____s" not in cloze
    wh = next(it for it in items if it["form"] == "wh")["question"]
    assert wh == "In the 1990s about what percentage of the world's electricity came from steam turbines?"
    # a request without the offset (built before it was recorded) blanks the first occurrence, as before
    old = {k: v for k, v in req.context.items() if k != "at"}
    items = spans.parse_request(replace(req, context=old), req.primer + "no question here", "stop").items
    assert "In the 19_____s about 90%" in next(it for it in items if it["form"] == "cloze")["question"]


def test_model_question_false_keeps_the_rule_written_records_and_drops_the_models(
    tmp_path: Path, spans: SpanStrategy
):
    src = (Path(__file__).parents[2] / "prompts" / "qa-spans.md").read_text()
    assert "\nmodel_question: true" in src and spans.header.model_question is True  # the default
    off = tmp_path / "qa-spans.md"
    off.write_text(src.replace("\nmodel_question: true", "\nmodel_question: false"))
    strategy = load_strategy(off)
    assert isinstance(strategy, SpanStrategy)
    # the same requests (so a run with it off reads the other run's cache), fewer records
    reqs_on = spans.build(CHUNK, backend="mock", model="m", seed=0)
    reqs_off = strategy.build(CHUNK, backend="mock", model="m", seed=0)
    assert [r.key for r in reqs_on] == [r.key for r in reqs_off]
    reply = "When did Harrow Point premiere at the Galway Film Fleadh?"
    req_on, req_off = (next(r for r in rs if r.variant == "9 July 2019") for rs in (reqs_on, reqs_off))
    on, off_records = _reply(spans, req_on, reply)[1], _reply(strategy, req_off, reply)[1]
    assert [r["fields"]["form"] for r in on] == ["model", "cloze", "wh"]
    assert [r["fields"]["form"] for r in off_records] == ["cloze", "wh"]
    assert [r["text"] for r in off_records] == [r["text"] for r in on[1:]]
    # a span no rule can ask about gives no record, and says why
    strategy.header.cloze = strategy.header.wh = strategy.header.front = False
    with pytest.raises(ParseError, match="model_question is false and no rule-written question fits"):
        strategy.parse_request(req_off, reply, "stop")
    # and a header that could never keep a question is refused when loaded, naming the file
    none = tmp_path / "none.md"
    none.write_text(
        src.replace("\nmodel_question: true", "\nmodel_question: false")
        .replace("\ncloze: true", "\ncloze: false")
        .replace("\nwh: true", "\nwh: false")
        .replace("\nfront: true", "\nfront: false")
    )
    with pytest.raises(ConfigError, match=r"none\.md.*model_question: false needs cloze, wh or front"):
        load_strategy(none)


def test_spans_kind_takes_no_variants(tmp_path: Path):
    src = (Path(__file__).parents[2] / "prompts" / "qa-spans.md").read_text()
    bad = tmp_path / "qa-spans.md"
    bad.write_text(src.replace("kind: spans\n", "kind: spans\nvariants: [a, b]\n"))
    with pytest.raises(ConfigError, match="kind 'spans' takes no variants"):
        load_strategy(bad)


def test_mock_run_gives_grounded_records_for_every_span(tmp_path: Path):
    from typer.testing import CliRunner

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "harrow.md").write_text(f"# Harrow Point (film)\n\n{TEXT}\n")
    run = tmp_path / "run"
    res = CliRunner().invoke(
        app,
        ["generate", str(docs), "-o", str(run), "--backend", "mock", "--strategies", "qa-spans", "--quiet"],
    )
    assert res.exit_code == 0, res.output
    records = [json.loads(line) for line in (run / "generated" / "qa-spans.jsonl").read_text().splitlines()]
    doc = json.loads((run / "documents.jsonl").read_text().splitlines()[0])
    answers = {r["fields"]["answer"] for r in records}
    assert answers == {s.answer for s in pick_spans(doc["text"], doc["title"], 24, phrases=True)}
    assert {"the score", "the Best Irish Feature award"} <= answers  # verbs' objects (phrases: true)
    assert all(
        r["fields"]["answer"] in doc["text"] and r["fields"]["evidence"] in doc["text"] for r in records
    )
    assert {r["fields"]["form"] for r in records} == {"model", "cloze", "wh", "front"}
    front = {
        r["fields"]["question"]: r["fields"]["answer"] for r in records if r["fields"]["form"] == "front"
    }
    assert front == {
        "Who directed Harrow Point?": "Nuala Brennan",
        "How many days was Harrow Point shot in?": "23 days",
        "What did Brennan's brother Ciaran Brennan write?": "the score",
    }
    kept = [json.loads(line) for line in (run / "curated" / "kept.jsonl").read_text().splitlines()]
    assert kept and all(r["strategy"] == "qa-spans" for r in kept)


@pytest.mark.parametrize(
    ("sentence", "chunks"),
    [
        (
            "The condenser operated at constant pressure, as the practical Carnot cycle requires.",
            ["condenser", "constant pressure", "practical Carnot cycle"],
        ),
        # "to" and a verb end a run; so do modals, negations and quantifiers
        ("Oxygen therapy is used to treat emphysema.", ["Oxygen therapy", "emphysema"]),
        (
            "Some teachers could not accept strict discipline in 1890.",
            ["teachers", "strict discipline", "1890"],
        ),
        # a word that can be a verb ends its run before a determiner, "that" or an "-ly" adverb
        (
            "The Church holds that the death penalty falls unfairly upon poor persons.",
            ["Church", "death penalty", "poor persons"],
        ),
        ("It was quickly adopted by early settlers.", ["early settlers"]),
        # a run of more than four content words is left out, not cut
        ("It was the Great Northern Railway Goods Yard Company.", []),
        ("As a result, free-to-air Ku band satellites.", ["result", "free-to-air Ku band satellites"]),
    ],
)
def test_chunk_spans_are_short_runs_of_content_words(sentence: str, chunks: list[str]):
    got = chunk_spans(sentence)
    assert [a for _, a in got] == chunks
    assert all(sentence[lo : lo + len(a)] == a for lo, a in got)


def test_chunks_are_picked_only_when_asked_for_and_after_the_other_spans(tmp_path: Path, spans: SpanStrategy):
    text = "The Rankine cycle was built by Mara Kovel in 1901. Its condenser works at constant pressure."
    plain = [s.answer for s in pick_spans(text, "Steam engine", 50, phrases=True)]
    more = [s.answer for s in pick_spans(text, "Steam engine", 50, phrases=True, chunks=True)]
    assert "constant pressure" in more and "constant pressure" not in plain
    # the names, dates and objects keep their places under the cap, and a run holding a name
    # ("Rankine cycle") does not drop the name's word
    assert more[: len(plain)] == plain and "Rankine" in plain
    assert pick_spans(text, "Steam engine", len(plain), phrases=True, chunks=True) == pick_spans(
        text, "Steam engine", len(plain), phrases=True
    )
    assert len(more) == len(set(map(str.lower, more)))  # one question per distinct answer
    # a run is marked by its place: "Watt" opening a sentence is a run there, and still a name
    # (ranked with the names) where the patterns found it
    both = "The condensers were made by Watt in 1780. Watt sold them to mines in Cornwall."
    names = [s.answer for s in pick_spans(both, "Steam engine", 50, phrases=True)]
    assert "Watt" in names
    assert pick_spans(both, "Steam engine", len(names), phrases=True, chunks=True) == pick_spans(
        both, "Steam engine", len(names), phrases=True
    )
    src = (Path(__file__).parents[2] / "prompts" / "qa-spans.md").read_text()
    assert "\nchunks: false" in src and spans.header.chunks is False  # off by default until measured
    on = tmp_path / "qa-spans.md"
    on.write_text(src.replace("\nchunks: false", "\nchunks: true"))
    chunk = Chunk("s:0000", "s", 0, 0, len(text), text, "Steam engine", 30)
    asked = [r.variant for r in load_strategy(on).build(chunk, backend="mock", model="m", seed=0)]
    assert "constant pressure" in asked
    assert "constant pressure" not in [
        r.variant for r in spans.build(chunk, backend="mock", model="m", seed=0)
    ]
