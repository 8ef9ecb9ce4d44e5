"""--engine ray on a local Ray cluster (2 CPUs) with the mock backend: the local engine's records."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from augment.config import load_config
from augment.curate import curate
from augment.curate.dedup import MinHashDedup
from augment.errors import ConfigError, FatalBackendError
from augment.io import read_jsonl
from augment.pipeline import Hooks, generate

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from augment.curate.ray_dedup import ray_near_duplicates  # noqa: E402
from augment.pipeline.ray_engine import generate_ray  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def data_files(run_dir: Path) -> dict[str, bytes]:
    names = ["documents.jsonl", "failures.jsonl", "curated/kept.jsonl", "curated/rejected.jsonl"]
    names += [
        f"{sub}/{p.name}" for sub in ("generated", "steps") for p in sorted((run_dir / sub).glob("*.jsonl"))
    ]
    return {name: (run_dir / name).read_bytes() for name in names}


def test_ray_engine_writes_the_local_engines_records(examples: Path, tmp_path: Path):
    cfg = load_config(
        examples / "augment.toml",
        dict(
            strategies=["qa", "paraphrase", "entigraph"],
            budget_tokens=3000,
            mock_malformed_rate=0.1,
            max_parse_retries=0,
        ),
    )
    docs = [str(examples / "docs")]
    local = generate(docs, tmp_path / "local", cfg)
    curate(tmp_path / "local", cfg)
    seen = []  # progress: documents done, as the actors report them
    hooks = Hooks(on_start=lambda state: seen.append(state), on_advance=lambda _: seen.append(seen[0].done))
    summary = generate_ray(docs, tmp_path / "ray", cfg, hooks, actors=2, docs_per_batch=2)
    state = seen[0]
    assert state.total == 7 and seen[-1] == state.done == 7 and seen[1:] == sorted(seen[1:])
    assert state.calls == summary.state.calls == local.state.calls and state.completion_tokens > 0
    curate(tmp_path / "ray", cfg, engine="ray")
    assert summary.complete and summary.records == local.records and summary.requests == local.requests
    assert summary.multi_step == local.multi_step and summary.failed_requests == local.failed_requests > 0
    # same ids, same records, same order; near-dedup on Ray dropped the same records
    assert data_files(tmp_path / "ray") == data_files(tmp_path / "local")
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "ray" / "ray" / "generated")
    ids = {r["id"] for p in (tmp_path / "local" / "generated").glob("*.jsonl") for r in read_jsonl(p)}
    assert set(table.column("id").to_pylist()) == ids and table.num_rows == len(ids)

    # a re-run (as after a stopped job) takes every reply from the batches' caches: no model call
    again = generate_ray(docs, tmp_path / "ray", cfg, actors=2, docs_per_batch=2)
    assert again.state.calls == 0 and again.state.cached > 0 and again.records == summary.records
    assert len(list((tmp_path / "ray" / "ray" / "cache").glob("*.sqlite"))) == 4  # 7 documents, 2 a batch
    assert data_files(tmp_path / "ray") == data_files(tmp_path / "local")


def test_ray_engine_against_a_real_openai_compatible_server(examples: Path, tmp_path: Path):
    """Actors are HTTP clients of a server on 127.0.0.1 (several batches each, retried 500s)."""
    from tests.fake_openai import FakeOpenAI, Faults

    # a short context too: what an actor's backend changed is said for the run, as locally
    srv = FakeOpenAI(faults=Faults(rate_500=0.1), context=1200)
    url = srv.start()
    try:
        values = dict(backend="openai", model="fake-model", base_url=url, concurrency=4, max_retries=8)
        cfg = load_config(examples / "augment.toml", {**values, "curate": False})
        local = generate([str(examples / "docs")], tmp_path / "local", cfg)
        calls = srv.requests
        on_ray = generate_ray([str(examples / "docs")], tmp_path / "ray", cfg, actors=2, docs_per_batch=2)
        assert on_ray.complete and on_ray.state.calls == local.state.calls == 77
        assert srv.requests - calls >= 77 and srv.statuses[500] > 0  # the 500s were retried
        for p in sorted((tmp_path / "local" / "generated").glob("*.jsonl")):
            assert (tmp_path / "ray" / "generated" / p.name).read_bytes() == p.read_bytes(), p.name
        assert (
            on_ray.adjusted
            == local.adjusted
            == ["max_tokens lowered where prompt and reply would not fit the server's context of 1200 tokens"]
        )
        run_json = json.loads((tmp_path / "ray" / "run.json").read_text(encoding="utf-8"))
        stats = json.loads((tmp_path / "ray" / "stats.json").read_text(encoding="utf-8"))
        assert run_json["adjusted"] == stats["this_run"]["adjusted"] == local.adjusted
        # a model the server does not list: one line before anything is written or sent
        wrong = cfg.model_copy(update={"model": "nope"})
        calls = srv.requests
        with pytest.raises(ConfigError, match="--model nope: .* serves no model of that name"):
            generate_ray([str(examples / "docs")], tmp_path / "nope", wrong, actors=2)
        assert srv.requests == calls and not (tmp_path / "nope").exists()
    finally:
        srv.stop()


def test_ray_near_dedup_equals_local_and_crosses_blocks():
    rng = random.Random(7)
    words = [f"w{i}" for i in range(400)]
    texts = [" ".join(rng.choices(words, k=60)) for _ in range(300)]
    planted = texts[3].split()
    planted[30] = "changed"  # one word of sixty: a near duplicate of text 3
    texts[250] = " ".join(planted)
    texts[120] = texts[40] + " and one more"  # another pair, far apart
    texts[7] = "!!! ..."  # no words: never a duplicate
    local = MinHashDedup(0.8).find(texts)
    # 25 texts per block: the planted pairs are in different blocks (and so on different workers)
    on_ray = ray_near_duplicates(texts, threshold=0.8, texts_per_block=25)
    assert on_ray == local
    assert on_ray[250] is not None and on_ray[250][0] == 3
    assert on_ray[120] is not None and on_ray[120][0] == 40
    assert sum(m is not None for m in on_ray) == 2


def test_ray_refuses_per_process_budgets(examples: Path, tmp_path: Path):
    cfg = load_config(examples / "augment.toml", dict(max_requests=5))
    with pytest.raises(ConfigError, match="--max-requests counts one process's requests"):
        generate_ray([str(examples / "docs")], tmp_path / "run", cfg)


def test_an_actors_error_reaches_the_user_as_itself(examples: Path, tmp_path: Path):
    # a server that always fails trips the breaker inside an actor; the driver raises that error
    cfg = load_config(examples / "augment.toml", dict(mock_fail_rate=1.0, max_retries=0))
    with pytest.raises(FatalBackendError, match="^20 requests in a row failed, the last with: backend_error"):
        generate_ray([str(examples / "docs")], tmp_path / "run", cfg)
