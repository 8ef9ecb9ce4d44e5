"""Sharded runs: N independent processes, then a merge that equals one unsharded run."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from augment.config import load_config
from augment.curate import curate
from augment.errors import AugmentError, ConfigError
from augment.io import read_jsonl
from augment.pipeline import generate
from augment.pipeline.parts import Shard, merge

STRATEGIES = "qa,paraphrase,entigraph"


def data_files(run_dir: Path) -> dict[str, bytes]:
    names = ["documents.jsonl", "failures.jsonl"]
    names += [
        f"{sub}/{p.name}" for sub in ("generated", "steps") for p in sorted((run_dir / sub).glob("*.jsonl"))
    ]
    return {name: (run_dir / name).read_bytes() for name in names}


def augment_cli(*args: object) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "augment", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_shard_spec_parsing_and_split():
    assert Shard.parse("2/5") == Shard(2, 5) and Shard.parse(" 0 / 1 ").name == "00000-of-00001"
    for bad, msg in (
        ("5/5", "K counts from 0"),
        ("1-3", "expected K/N"),
        ("0/0", "N is the number of parts, at least 1"),
    ):
        with pytest.raises(ConfigError, match=msg):
            Shard.parse(bad)
    ids = [f"{i:016x}" for i in range(3000)]
    owners = [[s.index for s in (Shard(k, 3) for k in range(3)) if s.owns(d)] for d in ids]
    assert all(len(o) == 1 for o in owners)  # every document in exactly one part
    shares = Counter(o[0] for o in owners)
    assert all(900 < shares[k] < 1100 for k in range(3))


def test_three_processes_then_merge_equal_one_run(examples: Path, tmp_path: Path):
    docs, conf = examples / "docs", examples / "augment.toml"
    flags = ["-c", conf, "-s", STRATEGIES, "--budget-tokens", "3000", "--mock-malformed-rate", "0.1"]
    flags += ["--max-parse-retries", "0"]
    single = tmp_path / "single"
    r = augment_cli("generate", docs, "-o", single, *flags)
    out, err = r.communicate(timeout=300)
    assert r.returncode == 0, err

    sharded = tmp_path / "sharded"
    procs = [
        augment_cli("generate", docs, "-o", sharded, "--shard", f"{k}/3", "--json", *flags) for k in range(3)
    ]
    summaries = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        summaries.append(json.loads(out))
    assert [s["shard"] for s in summaries] == ["0/3", "1/3", "2/3"]
    assert all(
        s["curate"] is None and s["export"] is None for s in summaries
    )  # parts are curated after merge
    assert sum(s["documents"] for s in summaries) == 7 and all(s["documents"] for s in summaries)
    assert not (sharded / "curated").exists()

    r = augment_cli("merge", sharded, "--json")
    out, err = r.communicate(timeout=300)
    assert r.returncode == 0, err
    merged = json.loads(out)
    assert merged["parts"] == 3 and merged["documents"] == 7
    # record for record, byte for byte: documents, records, first steps, failures
    assert data_files(sharded) == data_files(single)
    assert (
        b'"wave":3' in (single / "generated" / "entigraph.jsonl").read_bytes()
    )  # multi-step waves interleaved
    assert (single / "failures.jsonl").stat().st_size > 0
    for name in ("kept.jsonl", "rejected.jsonl"):  # dedup ran over all parts, as in the single run
        assert (sharded / "curated" / name).read_bytes() == (single / "curated" / name).read_bytes()
    a, b = (json.loads((d / "stats.json").read_text()) for d in (single, sharded))
    for key in ("documents", "chunks", "requests", "records", "failures", "prompt_tokens", "multi_step"):
        assert a[key] == b[key], key
    assert merged["shards"] and Path(merged["shards"]).is_file()


def test_missing_or_incomplete_shard_refuses_merge(cli, examples: Path, tmp_path: Path):
    run = tmp_path / "run"
    base = [examples / "docs", "-o", run, "-c", examples / "augment.toml", "-s", "qa"]
    for k in (0, 2):
        assert cli("generate", *base, "--shard", f"{k}/4").code == 0
    r = cli("merge", run)
    assert r.code == 1 and r.out == ""
    assert r.err.strip() == (
        f"error: {run}: cannot merge, 2 of 4 shards missing (1/4, 3/4); "
        f"run 'augment generate DOCS -o {run} --shard K/4' for each"
    )
    assert cli("generate", *base, "--shard", "1/4").code == 0
    r = cli("generate", *base, "--shard", "3/4", "--max-requests", "1", "--json")
    assert r.code == 1  # stopped at the budget: not complete
    assert json.loads(r.out)["complete"] is False
    r = cli("merge", run)
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1
    assert "1 of 4 shards not complete: 3/4 (stopped at the budget --max-requests 1)" in r.err
    # curate merges first, and refuses the same way
    assert cli("curate", run).code == 1 and not (run / "curated").exists()

    # a re-run completes the part; curate then merges by itself
    assert cli("generate", *base, "--shard", "3/4").code == 0
    r = cli("curate", run)
    assert r.code == 0, r.err
    assert json.loads((run / "run.json").read_text())["merged_from"]["parts"] == 4
    # a part edited after it finished is noticed
    part = run / "parts" / "00002-of-00004" / "generated" / "qa.jsonl"
    part.write_text(part.read_text() + "\n")
    r = cli("merge", run)
    assert r.code == 1 and f"error: {part}: changed since shard 2/4 finished; re-run that shard" in r.err


def test_parts_refuse_to_mix(cli, examples: Path, tmp_path: Path):
    run = tmp_path / "run"
    base = [examples / "docs", "-o", run, "-c", examples / "augment.toml", "-s", "qa"]
    assert cli("generate", *base, "--shard", "0/2").code == 0
    r = cli("generate", *base, "--shard", "0/3")
    assert r.code == 1 and "holds parts of a 2-way split, not 3" in r.err
    r = cli("generate", *base)
    assert r.code == 1 and "holds sharded parts" in r.err
    r = cli("generate", *base, "--shard", "0/2", "--engine", "ray")
    assert r.code == 2 and "--engine ray does that itself" in r.err
    assert cli("generate", *base[:3], "-c", examples / "augment.toml", "--shard", "2/2").code == 2


def test_corpus_budget_and_planted_duplicate_across_parts(examples: Path, tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    text = (
        "The Penhallow light stands on Gull Rock. Ada Penhallow built it in 1862 with granite from "
        "Lamorna. Its lens came from Paris in 1863 and was lit by paraffin until 1921."
    )
    # the same page twice, one word apart: different documents, records that are near duplicates
    names = []
    for i in range(40):
        name = f"page{i:02d}.md"
        (docs / name).write_text(f"# Page {i}\n\n{text} Page {i} ends here.\n", encoding="utf-8")
        names.append(name)
    cfg = load_config(
        None,
        dict(
            backend="mock", strategies=["paraphrase", "entigraph"], budget_tokens=20000, budget_scope="corpus"
        ),
    )
    single = generate([str(docs)], tmp_path / "single", cfg)
    parts = [generate([str(docs)], tmp_path / "sharded", cfg, shard=Shard(k, 2)) for k in range(2)]
    assert all(p.complete for p in parts) and sum(p.documents for p in parts) == 40
    merge(tmp_path / "sharded")
    assert data_files(tmp_path / "sharded") == data_files(tmp_path / "single")
    # the corpus budget was shared over both parts, not granted to each
    spent = sum(p.multi_step["entigraph"]["spent_tokens"] for p in parts)
    assert spent == single.multi_step["entigraph"]["spent_tokens"] <= 20000
    assert sum(p.multi_step["entigraph"]["budget_tokens"] for p in parts) <= 20000

    summary = curate(tmp_path / "sharded", cfg)
    assert summary.by_reason["near_duplicate"] + summary.by_reason["exact_duplicate"] > 0
    owner = {
        d["doc_id"]: k
        for k in range(2)
        for d in read_jsonl(tmp_path / "sharded" / "parts" / Shard(k, 2).name / "documents.jsonl")
    }
    ids = {r["id"]: r["doc_id"] for r in read_jsonl(tmp_path / "sharded" / "generated" / "paraphrase.jsonl")}
    dups = [
        r for r in read_jsonl(tmp_path / "sharded" / "curated" / "rejected.jsonl") if r.get("dup_of") in ids
    ]
    assert any(owner[r["doc_id"]] != owner[ids[r["dup_of"]]] for r in dups)  # found across parts


def test_stats_and_show_of_a_sharded_run_not_merged_yet_say_where_it_stands(
    cli, examples: Path, tmp_path: Path
):
    run = tmp_path / "run"
    r = cli("generate", examples / "docs", "-o", run, "--backend", "mock", "--shard", "1/3", "-q")
    assert r.code == 0, r.err
    part = run / "parts" / Shard(1, 3).name
    for command in ("stats", "show"):
        r = cli(command, run)
        assert r.code == 1 and r.err.strip() == (
            f"error: {run}: a sharded run, not merged yet (1 of 3 parts done); each part is a run of its own "
            f"(augment stats {part}), and 'augment merge {run}' joins them when all are done"
        )
    assert cli("stats", part).code == 0


def test_merge_without_parts_is_one_line(cli, tmp_path: Path):
    r = cli("merge", tmp_path)
    assert r.code == 1 and "no parts to merge" in r.err
    with pytest.raises(AugmentError, match="no parts to merge"):
        merge(tmp_path)


def test_batch_job_json_and_exit_codes(cli, examples: Path, tmp_path: Path):
    run = tmp_path / "run"
    base = [examples / "docs", "-o", run, "-c", examples / "augment.toml", "-s", "qa", "--json"]
    # requests that fail in the backend leave the run incomplete: exit 1, and stats says why
    r = cli("generate", *base, "--mock-fail-rate", "0.5", "--max-retries", "0")
    s = json.loads(r.out)
    assert r.code == 1 and s["complete"] is False and s["unanswered"] > 0
    assert "requests failed in the backend" in r.err
    assert f"no ({s['unanswered']} requests unanswered)" in cli("stats", run).out
    # the re-run sends only those again and completes: exit 0, one JSON object on stdout
    r = cli("generate", *base)
    s = json.loads(r.out)
    assert r.code == 0 and s["complete"] is True and 0 < s["this_run"]["model_calls"] < s["requests"]
    assert s["this_run"]["from_cache"] > 0 and s["unanswered"] == 0
    assert s["paths"]["generated"] == [str(run / "generated" / "qa.jsonl")]
    assert (
        Path(s["paths"]["shards"]).is_file()
        and s["curate"]["kept"] == s["export"]["counts"]["train"] + s["export"]["counts"]["val"]
    )


def test_jobs_may_differ_in_where_they_run_but_not_in_what_they_generate(cli, examples: Path, tmp_path: Path):
    run = tmp_path / "run"
    base = [examples / "docs", "-o", run, "-c", examples / "augment.toml", "-s", "qa"]
    # each job its own concurrency, retries and reading processes (its own machine): the merge takes them
    assert cli("generate", *base, "--shard", "0/2", "--concurrency", "2", "--read-workers", "1").code == 0
    second = ["--concurrency", "32", "--max-retries", "1", "--read-workers", "16"]
    assert cli("generate", *base, "--shard", "1/2", *second).code == 0
    assert cli("merge", run).code == 0
    # a setting that shapes the records must be the same: the merge names it
    assert cli("generate", *base, "--shard", "1/2", "--chunk-tokens", "128").code == 0
    r = cli("merge", run)
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1
    assert "shard 1/2 was generated with chunk_tokens = 128, shard 0/2 with 256" in r.err
