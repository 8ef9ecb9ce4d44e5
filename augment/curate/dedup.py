"""Exact and near-duplicate removal; the first record of a cluster (in generation order) is kept.

Near duplicates: MinHash signatures of word 5-grams and LSH banding (rensa, a Rust library, chosen
over datasketch by measurement: bench/dedup.py), then each candidate pair is confirmed on the
estimated Jaccard similarity, so a band collision alone never drops a record.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from augment.curate.text import normalize
from augment.io import sha256_hex


@dataclass(slots=True)
class Verdict:
    reason: str
    dup_of: str | None = None
    detail: float | str | None = None


class ExactDedup:
    name = "exact_dedup"

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}

    def check(self, rec: dict, chunk: str) -> Verdict | float | None:
        key = sha256_hex(normalize(rec["text"]))
        first = self._seen.setdefault(key, rec["id"])
        return Verdict("exact_duplicate", dup_of=first) if first != rec["id"] else None


# bytes.translate table: ASCII punctuation, symbols and whitespace become a space; "\n" separates records
_SEP = bytes(10 if c == 10 else 32 if (c < 128 and not chr(c).isalnum()) else c for c in range(256))
_WORD_MUL = 0x100000001B3  # FNV prime (odd, so invertible mod 2^64): base of the word hash
_WORD_INV = pow(_WORD_MUL, -1, 1 << 64)
_GRAM_MUL = np.uint64(0x9E3779B97F4A7C15)  # golden-ratio constant: combines word hashes into n-grams
_powers = {"pw": np.ones(1, np.uint64), "inv": np.ones(1, np.uint64)}


def _power_tables(n: int) -> tuple[np.ndarray, np.ndarray]:
    """MUL^i and MUL^-i mod 2^64 for i < n (cached; uint64 products wrap, which is the modulus)."""
    if len(_powers["pw"]) < n:
        size = max(n, 2 * len(_powers["pw"]))
        for name, base in (("pw", _WORD_MUL), ("inv", _WORD_INV)):
            table = np.empty(size, np.uint64)
            table[0] = 1
            table[1:] = np.cumprod(np.full(size - 1, base, dtype=np.uint64))
            _powers[name] = table
    return _powers["pw"][:n], _powers["inv"][:n]


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads similar inputs over all 64 bits (uint64, wrapping)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def shingle_hashes(texts: list[str], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Stable 64-bit hashes of the word n-grams of each text, flat, with row offsets (len(texts) + 1).

    Case-folded, punctuation and whitespace ignored; a text with fewer than n words is one
    shingle (all its words); a text with no word has none. Vectorised with numpy over the whole
    batch — a word's hash is a polynomial in its bytes, read off a prefix sum — so the cost per
    record is a few microseconds rather than one Python string per n-gram.
    """
    joined = "\n".join(t.replace("\n", " ") for t in texts).casefold().encode("utf-8").translate(_SEP)
    a = np.frombuffer(joined, dtype=np.uint8)
    word = ((a != 32) & (a != 10)).view(np.int8)
    edges = np.diff(word, prepend=np.int8(0), append=np.int8(0))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    record_of_word = np.searchsorted(np.flatnonzero(a == 10), starts)
    words_per_record = np.bincount(record_of_word, minlength=len(texts))
    pw, inv = _power_tables(len(a) + 1)
    prefix = np.zeros(len(a) + 1, np.uint64)
    np.cumsum(a * pw[: len(a)], out=prefix[1:])
    wh = _mix((prefix[ends] - prefix[starts]) * inv[starts])  # sum of byte_j * MUL^(j - start)
    counts = np.zeros(len(texts), dtype=np.int64)
    flat = np.zeros(0, np.uint64)
    if len(wh) >= n:
        grams = np.zeros(len(wh) - n + 1, dtype=np.uint64)
        for k in range(n):
            grams = grams * _GRAM_MUL + wh[k : len(wh) - n + 1 + k]
        valid = record_of_word[: len(grams)] == record_of_word[n - 1 :]
        flat = _mix(grams[valid])  # in record order already
        counts += np.bincount(record_of_word[: len(valid)][valid], minlength=len(texts))
    short = np.flatnonzero((words_per_record > 0) & (words_per_record < n))
    if len(short):  # texts with fewer than n words: one shingle of all their words
        word_start = np.concatenate(([0], np.cumsum(words_per_record)))
        h = []
        for r in short:
            acc = 0
            for w in wh[word_start[r] : word_start[r + 1]].tolist():
                acc = (acc * int(_GRAM_MUL) + w) & 0xFFFFFFFFFFFFFFFF
            h.append(acc)
        owners = np.concatenate((np.repeat(np.arange(len(texts)), counts), short))
        flat = np.concatenate((flat, _mix(np.array(h, dtype=np.uint64))))[np.argsort(owners, kind="stable")]
        counts[short] += 1
    return flat, np.concatenate(([0], np.cumsum(counts))).astype(np.uint64)


class MinHashDedup:
    """Near duplicates among a batch of texts, first occurrence kept.

    1. word n-gram hashes for all texts at once (shingle_hashes, numpy);
    2. MinHash signatures and LSH band collisions in rensa (Rust): only texts that share a band
       with another text can be near duplicates, typically a small share of the corpus;
    3. for those, signatures in numpy, banded into buckets, and each text in input order
       compared with the earlier kept texts of its buckets on the estimated Jaccard similarity.
    """

    name = "near_dedup"

    def __init__(
        self, threshold: float = 0.8, ngram: int = 5, num_perm: int = 128, bands: int = 16, seed: int = 0
    ):
        if num_perm % bands:
            raise ValueError(f"near_num_perm ({num_perm}) must be a multiple of near_bands ({bands})")
        self.threshold = threshold
        self.ngram = ngram
        self.num_perm = num_perm
        self.bands = bands
        self.seed = seed

    def find(self, texts: list[str], batch: int = 4096) -> list[tuple[int, float] | None]:
        """For each text, (index of the earlier text it duplicates, estimated Jaccard) or None."""
        from rensa import RMinHash, RMinHashLSH

        n = len(texts)
        result: list[tuple[int, float] | None] = [None] * n
        if n < 2:
            return result
        hashes, offsets, matrices = [], [0], []
        lsh = RMinHashLSH(threshold=self.threshold, num_perm=self.num_perm, num_bands=self.bands)
        for lo in range(0, n, batch):
            h, off = shingle_hashes(texts[lo : lo + batch], self.ngram)
            matrix = RMinHash.digest_matrix_from_flat_token_hashes(h, off, self.num_perm, self.seed)
            lsh.insert_matrix(matrix, lo)
            matrices.append(matrix)
            hashes.append(h)
            offsets.extend((off[1:] + np.uint64(offsets[-1])).tolist())
        # a text is a candidate when it shares a band with any other text, earlier or later
        flags = [np.asarray(lsh.query_duplicate_flags_matrix(m), dtype=bool) for m in matrices]
        flat = np.concatenate(hashes)
        offs = np.asarray(offsets, dtype=np.uint64)
        lengths = np.diff(offs.astype(np.int64))
        cand = np.flatnonzero(np.concatenate(flags) & (lengths > 0))
        if len(cand) < 2:
            return result
        # signatures of the candidates only
        sub = np.concatenate([flat[int(offs[i]) : int(offs[i + 1])] for i in cand])
        sub_off = np.concatenate(([0], np.cumsum(lengths[cand]))).astype(np.uint64)
        sig = np.asarray(
            RMinHash.digest_matrix_from_flat_token_hashes(sub, sub_off, self.num_perm, self.seed).to_rows(),
            dtype=np.uint64,
        )
        rows = self.num_perm // self.bands
        keys = np.zeros((len(cand), self.bands), dtype=np.uint64)
        for k in range(rows):
            keys = keys * _GRAM_MUL + sig[:, k::rows][:, : self.bands]
        keys = (keys + np.arange(self.bands, dtype=np.uint64)).tolist()  # band number in the key
        buckets: dict[int, list[int]] = {}
        for j, row_keys in enumerate(keys):
            seen: set[int] = set()
            best, best_j = -1, 0.0
            for key in row_keys:
                for other in buckets.get(key, ()):
                    if other in seen:
                        continue
                    seen.add(other)
                    sim = float(np.count_nonzero(sig[j] == sig[other])) / self.num_perm
                    # the most similar kept text; of equally similar ones, the earliest
                    if sim >= self.threshold and (sim > best_j or (sim == best_j and other < best)):
                        best, best_j = other, sim
            if best >= 0:
                result[int(cand[j])] = (int(cand[best]), best_j)
            else:
                for key in row_keys:
                    buckets.setdefault(key, []).append(j)
        return result
