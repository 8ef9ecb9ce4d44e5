"""Near-duplicate search as Ray Data transforms: the same answer as MinHashDedup, on many machines."""

from __future__ import annotations

import numpy as np


def ray_near_duplicates(
    texts: list[str],
    *,
    threshold: float = 0.8,
    ngram: int = 5,
    num_perm: int = 128,
    bands: int = 16,
    seed: int = 0,
    address: str | None = None,
    texts_per_block: int = 2048,
) -> list[tuple[int, float] | None]:
    """Near duplicates as Ray Data transforms, with the same answer as `MinHashDedup.find`.

    1. map_batches: MinHash signatures of word n-grams and one hash per LSH band (per node);
    2. groupby on the band hash (the shuffle; hashes folded into at most 256 groups, each handled
       as one numpy batch): texts sharing a bucket become candidate pairs;
    3. the candidates' full signatures confirm each pair on the estimated Jaccard similarity, and
       each text, in order, is a duplicate of its most similar earlier kept text (ties: the earliest).
    """
    from augment.curate.dedup import _GRAM_MUL, shingle_hashes
    from augment.ray_cluster import init_ray

    if num_perm % bands:
        raise ValueError(f"near_num_perm ({num_perm}) must be a multiple of near_bands ({bands})")
    result: list[tuple[int, float] | None] = [None] * len(texts)
    if len(texts) < 2:
        return result
    ray = init_ray(address)
    rows = num_perm // bands

    def signatures(texts_: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """MinHash signatures (one row per text) and whether each text has any n-gram."""
        from rensa import RMinHash

        h, off = shingle_hashes(texts_, ngram)
        sig = RMinHash.digest_matrix_from_flat_token_hashes(h, off, num_perm, seed).to_rows()
        return np.asarray(sig, dtype=np.uint64), np.diff(off.astype(np.int64)) > 0

    def band_keys(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        sig, has_words = signatures([str(t) for t in batch["text"]])
        keys = np.zeros((len(sig), bands), dtype=np.uint64)
        for k in range(rows):
            keys = keys * _GRAM_MUL + sig[:, k::rows][:, :bands]
        keys = keys + np.arange(bands, dtype=np.uint64)
        band = keys[has_words].reshape(-1)
        return {
            # the shuffle key: the band hash, folded to `partitions` groups so that each group is one
            # numpy batch rather than one Python call per bucket (most buckets hold a single text)
            "part": (band % np.uint64(partitions)).astype(np.int64),
            "band": band.view(np.int64),
            "idx": np.repeat(batch["idx"][has_words], bands),
        }

    def pairs(group: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every pair of texts that share a bucket (band hash), earlier text first."""
        order = np.lexsort((group["idx"], group["band"]))
        band, idx = group["band"][order], group["idx"][order]
        starts = np.flatnonzero(np.diff(band, prepend=band[:1] - 1) != 0) if len(band) else band
        ends = np.append(starts[1:], len(band))
        a_out, b_out = [], []
        for s, e in zip(starts[ends - starts > 1].tolist(), ends[ends - starts > 1].tolist(), strict=True):
            members = np.unique(idx[s:e])
            a, b = np.triu_indices(len(members), k=1)
            a_out.append(members[a])
            b_out.append(members[b])
        if not a_out:
            return {"a": np.zeros(0, np.int64), "b": np.zeros(0, np.int64)}
        return {"a": np.concatenate(a_out), "b": np.concatenate(b_out)}

    ds = ray.data.from_items(
        [{"idx": i, "text": t} for i, t in enumerate(texts)],
        override_num_blocks=max(1, len(texts) // texts_per_block),
    )
    partitions = max(1, min(256, len(texts) * bands // 8192))
    cand = (
        ds.map_batches(band_keys, batch_format="numpy")
        .groupby("part")
        .map_groups(pairs, batch_format="numpy")
        .take_all()
    )
    if not cand:
        return result
    pairs_ = np.unique(np.array([(r["a"], r["b"]) for r in cand], dtype=np.int64), axis=0)
    members = np.unique(pairs_)
    sig, _ = signatures([texts[i] for i in members])
    where = {int(m): i for i, m in enumerate(members)}
    sims = np.array([np.count_nonzero(sig[where[a]] == sig[where[b]]) / num_perm for a, b in pairs_.tolist()])
    earlier: dict[int, list[tuple[int, float]]] = {}
    for (a, b), s in zip(pairs_.tolist(), sims.tolist(), strict=True):
        if s >= threshold:
            earlier.setdefault(b, []).append((a, s))
    for j in sorted(earlier):
        kept = [(a, s) for a, s in earlier[j] if result[a] is None]
        if kept:
            a, s = max(kept, key=lambda x: (x[1], -x[0]))
            result[j] = (a, s)
    return result
