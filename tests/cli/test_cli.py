from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from augment.cli import main
from tests.conftest import REPO, interruptible


def test_generate_export_stats_on_examples(cli, examples: Path, tmp_path: Path):
    run = tmp_path / "run"
    r = cli("generate", examples / "docs", "-o", run, "-c", examples / "augment.toml")
    assert r.code == 0, r.err
    assert "records: qa" in r.out and "shards:" in r.out
    # plain progress lines when not a TTY
    assert "generating: 77 requests\n" in r.err
    last = r.err.splitlines()[-1]
    assert last.startswith("generating: 77/77 requests, 0 in flight") and "0 failed" in last
    manifest = json.loads((run / "shards" / "manifest.json").read_text())
    assert manifest["format"] == "cpt" and manifest["config"]["val_fraction"] == 0.1

    r = cli("export", run, "--format", "chat", "--val-fraction", "0")
    assert r.code == 0, r.err
    manifest = json.loads((run / "shards" / "manifest.json").read_text())
    assert manifest["format"] == "chat" and manifest["counts"]["val"] == 0

    r = cli("stats", run)
    assert r.code == 0 and "records per strategy" in r.out and "paraphrase" in r.out
    r = cli("stats", run, "--json")
    s = json.loads(r.out)
    assert s["documents"] == 7 and s["requests"] == 77 and s["shards"]["format"] == "chat"
    assert sum(s["records"].values()) == 160  # generated
    assert s["curated"]["kept"] == manifest["counts"]["train"] < 160  # curated, then exported (no val split)
    assert s["curated"]["by_reason"]["near_duplicate"] > 0


def test_progress_lines_in_a_log_are_whole_on_a_narrow_terminal(cli, examples: Path, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")  # the progress line is about 110 characters
    r = cli("generate", examples / "docs", "-o", tmp_path / "run", "--backend", "mock", "-s", "qa")
    assert r.code == 0, r.err
    last = r.err.splitlines()[-1]
    assert last.startswith("generating: 8/8 requests, 0 in flight, ") and last.endswith(", eta 0s")


def test_bad_files_are_reported_one_line_each(cli, tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ok.md").write_text("# Ok\n\nThe light was built in 1862 by Ada Penhallow.", encoding="utf-8")
    (docs / "bad.txt").write_bytes(b"\xff\xfe\x00\x00garbage")
    r = cli("generate", docs, "-o", tmp_path / "run", "-s", "qa", "--no-export", "--backend", "mock")
    assert r.code == 0, r.err
    assert f"skipped {docs / 'bad.txt'}: binary file (contains NUL bytes)" in r.err
    assert "│ skipped             │     1 │" in r.out or "skipped" in r.out
    assert not (tmp_path / "run" / "shards").exists()
    s = json.loads(cli("stats", tmp_path / "run", "--json").out)
    assert s["skipped"] == [{"path": str(docs / "bad.txt"), "reason": "binary file (contains NUL bytes)"}]


def test_bad_config_is_one_line_and_exit_code_2(cli, examples: Path, tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text('chunk_tokens = "many"\n', encoding="utf-8")
    r = cli("generate", examples / "docs", "-o", tmp_path / "run", "-c", bad)
    assert r.code == 2
    assert (
        r.err.strip()
        == f"error: {bad}: 'chunk_tokens' input should be a valid integer, unable to parse string as an integer, got 'many'"
    )
    assert not (tmp_path / "run").exists()

    r = cli("generate", examples / "docs", "-o", tmp_path / "run", "--strategies", "qa,quiz")
    assert r.code == 2 and r.err.count("\n") == 1 and "Unknown strategy 'quiz'" in r.err
    r = cli("generate", examples / "docs", "-o", tmp_path / "run", "--backend", "gpt")
    assert r.code == 2 and "Unknown backend 'gpt'. Available: auto, local, mock" in r.err
    r = cli("generate", examples / "docs", "-o", tmp_path / "run", "--chunk-tokens", "ten")
    assert r.code == 2 and "Invalid value for '--chunk-tokens'" in r.err


def test_missing_inputs_fail_with_exit_code_1(cli, tmp_path: Path):
    r = cli("generate", tmp_path / "nope", "-o", tmp_path / "run")
    assert r.code == 1 and r.err.strip() == f"error: {tmp_path / 'nope'}: no such file or folder"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x.png").write_bytes(b"png")
    r = cli("generate", empty, "-o", tmp_path / "run")
    assert r.code == 1 and "error: no documents in" in r.err and "1 skipped" in r.err
    r = cli("stats", tmp_path)
    assert r.code == 1 and "not a run directory" in r.err
    r = cli("export", tmp_path)
    assert r.code == 1 and "not a run directory" in r.err


def test_a_bad_flag_value_names_the_flag_not_the_config_file(cli, examples: Path, tmp_path: Path):
    good = tmp_path / "good.toml"
    good.write_text('backend = "mock"\n', encoding="utf-8")
    r = cli("generate", examples / "docs", "-o", tmp_path / "run", "-c", good, "--chunk-tokens", "3")
    assert r.code == 2
    assert r.err.strip() == "error: --chunk-tokens: input should be greater than or equal to 16, got 3"
    r = cli("plan", examples / "docs", "--price-prompt", "-1")
    assert r.code == 2 and r.err.strip().startswith("error: --price-prompt: input should be greater")
    run = tmp_path / "run"
    assert cli("generate", examples / "docs", "-o", run, "-c", good, "-s", "qa").code == 0
    r = cli("export", run, "--val-fraction", "2")
    assert r.code == 2 and r.err.strip() == "error: --val-fraction: input should be less than 1, got 2.0"
    r = cli("train", run / "shards", "--model", "m", "-o", tmp_path / "ck", "--method", "dpo")
    assert r.code == 2 and r.err.strip() == "error: --method: input should be 'lora' or 'full', got 'dpo'"


def test_an_output_that_cannot_be_a_folder_is_one_line_before_any_work(cli, examples: Path, tmp_path: Path):
    afile = tmp_path / "notes.txt"
    afile.write_text("mine\n", encoding="utf-8")
    docs = examples / "docs"
    for args in (
        ("generate", docs, "-o", afile, "--backend", "mock"),
        ("train", tmp_path, "--model", "m", "-o", afile),
        ("eval", "-m", "m", "--qa", afile, "-o", afile),
        ("average", tmp_path, tmp_path, "-o", afile),
    ):
        r = cli(*args)
        assert (r.code, r.err.strip()) == (2, f"error: {afile}: is a file; -o names a folder to write"), args
    r = cli("generate", docs, "-o", afile / "run", "--backend", "mock")
    assert (
        r.code == 2 and r.err.strip() == f"error: {afile}: is a file, so -o {afile / 'run'} cannot be written"
    )
    assert afile.read_text(encoding="utf-8") == "mine\n"

    run = tmp_path / "run"
    assert cli("generate", docs, "-o", run, "--backend", "mock", "-s", "qa").code == 0
    r = cli("export", run, "--format", "qa", "-o", tmp_path)
    assert r.code == 2 and r.err.strip() == f"error: {tmp_path}: is a folder; -o names the file to write"


def test_an_os_error_while_writing_is_one_line_naming_the_file(
    cli, examples: Path, tmp_path: Path, monkeypatch
):
    import errno

    import augment.shards.qa as qa

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "qa.jsonl"))

    run = tmp_path / "run"
    assert cli("generate", examples / "docs", "-o", run, "--backend", "mock", "-s", "qa").code == 0
    monkeypatch.setattr(qa, "export_qa", disk_full)
    r = cli("export", run, "--format", "qa", "-o", tmp_path / "qa.jsonl")
    assert r.code == 1 and r.err.strip() == f"error: {tmp_path / 'qa.jsonl'}: No space left on device"
    monkeypatch.setenv("AUGMENT_DEBUG", "1")  # --debug keeps the traceback
    with pytest.raises(OSError):
        main(["export", str(run), "--format", "qa", "-o", str(tmp_path / "qa.jsonl")])


def test_records_an_earlier_generate_left_are_named_and_kept(cli, examples: Path, tmp_path: Path):
    run = tmp_path / "run"
    assert cli("generate", examples / "docs", "-o", run, "--backend", "mock", "-s", "qa").code == 0
    before = (run / "generated" / "qa.jsonl").read_bytes()
    r = cli("generate", examples / "docs", "-o", run, "--backend", "mock", "-s", "notes")
    assert r.code == 0, r.err
    assert r.err.strip().splitlines()[-1] == (
        f"not used: {run / 'generated' / 'qa.jsonl'}, left by an earlier generate with other strategies; "
        "to use them, run again with -s notes,qa (replies received are cached)"
    )
    assert (run / "generated" / "qa.jsonl").read_bytes() == before  # left as it was
    manifest = json.loads((run / "shards" / "manifest.json").read_text())
    assert set(manifest["counts"]["by_strategy"]) == {"notes"}
    r = cli("generate", examples / "docs", "-o", run, "--backend", "mock", "-s", "notes,qa", "--json")
    assert r.code == 0 and json.loads(r.out)["paths"]["left_aside"] == []
    assert "not used" not in r.err


def test_a_run_another_process_is_writing_is_left_alone(cli, examples: Path, tmp_path: Path):
    run = tmp_path / "run"
    assert cli("generate", examples / "docs", "-o", run, "--backend", "mock", "-s", "qa").code == 0
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".augment.lock"}
    holder = subprocess.Popen(  # another augment process, mid-write: it holds the run's lock
        [
            sys.executable,
            "-c",
            "import sys; from augment.io import run_lock; from pathlib import Path\n"
            "with run_lock(Path(sys.argv[1])):\n print('held', flush=True); sys.stdin.read()",
            str(run),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        for args in (
            ("generate", examples / "docs", "-o", run, "--backend", "mock", "-s", "notes"),
            ("curate", run),
            ("export", run, "--format", "chat"),
        ):
            r = cli(*args)
            assert (r.code, r.err.strip()) == (
                1,
                f"error: {run}: another augment command is writing this run (.augment.lock is held); "
                "wait for it to end, or write to another folder",
            ), args
        assert cli("stats", run).code == 0  # reading is fine
    finally:
        holder.communicate("")  # it ends; the OS lets go of its lock
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".augment.lock"}
    assert after == before
    assert cli("generate", examples / "docs", "-o", run, "--backend", "mock", "-s", "notes").code == 0


def test_ctrl_c_says_what_was_kept_and_the_same_command_resumes(cli, examples: Path, tmp_path: Path):
    import signal
    import time

    from tests.fake_openai import FakeOpenAI

    fake = FakeOpenAI(latency=0.2)  # a real server, slow enough to be stopped mid-run
    url = fake.start()
    run = tmp_path / "run"
    args = ["generate", str(examples / "docs"), "-o", str(run), "--backend", "openai", "--base-url", url]
    args += ["--model", "fake-model", "--concurrency", "1", "-s", "qa,notes"]
    try:
        proc = interruptible(
            [Path(sys.executable).parent / "augment", *args, "-q"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=REPO,
        )
        deadline = time.monotonic() + 60
        while fake.requests < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert err.strip().splitlines()[-1] == (
            f"interrupted: the replies received are cached in {run}; the same command resumes from them"
        )
        sent = fake.requests
        assert 4 <= sent < 16  # stopped mid-run: qa and notes are 16 requests
        r = cli(*args)
        assert r.code == 0, r.err
        # what came back before Ctrl-C is not asked again (the one in flight may be)
        cached = int(r.err.strip().splitlines()[-1].split(" cached")[0].rsplit(" ", 1)[-1])
        assert cached >= sent - 1 and fake.requests - sent == 16 - cached
    finally:
        fake.stop()
    s = json.loads(cli("stats", run, "--json").out)
    assert s["requests"] == 16 and s["failed_requests"] == 0


def test_a_cache_that_is_not_a_database_is_one_line(cli, examples: Path, tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "cache.sqlite").write_text("my notes, saved under the wrong name\n" * 100)
    r = cli("generate", examples / "docs", "-o", run, "--backend", "mock", "-s", "qa")
    assert r.code == 1 and r.err.strip().splitlines()[-1] == (
        f"error: {run / 'cache.sqlite'}: not a database augment can read (file is not a database); "
        "move it away to start afresh"
    )
    assert (run / "cache.sqlite").read_text().startswith("my notes")  # left as it was


def test_strategies_lists_builtin_and_user_prompts(cli, tmp_path: Path):
    (tmp_path / "facts.md").write_text(
        "---\nname: facts\nversion: 1\nparser: numbered_list\nfields: [fact]\n"
        "record: {text: '{{ fact }}', user: 'Fact?', assistant: '{{ fact }}'}\n---\nList facts.\n",
        encoding="utf-8",
    )
    r = cli("strategies", "--prompts-dir", tmp_path)
    assert r.code == 0
    for name in ("qa", "paraphrase", "inferences", "notes", "facts"):
        assert name in r.out
    assert f"prompts-dir: {tmp_path} (its files add" in r.out
    facts_row = next(line for line in r.out.splitlines() if "facts" in line)
    assert "numbered_list" in facts_row and "prompts-dir" in facts_row


def test_strategies_on_a_narrow_terminal_are_a_list(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")  # seven columns would wrap descriptions a word a line
    lines = cli("strategies").out.splitlines()
    assert all(len(line) <= 80 and line == line.rstrip() for line in lines)
    i = lines.index("qa-spans  version 2, kind spans, parser text, built-in")
    assert lines[i + 1].startswith("    Answer-first QA, one request per answer span")
    assert (
        "paraphrase version 1, kind single, parser text, built-in; variants: encyclopedic, simple, "
        "academic, qa_dialogue The chunk rewritten in several styles"
    ) in " ".join(cli("strategies").out.split())


def test_each_commands_summary_is_one_sentence_without_a_line_break(cli):
    from augment.cli import app

    for command in app.registered_commands:
        summary = command.callback.__doc__.strip().split("\n\n")[0]
        assert "\n" not in summary, f"{command.name}: the --help list would break it mid-sentence"
    listing = cli("--help").out
    assert "export " in listing and "--format qa" in listing


def test_help_does_not_import_heavy_backends():
    code = (
        "import sys\n"
        "from augment.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'vllm', 'llama_cpp', 'openai', 'datasets') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout
    assert "HEAVY []" in out


def test_console_script_runs_the_examples_like_the_readme(tmp_path: Path):
    exe = Path(sys.executable).parent / "augment"
    r = subprocess.run(
        [
            str(exe),
            "generate",
            "examples/docs",
            "-o",
            str(tmp_path / "demo"),
            "-c",
            "examples/augment.toml",
            "-q",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # --quiet: only the summary, on stdout
    assert (tmp_path / "demo" / "shards" / "manifest.json").is_file()


def test_show_samples_records_and_drop_reasons(cli, examples: Path, tmp_path: Path):
    run = tmp_path / "run"
    assert cli("generate", examples / "docs", "-o", run, "-c", examples / "augment.toml", "-q").code == 0
    r = cli("show", run, "-s", "qa", "-n", "2")
    assert r.code == 0 and r.out.count("qa | ") == 2 and "Question:" in r.out
    r = cli("show", run, "--reason", "near_duplicate", "-n", "1")
    assert r.code == 0 and "dropped: near_duplicate (duplicate of " in r.out
    r = cli("show", run, "--reason", "no_such_reason")  # says which reasons the run has
    assert r.code == 0 and r.out.startswith(
        f"no matching records ({run}/curated/rejected.jsonl holds strategies: "
    )
    assert "; reasons: " in r.out and "near_duplicate " in r.out
    r = cli("show", run, "-s", "qa-typo")  # and which strategies
    assert r.code == 0 and f"({run}/curated/kept.jsonl holds strategies: " in r.out and "qa " in r.out
    r = cli("show", tmp_path)
    assert r.code == 1 and "not a run directory" in r.err
    r = cli("show", run, "-n", "0")  # showed one record
    assert r.code == 2 and r.err == "error: -n must be at least 1, got 0\n" and r.out == ""


def test_curate_table_turns_reasons_into_rows_on_a_narrow_terminal(
    cli, examples: Path, tmp_path, monkeypatch
):
    run = tmp_path / "run"
    assert cli("generate", examples / "docs", "-o", run, "-c", examples / "augment.toml", "-q").code == 0
    wide = cli("curate", run).out  # 200 columns: a reason a column, a strategy a row
    assert "┃ strategy   ┃ kept ┃ near_duplicate ┃" in wide and "│ paraphrase │" in wide
    monkeypatch.setenv("COLUMNS", "66")  # too narrow for that: rich would cut the names to "near…"
    narrow = cli("curate", run).out
    assert "…" not in narrow and all(len(line) <= 66 for line in narrow.splitlines())
    assert "┃                ┃ inferences ┃ notes ┃ paraphrase ┃ qa ┃ all ┃" in narrow
    assert "│ near_duplicate │" in narrow and "│ kept           │" in narrow


def test_a_run_whose_curation_keeps_nothing_says_why_and_fails(cli, examples: Path, tmp_path: Path):
    """It used to stop at export with "curated/kept.jsonl holds no records to export" and nothing
    else: not the table that says why every record was dropped."""
    (tmp_path / "strict.toml").write_text("min_record_tokens = 100000\n", encoding="utf-8")
    args = ("generate", examples / "docs", "-o", tmp_path / "run", "--backend", "mock", "-s", "notes")
    r = cli(*args, "-c", tmp_path / "strict.toml")
    assert r.code == 1
    assert "curate: kept 0 of 8 records" in r.out and "too_short" in r.out  # the table, with the reason
    said = " ".join(r.err.split())
    assert "curation kept none of the" in said and "nothing was exported" in said
    assert "holds no records to export" not in said and not (tmp_path / "run" / "shards").exists()


def test_reading_a_large_corpus_shows_progress_a_small_one_says_nothing(tmp_path: Path, monkeypatch):
    import io

    from rich.console import Console

    from augment import console as console_mod
    from augment.console import Reporter
    from augment.ingest import ingest

    clock = [100.0]
    monkeypatch.setattr(console_mod.time, "monotonic", lambda: clock[0])

    def lines(seconds_per_file: float, files: int) -> list[str]:
        out = io.StringIO()
        rep = Reporter(Console(file=out, width=60))
        for done in range(files + 1):  # as ingest calls it: before each file, then once at the end
            rep.read(done, files)
            clock[0] += seconds_per_file
        return out.getvalue().splitlines()

    assert lines(0.001, 500) == []  # half a second in all: nothing
    slow = lines(0.125, 200)  # 25 s: a line after 2 s, then every 5 s, then the last
    assert slow[0] == "reading: 16/200 files, 8.0 files/s, eta 23s"
    assert [line.split(",")[0] for line in slow] == [
        "reading: 16/200 files",
        "reading: 56/200 files",
        "reading: 96/200 files",
        "reading: 136/200 files",
        "reading: 176/200 files",
        "reading: 200/200 files",
    ]
    # ingest reports every file, then the end
    for i in range(3):
        (tmp_path / f"{i}.txt").write_text(f"Document {i} about lamps.", encoding="utf-8")
    seen: list[tuple[int, int]] = []
    ingest([str(tmp_path)], on_read=lambda done, total: seen.append((done, total)))
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
