from __future__ import annotations

import random

from augment.curate.dedup import MinHashDedup, shingle_hashes


def rows(texts: list[str], n: int = 5) -> list[list[int]]:
    flat, off = shingle_hashes(texts, n)
    return [flat[int(off[i]) : int(off[i + 1])].tolist() for i in range(len(texts))]


def test_shingles_fold_case_and_punctuation_and_ignore_neighbours():
    a = "The Merrow light, built in 1862, flashes twice every fifteen seconds."
    b = "the merrow LIGHT built in 1862 flashes twice   every fifteen seconds"
    ra, rb, rc = rows([a, b, "something else entirely here today"])
    assert ra == rb and len(ra) == 11 - 5 + 1 and len(set(ra)) == len(ra)
    assert rows(["x y", a])[1] == ra  # a text's shingles do not depend on the texts around it
    assert not set(ra) & set(rc)


def test_short_and_empty_texts():
    short, empty, one = rows(["two words", "", "word"])
    assert len(short) == 1 and empty == [] and len(one) == 1 and short != one
    flat, off = shingle_hashes([], 5)
    assert len(flat) == 0 and off.tolist() == [0]
    assert rows(["Café crème brûlée is sweet and very good"]) == rows(
        ["CAFÉ CRÈME BRÛLÉE is sweet and very good"]
    )


def test_find_keeps_the_first_and_flags_edited_copies_across_batches():
    rng = random.Random(1)
    vocab = [f"w{i}" for i in range(3000)]
    base = [" ".join(rng.choice(vocab) for _ in range(120)) for _ in range(40)]
    texts = list(base)
    # an edited copy of text 3 (one word changed: 5-gram Jaccard ~0.92), far from it in the order
    words = base[3].split()
    words[60] = "changed"
    texts.append(" ".join(words))
    # a heavily edited copy of text 7 (every 10th word changed: Jaccard well below 0.8)
    words = base[7].split()
    for i in range(0, 120, 10):
        words[i] = f"edit{i}"
    texts.append(" ".join(words))
    texts.append(base[5])  # an exact copy
    result = MinHashDedup(threshold=0.8).find(texts, batch=8)
    flagged = {i: r for i, r in enumerate(result) if r is not None}
    assert set(flagged) == {40, 42}
    assert flagged[40][0] == 3 and 0.8 <= flagged[40][1] < 1.0
    assert flagged[42] == (5, 1.0)
    assert MinHashDedup(threshold=0.8).find(texts, batch=1000) == result  # batching changes nothing


def test_find_is_deterministic():
    texts = [f"record number {i} about lighthouse keeping and its many storms" for i in range(50)]
    assert MinHashDedup().find(texts) == MinHashDedup().find(texts)
    # these share 3 of their 6 five-grams with each other: Jaccard 3/9
    assert all(r is None for r in MinHashDedup(threshold=0.5).find(texts))
    # with narrow bands (4 rows each) and a low threshold, most of them collide and match
    loose = MinHashDedup(threshold=0.25, num_perm=128, bands=32).find(texts)
    assert loose[0] is None and sum(r is not None for r in loose) > 25
