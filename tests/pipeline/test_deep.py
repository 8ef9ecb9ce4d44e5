"""Multi-step strategies in the pipeline: budgets, waves, provenance, resume, and `augment plan`."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from augment.config import load_config
from augment.io import read_jsonl
from augment.pipeline import generate
from augment.plan import plan

PEOPLE = ["Ada Penhallow", "Tomas Rill", "Mirela Okafor", "Jon Varga", "Lise Brandt", "Oskar Vane"]
PLACES = ["Cape Merrow", "Port Anselm", "Birmingham", "Kestrel Bay", "Dunmore", "Halden"]


def planted_docs(root: Path) -> Path:
    """Three one-chunk documents dense with names and years, and a one-line glossary entry."""
    docs = root / "docs"
    docs.mkdir()
    for d in range(3):
        lines = [f"# The {PLACES[d]} Archive\n"]
        for i in range(12):
            who, where, other = PEOPLE[(d + i) % 6], PLACES[(d + 2 * i) % 6], PEOPLE[(d + i + 3) % 6]
            lines.append(
                f"In {1850 + 7 * i + d}, {who} travelled from {where} to meet {other}, who kept the records "
                f"of the {PLACES[d]} Archive and wrote about the harbour trade."
            )
        (docs / f"archive-{d}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (docs / "glossary.md").write_text("# Ledger\n\nA ledger is a book of accounts.\n", encoding="utf-8")
    return docs


def config(**overrides):
    values = dict(backend="mock", chunk_tokens=512, chunk_overlap=32, export=False, curate=False)
    values.update(overrides)
    return load_config(None, values)


DEEP = ["entigraph", "active-reading"]


def records(run_dir: Path, name: str) -> list[dict]:
    return list(read_jsonl(run_dir / "generated" / f"{name}.jsonl"))


def test_entigraph_spends_each_documents_budget_and_never_more(tmp_path: Path):
    docs = planted_docs(tmp_path)
    budget = 5000
    summary = generate([str(docs)], tmp_path / "run", config(strategies=DEEP, budget_tokens=budget))
    assert summary.complete and not summary.failures
    for name in DEEP:
        spent: dict[str, int] = defaultdict(int)
        worst: dict[str, int] = defaultdict(int)
        steps = {r["chunk_id"]: r for r in read_jsonl(tmp_path / "run" / "steps" / f"{name}.jsonl")}
        for step in steps.values():  # the first step counts against the budget too
            spent[step["chunk_id"].split(":")[0]] += sum(step["usage"].values())
        for rec in records(tmp_path / "run", name):
            if rec["step"] == steps[rec["chunk_id"]]["step"]:
                continue  # the first step's summary record: counted above
            u = rec["usage"]
            spent[rec["doc_id"]] += u["prompt_tokens"] + u["completion_tokens"]
            worst[rec["doc_id"]] = max(worst[rec["doc_id"]], u["prompt_tokens"] + rec["params"]["max_tokens"])
        for doc_id, tokens in spent.items():
            step = steps[f"{doc_id}:0000"]
            assert step["budget_tokens"] == budget
            assert tokens <= budget  # never more than the budget ...
            if name == "entigraph" and step["tasks"] > 40:  # ... and, with tasks to spare, nearly all of it
                assert budget - tokens < worst[doc_id], (doc_id, tokens)
        m = summary.multi_step[name]
        assert m["spent_tokens"] <= m["budget_tokens"] == budget * summary.chunks
        assert m["sent"] == len([r for r in records(tmp_path / "run", name) if r.get("step") != "entities"])
    ms = summary.multi_step["entigraph"]
    assert ms["sent"] < ms["tasks"]  # the budget, not the task list, ended it
    assert summary.state.round > 2  # sent in waves, sized on what replies cost


def test_records_name_their_task_and_the_first_step_they_came_from(tmp_path: Path):
    docs = planted_docs(tmp_path)
    generate([str(docs)], tmp_path / "run", config(strategies=DEEP, budget_tokens=4000))
    steps = {r["chunk_id"]: r for r in read_jsonl(tmp_path / "run" / "steps" / "entigraph.jsonl")}
    texts = {d["doc_id"]: d["text"] for d in read_jsonl(tmp_path / "run" / "documents.jsonl")}
    relations = [r for r in records(tmp_path / "run", "entigraph") if r["step"] == "relate"]
    summaries = [r for r in records(tmp_path / "run", "entigraph") if r["step"] == "entities"]
    assert relations and len(summaries) == len(steps)
    for rec in relations:
        step = steps[rec["chunk_id"]]
        assert rec["parents"] == [{"step": "entities", "request": step["request"]}]
        group = rec["variant"].split(" | ")
        assert len(group) in (2, 3) and all(g in {i["entity"] for i in step["items"]} for g in group)
        assert all(g in texts[rec["doc_id"]] for g in group)  # the mock's entities come from the text
        assert rec["task"]["entities"] in rec["messages"][0]["content"]
    seen = [(r["chunk_id"], frozenset(r["variant"].split(" | "))) for r in relations]
    assert len(seen) == len(set(seen))  # no pair or triple asked twice
    for rec in records(tmp_path / "run", "active-reading"):
        if rec["step"] == "apply":
            assert rec["task"]["study"] and rec["parents"][0]["step"] == "plan"


@pytest.mark.parametrize("stop_after", [3, 17])
def test_a_run_stopped_mid_way_resumes_to_the_same_sample(tmp_path: Path, stop_after: int):
    docs = planted_docs(tmp_path)
    cfg = config(strategies=[*DEEP, "qa"], budget_tokens=4000)
    whole = generate([str(docs)], tmp_path / "whole", cfg)
    cut = generate([str(docs)], tmp_path / "cut", cfg.model_copy(update={"max_requests": stop_after}))
    assert not cut.complete and cut.state.calls == stop_after
    resumed = generate([str(docs)], tmp_path / "cut", cfg)
    # the resumed run asks exactly what the stopped one had not: the same tasks, in the same waves
    assert resumed.complete and resumed.state.calls == whole.state.calls - stop_after
    for sub in ("generated", "steps"):
        for path in sorted((tmp_path / "whole" / sub).glob("*.jsonl")):
            assert (tmp_path / "cut" / sub / path.name).read_bytes() == path.read_bytes(), path.name
    again = generate([str(docs)], tmp_path / "cut", cfg)
    assert again.state.calls == 0  # a finished run makes no model call


def test_corpus_budget_is_shared_by_chunk_size(tmp_path: Path):
    docs = planted_docs(tmp_path)
    summary = generate(
        [str(docs)],
        tmp_path / "run",
        config(strategies=["entigraph"], budget_tokens=9000, budget_scope="corpus"),
    )
    steps = list(read_jsonl(tmp_path / "run" / "steps" / "entigraph.jsonl"))
    budgets = [s["budget_tokens"] for s in steps]
    assert sum(budgets) <= 9000 and sum(budgets) > 9000 - len(budgets)
    assert min(budgets) < 0.2 * max(budgets)  # the glossary line gets a sliver
    assert summary.multi_step["entigraph"]["spent_tokens"] <= 9000


def test_completion_style_runs_both_steps(tmp_path: Path):
    docs = planted_docs(tmp_path)
    summary = generate(
        [str(docs)], tmp_path / "run", config(strategies=DEEP, budget_tokens=3000, prompt_style="completion")
    )
    assert summary.complete and not summary.failures
    assert summary.multi_step["entigraph"]["sent"] > 0 and summary.multi_step["active-reading"]["sent"] > 0


@pytest.mark.parametrize("budget", [3000, 12000])
def test_plan_estimates_the_mock_runs_tokens_within_20_percent(tmp_path: Path, budget: int):
    docs = planted_docs(tmp_path)
    names = ["qa", "paraphrase", *DEEP]
    cfg = config(strategies=names, budget_tokens=budget)
    estimate = plan([str(docs)], cfg)
    summary = generate([str(docs)], tmp_path / "run", cfg)
    rows = {s.strategy: s for s in estimate.strategies}
    for name in names:
        actual = summary.by_strategy[name]
        got = actual["prompt_tokens"] + actual["completion_tokens"]
        if name in DEEP:
            assert abs(rows[name].tokens / got - 1) < 0.2, (name, rows[name].tokens, got)
        else:  # one request per chunk and variant: counts and prompts are exact
            assert rows[name].requests == actual["requests"]
            assert rows[name].prompt_tokens == actual["prompt_tokens"]
    total = summary.prompt_tokens + summary.completion_tokens
    assert abs(estimate.total.tokens / total - 1) < 0.2, (estimate.total.tokens, total)


def test_plan_and_budget_flags_in_the_cli(tmp_path: Path, cli):
    docs = planted_docs(tmp_path)
    common = ["--backend", "mock", "-s", "entigraph,notes", "--budget-tokens", "3000"]
    r = cli("plan", docs, *common, "--price-prompt", "0.5", "--price-completion", "2", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["documents"] == 4 and set(data["strategies"]) == {"entigraph", "notes"}
    assert data["total"]["cost"] == pytest.approx(
        data["total"]["prompt_tokens"] * 0.5e-6 + data["total"]["completion_tokens"] * 2e-6, rel=1e-3
    )
    assert not (tmp_path / "run").exists()
    r = cli("plan", docs, *common)
    assert r.code == 0 and "entigraph" in r.out and "chat prompts (mock backend)" in r.out
    r = cli("generate", docs, "-o", tmp_path / "run", *common, "--quiet", "--no-curate", "--no-export")
    assert r.code == 0, r.err
    assert "entigraph: tasks sent / found" in r.out and "tokens spent / budget" in r.out
    assert "multi-step strategies" in cli("stats", tmp_path / "run").out
    stats = json.loads(cli("stats", tmp_path / "run", "--json").out)
    assert stats["multi_step"]["entigraph"]["budget_tokens"] == 3000 * 4  # documents
    r = cli("plan", docs, "--backend", "mock", "--budget-scope", "galaxy")
    assert (
        r.code == 2
        and "error: --budget-scope: input should be" in r.err
        and len(r.err.strip().splitlines()) == 1
    )
