"""Answer-first questions: the answers come from the chunk, the model only writes the questions.

A small model asked for question-answer pairs about a document invents answers and asks vague
questions ("Who is the character in the film?"). Here the answers are picked from the chunk
itself — dates, numbers, quoted titles and names, sentence by sentence — and each becomes one
request: "this sentence answers <answer>; write the question". Every record's answer is then a
span of the chunk and its evidence the sentence it came from, whatever model writes the question,
so the grounding filter checks it like any other QA record.

Spans are picked with plain patterns (English capitalisation and number formats), in the order of
the chunk's sentences: the first span of every sentence, then the second of every sentence, ...,
up to the header's `max_items` per chunk, so a capped chunk still has every sentence asked about.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from augment.errors import ParseError
from augment.strategies.base import Strategy
from augment.strategies.parsers import Parsed
from augment.types import Chunk, GenRequest, GenResult

_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December"
    r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.?"
)
_UNIT = (
    r"(?:million|billion|thousand|hundred|percent|per cent|%|years?|months?|weeks?|days?|hours?|"
    r"minutes?|seconds?|km|kilometres?|kilometers?|metres?|meters?|miles?|feet|kg|tonnes?|tons?|"
    r"episodes?|seasons?|films?|awards?|nominations?|people|copies|votes|seats)"
)
# in priority order: a span overlapping one already taken is skipped
_PATTERNS = [
    re.compile(
        rf"\b\d{{1,2}}(?:\s*(?:–|-|to)\s*\d{{1,2}})?\s+{_MONTH}(?:\s+\d{{4}})?\b"  # 24 October 2022
        rf"|\b{_MONTH}\s+\d{{1,2}}(?:\s*(?:–|-|to)\s*\d{{1,2}})?(?:,?\s+\d{{4}})?\b"  # September 16 to 24, 2023
        rf"|\b{_MONTH}\s+\d{{4}}\b"  # May 2021
    ),
    re.compile(r"\"([^\"\n]{2,80})\"|“([^”\n]{2,80})”|«([^»\n]{2,80})»"),
    re.compile(rf"(?:[$€£¥]\s?)?\b\d[\d,.]*(?:st|nd|rd|th)?\b(?:\s+{_UNIT}\b)?"),
    re.compile(
        r"\b[A-Z][\w'’&.-]*(?:\s+(?:(?:of|the|de|del|der|la|le|von|van|du|di|da|and|for|on|in)\s+)*"
        r"[A-Z][\w'’&.-]*|\s+\d+\b)*"  # "Bank of England", "Apollo 11"; not "Fleadh on 9 July"
    ),
]
# `tight: true`: a number keeps its range and more units ("8–15 per cell", "30 °C", "28.5°E"),
# number words count ("ten counties"), and names are not joined across "in", "on", "at" or "and"
# ("Continental Edison Company in France" gives both names, and the pair) but keep a number
# that ends them ("State Route 99", "Article 102", "Astra 2A")
_NUMBER_WORD = (
    r"(?:two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen"
    r"|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)"
)
_TIGHT_UNIT = (
    rf"(?:\s*°\s?[CFNESW]\b|\s+(?:{_UNIT}|(?:nano|micro|milli|centi)?(?:metres?|meters?)|acres?|hectares?"
    r"|square (?:miles|kilometres|kilometers|metres|meters|feet)|per (?:cent|cell|year|day|capita))\b)"
)


def _upper_class() -> str:
    """A character class of the Latin upper-case letters, accented too, not only A-Z ("Ögedei",
    "Émile", "Łódź")."""
    ranges: list[tuple[int, int]] = []
    for c in range(0x250):  # Latin, with its accented letters
        if chr(c).isupper():
            if ranges and ranges[-1][1] == c - 1:
                ranges[-1] = (ranges[-1][0], c)
            else:
                ranges.append((c, c))
    return "[" + "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in ranges) + "]"


_UPPER = _upper_class()
_ERA = r"(?:BP|BCE?|AD|CE|ago)"  # `tight`: "9000 BP", "22,000 years ago" stay with their number
# (an Arabic name keeps its "bin" or "ibn": "Osama bin Laden")
_TIGHT_NAME = re.compile(
    rf"\b{_UPPER}[\w'’&.-]*(?:\s+(?:(?:of|the|de|del|der|la|le|von|van|du|di|da|for|bin|ibn|bint)\s+)*{_UPPER}[\w'’&.-]*)*"
    r"(?:(?<!['’]s)\s+\d+[A-Z]?\b(?![.,]?\d|\s*(?:–|-|%)|\s+" + _MONTH + r"))?"
)
_COUNT = re.compile(rf"{_NUMBER_WORD}(?:-\w+)?(?:\s+{_UNIT})?")
_RANGE = re.compile(r"(\d[\d,.]*)\s*(?:–|-|to)\s*[$€£¥]?(\d[\d,.]*)")


def _range_ends(answer: str) -> list[str]:
    """The two ends of a rising range in `answer` ("8–15 per cell" -> "8", "15"; "1939–45"); none
    for a score or a falling pair ("15–1", "3–2.7"), which is asked for whole only."""
    m = _RANGE.search(answer)
    if not m:
        return []
    try:
        lo, hi = (float(x.replace(",", "").rstrip(".")) for x in m.groups())
    except ValueError:  # "1.2.3–4": a version, not a range
        return []
    if _YEAR.match(m.group(1)) and len(m.group(2)) == 2:  # "2013–14"
        return [m.group(1), m.group(2)]
    return [m.group(1), m.group(2)] if lo < hi else []


_TIGHT_PATTERNS = [
    _PATTERNS[0],
    _PATTERNS[1],
    re.compile(
        rf"(?<![A-Za-z]:)(?<!\d[–-])(?<!\d/)(?:[$€£¥]\s?)?\b\d[\d,.]*(?:st|nd|rd|th)?(?:\s*(?:–|-|to)\s*\d[\d,.]*)?\b{_TIGHT_UNIT}?"
        rf"(?:\s+{_ERA}\b)?"
        rf"|\b{_NUMBER_WORD}(?:-(?:one|two|three|four|five|six|seven|eight|nine))?\b(?:\s+{_UNIT}\b)?"
    ),
    _TIGHT_NAME,
]
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+(?=[A-Z0-9\"“(])|\n+")
# titles, abbreviations and a name's initial ("R. K. Suresh") do not end a sentence; a
# temperature's unit does ("around 30 °C. This gives ...")
_ABBREV = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|Inc|Ltd|Co|vs|No|Vol|U\.S|U\.K|(?<!°)[A-Z])\.$")
_INITIAL = re.compile(r"\b[A-Z]\.$")
# ... but a capital letter does end one before a word that opens sentences and names nothing
# ("... as opposed to Super Bowl L. The use of ...", "composed by Girishh G. The film ...")
_OPENER = re.compile(r"[A-Z][a-z]+\b")
# capitalised words that start sentences and name nothing; left out of the question check too
FUNCTION_WORDS = frozenset(
    (  # noqa: SIM905
        "a an the it its he she his her they their them this that these those there here "
        "in on at of for to by from with as after before during when while since until if "
        "but and or so yet also however although though following according despite upon into onto "
        "we our you your i my what who whom whose which where why how "
        "was were is are be been being did does do has have had"
    ).split()
)
_WORD = re.compile(r"\w+")
# `tight`: prepositions and adverbs that open a sentence before a name ("Under Genghis's successor")
_OPENING_WORDS = FUNCTION_WORDS | frozenset(
    (  # noqa: SIM905
        "about above across against along among amid around behind below beneath beside besides "
        "between beyond near over per through throughout toward towards under unlike via within "
        "without like inside outside except today later then thus meanwhile"
    ).split()
)


@dataclass(frozen=True, slots=True)
class Span:
    answer: str
    sentence: str
    start: int  # offset in the chunk
    at: int = -1  # offset in the sentence (-1: its first occurrence there)


def sentences(text: str) -> list[tuple[int, str]]:
    """(offset, sentence) of `text`: split after . ! ? before a capital or digit, and at newlines;
    abbreviations such as "Dr." or "U.S." do not end a sentence, nor does a name's initial unless
    a sentence-opening word such as "The" or "It" follows it."""
    out: list[tuple[int, str]] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        before = text[start : m.start()]
        if _ABBREV.search(before):
            opener = _OPENER.match(text, m.end())
            if not (_INITIAL.search(before) and opener and opener.group().lower() in FUNCTION_WORDS):
                continue
        if before.strip():
            out.append((start + len(before) - len(before.lstrip()), before.strip()))
        start = m.end()
    if text[start:].strip():
        piece = text[start:]
        out.append((start + len(piece) - len(piece.lstrip()), piece.strip()))
    return out


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _stems(text: str) -> set[str]:
    """Content words cut to 5 letters ("nominated", "nominations" -> "nomin")."""
    return {w[:5] for w in _words(text) if w not in FUNCTION_WORDS and len(w) > 2}


def _locate(sentence: str, answer: str, at: int = -1) -> int:
    """Where `answer` stands in `sentence`: at the span's own offset `at` when it holds the answer
    there (the "90" of "90%", not the one inside "1990s" before it), else its first occurrence."""
    return at if at >= 0 and sentence.startswith(answer, at) else sentence.find(answer)


def cloze_question(sentence: str, answer: str, title: str, at: int = -1) -> str:
    lo = _locate(sentence, answer, at)
    blank = (sentence[:lo] + "_____" + sentence[lo + len(answer) :] if lo >= 0 else sentence).rstrip(".")
    about = f" about {title}" if title else ""
    return f'What fills the blank in this sentence{about}: "{blank}"?'


# a name is asked for as "who" at a sentence's start unless it names a place or body
_NOT_PERSON = re.compile(
    r"\b(?:Festival|Awards?|Film|Films|University|College|School|Company|Society|Institute|Association"
    r"|Council|Productions|Studios?|Pictures|Records|Group|Club|Party|Museum|Church|River|Island|City"
    r"|Network|Channel|Television|Radio|Bank|Agency|Department|Ministry|Corporation|League|Team)\b"
)
_ORDINAL = re.compile(r"^\d+(?:st|nd|rd|th)$")
_YEAR = re.compile(r"^(?:1[0-9]|20)\d\d$")
_YEAR_BEFORE = frozenset("in since from until till by before after of on during".split())  # noqa: SIM905
_CLAUSE_END = re.compile(r",|;|:|\(| [–—-] | (?:while|whereas|which|who|where|but|although)\b")


_NO_COUNT = re.compile(rf"(?:\b{_ERA}|°\s?[NESW])$")


def paired(sentence: str, answer: str, at: int = -1) -> bool:
    """`tight`: is the name `answer` one of two that "and" joins ("Algeria and Osama bin Laden",
    "French and Indian War"), or followed by a possessive? Asked in place it leaves the other
    name, or a stray "'s", in the question, so only its blank asks for it."""
    lo = _locate(sentence, answer, at)
    if lo < 0 or not answer[0].isupper():
        return False
    after, before = sentence[lo + len(answer) :], sentence[:lo]
    return bool(
        re.match(r"['’]s\b|\s+and\s+(?:the\s+)?" + _UPPER, after)
        or re.search(_UPPER + r"[\w'’&.-]*\s+and\s+(?:the\s+)?$", before)
    )


def _wh_phrase(answer: str, before: str, at_start: bool, tight: bool = False) -> tuple[str, int] | None:
    """What asks for `answer` in place ("directed by whom"), and how many words before it the
    phrase replaces (the preposition of "held in Sydney" -> "held where"); None when no phrase
    fits (ordinals: "the 27th edition" has no in-place question). With `tight` (the header's),
    number words and ranges are asked as counts and years too."""
    prev = before.split()[-1].lower() if before.split() else ""
    if _PATTERNS[0].fullmatch(answer):
        return ("what dates" if re.search(r"\d\s*(?:–|-|to)\s*\d", answer) else "what date"), 0
    if tight and _NO_COUNT.search(answer):  # "9000 BP", "28.5°E": no count to ask; the blank asks
        return None
    if tight and _COUNT.fullmatch(answer):  # "ten counties": "how many counties"
        unit = answer.split(maxsplit=1)[1] if " " in answer else ""
        return (f"how many {unit}" if unit else "how many"), 0
    if tight and _RANGE.search(answer):  # "1939–45": "what years"; "8–15 per cell": "how many per cell"
        ends = _range_ends(answer)
        if not ends or (_YEAR.match(ends[0]) and not _RANGE.fullmatch(answer)):
            return None  # a score ("15–1"), or a season ("2013–14 season")
        if _YEAR.match(ends[0]):
            return "what years", 0
        unit = re.split(r"\d\s*", answer)[-1].strip()
        return ("how much" if answer[0] in "$€£¥" else f"how many {unit}".rstrip()), 0
    if _YEAR.match(answer):  # "released in 2019", not "a 2019 film" (no in-place question there)
        return ("what year", 0) if prev in _YEAR_BEFORE else None
    if answer[0].isdigit() or answer[0] in "$€£¥":
        if _ORDINAL.match(answer):
            return None
        if answer[0] in "$€£¥":
            return "how much", 0
        unit = answer.split(maxsplit=1)[1] if " " in answer else ""
        if unit in ("percent", "per cent", "%") or answer.endswith("%"):
            return "what percentage", 0
        return (f"how many {unit}" if unit else "how many"), 0
    if prev in ("by", "starring", "featuring"):  # a name; "declined by ten ratings points" asks "by what"
        return ("whom" if answer[0].isupper() else "what"), 0
    if prev in ("in", "at", "near") and not at_start:
        return "where", 1
    if at_start:
        person = len(answer.split()) <= 3 and not _NOT_PERSON.search(answer)
        return ("Who" if person else "What"), 0
    return "what", 0


def _title_name(title: str) -> tuple[str, str | None]:
    """The name a sentence calls the document by, and the kind its title's brackets give:
    "Harrow Point (film)" -> ("Harrow Point", "film"), so "It" / "The film" can be named."""
    kind = re.search(r"\b(\w+)\)\s*$", title)
    return re.sub(r"\s*\([^)]*\)\s*$", "", title).strip(), kind.group(1) if kind else None


def wh_question(sentence: str, answer: str, title: str, tight: bool = False, at: int = -1) -> str | None:
    """The sentence asked about `answer` in place, by rule: "Harrow Point is a 2019 Irish drama
    film directed by whom?" A sentence opening with "It" or "The film" (the title's kind) names its
    subject instead, and the question ends at the clause that holds the answer. None when no
    question phrase fits the answer or what is left is too short to ask anything. `at`: the
    answer's offset in the sentence, should it occur there more than once."""
    lo = _locate(sentence, answer, at)
    if lo < 0:
        return None
    start, end = lo, lo + len(answer)
    close = re.match(r"[.!?,]?[\"”»]", sentence[end:]) if lo > 0 and sentence[lo - 1] in '"“«' else None
    if close:  # a quoted title is asked for whole, quotes and all
        start, end = lo - 1, end + close.end()
    before = sentence[:start]
    if before.count("(") > before.count(")"):  # "(generally known as the AFI Awards)": no question
        return None
    if close:  # a quoted name in title case is a work's title ("The Fabelmans"); else a quote
        phrase: tuple[str, int] | None = ("what title" if answer[0].isupper() else "what", 0)
    else:
        phrase = _wh_phrase(answer, before, at_start=not before.strip(), tight=tight)
    if phrase is None:
        return None
    wh, drop = phrase
    head = before.split()
    if drop:
        head = head[:-drop]
    rest = sentence[end:]
    if wh == "how many" and rest.startswith("%"):  # "contributes 61% of GDP": what percentage of GDP
        wh, rest = "what percentage", rest[1:]
    cut = _CLAUSE_END.search(rest)
    rest = rest[: cut.start()] if cut else rest
    question = re.sub(r"\s*&\w*$", "", " ".join([*head, wh, *rest.split()]).rstrip(" .,;:!?"))
    if question.count('"') % 2 and question.endswith('"'):  # the sentence's closing quote
        question = question[:-1].rstrip()
    name, kind = _title_name(title)
    subjects = [r"It", *([rf"The {re.escape(kind)}"] if kind else [])]
    if name and head:
        question = re.sub(rf"^(?:{'|'.join(subjects)})(?=\s)", name, question, count=1)
        question = re.sub(r"^Its(?=\s)", f"{name}'s", question, count=1)
    if len(question.split()) < 4:
        return None
    return question[0].upper() + question[1:] + "?"


_AUX = frozenset("is was are were".split())  # noqa: SIM905
# past participles that do not end in -ed ("written by", "held in", "shot on")
_PARTICIPLE = frozenset(
    (  # noqa: SIM905
        "born built written made held shot known set given won sung drawn taken chosen seen run begun "
        "broadcast led brought bought sold sent found told shown grown thrown worn torn spoken stolen "
        "driven ridden risen fallen beaten bitten hidden eaten forgotten gotten frozen woven done"
    ).split()
)
_PREPOSITION = frozenset("by in on at of from for to into with as near during since until".split())  # noqa: SIM905
# a clause boundary between the subject's verb and the answer: the answer may belong to another subject
_CLAUSE_WORD = frozenset(
    "who whom whose which that where when while whereas although because but after before if".split()  # noqa: SIM905
)


def _participle(word: str) -> bool:
    return (word.endswith("ed") and len(word) > 4) or word in _PARTICIPLE


def front_question(sentence: str, answer: str, title: str, tight: bool = False, at: int = -1) -> str | None:
    """A short question about the sentence's subject, its question word first, by rule: "Beginning
    is a 2023 Tamil-language drama film directed by Jagan Vijaya" asks "Who directed Beginning?",
    "The ceremony was held in Melbourne" asks "Where was the ceremony held?". It needs a sentence
    of the shape <subject> is/was/are/were ... <participle> [preposition] <answer> with no clause
    between the verb and the answer (the answer must belong to the subject); None otherwise. The
    in-place question keeps the sentence's other facts, which are not in a reader's question;
    this one keys the answer on the subject and its relation alone. `at` as for `wh_question`."""
    lo = _locate(sentence, answer, at)
    quoted = lo > 0 and sentence[lo - 1] in '"“«'
    if lo <= 0:
        return None
    count = tight and bool(_COUNT.fullmatch(answer))  # "ten days" is a number, not a verb's object
    if answer[0].islower() and not quoted and not count:  # a verb's object or a definition
        return definition_question(sentence[:lo], title) or object_question(sentence[:lo], title)
    before = re.sub(r"\s*\([^)]*\)", "", sentence[: lo - 1 if quoted else lo])  # "(AFI)" is no clause
    if "(" in before:
        return None
    words = before.split()
    aux = next((i for i, w in enumerate(words) if w.lower() in _AUX), None)
    if aux is None or not 1 <= aux <= 6 or not words[0][0].isupper():
        return None
    if any(re.search(r"[,;:]", w) or w.lower() in _CLAUSE_WORD for w in words[:aux]):
        return None  # "In 2019, the film was ...", "When it was ...": no plain subject
    middle = [w.lower().strip(",") for w in words[aux + 1 :]]
    prep = middle[-1] if middle and middle[-1] in _PREPOSITION else ""
    verb_at = len(middle) - 1 - (1 if prep else 0)
    if verb_at < 0 or not _participle(middle[verb_at]):
        return None
    between = words[aux + 1 : aux + 1 + verb_at]
    if any(w.lower().strip(",") in _AUX | _CLAUSE_WORD for w in between):
        return None
    if any(re.search(r"[;:]", w) for w in between) or any("," in w for w in between[:-1]):
        return None  # a comma only right before the participle ("a film, directed by ...")
    verb = middle[verb_at]
    phrase = ("what", 0) if quoted else _wh_phrase(answer, before, at_start=False, tight=tight)
    if phrase is None:
        return None
    wh = phrase[0]
    subject = words[:aux]
    name, kind = _title_name(title)
    first = " ".join(subject).lower()
    if name and (first == "it" or (kind and first == f"the {kind.lower()}")):
        subject = [name]
    elif first in FUNCTION_WORDS:  # "They were ...", "He was ...": a question about nobody in particular
        return None
    elif subject[0].lower() in FUNCTION_WORDS and (len(subject) == 1 or not subject[1][0].isupper()):
        subject = [subject[0].lower(), *subject[1:]]  # "the ceremony", not "the Long Road"
    subj, be = " ".join(subject), words[aux].lower()
    if wh == "whom" and prep == "by":
        question = f"Who {verb} {subj}" if verb.endswith("ed") else f"By whom {be} {subj} {verb}"
    elif wh in ("what date", "what dates", "what year"):
        question = f"When {be} {subj} {verb}"
    elif wh == "where":
        question = f"Where {be} {subj} {verb}"
    elif wh in ("whom", "what"):
        question = f"{'Who' if wh == 'whom' else 'What'} {be} {subj} {verb} {prep}"
    else:  # how many days, how much, what percentage, what title
        question = f"{wh[0].upper()}{wh[1:]} {be} {subj} {verb} {prep}"
    return question.rstrip() + "?"


# words that end an object phrase ("explored the mountains | in hunter's garb"); "of" does not
_BOUNDARY = (_PREPOSITION - {"of"}) | frozenset(
    (  # noqa: SIM905
        "among between through across against under over within without via throughout toward towards "
        "about around after before despite like per upon beyond behind along including than so"
    ).split()
)
# an introductory phrase that may stand before a sentence's subject ("In 1874, Tesla ...")
_INTRO = _BOUNDARY | frozenset(
    "there later then eventually initially originally today thus however also when while".split()  # noqa: SIM905
)
_QUANTIFIER = frozenset("many most some several all both each every few no other such".split())  # noqa: SIM905
_OBJECT_PRONOUN = frozenset("him her them it us me itself himself herself themselves".split())  # noqa: SIM905
# verbs whose object is no fact of its own: auxiliaries, modals and reporting verbs ("said that ...")
_NOT_MAIN = frozenset("be have do will would can could may might must shall should say".split())  # noqa: SIM905


def _finite_verb(word: str) -> tuple[str, str] | None:
    """(lemma, "did" | "does" | "do") when `word` is a finite form of a full verb: its past tense
    ("explored" -> explore, did), or, where it cannot be a noun or an adjective too, its present
    ("operates" -> does, "operate" -> do). Lemmas and forms come from lemminflect's dictionary."""
    w = word.lower()
    if not w.isalpha() or word[0].isupper():
        return None
    from lemminflect import getAllInflections, getAllLemmas

    lemmas = getAllLemmas(w)
    if "VERB" not in lemmas or lemmas["VERB"][0] in _NOT_MAIN:
        return None
    lemma = lemmas["VERB"][0]
    forms = getAllInflections(lemma, upos="VERB")
    if w in forms.get("VBD", ()):
        return lemma, "did"
    if "NOUN" in lemmas or "ADJ" in lemmas or "ADV" in lemmas:  # "works", "forms", "like"
        return None
    if w in forms.get("VBZ", ()):
        return lemma, "does"
    return (lemma, "do") if w == lemma else None


def _adverb(word: str) -> bool:
    from lemminflect import getAllLemmas

    return "ADV" in getAllLemmas(word)


def _noun_or_adjective(word: str) -> bool:
    from lemminflect import getAllLemmas

    lemmas = getAllLemmas(_clean(word))
    return "NOUN" in lemmas or "ADJ" in lemmas


def _can_be_verb(word: str) -> bool:
    from lemminflect import getAllLemmas

    w = _clean(word)
    return "VERB" in getAllLemmas(w) and w not in FUNCTION_WORDS


def _clean(word: str) -> str:
    return word.lower().strip("\"“”'’,;:.()–—")


def _take_object(
    tokens: list[tuple[int, str]], j: int, most: int, ends: Callable[[int, list[tuple[int, str]]], bool]
) -> tuple[list[tuple[int, str]], int, bool]:
    """The tokens from `j` on that make one object: up to `most`, until `ends(k, taken)` says token
    k ends it or a token closes with punctuation. Returns them, the index after them, and whether
    the object ended there (False when `most` cut it short)."""
    obj: list[tuple[int, str]] = []
    while j < len(tokens) and len(obj) < most:
        if ends(j, obj):
            return obj, j, True
        obj.append(tokens[j])
        j += 1
        if re.search(r"[,;:()]|[.!?]$", obj[-1][1]):
            return obj, j, True
    return obj, j, j == len(tokens)


def phrase_spans(sentence: str) -> list[tuple[int, str]]:
    """(offset, answer) for the object of each full verb of `sentence` that has one: the words
    after the verb up to a comma, a clause word or a preposition other than "of", at most 10
    ("There, he explored the mountains in hunter's garb" -> "the mountains"). A verb right after
    an auxiliary or "to" is left out ("was located", "to provide"), as is an object that starts
    with a pronoun or a clause ("made him stronger", "said that ...")."""
    tokens = [(m.start(), m.group()) for m in re.finditer(r"\S+", sentence)]
    out: list[tuple[int, str]] = []
    i = 1
    while i < len(tokens):
        word = tokens[i][1]
        prev = _clean(tokens[i - 1][1])
        if (
            word != word.strip(",;:()")
            or not _finite_verb(word)
            or prev in _AUX | _NOT_MAIN | {"to", "has", "had"}
        ):
            i += 1
            continue
        j = i + 1
        if j + 1 < len(tokens) and _clean(tokens[j][1]) in ("and", "or") and _finite_verb(tokens[j + 1][1]):
            j += 2  # "contrasted and contradicted X": the object of both
        if j < len(tokens) and _clean(tokens[j][1]) in _BOUNDARY | {"of"}:
            if _clean(tokens[j][1]) == "to" and j + 1 < len(tokens) and _can_be_verb(tokens[j + 1][1]):
                i = j + 1  # "designed to instill ...": an infinitive, no object
                continue
            j += 1  # "found by", "contrasted with X": the object follows the preposition

        def ends(k: int, obj: list[tuple[int, str]]) -> bool:
            lw = _clean(tokens[k][1])
            return (
                lw in _CLAUSE_WORD | _AUX | {"has", "have", "had"}
                or bool(obj and lw in _BOUNDARY)
                or not lw
                or (
                    lw in ("and", "or") and k + 1 < len(tokens) and _finite_verb(tokens[k + 1][1]) is not None
                )
            )

        obj, j, ended = _take_object(tokens, j, 10, ends)
        i = j
        first = _clean(obj[0][1]) if obj else ""
        if not obj or not ended or first in _OBJECT_PRONOUN | _CLAUSE_WORD | _NOT_MAIN | {"been"}:
            continue
        if len(obj) == 1 and (first in FUNCTION_WORDS | {"place"} or _finite_verb(first) or _adverb(first)):
            continue  # "designed to instill", "survives today", "took place"
        span = _object_answer(sentence, obj)
        if span and span[1][0].islower():  # "the Galway Film Fleadh" is the name's span already
            out.append(span)
    return out


def _object_answer(sentence: str, obj: list[tuple[int, str]]) -> tuple[int, str] | None:
    """(offset, answer) for the words `obj` of `sentence`, without closing punctuation, quotes or
    an unclosed bracket, when it holds a lower-case content word; else None."""
    lo = obj[0][0]
    answer = sentence[lo : obj[-1][0] + len(obj[-1][1])]
    answer = re.sub(r"\s*\([^)]*$", "", answer.rstrip(",;:.!?)").strip('"“”'))
    if answer and any(w.islower() and w.lower() not in FUNCTION_WORDS for w in answer.split()):
        return sentence.find(answer, lo), answer
    return None


# prepositions whose object is asked for with `prepositions: true`; "of" is left out (it sits
# inside noun phrases: "the photolysis of ozone" is asked for whole, after "by")
_OBJECT_OF = (_BOUNDARY - {"so", "including", "than", "like", "per"}) | {"as"}
# several words that act as one preposition: the object follows the last ("in case of X")
_COMPOUND = (
    ("in", "case", "of"),
    ("in", "spite", "of"),
    ("in", "front", "of"),
    ("in", "terms", "of"),
    ("on", "behalf", "of"),
    ("as", "part", "of"),
    ("as", "well", "as"),
    ("because", "of"),
    ("instead", "of"),
    ("according", "to"),
    ("due", "to"),
    ("such", "as"),
    ("at", "least"),
    ("at", "most"),
)
_SUBJECT_PRONOUN = frozenset("i you he she we they it this that these those".split())  # noqa: SIM905
# words that end an object: a clause, an auxiliary or modal (_NOT_MAIN), another preposition
_OBJECT_END = (
    _CLAUSE_WORD
    | _AUX
    | _BOUNDARY
    | _NOT_MAIN
    | frozenset(
        "as has had and or being inside outside beside besides".split()  # noqa: SIM905
    )
)
# one-word objects of set phrases ("in addition", "for example"), no fact of the sentence
_SET_PHRASE = frozenset(
    (  # noqa: SIM905
        "addition instance example fact particular general order turn total contrast part short brief "
        "least first last time once whole"
    ).split()
)


# `chunks`: words that end a run of content words besides FUNCTION_WORDS (modals, negations,
# relative and comparative words)
_CHUNK_BREAK = FUNCTION_WORDS | frozenset(
    (  # noqa: SIM905
        "not no nor can could will would may might shall should must than then which whose "
        "more most very only such other both each every all any some many much"
    ).split()
)
# words after which a run's last word that can be a verb is taken for one (and "-ly" adverbs)
_VERB_NEXT = frozenset("the a an that this these those its his her their".split())  # noqa: SIM905
_CHUNK_TOKEN = re.compile(r"\w[\w'’.-]*\w|\w|[^\w\s]")


def chunk_spans(sentence: str, most: int = 4) -> list[tuple[int, str]]:
    """(offset, answer) for each run of one to `most` content words of `sentence`: the words
    between punctuation, function words and full verbs ("The condenser works at constant
    pressure" -> "condenser", "constant pressure"). Longer runs are left out, not cut."""
    runs: list[list[tuple[int, int]]] = [[]]
    before = ""
    for m in _CHUNK_TOKEN.finditer(sentence):
        word = m.group()
        low = word.lower()
        ly = low.endswith("ly") and _adverb(word)  # "unfairly"; "early" is an adjective too
        if (
            not word[0].isalnum()
            or low in _CHUNK_BREAK
            or _finite_verb(word)
            or (before == "to" and _can_be_verb(word))  # "to treat emphysema": "emphysema"
            or (ly and not _noun_or_adjective(word))
        ):
            run = runs[-1]
            if run and (ly or low in _VERB_NEXT) and _can_be_verb(sentence[slice(*run[-1])]):
                run.pop()  # "The Church holds that ...", "it equals the ...": a verb, not a noun
            runs.append([])
        else:
            runs[-1].append(m.span())
        before = low
    out = []
    for run in runs:
        if run and len(run) <= most:
            answer = sentence[run[0][0] : run[-1][1]].rstrip(".")
            if len(answer) > 1:
                out.append((run[0][0], answer))
    return out


def preposition_spans(sentence: str) -> list[tuple[int, str]]:
    """(offset, answer) for the object of each preposition of `sentence` (other than "of") that
    holds a lower-case content word: the words after it up to a comma, a clause word, a verb or
    the next preposition, at most 8 ("in case of cabin depressurization" -> "cabin
    depressurization", "saw the East as inferior" -> "inferior", "divides itself into
    committees" -> "committees"). Names, dates and numbers are spans of their own already; an
    infinitive ("to provide"), a pronoun ("to them") or a clause ("as he left") is no object."""
    tokens = [(m.start(), m.group()) for m in re.finditer(r"\S+", sentence)]
    words = [_clean(w) for _, w in tokens]
    out: list[tuple[int, str]] = []
    i = 0
    while i < len(tokens):
        j = next(
            (i + len(c) for c in _COMPOUND if tuple(words[i : i + len(c)]) == c),
            i + 1 if words[i] in _OBJECT_OF else None,
        )
        if j is None or re.search(r"[,;:()]$", tokens[j - 1][1]):
            i += 1
            continue
        i = j
        if (
            j < len(tokens)
            and words[j - 1] == "to"
            and _can_be_verb(tokens[j][1])
            and not words[j].endswith("s")
        ):
            continue  # "to provide": an infinitive

        def ends(k: int, obj: list[tuple[int, str]]) -> bool:
            lw = words[k]
            # "and"/"or" join two words of one object ("salt and iron"), not a clause ("and he left")
            joins = (
                lw in ("and", "or")
                and k + 1 < len(tokens)
                and not _finite_verb(tokens[k + 1][1])
                and words[k + 1] not in _CLAUSE_WORD | _SUBJECT_PRONOUN | _OBJECT_OF
            )
            # an article after a noun starts another phrase ("In Scotland the pharmacist can ...")
            article = lw in ("the", "a", "an") and words[k - 1] not in ("of", "and", "or")
            stop = (lw in _OBJECT_END and not joins) or article or _finite_verb(tokens[k][1]) is not None
            return not lw or (bool(obj) and stop)

        obj, j, ended = _take_object(tokens, j, 8, ends)
        while len(obj) > 1 and _adverb(_clean(obj[-1][1])) and not _noun_or_adjective(obj[-1][1]):
            obj.pop()  # "in fixed-wing aircraft sometimes"
        if not obj or not ended:
            continue
        first = _clean(obj[0][1])
        if first in _OBJECT_PRONOUN | _SUBJECT_PRONOUN | _CLAUSE_WORD | {"well", "such"}:
            continue
        if len(obj) == 1 and (first in FUNCTION_WORDS | _SET_PHRASE or _adverb(first) or _finite_verb(first)):
            continue
        last = (obj[-1][0], re.sub(r"\.?:[\d:–—-]+$", "", obj[-1][1]))  # a citation: "reference.:12-11:359"
        span = _object_answer(sentence, [*obj[:-1], last])
        if span and '"' not in span[1] and "“" not in span[1]:  # not a quotation cut in two
            out.append(span)
    return out


_ARTICLE = frozenset("a an the one".split())  # noqa: SIM905


def _subject(words: list[str], title: str, opened: bool = False) -> list[str] | None:
    """The words of a sentence's subject as a question names it: "it" / "the film" become the
    title's name, "he" / "she" a person's title; None for another pronoun, for more than 6 words
    or words with a clause, a comma, an auxiliary or a second verb's "and" in them ("Tesla, who
    was ill, ..."; "He restored X and left ..."). `opened`: an opening phrase stood before it
    ("There, he ..."), so it need not be capitalised."""
    if (
        not 1 <= len(words) <= 6
        or not (words[0][0].isupper() or opened)
        or _clean(words[0]) in _INTRO  # "Today the cottages are ...": an opening, no subject
        or any(
            re.search(r"[,;:()\"“”]", w)
            or _clean(w) in _AUX | _CLAUSE_WORD | {"has", "have", "had", "and", "or"}
            for w in words
        )
    ):
        return None
    name, kind = _title_name(title)
    first = " ".join(words).lower()
    if first in ("he", "she") and _person_title(title):
        return [title]
    if name and (first == "it" or (kind and first == f"the {kind.lower()}")):
        return [name]
    if first in FUNCTION_WORDS:  # "They explored ...": a question about nobody in particular
        return None
    if words[0].lower() in FUNCTION_WORDS | _QUANTIFIER and (len(words) == 1 or not words[1][0].isupper()):
        return [words[0].lower(), *words[1:]]  # "the new concept", not "the Long Road"
    return words


def definition_spans(sentence: str) -> list[tuple[int, str]]:
    """(offset, answer) for what a sentence of the shape <subject> is/was/are/were a/an/the ...
    says its subject is: the noun phrase after the verb, up to a comma, a clause word, a
    participle or a preposition other than "of", at most 12 words ("Sacramento is an upcoming
    American comedy road trip film directed by ..." -> "an upcoming American comedy road trip
    film"). Definitions open most reference pages and manual sections, and a reader's "What is
    X?" / "What genre is X?" asks for them; a name or a date inside is a span of its own."""
    plain = re.sub(r"\s*\([^)]*\)", "", sentence)  # "Nothing But Lies (French: ...) is a ..."
    words = plain.split()
    aux = next((i for i, w in enumerate(words[:9]) if w.lower() in _AUX), None)
    if aux is None or aux + 1 >= len(words) or _clean(words[aux + 1]) not in _ARTICLE:
        return []
    obj: list[str] = []
    for i in range(aux + 1, len(words)):
        w, lw = words[i], _clean(words[i])
        after = _clean(words[i + 1]) if i + 1 < len(words) else ""
        if obj and lw in _BOUNDARY and after in ("which", "whom"):
            return []  # "the stock level at which an order is raised": the clause is the definition
        if obj and (lw in _CLAUSE_WORD | _AUX | _BOUNDARY or _participle(lw)):
            break
        if obj and lw in ("and", "or") and _participle(after):
            break  # "a film written and directed by ..."
        obj.append(w)
        if re.search(r"[,;:]|[.!?]$", w) or len(obj) > 12:
            break
    answer = " ".join(obj).rstrip(",;:.!?").strip('"“”')
    if (
        len(obj) > 12
        or len(obj) < 2
        or not any(w.islower() and w not in _ARTICLE for w in answer.split()[1:])
    ):
        return []
    lo = sentence.find(answer)
    return [(lo, answer)] if lo > 0 else []


def definition_question(before: str, title: str) -> str | None:
    """ "What is <subject>?" for the noun phrase a definition says its subject is (`before`, the
    sentence up to it, ends with is/was/are/were): "Sacramento is" -> "What is Sacramento?";
    "He was" -> "Who was Nikola Tesla?" where "he" stands for a person's title (a name alone does
    not tell a person from a film: "What was Tapas Paul?")."""
    words = re.sub(r"\s*\([^)]*\)", "", before).split()
    if len(words) < 2 or words[-1].lower() not in _AUX:
        return None
    name, _ = _title_name(title)
    subject = words[:-1] if " ".join(words[:-1]) == name else _subject(words[:-1], title)
    if subject is None:
        return None
    who = words[0].lower() in ("he", "she") and len(words) == 2  # a person's title stood for "he"
    return f"{'Who' if who else 'What'} {words[-1].lower()} {' '.join(subject)}?"


def _person_title(title: str) -> bool:
    """ "Nikola Tesla", not "Packet switching" or "Sky (United Kingdom)": "he" / "she" is its name."""
    words = title.split()
    return (
        2 <= len(words) <= 4
        and all(w[0].isupper() and w.isalpha() for w in words)
        and not _NOT_PERSON.search(title)
    )


def object_question(before: str, title: str) -> str | None:
    """ "What did <subject> <verb>?" for the object that follows `before`, the sentence up to it:
    "In 1874, Tesla evaded" -> "What did Tesla evade?". The subject is the 1 to 6 words before the
    verb, after an opening phrase ("In 1874,", "There,"); "he" / "she" become a person's title,
    "it" any title; None for another pronoun, or a subject with a clause or an auxiliary in it."""
    words = re.sub(r"\s*\([^)]*\)", "", before).split()
    prep = _clean(words[-1]) if words and _clean(words[-1]) in _BOUNDARY | {"of"} else ""
    k = len(words) - 1 - (1 if prep else 0)
    if k < 1 or words[k] != words[k].strip(",;:") or not (verb := _finite_verb(words[k])):
        return None
    lemma, do = verb
    end = k - 2 if k >= 2 and words[k - 1].lower() == "and" and _finite_verb(words[k - 2]) else k
    subject = words[:end]
    comma = max((i for i, w in enumerate(subject) if w.endswith(",")), default=-1)
    opened = comma >= 0
    if opened:  # "In 1874, Tesla", "There, he": an opening phrase, not a subject with a clause
        if not (_clean(subject[0]) in _INTRO or subject[0][0].isdigit()):
            return None
        subject = subject[comma + 1 :]
    subject = _subject(subject, title, opened)
    if subject is None:
        return None
    return f"What {do} {' '.join(subject)} {lemma}{' ' + prep if prep else ''}?"


_LIST_GAP = re.compile(r",\s*(?:(?:and|or)\s+)?")
_LIST_MAX_WORDS = 30


def list_spans(sentence: str) -> list[tuple[int, str]]:
    """(offset, answer) for each enumeration of three or more names in `sentence`, whole:
    "starring Hridhu Haroon, Anaswara Rajan, Bobby Simha and R. K. Suresh" -> the four names.
    A reader asks for the list ("Who stars in Thugs?"); one of its names alone is a partial
    answer. Names are capitalised runs ("R. K. Suresh", "Bank of England") joined by commas, the
    last by "and" / "or" (with or without a comma); at most 30 words."""
    matches = []
    for m in _PATTERNS[-1].finditer(sentence):
        lo, text = m.start(), m.group().rstrip(" ,;:.-")
        if lo == 0 and text.split()[0].lower() in FUNCTION_WORDS:
            continue  # "In Paris, Smith, ...", "In 2019, ...": an opening phrase, no name of a list
        matches.append((lo, lo + len(text)))
    out: list[tuple[int, str]] = []
    run: list[tuple[int, int]] = []
    for lo, hi in [*matches, (-1, -1)]:
        if run and lo >= 0 and _LIST_GAP.fullmatch(sentence[run[-1][1] : lo]):
            run.append((lo, hi))
            continue
        if run:
            answer = sentence[run[0][0] : run[-1][1]]
            names = len(run) + sum(len(re.findall(r"\s(?:and|or)\s", sentence[a:b])) for a, b in run)
            if names >= 3 and len(answer.split()) <= _LIST_MAX_WORDS:
                out.append((run[0][0], answer))
        run = [(lo, hi)] if lo >= 0 else []
    return out


def in_list(sentence: str, answer: str, at: int = -1) -> bool:
    """Is `answer` (at `at`, else its first occurrence) one name of an enumeration in `sentence`
    (not the whole of it)?"""
    lo = _locate(sentence, answer, at)
    return lo >= 0 and any(a <= lo < a + len(t) and t != answer for a, t in list_spans(sentence))


def _named(span: str, title_words: set[str]) -> bool:
    """A span worth asking for: not only function words, not only words of the document's title."""
    words = _words(span)
    content = [w for w in words if w not in FUNCTION_WORDS]
    if not content:
        return False
    return not set(content) <= title_words


def _proper_words(sents: list[tuple[int, str]]) -> set[str]:
    """`tight`: words the text capitalises where no sentence starts, or that hold a capital after
    their first letter ("CrossCountry", "McLaren"): names even when they open a sentence."""
    words = set()
    for _, sent in sents:
        for i, m in enumerate(re.finditer(r"[\w'’&.-]+", sent)):
            w = m.group().strip("'’.-")
            if w and w[0].isupper() and (i > 0 or any(c.isupper() for c in w[1:])):
                words.add(w)
    return words


def _absorb_numbers(
    sent: str, lo: int, answer: str, taken: list[tuple[int, int]], found: list[tuple[int, str]]
) -> None:
    """`tight`: a name of two words or more takes the place of the numbers inside it ("State
    Route 99", not "99"), which leave `taken` and `found`."""
    hi = lo + len(answer)
    if len(answer.split()) < 2 or not answer[0].isupper():
        return
    inside = [(a, b) for a, b in taken if lo < b and a < hi]
    if inside and all(lo <= a and b <= hi and sent[a].isdigit() for a, b in inside):
        for a, b in inside:
            taken.remove((a, b))
            found[:] = [(x, f) for x, f in found if x != a]


_JOIN = re.compile(r"\s+(?:in|on|at|and(?:\s+the)?)\s+$")


def _joined_names(sent: str, names: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Pairs of names (offset, name) that only "in", "on", "at" or "and" part ("Billancourt
    Studios in Paris", "French and Indian War"), as one span each: `tight` asks for the names one
    by one and for the pair."""
    names = sorted(names)
    return [
        (lo, sent[lo : lo2 + len(b)])
        for (lo, a), (lo2, b) in zip(names, names[1:], strict=False)
        if _JOIN.fullmatch(sent[lo + len(a) : lo2])
    ]


def pick_spans(
    text: str,
    title: str,
    limit: int,
    phrases: bool = False,
    definitions: bool = False,
    lists: bool = False,
    prepositions: bool = False,
    tight: bool = False,
    chunks: bool = False,
) -> list[Span]:
    """Candidate answers of `text`, round-robin over its sentences, at most `limit`; with
    `phrases`, verbs' objects too, with `definitions` what an "X is a ..." sentence says X is
    (either may hold a name that is a span of its own), with `lists` each enumeration of names
    whole (its names stay spans of their own), with `prepositions` the objects of prepositions;
    with `tight`, the tighter boundaries of `_TIGHT_PATTERNS`; with `chunks`, after all of these,
    each short run of content words (`chunk_spans`)."""
    title_words = {w for w in _words(re.sub(r"\([^)]*\)", "", title)) if w not in FUNCTION_WORDS}
    per_sentence: list[list[Span]] = []
    enumerations: set[str] = set()  # a list's names are asked for one by one as well
    named: set[str] = set()  # answers the patterns found (not phrases, objects or definitions)
    chunked: set[tuple[int, str]] = set()  # `chunks`: (start, answer) of runs no other rule found
    sents = sentences(text)
    proper = _proper_words(sents) if tight else set()
    openers = _OPENING_WORDS if tight else FUNCTION_WORDS
    for offset, sent in sents:
        taken: list[tuple[int, int]] = []
        found: list[tuple[int, str]] = []
        patterns = _TIGHT_PATTERNS if tight else _PATTERNS
        names: list[tuple[int, str]] = []  # tight: the names found, for `_joined_names`
        for pattern in patterns:
            for m in pattern.finditer(sent):
                group = next((i for i in range(1, (m.lastindex or 0) + 1) if m.group(i)), 0)
                lo, hi = m.span(group)
                answer = re.sub(r"['’]s?$", "", sent[lo:hi].strip(" ,;:.-"))  # Condit's -> Condit
                lo = sent.find(answer, lo) if answer else lo
                hi = lo + len(answer)
                if len(answer) < 2:
                    continue
                if pattern is patterns[-1]:  # a name
                    first = answer.split()[0]
                    if lo == 0 and first.lower() in openers:  # "The Kestrel ..." at a sentence start
                        answer = answer[len(first) :].lstrip()
                        lo = hi - len(answer)
                    # "Presented by ...": no name; with `tight`, a word that is capitalised inside
                    # a sentence too, or inside itself ("CrossCountry trains ..."), is one
                    if not answer or (lo == 0 and " " not in answer and not (tight and answer in proper)):
                        continue
                    if tight:
                        _absorb_numbers(sent, lo, answer, taken, found)
                if any(lo < b and a < hi for a, b in taken):
                    continue
                if not _named(answer, title_words) or len(answer.split()) > 12:
                    continue
                taken.append((lo, hi))
                found.append((lo, answer))
                named.add(answer)
                if pattern is _TIGHT_NAME:
                    names.append((lo, answer))
        if tight:  # two names joined ("Harvard Yard in Cambridge") are an answer whole too
            joined = _joined_names(sent, names)
            found += joined
            enumerations.update(a for _, a in joined)
            # ... and a range's ends are answers of their own ("1899–1900": "1899", "1900")
            for lo, a in list(found):
                ends = _range_ends(a)
                if ends:  # one digit alone is no answer, as above
                    found += [
                        (lo + at, end)
                        for at, end in ((a.find(ends[0]), ends[0]), (a.rfind(ends[1]), ends[1]))
                        if len(end) > 1
                    ]
        if phrases:
            found += [(lo, a) for lo, a in phrase_spans(sent) if _named(a, title_words)]
        if definitions:
            found += [(lo, a) for lo, a in definition_spans(sent) if _named(a, title_words)]
        if prepositions:
            found += [(lo, a) for lo, a in preposition_spans(sent) if _named(a, title_words)]
        if chunks:  # after the rest, and never the longer answer that drops a name's word
            have = {a for _, a in found}
            runs = [(lo, a) for lo, a in chunk_spans(sent) if a not in have and _named(a, title_words)]
            chunked.update((offset + lo, a) for lo, a in runs)
            found += runs
        if lists:
            enumerated = list_spans(sent)
            found += [(lo, a) for lo, a in enumerated if _named(a, title_words)]
            enumerations.update(a for _, a in enumerated)
        found.sort(key=(lambda f: (f[1] not in named, f[0])) if tight else None)
        per_sentence.append([Span(a, sent, offset + lo, lo) for lo, a in found])

    # a name's single word ("Condit") is asked for through the full name ("Cecelia Condit"); with
    # `tight`, a name the patterns found is dropped only inside a longer name, not inside a
    # phrase ("the British rock group Coldplay" still gives "Coldplay")
    def inside(spans_of: Callable[[Span], bool]) -> set[str]:
        return {
            w
            for spans in per_sentence
            for s in spans
            if " " in s.answer and s.answer not in enumerations and spans_of(s)
            for w in _words(s.answer)
        }

    def is_run(s: Span) -> bool:  # by place: the same words may be a name in another sentence
        return (s.start, s.answer) in chunked

    longer = inside(lambda s: not is_run(s))
    in_name = inside(lambda s: s.answer in named) if tight else longer

    def kept(s: Span) -> bool:
        if " " in s.answer or s.answer[0].isdigit():
            return True
        word = s.answer.lower()
        return word not in in_name and (word not in longer or s.answer in named)

    per_sentence = [[s for s in spans if kept(s)] for spans in per_sentence]
    # `chunks` come after every other span of every sentence, so under the cap they only add
    tiers = [[[s for s in spans if not is_run(s)] for spans in per_sentence]]
    if chunked:
        tiers.append([[s for s in spans if is_run(s)] for spans in per_sentence])
    out: list[Span] = []
    seen: set[str] = set()
    for tier in tiers:
        rank = 0
        while len(out) < limit and any(rank < len(s) for s in tier):
            for spans in tier:
                if rank < len(spans) and len(out) < limit:
                    span = spans[rank]
                    key = span.answer.lower()
                    if key not in seen:  # one question per distinct answer
                        seen.add(key)
                        out.append(span)
            rank += 1
    return out


class SpanStrategy(Strategy):
    """A strategy of kind `spans`: one request per answer span of the chunk (see the module doc)."""

    def variants_for(self, chunk: Chunk) -> list[tuple[str, dict[str, str]]]:
        # doc_title: the parser's relevance check leaves the title's words out
        return [
            (
                span.answer,
                {
                    "answer": span.answer,
                    "sentence": span.sentence,
                    "doc_title": chunk.title,
                    "at": str(span.at),
                },
            )
            # distinct answers
            for span in pick_spans(
                chunk.text,
                chunk.title,
                self.header.max_items,
                self.header.phrases,
                self.header.definitions,
                self.header.lists,
                self.header.prepositions,
                self.header.tight,
                self.header.chunks,
            )
        ]

    def parse_request(self, req: GenRequest, text: str, finish_reason: str) -> Parsed:
        """The model's question, if it is one about this span's sentence; with `cloze: true` also
        the sentence as a fill-in-the-blank question, with `wh: true` the sentence asked in
        place and with `front: true` a short question about its subject (all kept when the
        model's question is not; with `model_question: false` only these are kept)."""
        field = self.fields_for(req.chat)[0]
        sentence, answer, title = (
            req.context["sentence"],
            req.context["answer"],
            req.context.get("doc_title", ""),
        )
        at = int(req.context.get("at", -1))  # where the span stands, should the answer recur
        ruled = []
        if self.header.cloze:
            about = title if self.header.cloze_title else ""
            ruled.append({field: cloze_question(sentence, answer, about, at), "form": "cloze"})
        # one name of a list (or, with `tight`, of an "and" pair) is asked for by its blank alone:
        # "starring X, what?" asks nothing, and "Who stars in Thugs?" answered with one name
        # teaches a partial answer
        tight = self.header.tight
        member = (self.header.lists and in_list(sentence, answer, at)) or (
            tight and paired(sentence, answer, at)
        )
        wh = wh_question(sentence, answer, title, tight, at) if self.header.wh and not member else None
        if wh:
            ruled.append({field: wh, "form": "wh"})
        front = (
            front_question(sentence, answer, title, tight, at) if self.header.front and not member else None
        )
        if front:
            ruled.append({field: front, "form": "front"})
        if not self.header.model_question:
            if not ruled:
                raise ParseError("model_question is false and no rule-written question fits this span")
            return Parsed(ruled)
        try:
            question = self._question(self.parse(text, finish_reason, req.chat).items[0][field], req)
        except ParseError as e:
            if not ruled:
                raise
            return Parsed(ruled, [str(e)])
        return Parsed([{field: question, "form": "model"}, *ruled])

    @staticmethod
    def _question(reply: str, req: GenRequest) -> str:
        question = " ".join(reply.strip().split("\n", 1)[0].split())
        question = re.sub(r"^(?:Q|Question)\s*[:.]\s*", "", question, flags=re.IGNORECASE)
        answer, sentence = req.context["answer"], req.context["sentence"]
        if not question.endswith("?"):
            raise ParseError("the reply is not a question (no '?' on its first line)")
        if len(question.split()) < 4:
            raise ParseError(f"question too short: {question!r}")
        if re.search(rf"(?<!\w){re.escape(answer.lower())}(?!\w)", question.lower()):
            raise ParseError("the question contains its own answer")
        # a question about this sentence shares its words: not only the title's, the answer's or
        # generic ones ("What is the name of the film?" asked of every answer fails here)
        skip = _stems(answer) | _stems(req.context.get("doc_title", ""))
        shared = (_stems(question) & _stems(sentence)) - skip
        if len(shared) < 2:
            raise ParseError(f"the question does not ask about its sentence: {question!r}")
        return question

    def records(
        self,
        chunk: Chunk,
        req: GenRequest,
        result: GenResult,
        parsed: Parsed,
        *,
        backend: str,
        model: str,
        parents: list[dict[str, str]] | None = None,
    ) -> list[dict[str, Any]]:
        # the answer and its evidence are the chunk's own words, from the request
        answer, sentence = req.context["answer"], req.context["sentence"]
        items = [{**item, "answer": answer, "evidence": sentence} for item in parsed.items]
        return super().records(
            chunk,
            req,
            result,
            Parsed(items, parsed.rejected, parsed.meta),
            backend=backend,
            model=model,
            parents=parents,
        )
