from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from augment.errors import AugmentError
from augment.ingest import discover, ingest
from tests.conftest import make_pdf

PARA = "The Merrow light flashes white twice every 15 seconds. It was built in 1862 by Ada Penhallow."


def by_path(result, name: str):
    return [d for d in result.documents if d.path.endswith(name)]


def reasons(result) -> dict[str, str]:
    return {
        Path(s.path.split(":")[0]).name + (":" + s.path.split(":")[1] if ":" in s.path else ""): s.reason
        for s in result.skipped
    }


def test_text_markdown_html_pdf_jsonl_parquet(tmp_path: Path):
    (tmp_path / "a.txt").write_text("Lighthouse facts\n\n" + PARA + "\r\nSecond line.\n", encoding="utf-8")
    (tmp_path / "b.md").write_text("Intro line\n\n# The Merrow Light\n\n" + PARA, encoding="utf-8")
    (tmp_path / "c.html").write_text(
        "<html><head><title>Merrow</title><script>var tracking = 1;</script><style>p{color:red}</style></head>"
        "<body><nav><a href='/'>Home</a></nav><article><h1>Merrow</h1><p>" + PARA + "</p>"
        "<p>Visitors climb 142 steps.</p></article><footer>Copyright notice</footer></body></html>",
        encoding="utf-8",
    )
    make_pdf(tmp_path / "d.pdf", [PARA, "The fog signal was added in 1903."], title="Merrow PDF")
    rows = [
        {"title": "Row one", "text": "First row text about bins."},
        {"text": "Second row text, no title."},
    ]
    (tmp_path / "e.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    pq.write_table(
        pa.Table.from_pylist([{"body": "Parquet row about cycle counts.", "title": "PQ"}]),
        tmp_path / "f.parquet",
    )

    result = ingest([str(tmp_path)], text_field="text")
    assert {s.reason for s in result.skipped} == {"no column 'text' (columns: body, title); set text_field"}

    txt = by_path(result, "a.txt")[0]
    assert txt.title == "Lighthouse facts"
    assert "\r" not in txt.text and "Second line." in txt.text
    assert by_path(result, "b.md")[0].title == "The Merrow Light"

    html = by_path(result, "c.html")[0]
    assert html.title == "Merrow"
    assert PARA in html.text and "142 steps" in html.text
    for markup in ("<p>", "tracking", "color:red", "Copyright notice"):
        assert markup not in html.text

    pdf = by_path(result, "d.pdf")[0]
    assert pdf.title == "Merrow PDF"
    assert "twice every 15 seconds" in pdf.text and "1903" in pdf.text

    jsonl = [d for d in result.documents if "e.jsonl" in d.path]
    assert [d.title for d in jsonl] == ["Row one", "e 2"]
    assert jsonl[0].path.endswith("e.jsonl:1")

    # the text field is configurable for tabular inputs
    pq_result = ingest([str(tmp_path / "f.parquet")], text_field="body")
    assert [(d.title, d.text) for d in pq_result.documents] == [("PQ", "Parquet row about cycle counts.")]


def test_doc_ids_come_from_content_and_are_stable(tmp_path: Path):
    (tmp_path / "one.txt").write_text(PARA, encoding="utf-8")
    first = ingest([str(tmp_path)]).documents[0]
    (tmp_path / "one.txt").rename(tmp_path / "renamed.txt")
    second = ingest([str(tmp_path)]).documents[0]
    assert first.doc_id == second.doc_id and len(first.doc_id) == 16
    (tmp_path / "renamed.txt").write_text(PARA + " Changed.", encoding="utf-8")
    assert ingest([str(tmp_path)]).documents[0].doc_id != first.doc_id


def test_bad_files_are_skipped_with_a_reason_each(tmp_path: Path):
    (tmp_path / "good.txt").write_text(PARA, encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (tmp_path / "latin1.md").write_bytes("Caf\xe9 cr\xe8me".encode("latin-1"))
    (tmp_path / "empty.txt").write_text("  \n\n ", encoding="utf-8")
    (tmp_path / "blank.html").write_text("<html><body><script>x()</script></body></html>", encoding="utf-8")
    make_pdf(tmp_path / "locked.pdf", [PARA], password="s3cret")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    make_pdf(tmp_path / "noimage.pdf", [])  # a page with no text layer
    (tmp_path / "rows.jsonl").write_text(
        '{"text": "A fine row of text."}\n{not json}\n{"body": "wrong field"}\n["a list"]\n', encoding="utf-8"
    )
    (tmp_path / "picture.png").write_bytes(b"\x89PNG")
    (tmp_path / "copy.txt").write_text(PARA, encoding="utf-8")

    seen = []
    result = ingest([str(tmp_path)], on_skip=seen.append)
    assert [d.path for d in result.documents] == [
        str(tmp_path / "copy.txt"),
        str(tmp_path / "rows.jsonl") + ":1",
    ]
    r = reasons(result)
    assert r["binary.txt"].startswith("binary file")
    assert r["latin1.md"].startswith("not UTF-8 text (bad byte at offset 3)")
    assert r["empty.txt"] == "empty file"
    assert r["blank.html"] == "no main text found in the HTML"
    assert r["locked.pdf"].startswith("encrypted PDF")
    assert r["broken.pdf"].startswith("not a readable PDF")
    assert r["noimage.pdf"].startswith("PDF has no text layer")
    assert r["rows.jsonl:2"].startswith("invalid JSON")
    assert r["rows.jsonl:3"] == "no string field 'text' (fields: body); set text_field"
    assert r["rows.jsonl:4"] == "expected a JSON object, got list"
    assert r["picture.png"] == "unsupported file type '.png'"
    # the second copy of the same text is reported, not read twice (good.txt sorts after copy.txt)
    assert r["good.txt"] == f"duplicate of {tmp_path / 'copy.txt'}"
    assert len(seen) == len(result.skipped) == 12  # 7 bad files, 3 bad rows, 1 .png, 1 duplicate
    assert result.files == 11


def test_inputs_file_folder_glob_and_missing(tmp_path: Path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.md").write_text("# X\n\nAbout x.", encoding="utf-8")
    (tmp_path / "y.txt").write_text("About y.", encoding="utf-8")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "z.txt").write_text("About z.", encoding="utf-8")

    assert [p.name for p in discover([str(tmp_path)])[0]] == ["x.md", "y.txt"]
    assert [p.name for p in discover([str(tmp_path / "y.txt")])[0]] == ["y.txt"]
    assert [p.name for p in discover([str(tmp_path / "**" / "*.md")])[0]] == ["x.md"]
    assert [p.name for p in discover([str(tmp_path)], patterns=["*.txt"])[0]] == ["y.txt"]
    with pytest.raises(AugmentError, match="no such file or folder"):
        discover([str(tmp_path / "nope")])
    with pytest.raises(AugmentError, match="matches no file"):
        discover([str(tmp_path / "*.pdf")])
