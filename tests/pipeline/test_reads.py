"""RUN/reads.sqlite: a re-run reads again only the slow files (PDF, Word, EPUB, HTML, reST) that
changed; what it reuses is what reading the file gives, skips included."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import augment.ingest as ingest_module
from augment.config import load_config
from augment.ingest import ingest
from augment.pipeline import generate
from augment.pipeline.cache import ReadCache
from tests.conftest import make_pdf

PARA = "The lighthouse at Cape Merrow was designed by Ada Penhallow and first lit in 1871."


def corpus(folder: Path) -> Path:
    folder.mkdir()
    make_pdf(folder / "manual.pdf", [PARA, "Its lamp turns every 5 seconds."], title="Manual")
    make_pdf(folder / "locked.pdf", [PARA], password="s3cret")
    for i in range(3):
        (folder / f"page{i}.html").write_text(
            f"<html><head><title>Page {i}</title></head><body><article><p>{PARA} Page {i} of the site.</p>"
            "</article></body></html>",
            encoding="utf-8",
        )
    (folder / "notes.md").write_text("# Notes\n\nThe keeper logs the weather.", encoding="utf-8")
    return folder


def seen(result) -> tuple[list, list]:
    return [d.to_dict() for d in result.documents], [(s.path, s.reason) for s in result.skipped]


def test_a_rerun_reads_only_the_slow_files_that_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    docs = corpus(tmp_path / "docs")
    store = tmp_path / "reads.sqlite"
    first = ReadCache(store)
    fresh = ingest([str(docs)], store=first)
    first.save()
    assert fresh.from_store == 0 and seen(fresh)[1] and "encrypted PDF" in seen(fresh)[1][0][1]

    again = ingest([str(docs)], store=ReadCache(store))
    assert again.from_store == 5  # 2 PDFs (one a skip) and 3 HTML pages; Markdown is read anyway
    assert seen(again) == seen(fresh)

    # an edited page is read again, and so is everything once the readers change
    page = docs / "page1.html"
    page.write_text(page.read_text(encoding="utf-8").replace("Page 1 of", "Page one of"), encoding="utf-8")
    os.utime(page, ns=(page.stat().st_atime_ns, page.stat().st_mtime_ns + 10**9))
    kept = ReadCache(store)
    edited = ingest([str(docs)], store=kept)
    kept.save()
    assert edited.from_store == 4 and "Page one of" in edited.documents[-2].text
    # named another way (relative to another folder): the documents carry the path as given now
    monkeypatch.chdir(tmp_path)
    relative = ingest(["docs"], store=ReadCache(store))
    assert relative.from_store == 5 and [d.path for d in relative.documents] == [
        str(Path("docs") / name)
        for name in ("manual.pdf", "notes.md", "page0.html", "page1.html", "page2.html")
    ]
    monkeypatch.setattr(ingest_module, "_readers_signature", lambda: "readers of another version")
    assert ingest([str(docs)], store=ReadCache(store)).from_store == 0


def test_generate_keeps_what_it_read_in_the_run_and_a_damaged_file_is_read_around(
    tmp_path: Path, examples: Path
):
    docs = corpus(tmp_path / "docs")
    run = tmp_path / "run"
    config = load_config(examples / "augment.toml", {"strategies": ["notes"]})
    first = generate([str(docs)], run, config)
    assert (run / "reads.sqlite").is_file()
    records = (run / "generated" / "notes.jsonl").read_text(encoding="utf-8")
    second = generate([str(docs)], run, config)
    assert (
        second.state.calls == 0 and (run / "generated" / "notes.jsonl").read_text(encoding="utf-8") == records
    )
    assert (first.files_kept, second.files_kept) == (0, 5)  # 2 PDFs and 3 pages; Markdown is read anyway
    stats = json.loads((run / "stats.json").read_text(encoding="utf-8"))
    assert stats["this_run"]["files_read_earlier"] == 5 and stats["this_run"]["read_s"] >= 0
    assert [s.reason for s in second.skipped] == [s.reason for s in first.skipped]
    # not augment's database: the run reads every file and leaves the file as it was
    (run / "reads.sqlite").write_bytes(b"this is not a database")
    third = generate([str(docs)], run, config)
    assert third.documents == first.documents and third.state.calls == 0
    assert (run / "reads.sqlite").read_bytes() == b"this is not a database"


def test_a_part_keeps_its_reads_in_its_own_folder(tmp_path: Path, examples: Path):
    from augment.pipeline.parts import Shard, part_dir

    docs = corpus(tmp_path / "docs")
    run = tmp_path / "run"
    config = load_config(examples / "augment.toml", {"strategies": ["notes"]})
    generate([str(docs)], run, config, shard=Shard.parse("1/2"))
    assert (part_dir(run, Shard.parse("1/2")) / "reads.sqlite").is_file()
    assert not (run / "reads.sqlite").exists()
