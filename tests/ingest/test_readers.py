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
    # Windows' "Unicode" (UTF-16 with a byte order mark) is text, not a binary file
    (tmp_path / "windows.txt").write_bytes("Caf\xe9 notes\r\n\r\nThe lamp is 2 m tall.".encode("utf-16"))
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
        str(tmp_path / "windows.txt"),
    ]
    assert (result.documents[2].title, result.documents[2].text) == (
        "Caf\xe9 notes",
        "Caf\xe9 notes\n\nThe lamp is 2 m tall.",
    )
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
    assert result.files == 12


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


SPHINX_PAGE = """\
.. _merrow:

.. a comment the reader must not see

================
 The Merrow Light
================

The light flashes white twice every 15 seconds; see :ref:`the log <keeping>`, :func:`merrow.flash`
and :class:`~merrow.lamp.Lens`. Its keeper is |keeper|. The `registry <https://example.org>`_ lists it.

.. note::

   The fog signal was added in 1903.

.. code-block:: python

   merrow.flash(times=2)

.. toctree::
   :maxdepth: 2

   history

.. automodule:: merrow.lamp
   :members:

.. versionadded:: 1.2
   The ``--fog`` flag.

.. deprecated:: 2.0

   Use :meth:`Lamp.run` instead.

.. only:: html

   Visitors climb 142 steps.

.. include:: {secret}

.. raw:: html

   <b>raw markup</b>

Keeping
-------

* ``interval``: seconds between flashes.

.. |keeper| replace:: Ada Penhallow
"""


def test_rst_reads_as_plain_text_without_markup_or_noise(tmp_path: Path, capfd):
    secret = tmp_path / "secret.txt"
    secret.write_text("a file the include directive must not read", encoding="utf-8")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.rst").write_text(
        SPHINX_PAGE.replace("{secret}", str(secret)), encoding="utf-8"
    )
    (tmp_path / "docs" / "plain.rest").write_text(
        "Setup\n=====\n\nRun it on Achill Island.\n", encoding="utf-8"
    )

    result = ingest([str(tmp_path / "docs")])
    assert result.skipped == []
    page, plain = result.documents
    assert (page.title, plain.title) == ("The Merrow Light", "Setup")
    text = page.text
    for kept in (
        "twice every 15 seconds; see the log, merrow.flash\nand Lens.",  # Sphinx roles: their words
        "Its keeper is Ada Penhallow.",  # substitutions applied, their definitions gone
        "The registry lists it.",
        "Note: The fog signal was added in 1903.",
        "merrow.flash(times=2)",
        "New in version 1.2: The --fog flag.",
        "Deprecated since version 2.0:\n\nUse Lamp.run instead.",
        "Visitors climb 142 steps.",
        "Keeping",
        "interval: seconds between flashes.",
    ):
        assert kept in text
    for dropped in (
        "comment",
        "toctree",
        "history",
        "automodule",
        ":members:",
        "must not read",
        "raw markup",
    ):
        assert dropped not in text
    for markup in (":ref:", ":func:", "``", "`_", ".. ", "|keeper|", "ERROR", "Unknown"):
        assert markup not in text
    assert "\n\n\n" not in text
    assert capfd.readouterr().err == ""  # docutils reports nothing of its own


def test_rst_that_docutils_cannot_read_is_kept_as_text(tmp_path: Path, monkeypatch):
    from augment.ingest import readers

    def fail(source: str, where: str):
        raise RuntimeError("docutils broke")

    monkeypatch.setattr(readers, "_rst_plain", fail)
    (tmp_path / "a.rst").write_text(
        "Lamp care\n---------\n\nClean the :term:`lens` weekly.\n", encoding="utf-8"
    )
    (doc,) = ingest([str(tmp_path)]).documents
    assert doc.title == "Lamp care" and ":term:`lens`" in doc.text


def test_docx_text_boxes_follow_their_paragraph_once(tmp_path: Path):
    """A callout in a text box, as Word writes it: a drawing, and the same box again as a VML
    fallback for older readers; the anchor paragraph may have no text of its own."""
    import docx
    from docx.oxml import parse_xml

    ns = (
        'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" '
        'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" '
        'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape" '
        'xmlns:v="urn:schemas-microsoft-com:vml" '
        'xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing" '
        'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"'
    )

    def box(*lines: str) -> str:
        paras = "".join(f"<w:p><w:r><w:t>{line}</w:t></w:r></w:p>" for line in lines)
        content = f"<w:txbxContent>{paras}</w:txbxContent>"
        return (
            f'<w:r {ns}><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing><wp:anchor><a:graphic>'
            f"<a:graphicData><wps:wsp><wps:txbx>{content}</wps:txbx></wps:wsp></a:graphicData></a:graphic>"
            f"</wp:anchor></w:drawing></mc:Choice><mc:Fallback><w:pict><v:shape><v:textbox>{content}"
            f"</v:textbox></v:shape></w:pict></mc:Fallback></mc:AlternateContent></w:r>"
        )

    word = docx.Document()
    word.add_paragraph("Clean the lens monthly.")._p.append(parse_xml(box("Warning:", "keep the  lens dry.")))
    word.add_paragraph("")._p.append(parse_xml(box("Tip: use a soft cloth.")))
    word.add_paragraph("Store the cover indoors.")
    word.save(tmp_path / "care.docx")
    [doc] = ingest([str(tmp_path)]).documents
    assert doc.text == (
        "Clean the lens monthly.\n\nWarning:\nkeep the lens dry.\n\nTip: use a soft cloth.\n\n"
        "Store the cover indoors."
    )


def test_docx_footnotes_and_endnotes_follow_their_paragraph(tmp_path: Path):
    """Notes as Word stores them: word/footnotes.xml and endnotes.xml (with the separator notes
    Word always writes), referenced from a run of the paragraph."""
    import docx
    from docx.opc.constants import RELATIONSHIP_TYPE as RT
    from docx.opc.packuri import PackURI
    from docx.opc.part import Part
    from docx.oxml import parse_xml

    w = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    word = docx.Document()
    for kind, rel, notes in (
        ("footnote", RT.FOOTNOTES, {"1": "Measured at high tide in 1931.", "2": "Keeper's log, vol. 3."}),
        ("endnote", RT.ENDNOTES, {"1": "The lamp was electrified in 1952."}),
    ):
        body = (
            f'<w:{kind} w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:{kind}>'
            f'<w:{kind} w:type="continuationSeparator" w:id="0"><w:p><w:r><w:continuationSeparator/>'
            f"</w:r></w:p></w:{kind}>"
        )
        body += "".join(
            f'<w:{kind} w:id="{i}"><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:{kind}>'
            for i, text in notes.items()
        )
        blob = f'<?xml version="1.0"?><w:{kind}s {w}>{body}</w:{kind}s>'.encode()
        content_type = f"application/vnd.openxmlformats-officedocument.wordprocessingml.{kind}s+xml"
        word.part.relate_to(Part(PackURI(f"/word/{kind}s.xml"), content_type, blob, word.part.package), rel)
    lamp = word.add_paragraph("The light is 31 metres above the sea.")
    lamp._p.append(parse_xml(f'<w:r {w}><w:footnoteReference w:id="1"/></w:r>'))
    lamp._p.append(parse_xml(f'<w:r {w}><w:endnoteReference w:id="1"/></w:r>'))
    word.add_paragraph("Keepers served three-month turns.")._p.append(
        parse_xml(f'<w:r {w}><w:footnoteReference w:id="2"/></w:r>')
    )
    word.save(tmp_path / "notes.docx")
    [doc] = ingest([str(tmp_path)]).documents
    assert doc.text == (
        "The light is 31 metres above the sea.\n\nNote: Measured at high tide in 1931.\n\n"
        "Note: The lamp was electrified in 1952.\n\nKeepers served three-month turns.\n\n"
        "Note: Keeper's log, vol. 3."
    )
    # damaged notes leave the document's own text
    import zipfile

    with zipfile.ZipFile(tmp_path / "notes.docx") as z, zipfile.ZipFile(tmp_path / "torn.docx", "w") as out:
        for item in z.infolist():
            data = z.read(item.filename)
            out.writestr(item, data[: len(data) // 2] if item.filename == "word/footnotes.xml" else data)
    [torn] = ingest([str(tmp_path / "torn.docx")]).documents
    assert torn.text == (
        "The light is 31 metres above the sea.\n\nNote: The lamp was electrified in 1952.\n\n"
        "Keepers served three-month turns."
    )


def test_notebook_asciidoc_and_docx(tmp_path: Path):
    import docx

    cells = [
        {"cell_type": "markdown", "source": ["# Tuning the lamp\n", "\n", "The lamp runs at 240 volts."]},
        {"cell_type": "code", "source": "lamp.volts = 240", "outputs": [{"text": "an output to leave out"}]},
        {"cell_type": "raw", "source": "raw cell"},
        {"cell_type": "markdown", "source": []},
    ]
    nb = {"cells": cells, "metadata": {"language_info": {"name": "python"}}, "nbformat": 4}
    (tmp_path / "tune.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    (tmp_path / "broken.ipynb").write_text('{"cells": [', encoding="utf-8")
    (tmp_path / "v3.ipynb").write_text('{"worksheets": []}', encoding="utf-8")
    (tmp_path / "code.ipynb").write_text(json.dumps({"cells": [cells[1]]}), encoding="utf-8")
    (tmp_path / "guide.adoc").write_text(":toc:\n\n= Lamp Guide\n\nThe lamp is 2 m tall.\n", encoding="utf-8")

    word = docx.Document()
    word.add_heading("Keeper's Manual", 0)
    word.add_paragraph("Wind the clockwork every 4 hours.")
    word.add_heading("Parts", 2)
    table = word.add_table(rows=2, cols=2)
    for (r, c), value in {(0, 0): "Part", (0, 1): "Interval", (1, 0): "Lamp", (1, 1): "6 months"}.items():
        table.cell(r, c).text = value
    word.add_paragraph("Check the lens after storms.")
    word.save(tmp_path / "manual.docx")
    titled = docx.Document()
    titled.core_properties.title = "From the properties"
    titled.add_paragraph("Body text.")
    titled.save(tmp_path / "titled.docx")
    (tmp_path / "renamed.docx").write_bytes(b"\xd0\xcf\x11\xe0 an old binary .doc")

    result = ingest([str(tmp_path)])
    docs = {Path(d.path).name: d for d in result.documents}
    assert docs["tune.ipynb"].title == "Tuning the lamp"
    assert docs["tune.ipynb"].text == (
        "# Tuning the lamp\n\nThe lamp runs at 240 volts.\n\n```python\nlamp.volts = 240\n```"
    )
    assert docs["code.ipynb"].title == "code"  # no heading: the file's name
    assert (docs["guide.adoc"].title, docs["guide.adoc"].text.count("2 m tall")) == ("Lamp Guide", 1)
    assert docs["manual.docx"].title == "Keeper's Manual"
    assert docs["manual.docx"].text == (
        "# Keeper's Manual\n\nWind the clockwork every 4 hours.\n\n## Parts\n\n"
        "Part | Interval\nLamp | 6 months\n\nCheck the lens after storms."
    )
    assert docs["titled.docx"].title == "From the properties"
    r = reasons(result)
    assert r["broken.ipynb"].startswith("not a Jupyter notebook (invalid JSON")
    assert r["v3.ipynb"] == "not a Jupyter notebook (no 'cells' list)"
    assert r["renamed.docx"].startswith("not a Word .docx file")
    assert len(result.skipped) == 3


def test_many_unsupported_files_are_one_line_and_build_folders_are_not_read(tmp_path: Path):
    from augment.ingest import skipped_lines

    docs = tmp_path / "docs"
    (docs / "_static").mkdir(parents=True)
    (docs / "index.md").write_text("# Index\n\n" + PARA, encoding="utf-8")
    for i in range(5):
        (docs / "_static" / f"img{i}.png").write_bytes(b"\x89PNG")
    (docs / "_static" / "style.css").write_text("p {}", encoding="utf-8")
    (docs / "Makefile").write_text("html:", encoding="utf-8")
    built = docs / "_build" / "html"
    (built / "_sources").mkdir(parents=True)
    (built / "index.html").write_text(
        "<html><body><p>" + PARA + " Rendered.</p></body></html>", encoding="utf-8"
    )
    (built / "_sources" / "index.md.txt").write_text(PARA + " Source copy.", encoding="utf-8")
    (docs / "node_modules" / "pkg").mkdir(parents=True)
    (docs / "node_modules" / "pkg" / "README.md").write_text("# pkg\n\nA package.", encoding="utf-8")

    seen: list = []
    result = ingest([str(docs)], on_skip=seen.append)
    assert [Path(d.path).name for d in result.documents] == ["index.md"]
    lines = [str(s) for s in seen]
    assert lines == [
        f"skipped 7 files of types augment does not read (.png 5, .css 1, no extension 1; first: {docs / 'Makefile'})",
        f"skipped {docs / '_build'}: a build folder (2 files, not read); name it as an input to read it",
        f"skipped {docs / 'node_modules'}: a build folder (1 file, not read); name it as an input to read it",
    ]
    assert len(result.skipped) == 9 and result.files == 1 + 7 + 3  # every file is still listed
    assert [s.to_dict().get("files", 1) for s in result.skipped if "_build" in s.path] == [2]
    assert skipped_lines(result.skipped)[-1] == (
        "7 files",
        "types augment does not read (.png 5, .css 1, no extension 1)",
    )

    # named as an input, a build folder is read like any other; three unsupported files get a line each
    inner = ingest([str(built)], on_skip=seen.append)
    assert sorted(Path(d.path).name for d in inner.documents) == ["index.html", "index.md.txt"]
    (docs / "_static" / "img0.png").unlink(), (docs / "_static" / "img1.png").unlink()
    few = ingest([str(docs / "_static")]).skipped
    assert [s.reason for s in few] == ["unsupported file type '.png'"] * 3 + ["unsupported file type '.css'"]


def test_front_matter_gives_the_title_and_is_left_out(tmp_path: Path):
    (tmp_path / "start.mdx").write_text(
        "---\ntitle: Getting started\nsidebar_position: 2\n---\n\nimport Tabs from '@theme/Tabs';\n\n"
        "Install the lamp.\n\n```js\nimport lamp from 'lamp';\n```\n\nexport const toc = [];\n",
        encoding="utf-8",
    )
    (tmp_path / "hugo.md").write_text(
        '+++\ntitle = "Hugo page"\ndate = 2024-01-01\n+++\nBody.\n', encoding="utf-8"
    )
    (tmp_path / "rule.md").write_text("---\n\nNot front matter: a rule.\n\n---\n\nEnd.\n", encoding="utf-8")
    (tmp_path / "heading.md").write_text(
        "---\nlayout: post\n---\n<!-- Licensed under\nApache-2.0 -->\n# From the heading\n\nText.<!-- TODO -->\n"
        "\n```html\n<!-- kept: code -->\n```\n",
        encoding="utf-8",
    )
    (tmp_path / "only.md").write_text("---\ntitle: Nothing else\n---\n", encoding="utf-8")

    result = ingest([str(tmp_path)])
    docs = {Path(d.path).name: d for d in result.documents}
    assert (docs["start.mdx"].title, docs["start.mdx"].text) == (
        "Getting started",
        "Install the lamp.\n\n```js\nimport lamp from 'lamp';\n```\n\n",
    )
    assert (docs["hugo.md"].title, docs["hugo.md"].text) == ("Hugo page", "Body.\n")
    assert docs["rule.md"].text.startswith("---\n\nNot front matter") and docs["rule.md"].title == "rule"
    assert (docs["heading.md"].title, docs["heading.md"].text) == (
        "From the heading",
        "# From the heading\n\nText.\n\n```html\n<!-- kept: code -->\n```\n",
    )
    assert reasons(result) == {"only.md": "no text after the front matter"}


def test_pdf_running_headers_and_footers_are_left_out(tmp_path: Path):
    from fpdf import FPDF

    facts = [
        "The burrs are 40 mm wide.",
        "The motor turns at 1,350 rpm.",
        "Clean the chute every week.",
        "The hopper holds 250 grams.",
        "Descale the grinder twice a year.",
        "The warranty runs for 2 years.",
    ]

    class Manual(FPDF):
        def header(self):
            self.set_font("Helvetica", size=9)
            self.cell(0, 8, "Kestrel K2 User Manual - Revision C", align="C")
            self.ln(10)

        def footer(self):
            self.set_y(-15)
            self.set_font("Helvetica", size=9)
            self.cell(0, 10, f"Page {self.page_no()} of {{nb}}", align="C")

    def write(path: Path, pages: int) -> None:
        pdf = Manual()
        pdf.alias_nb_pages()
        for fact in facts[:pages]:
            pdf.add_page()
            pdf.set_font("Helvetica", size=11)
            pdf.multi_cell(0, 6, f"Kestrel K2 User Manual. {fact} " + PARA)
        pdf.output(str(path))

    write(tmp_path / "manual.pdf", 6)
    write(tmp_path / "leaflet.pdf", 2)
    docs = {Path(d.path).name: d.text for d in ingest([str(tmp_path)]).documents}
    manual = docs["manual.pdf"]
    assert "Revision C" not in manual and "Page " not in manual
    assert all(fact in manual for fact in facts)
    assert manual.count("Kestrel K2 User Manual. ") == 6  # the words in the body stay
    # two pages are too few to tell a running line from the text
    assert docs["leaflet.pdf"].count("Revision C") == 2 and "Page 2 of 2" in docs["leaflet.pdf"]


def write_epub(
    path: Path, chapters: dict[str, str], *, title: str = "The Keeper's Handbook", extra=None
) -> None:
    """A minimal real EPUB 3: mimetype, container, package document with a spine, XHTML chapters."""
    import zipfile

    items = "".join(
        f'<item id="c{i}" href="text/{name}" media-type="application/xhtml+xml"/>'
        for i, name in enumerate(chapters)
    )
    aside = ' linear="no"'  # a cover: not in the reading order
    spine = "".join(
        f'<itemref idref="c{i}"{aside if name.startswith("cover") else ""}/>'
        for i, name in enumerate(chapters)
    )
    opf = (
        '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
        f'<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{title}</dc:title></metadata>'
        f"<manifest>{items}</manifest><spine>{spine}</spine></package>"
    )
    container = (
        '<?xml version="1.0"?><container xmlns="urn:oasis:names:tc:opendocument:xmlns:container" version="1.0">'
        '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
        "</rootfiles></container>"
    )
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/epub+zip")
        z.writestr("META-INF/container.xml", container)
        z.writestr("OEBPS/content.opf", opf)
        for name, body in chapters.items():
            z.writestr(
                f"OEBPS/text/{name}",
                '<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>x</title></head>'
                f"<body>{body}</body></html>",
            )
        for name, data in (extra or {}).items():
            z.writestr(name, data)


def test_epub_chapters_in_reading_order(tmp_path: Path):
    chapters = {
        "cover.xhtml": "<p>Cover page text that is not read.</p>",
        "ch2.xhtml": "<h1>Chapter 2: The fog signal</h1><p>The fog signal was added in 1903.</p>"
        "<p>It sounds twice a minute in fog.</p>",
        "ch1.xhtml": "<h1>Chapter 1: The light</h1><p>" + PARA + "</p><div><div>Visitors climb 142"
        "<br/>steps.</div><div>The lens is <em>Fresnel</em>'s.</div></div>",
    }
    write_epub(tmp_path / "handbook.epub", chapters)
    locked = tmp_path / "locked.epub"
    encryption = (
        '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
        'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData><enc:CipherData>'
        '<enc:CipherReference URI="OEBPS/text/ch1.xhtml"/></enc:CipherData></enc:EncryptedData></encryption>'
    )
    write_epub(locked, {"ch1.xhtml": chapters["ch1.xhtml"]}, extra={"META-INF/encryption.xml": encryption})
    (tmp_path / "renamed.epub").write_bytes(b"%PDF-1.4 not a zip")

    result = ingest([str(tmp_path)])
    (book,) = result.documents
    assert book.title == "The Keeper's Handbook"
    # the spine's order (chapter 2 first here), not the files' names; the cover (linear="no") is left out
    assert book.text.index("fog signal was added in 1903") < book.text.index("twice every 15 seconds")
    assert "Cover page" not in book.text and "<p>" not in book.text
    # paragraphs written as divs, a line break between words
    assert "\n\nVisitors climb 142 steps.\n\nThe lens is Fresnel's." in book.text
    assert "# Chapter 1: The light\n\nThe Merrow light" in book.text  # headings stay, as headings
    r = reasons(result)
    assert r["locked.epub"].startswith("EPUB with DRM")
    assert r["renamed.epub"].startswith("not a readable EPUB (BadZipFile")


def test_many_slow_files_read_in_worker_processes_give_what_one_process_gives(tmp_path: Path):
    import docx

    from augment.ingest import POOL_AFTER

    for i in range(3):
        make_pdf(tmp_path / f"manual{i}.pdf", [f"Part {i}. {PARA}"], title=f"Manual {i}")
        word = docx.Document()
        word.add_heading(f"Report {i}", 1)
        word.add_paragraph(f"Report {i} says the lamp at Cape Merrow turns every {i + 4} seconds.")
        word.save(tmp_path / f"report{i}.docx")
        (tmp_path / f"page{i}.html").write_text(
            f"<html><head><title>Page {i}</title></head><body><article><p>{PARA} ({i})</p>"
            "</article></body></html>",
            encoding="utf-8",
        )
    (tmp_path / "guide.rst").write_text("Guide\n=====\n\nThe *keeper* writes the log.\n", encoding="utf-8")
    write_epub(tmp_path / "book.epub", {"ch1.xhtml": "<h1>One</h1><p>The first chapter.</p>"})
    # what a worker finds wrong is said as it is here, in the same order
    make_pdf(tmp_path / "locked.pdf", [PARA], password="s3cret")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    (tmp_path / "blank.html").write_text("<html><body><script>x()</script></body></html>", encoding="utf-8")
    # a duplicate across a worker's file and this process's: the first in path order is kept
    (tmp_path / "page0.txt").write_text(f"{PARA} (0)", encoding="utf-8")
    (tmp_path / "notes.md").write_text("# Notes\n\nThe light is white.", encoding="utf-8")
    (tmp_path / "rows.jsonl").write_text('{"text": "A row."}\n{not json}\n', encoding="utf-8")

    def read(workers: int):
        said: list[str] = []
        got = ingest([str(tmp_path)], workers=workers, on_skip=lambda s: said.append(str(s)))
        docs = [(d.doc_id, d.path, d.title, d.text) for d in got.documents]
        return got.workers, docs, [(s.path, s.reason) for s in got.skipped], said

    slow = [p for p in tmp_path.iterdir() if p.suffix in (".pdf", ".docx", ".html", ".rst", ".epub")]
    assert len(slow) >= POOL_AFTER
    here, pooled = read(1), read(2)
    assert here[0] == 1 and pooled[0] == 2  # two processes read the slow files
    assert pooled[1:] == here[1:]  # the same documents, ids, skips and lines, in the same order
    docs, skipped = here[1], dict(here[2])
    assert len(docs) == 13 and {"Manual 2", "Report 1", "Page 0", "Guide", "Notes"} <= {d[2] for d in docs}
    assert skipped[str(tmp_path / "page0.txt")] == f"duplicate of {tmp_path / 'page0.html'}"
    assert skipped[str(tmp_path / "locked.pdf")].startswith("encrypted PDF")
    assert skipped[str(tmp_path / "rows.jsonl") + ":2"].startswith("invalid JSON")
    # few slow files are read here: starting processes would cost more than they save
    assert ingest([str(tmp_path / "manual0.pdf"), str(tmp_path / "notes.md")], workers=4).workers == 1


def test_a_worker_that_dies_or_no_pool_leaves_the_files_to_this_process(tmp_path: Path, monkeypatch):
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    import augment.ingest as ingest_module

    class DeadPool:  # as a pool whose worker was killed (out of memory): every result raises
        def __init__(self, *args, **kwargs):
            pass

        def submit(self, *args) -> Future:
            future: Future = Future()
            future.set_exception(BrokenProcessPool("a child process terminated abruptly"))
            return future

        def shutdown(self, **kwargs) -> None:
            pass

    for i in range(8):
        (tmp_path / f"page{i}.html").write_text(
            f"<html><body><article><p>{PARA} ({i})</p></article></body></html>", encoding="utf-8"
        )
    alone = ingest([str(tmp_path)], workers=1)
    monkeypatch.setattr(ingest_module, "ProcessPoolExecutor", DeadPool)
    got = ingest([str(tmp_path)], workers=4)
    assert got.workers == 1 and [d.text for d in got.documents] == [d.text for d in alone.documents]
    assert len(got.documents) == 8

    def no_processes(*args, **kwargs):  # a container without /dev/shm: no semaphores, no pool
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(ingest_module, "ProcessPoolExecutor", no_processes)
    got = ingest([str(tmp_path)], workers=4)
    assert got.workers == 1 and [d.text for d in got.documents] == [d.text for d in alone.documents]


def test_pptx_slides_in_order_with_tables_and_speaker_notes(tmp_path: Path):
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    intro = deck.slides.add_slide(deck.slide_layouts[1])
    intro.shapes.title.text = "Kestrel K2 overview"
    intro.placeholders[1].text = "The battery lasts 14 hours\nIt charges in 90 minutes"
    intro.notes_slide.notes_text_frame.text = "Say that USB-C charging is standard."
    specs = deck.slides.add_slide(deck.slide_layouts[5])
    specs.shapes.title.text = "Specifications"
    # drawn first but placed lower: read after the box above it, as a reader sees the slide
    specs.shapes.add_textbox(Inches(1), Inches(5), Inches(4), Inches(1)).text_frame.text = "Made in Leeds."
    table = specs.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1)).table
    for (r, c), value in {(0, 0): "Weight", (0, 1): "1.2 kg", (1, 0): "Range", (1, 1): "40 km"}.items():
        table.cell(r, c).text = value
    group = specs.shapes.add_group_shape()
    group.shapes.add_textbox(Inches(1), Inches(3.5), Inches(4), Inches(1)).text_frame.text = "Rated IP54."
    hidden = deck.slides.add_slide(deck.slide_layouts[6])
    hidden._element.set("show", "0")  # hidden in the slide show: a draft
    hidden.shapes.add_textbox(Inches(1), Inches(1), Inches(3), Inches(1)).text_frame.text = "Old price: 900"
    deck.save(tmp_path / "k2.pptx")
    (tmp_path / "locked.pptx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    (tmp_path / "broken.pptx").write_bytes(b"PK\x03\x04 not really a deck")

    result = ingest([str(tmp_path)])
    [doc] = result.documents
    assert doc.title == "Kestrel K2 overview"
    assert doc.text == (
        "## Kestrel K2 overview\n\nThe battery lasts 14 hours\nIt charges in 90 minutes\n\n"
        "Notes: Say that USB-C charging is standard.\n\n"
        "## Specifications\n\nWeight | 1.2 kg\nRange | 40 km\n\nRated IP54.\n\nMade in Leeds."
    )
    r = reasons(result)
    assert r["locked.pptx"].startswith("password-protected, or an old binary .ppt")
    assert r["broken.pptx"] == "not a PowerPoint .pptx file (not a zip package)"


def test_csv_and_tsv_rows_are_documents(tmp_path: Path):
    # a spreadsheet's export in a locale whose lists use ";", a quoted cell over two lines
    (tmp_path / "faq.csv").write_text(
        'id;title;text\n1;Battery;"The K2 battery lasts 14 hours; it charges in 90 minutes."\n'
        '2;Empty;\n3;Cleaning;"Wipe the lens with a dry cloth.\nNever use solvents."\n',
        encoding="utf-8",
    )
    (tmp_path / "notes.tsv").write_text(
        "text\textra\nThe mount takes a 1/4-inch screw.\tx\n", encoding="utf-8"
    )
    (tmp_path / "prices.csv").write_text("sku,price\nK2,899\n", encoding="utf-8")

    result = ingest([str(tmp_path)])
    docs = {d.path: (d.title, d.text) for d in result.documents}
    assert docs == {
        f"{tmp_path / 'faq.csv'}:2": ("Battery", "The K2 battery lasts 14 hours; it charges in 90 minutes."),
        f"{tmp_path / 'faq.csv'}:4": ("Cleaning", "Wipe the lens with a dry cloth.\nNever use solvents."),
        f"{tmp_path / 'notes.tsv'}:2": ("notes 2", "The mount takes a 1/4-inch screw."),
    }
    r = reasons(result)
    assert r["faq.csv:3"] == "field 'text' is empty"
    assert r["prices.csv"] == "no column 'text' in the header line (columns: sku, price); set text_field"
    # another column, as for .jsonl and .parquet
    prices = ingest([str(tmp_path / "prices.csv")], text_field="sku")
    assert [d.text for d in prices.documents] == ["K2"]


def test_office_files_of_other_types_say_what_to_save_them_as(tmp_path: Path):
    (tmp_path / "old.doc").write_bytes(b"\xd0\xcf\x11\xe0")
    assert reasons(ingest([str(tmp_path)]))["old.doc"] == "unsupported file type '.doc' (save it as .docx)"
    for name in ("deck.ppt", "sheet.xls", "logo.png", "photo.png"):
        (tmp_path / name).write_bytes(b"\x00")
    (tmp_path / "manual.md").write_text("# Manual\n\nThe lamp turns.", encoding="utf-8")
    said: list[str] = []
    ingest([str(tmp_path)], on_skip=lambda s: said.append(str(s)))
    assert said == [
        f"skipped 5 files of types augment does not read (.png 2, .doc 1, .ppt 1, .xls 1; first: "
        f"{tmp_path / 'deck.ppt'}); save .doc as .docx, .ppt as .pptx, .xls as .xlsx to read them"
    ]


def write_odt(path: Path, body: str, title: str | None = None, kind: str = "text", styles: str = "") -> None:
    """A minimal real OpenDocument file (kind "text" or "presentation"): mimetype, manifest,
    content.xml (and meta.xml)."""
    import zipfile

    ns = (
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
        'xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0" '
        'xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" '
        'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0"'
    )
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", f"application/vnd.oasis.opendocument.{kind}")
        z.writestr(
            "META-INF/manifest.xml",
            '<?xml version="1.0"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:'
            'manifest:1.0"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/'
            'vnd.oasis.opendocument.text"/></manifest:manifest>',
        )
        z.writestr(
            "content.xml",
            f'<?xml version="1.0"?><office:document-content {ns}>{styles}<office:body><office:{kind}>'
            f"{body}</office:{kind}></office:body></office:document-content>",
        )
        if title:
            z.writestr(
                "meta.xml",
                '<?xml version="1.0"?><office:document-meta xmlns:office="urn:oasis:names:tc:opendocument:'
                'xmlns:office:1.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><office:meta>'
                f"<dc:title>{title}</dc:title></office:meta></office:document-meta>",
            )


def test_odt_headings_paragraphs_lists_and_tables_in_order(tmp_path: Path):
    write_odt(
        tmp_path / "guide.odt",
        '<text:h text:outline-level="1">Care guide</text:h>'
        "<text:p>Wipe the<text:s/> lens<text:tab/>with a <text:span>dry</text:span> cloth."
        "<text:note><text:note-citation>1</text:note-citation><text:note-body><text:p>A footnote.</text:p>"
        "</text:note-body></text:note></text:p>"
        '<text:h text:outline-level="2">Storage</text:h>'
        "<text:list><text:list-item><text:p>Keep it dry.</text:p></text:list-item>"
        "<text:list-item><text:p>Keep it<text:line-break/>cool.</text:p></text:list-item></text:list>"
        "<table:table><table:table-row><table:table-cell><text:p>Humidity</text:p></table:table-cell>"
        "<table:table-cell><text:p>under 60 %</text:p></table:table-cell></table:table-row></table:table>",
    )
    write_odt(tmp_path / "named.odt", "<text:p>The keeper logs the weather.</text:p>", title="Logbook")
    write_odt(tmp_path / "blank.odt", "<text:p>  </text:p>")
    (tmp_path / "broken.odt").write_bytes(b"PK\x03\x04 not a document")

    result = ingest([str(tmp_path)])
    docs = {Path(d.path).name: (d.title, d.text) for d in result.documents}
    assert docs["guide.odt"] == (
        "Care guide",
        "# Care guide\n\nWipe the lens with a dry cloth.\n\nNote: A footnote.\n\n## Storage\n\nKeep it dry.\n\n"
        "Keep it cool.\n\nHumidity | under 60 %",  # the note after its paragraph, not inside it
    )
    assert docs["named.odt"] == ("Logbook", "The keeper logs the weather.")
    r = reasons(result)
    assert r["blank.odt"] == "OpenDocument text has no text"
    assert r["broken.odt"].startswith("not a readable OpenDocument file (BadZipFile")


def test_odp_slides_in_order_with_tables_and_notes(tmp_path: Path):
    def frame(y: str, inner: str, cls: str = "") -> str:
        role = f' presentation:class="{cls}"' if cls else ""
        return f'<draw:frame svg:x="2cm" svg:y="{y}"{role}>{inner}</draw:frame>'

    def box(*paragraphs: str) -> str:
        return "<draw:text-box>" + "".join(f"<text:p>{p}</text:p>" for p in paragraphs) + "</draw:text-box>"

    cells = "".join(
        f"<table:table-row><table:table-cell><text:p>{a}</text:p></table:table-cell>"
        f"<table:table-cell><text:p>{b}</text:p></table:table-cell></table:table-row>"
        for a, b in (("Weight", "1.2 kg"), ("Range", "40 km"))
    )
    write_odt(
        tmp_path / "k2.odp",
        '<draw:page draw:name="intro">'
        + frame("12cm", box("Made in Leeds."))  # drawn first, placed last
        + frame("1cm", box("Kestrel K2 overview"), "title")
        + frame("4cm", box("The battery lasts 14 hours", "It charges in 90 minutes"), "outline")
        + '<presentation:notes><draw:frame presentation:class="notes">'
        + box("Say that USB-C charging is standard.")
        + "</draw:frame></presentation:notes></draw:page>"
        + '<draw:page draw:name="specs">'
        + frame("1cm", box("Specifications"), "title")
        + frame("3cm", f"<table:table>{cells}</table:table>")
        + "</draw:page>"
        + '<draw:page draw:name="draft" draw:style-name="dp9">'  # hidden in the show: left out
        + frame("1cm", box("Old price: 900"))
        + "</draw:page>",
        kind="presentation",
        styles='<office:automatic-styles><style:style style:name="dp9" style:family="drawing-page">'
        '<style:drawing-page-properties presentation:visibility="hidden"/></style:style>'
        "</office:automatic-styles>",
    )
    write_odt(tmp_path / "empty.odp", '<draw:page draw:name="blank"/>', kind="presentation")

    result = ingest([str(tmp_path)])
    [doc] = result.documents
    assert doc.title == "Kestrel K2 overview"
    assert doc.text == (
        "## Kestrel K2 overview\n\nThe battery lasts 14 hours\nIt charges in 90 minutes\n\nMade in Leeds.\n\n"
        "Notes: Say that USB-C charging is standard.\n\n"
        "## Specifications\n\nWeight | 1.2 kg\nRange | 40 km"
    )
    assert reasons(result)["empty.odp"] == "OpenDocument presentation has no text"


def test_the_default_readers_are_the_cores_this_process_may_use_up_to_8(monkeypatch):
    import os

    from augment.ingest import auto_read_workers, read_workers

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert auto_read_workers() == 3  # a container's cpuset, not the host's cores
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert auto_read_workers() == 8
    assert read_workers(None, 100) == 1 and read_workers(8, 3) == 1 and read_workers(8, 20) == 8


def test_pdf_words_broken_at_a_lines_end_are_mended(tmp_path: Path):
    make_pdf(
        tmp_path / "manual.pdf",
        [
            "The lamp's rotation is described below. Its rota-\ntion takes five seconds.",
            "A well-\nknown keeper wrote the log; the keeper-\nless years followed.",
        ],
    )
    [doc] = ingest([str(tmp_path)]).documents
    # joined where the whole word is elsewhere; else the hyphen kept, the line break gone
    assert "Its rotation takes five seconds." in doc.text
    assert "A well-known keeper wrote the log; the keeper-less years followed." in doc.text
    from augment.ingest.readers import _LIGATURES

    # a text layer's ligatures ("\ufb01", "\ufb02") are the letters a reader (and a question) writes
    assert "the \ufb01rst \ufb02ash".translate(_LIGATURES) == "the first flash"


def test_a_sentence_over_a_pdf_page_break_stays_one_paragraph(tmp_path: Path):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for text in (
        "The lamp was first lit in 1871. Its lens turns every",
        "five seconds and is seen from 18 nautical miles. The rota-",
        "tion is driven by clockwork.",
        "A new chapter begins here.",
    ):
        pdf.add_page()
        pdf.multi_cell(0, 6, text)
    pdf.output(str(tmp_path / "history.pdf"))
    [doc] = ingest([str(tmp_path)]).documents
    assert doc.text == (
        "The lamp was first lit in 1871. Its lens turns every\nfive seconds and is seen from 18 nautical "
        "miles. The rota-tion is driven by clockwork.\n\nA new chapter begins here."
    )


def test_soft_hyphens_inside_words_are_left_out(tmp_path: Path):
    # a text exported from a word processor that hyphenates: invisible, but it splits the word
    (tmp_path / "care.md").write_text(
        "# Care\n\nKeep the opti\u00adcal lens free of salt; wipe it every morn\u00ading.", encoding="utf-8"
    )
    [doc] = ingest([str(tmp_path)]).documents
    assert doc.text == "# Care\n\nKeep the optical lens free of salt; wipe it every morning."


def test_ods_rows_are_documents_as_for_xlsx(tmp_path: Path):
    """A real LibreOffice Calc layout: rows and cells stored once with repeat counts (an empty
    cell repeated to the last column, empty rows repeated to the last row), covered cells."""

    def cell(text: str = "", repeat: int = 1) -> str:
        rep = f' table:number-columns-repeated="{repeat}"' if repeat > 1 else ""
        return (
            f"<table:table-cell{rep}><text:p>{text}</text:p></table:table-cell>"
            if text
            else f"<table:table-cell{rep}/>"
        )

    def row(*cells: str, repeat: int = 1) -> str:
        rep = f' table:number-rows-repeated="{repeat}"' if repeat > 1 else ""
        return f"<table:table-row{rep}>{''.join(cells)}</table:table-row>"

    faq = (
        '<table:table table:name="FAQ">'
        + row(cell(repeat=16384), repeat=2)  # two blank rows above the header
        + row(cell("id"), cell("title"), cell("text"), cell(repeat=16381))
        + row(cell("1"), cell("Battery"), cell("The K2 battery lasts <text:s/>14 hours."), cell(repeat=16381))
        + row(cell("2"), cell("Empty"), cell(repeat=16382))
        + row(
            cell("3"), cell("Mount"), cell("Use a 1/4-inch screw.") + "<table:covered-table-cell/>", repeat=2
        )
        + row(cell(repeat=16384), repeat=1048570)
        + "</table:table>"
    )
    prices = (
        '<table:table table:name="Prices">'
        + row(cell("sku"), cell("price"))
        + row(cell("K2"), cell("899"))
        + "</table:table>"
    )
    write_odt(tmp_path / "kb.ods", faq + prices, kind="spreadsheet")
    write_odt(tmp_path / "prices.ods", prices, kind="spreadsheet")
    (tmp_path / "broken.ods").write_bytes(b"PK\x03\x04 not a sheet")

    result = ingest([str(tmp_path)])
    docs = {d.path.removeprefix(str(tmp_path) + "/"): (d.title, d.text) for d in result.documents}
    assert docs == {
        "kb.ods:FAQ!4": ("Battery", "The K2 battery lasts 14 hours."),
        "kb.ods:FAQ!6": ("Mount", "Use a 1/4-inch screw."),  # rows 6 and 7 are one stored row
    }
    r = reasons(result)
    assert r["kb.ods:FAQ!5"] == "no string field 'text' (fields: id, title); set text_field"
    assert (
        r["prices.ods"]
        == "no sheet has a column 'text' in its header line (Prices: sku, price); set text_field"
    )
    assert r["broken.ods"].startswith("not a readable OpenDocument file (BadZipFile")
    assert [d.text for d in ingest([str(tmp_path / "prices.ods")], text_field="sku").documents] == ["K2"]


def test_xlsx_rows_are_documents_in_the_sheets_with_the_column(tmp_path: Path):
    from openpyxl import Workbook

    book = Workbook()
    faq = book.active
    faq.title = "FAQ"
    faq.append([])  # a blank row above the header, as sheets often have
    faq.append(["id", "title", "text"])
    faq.append([1, "Battery", "The K2 battery lasts 14 hours."])
    faq.append([2, "Empty", None])
    faq.append([None, None, None])  # blank rows between are passed over
    faq.append([3, None, 42])  # a number in the text column is its text
    prices = book.create_sheet("Prices")  # no text column: not documents
    prices.append(["sku", "price"])
    prices.append(["K2", 899])
    book.save(tmp_path / "kb.xlsx")
    other = Workbook()
    other.active.append(["sku", "price"])
    other.save(tmp_path / "prices.xlsx")
    (tmp_path / "locked.xlsx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))

    result = ingest([str(tmp_path)])
    docs = {d.path.removeprefix(str(tmp_path) + "/"): (d.title, d.text) for d in result.documents}
    assert docs == {
        "kb.xlsx:FAQ!3": ("Battery", "The K2 battery lasts 14 hours."),
        "kb.xlsx:FAQ!6": ("kb FAQ!6", "42"),
    }
    r = reasons(result)
    assert r["kb.xlsx:FAQ!4"] == "no string field 'text' (fields: id, title); set text_field"
    assert r["prices.xlsx"] == (
        "no sheet has a column 'text' in its header line (Sheet: sku, price); set text_field"
    )
    assert r["locked.xlsx"].startswith("password-protected, or an old binary .xls")
