"""SQuAD-style answer scores and bootstrap confidence intervals."""

from __future__ import annotations

import re
import string
from collections import Counter

import numpy as np

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def answer_span(answer: str) -> str:
    """The gold answer as its likelihood is scored: without the closing punctuation of a sentence
    ("January 6, 2023." -> "January 6, 2023", '"Heroic."' -> '"Heroic"'). The full stop is not
    part of the answer — F1 and exact match drop punctuation too — and a model trained to stop
    after its answer would otherwise pay for it: on the film set, whose answers end in ".", it
    cost 1 to 3 nats on one- or two-token answers."""
    if re.search(r"(?:^|[\s.])[A-Z]\.$", answer.strip()):  # "U.S.", "Ronald R.": an abbreviation's
        return answer.strip()
    m = re.fullmatch(r"(.*?)[.!?]+([\"”’']?)", answer.strip(), re.S)
    return (m.group(1) + m.group(2)).strip() if m and m.group(1).strip() else answer.strip()


def source_form(answer: str, passage: str) -> str | None:
    """The passage's own wording of a gold answer it does not hold verbatim but states with the
    same words in another form — case, order or punctuation: "February 24, 2023" -> "24 February
    2023", "Comedy drama" -> "comedy drama" (the shortest such run of the passage's words); None
    when the passage holds the answer verbatim or not at all. A rewritten gold answer (the film
    set's are written by a model) is scored for likelihood in this form too: a model that learned
    the source's wording knows the fact, but the tokens of "Comedy" are not those of "comedy"."""
    gold = answer_span(answer)
    want = Counter(normalize_answer(gold).split())
    if not passage or not want or gold in passage:
        return None
    words = [m.span() for m in re.finditer(r"\S+", passage)]
    size = sum(want.values())
    for length in range(1, size + 4):  # articles and punctuation-only words are no words here
        for i in range(len(words) - length + 1):
            text = passage[words[i][0] : words[i + length - 1][1]]
            if Counter(normalize_answer(text).split()) == want:
                form = text.strip(" ,;:.")
                form = form.strip("()") if form.count("(") != form.count(")") else form
                return form if form and form != gold else None
    return None


def exact_match(prediction: str, answers: list[str]) -> float:
    p = normalize_answer(prediction)
    return float(any(p == normalize_answer(a) for a in answers))


def _f1(prediction: str, answer: str) -> float:
    p, g = normalize_answer(prediction).split(), normalize_answer(answer).split()
    common = sum((Counter(p) & Counter(g)).values())
    if not p or not g:
        return float(p == g)
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def f1_score(prediction: str, answers: list[str]) -> float:
    """Token F1 against the best gold answer."""
    return max(_f1(prediction, a) for a in answers)


def contains(prediction: str, answers: list[str]) -> float:
    """1 when a (normalised) gold answer appears in the (normalised) prediction."""
    p = f" {normalize_answer(prediction)} "
    return float(any(f" {normalize_answer(a)} " in p for a in answers if normalize_answer(a)))


def bootstrap_ci(
    values: list[float] | np.ndarray, n: int = 2000, seed: int = 0, groups: list | np.ndarray | None = None
) -> tuple[float, float, float]:
    """Mean and 95 % percentile-bootstrap interval, resampling questions — or, with `groups` (one
    label per value, e.g. the passage a question is about), resampling whole groups: questions about
    one passage are not independent (a model that learned the passage answers all of them), and the
    group bootstrap's interval says how the mean would move with other passages."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    if groups is None:
        means = v[rng.integers(0, len(v), size=(n, len(v)))].mean(axis=1)
    else:
        labels = [str(g) for g in groups]
        if len(labels) != len(v):
            raise ValueError(f"{len(v)} values but {len(labels)} group labels")
        order = {g: k for k, g in enumerate(dict.fromkeys(labels))}  # groups in order of appearance
        index = np.asarray([order[g] for g in labels])
        sums, sizes = np.bincount(index, weights=v), np.bincount(index)
        picks = rng.integers(0, len(order), size=(n, len(order)))
        means = sums[picks].sum(axis=1) / sizes[picks].sum(axis=1)
    return float(v.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))
