"""Near-duplicate detection: augment's MinHash stage against datasketch, same parameters, same run.

    python bench/dedup.py [--records 100000] [--words 150]

A synthetic corpus of random ~150-word records with planted near-duplicate pairs: copies of an
earlier record with k words replaced, for k in 0..30, so their true word-5-gram Jaccard
similarity spans ~0.3 to 1.0 (computed exactly). A pair is a true duplicate when that similarity
is >= the threshold (0.8). Both methods use 128 permutations, 16 bands of 8 rows, word 5-grams,
keep the first of each cluster and confirm candidates on the estimated Jaccard similarity; both
start from the raw texts (datasketch with the usual normalise-and-join shingling). The table gives
records/s, precision and recall over pairs, and the throughput ratio to datasketch.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

from rich.console import Console
from rich.table import Table

from augment.curate.dedup import MinHashDedup
from augment.curate.text import ngrams, words

THRESHOLD, NGRAM, PERM, BANDS = 0.8, 5, 128, 16


def corpus(n: int, n_words: int, seed: int = 0) -> tuple[list[str], dict[tuple[int, int], float]]:
    rng = random.Random(seed)
    vocab = [f"{rng.choice('bcdfghklmnprstvz')}{rng.choice('aeiou')}{i:x}" for i in range(30_000)]
    n_copies = n // 10
    texts = [" ".join(rng.choices(vocab, k=n_words)) for _ in range(n - n_copies)]
    planted: dict[tuple[int, int], float] = {}
    for _ in range(n_copies):
        src = rng.randrange(len(texts))
        toks = texts[src].split()
        for pos in rng.sample(range(len(toks)), rng.randint(0, 30)):
            toks[pos] = rng.choice(vocab)
        a, b = set(ngrams(texts[src].split(), NGRAM)), set(ngrams(toks, NGRAM))
        planted[(src, len(texts))] = len(a & b) / len(a | b)
        texts.append(" ".join(toks))
    return texts, planted


def score(pairs: set[tuple[int, int]], planted: dict[tuple[int, int], float]) -> tuple[float, float]:
    truth = {p for p, j in planted.items() if j >= THRESHOLD}
    tp = len(pairs & truth)
    return tp / max(len(pairs), 1), tp / max(len(truth), 1)


def run_augment(texts: list[str]) -> set[tuple[int, int]]:
    found = MinHashDedup(THRESHOLD, NGRAM, PERM, BANDS).find(texts)
    return {(r[0], i) for i, r in enumerate(found) if r is not None}


def run_datasketch(texts: list[str]) -> set[tuple[int, int]]:
    from datasketch import MinHash, MinHashLSH

    sets = [[g.encode() for g in ngrams(words(t), NGRAM)] for t in texts]
    sigs = MinHash.bulk(sets, num_perm=PERM, seed=1)
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=PERM, params=(BANDS, PERM // BANDS))
    pairs = set()
    for i, m in enumerate(sigs):
        best, best_j = None, 0.0
        for key in lsh.query(m):
            j = m.jaccard(sigs[key])
            if j >= THRESHOLD and j > best_j:
                best, best_j = key, j
        if best is None:
            lsh.insert(i, m)
        else:
            pairs.add((best, i))
    return pairs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--words", type=int, default=150)
    args = ap.parse_args()
    texts, planted = corpus(args.records, args.words)
    rows = []
    for name, fn in (("augment (rensa + numpy)", run_augment), ("datasketch MinHashLSH", run_datasketch)):
        t = time.perf_counter()
        pairs = fn(texts)
        secs = time.perf_counter() - t
        rows.append((name, secs, *score(pairs, planted)))
    ds = rows[1][1]
    n_true = sum(j >= THRESHOLD for j in planted.values())
    table = Table(
        title=f"near-dup, {len(texts):,} records x {args.words} words, {len(planted):,} planted pairs "
        f"({n_true:,} at Jaccard >= {THRESHOLD}), {PERM} perms, {BANDS} bands"
    )
    for col in ("method", "seconds", "records/s", "precision", "recall", "throughput vs datasketch"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for name, secs, p, r in rows:
        table.add_row(
            name, f"{secs:.1f}", f"{len(texts) / secs:,.0f}", f"{p:.3f}", f"{r:.3f}", f"{ds / secs:.1f}x"
        )
    Console(file=sys.stdout, width=160).print(table)


if __name__ == "__main__":
    main()
