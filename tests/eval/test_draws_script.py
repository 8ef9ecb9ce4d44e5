"""bench/draws.sh: a registered recipe's draws, pooled from the results kept in bench/results."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEPT = ROOT / "bench" / "results" / "uptake-squad10-gemma270m-answersonly-steps72-lr1e-4-seed9"


def _draws(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # the script calls `python`: the interpreter running the tests, first on PATH
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    env = {**os.environ, "PATH": path, **(env or {})}
    return subprocess.run(
        ["bash", "bench/draws.sh", *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300
    )


def test_an_unknown_recipe_or_command_is_a_usage_error():
    for args in (["nope", "run"], ["answers-only", "bogus"]):
        res = _draws(*args)
        assert res.returncode == 2 and "usage: bash bench/draws.sh" in res.stderr
    assert "|film-default " in _draws("nope", "run").stderr  # an unknown recipe: every recipe named


@pytest.mark.skipif(not (KEPT.parent / f"{KEPT.name}-t10.json").is_file(), reason="draw 5's kept runs")
def test_table_pools_a_kept_draws_two_training_runs():
    res = _draws("answers-only", "table", "9")
    assert res.returncode == 0, res.stderr
    assert "== best step per arm ==" in res.stdout
    seventy_two = res.stdout.split("== 72 steps ==")[1].split("== best step")[0]
    # each training run's (c) - (d) F1, as its own JSON has it
    for suffix, train_seed in (("", 9), ("-t10", 10)):
        f1 = json.loads((KEPT.parent / f"{KEPT.name}{suffix}.json").read_text())["differences"][
            "c-d (knowledge)"
        ]["f1"][0]
        assert f"| 9 | {train_seed} | {f1:+.3f} [" in seventy_two


# every run of the five draws kept, so `run` below finds them done and trains nothing
ALL_KEPT = all(
    (KEPT.parent / f"{KEPT.name.replace('seed9', f'seed{s}')}{t}.json").is_file()
    for s in range(5, 10)
    for t in ("", f"-t{s + 1}")
)


@pytest.mark.skipif(not ALL_KEPT, reason="the five draws' kept runs")
def test_without_seeds_a_command_takes_the_recipes_five_draws():
    res = _draws("answers-only", "table")
    assert res.returncode == 0, res.stderr
    assert "from 10 runs (2 of seed 5, 2 of seed 6, 2 of seed 7, 2 of seed 8, 2 of seed 9)" in res.stdout
    # no command: run, which finds every run of the five draws kept and trains nothing
    res = _draws("answers-only")
    assert res.returncode == 0, res.stderr
    done = [f"seed {s} train-seed {t}: done" for s in range(5, 10) for t in ("default", s + 1)]
    assert res.stdout.split("\n")[:-1] == done


def _kept_answers_only(dst: Path, seed: int) -> None:
    """Copy one answers-only draw's kept runs and data into `dst`, as `keep` left them."""
    stem = KEPT.name.replace("seed9", f"seed{seed}")
    for path in KEPT.parent.glob(f"{stem}*"):
        if path.is_dir():
            shutil.copytree(path, dst / path.name)
        else:
            shutil.copy(path, dst / path.name)


@pytest.mark.skipif(not ALL_KEPT, reason="the five draws' kept runs")
def test_pool_names_a_draw_set_apart_unless_it_opens_the_recipes_own(tmp_path):
    for seed in (5, 6, 7):
        _kept_answers_only(tmp_path, seed)
    before = {p.name for p in tmp_path.iterdir()}
    env = {"AUGMENT_DRAWS_RESULTS": str(tmp_path)}
    stem = "uptake-squad10-gemma270m-answersonly"
    pooled = {
        # the recipe's first draws, as the incremental pools in bench/results were named
        ("5", "6"): "pooled-draws2",
        # any other set carries its seeds, so it never overwrites those
        ("6", "7"): "pooled-draws2-seeds6-7",
        ("5", "7"): "pooled-draws2-seeds5,7",
    }
    for seeds, suffix in pooled.items():
        res = _draws("answers-only", "pool", *seeds, env=env)
        assert res.returncode == 0, res.stderr
        wrote = {p.name for p in tmp_path.iterdir()} - before
        assert wrote == {
            f"{stem}-steps72-lr1e-4-{suffix}{step}.json" for step in ("-step24", "-step48", "")
        } | {f"{stem}-select-steps72-snapshots-{suffix}.json"}
        # the pool is of those seeds' runs: two training runs a draw
        runs = json.loads((tmp_path / f"{stem}-steps72-lr1e-4-{suffix}.json").read_text())
        assert runs["replicates"] == {seeds[0]: 2, seeds[1]: 2}
        before |= wrote
