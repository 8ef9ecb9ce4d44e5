"""Readers: one function per file format, each returning (title, text) pairs or raising SkipFile."""

from __future__ import annotations

import codecs
import contextlib
import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


class SkipFile(Exception):  # noqa: N818 - a control-flow signal, not an error for users
    """This file (or row) cannot be used; the message says why."""


Reader = Callable[[Path, str, str], Iterator[tuple[str, str, str]]]
"""(path, text_field, title_field) -> (location, title, text) for each document in the file."""

_NUL_SNIFF = 8192

# pypdf and trafilatura log warnings about the damaged files we skip; the skip line says it once.
for _name in ("pypdf", "trafilatura", "htmldate", "courlan"):
    logging.getLogger(_name).setLevel(logging.ERROR)


def _decode(path: Path, data: bytes) -> str:
    # Windows' "Unicode" text: UTF-16 (or UTF-32, whose marks begin like UTF-16's) after its byte
    # order mark; one that does not decode is binary after all
    for bom, codec in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            with contextlib.suppress(UnicodeDecodeError):
                text = data.decode(codec)
                return text.replace("\r\n", "\n").replace("\r", "\n")
            break
    if b"\x00" in data[:_NUL_SNIFF]:
        raise SkipFile("binary file (contains NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SkipFile(f"not UTF-8 text (bad byte at offset {e.start}); convert it to UTF-8") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _require_text(text: str, what: str = "empty file") -> str:
    if not text.strip():
        raise SkipFile(what)
    return text


def read_text(path: Path, text_field: str, title_field: str) -> Iterator[tuple[str, str, str]]:
    text = _require_text(_decode(path, path.read_bytes()))
    # A short first line followed by a blank line is the title, as in most plain-text documents.
    first, sep, _ = text.lstrip().partition("\n\n")
    title = first.strip() if sep and "\n" not in first.strip() and len(first) <= 120 else path.stem
    yield str(path), title, text


_MD_HEADING = re.compile(r"^#{1,2}\s+(.+?)\s*#*\s*$", re.MULTILINE)


_FRONT_MATTER = re.compile(
    r"\A(?P<fence>---|\+\+\+)[ \t]*\n(?=\S)(?P<body>.*?)\n(?P=fence)[ \t]*(?:\n|\Z)", re.DOTALL
)
_MDX_MODULE = re.compile(r"^(?:import|export)\s.*$\n?", re.MULTILINE)
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.DOTALL | re.MULTILINE)


def _front_matter(text: str) -> tuple[str, str]:
    """(title from the front matter or "", text without it): the YAML (---) or TOML (+++) block
    that static-site generators (Jekyll, Hugo, MkDocs, Docusaurus) put before a page's Markdown."""
    m = _FRONT_MATTER.match(text)
    if not m:
        return "", text
    try:
        if m.group("fence") == "---":
            import yaml

            meta = yaml.safe_load(m.group("body"))
        else:
            import tomllib

            meta = tomllib.loads(m.group("body"))
    except Exception:  # not front matter after all (a rule, a table): the text stays as it is
        return "", text
    if not isinstance(meta, dict):
        return "", text
    title = meta.get("title")
    return (str(title).strip() if isinstance(title, str | int | float) else ""), text[m.end() :].lstrip("\n")


# a comment on lines of its own goes with them; one inside a line, alone
_HTML_COMMENT = re.compile(r"^[ \t]*<!--.*?-->[ \t]*\n|<!--.*?-->", re.DOTALL | re.MULTILINE)


def _outside_code(text: str, pattern: re.Pattern[str]) -> str:
    """`text` without what `pattern` matches outside its fenced code blocks (as it is if nothing)."""
    if not pattern.search(text):
        return text
    kept, last = [], 0
    for fence in _FENCE.finditer(text):
        kept += [pattern.sub("", text[last : fence.start()]), fence.group(0)]
        last = fence.end()
    kept.append(pattern.sub("", text[last:]))
    return "".join(kept).lstrip("\n")


def read_markdown(path: Path, text_field: str, title_field: str) -> Iterator[tuple[str, str, str]]:
    """Markdown as its source text; a front matter block gives the title and is left out, as are
    HTML comments (licence headers, notes to editors) and MDX's import/export lines."""
    title, text = _front_matter(_require_text(_decode(path, path.read_bytes())))
    text = _outside_code(text, _HTML_COMMENT)
    if path.suffix.lower() == ".mdx":
        text = _outside_code(text, _MDX_MODULE)  # module plumbing, not prose
    text = _require_text(text, "no text after the front matter")
    m = _MD_HEADING.search(text)
    yield str(path), (title or (m.group(1) if m else path.stem)), text


_RST_ROLE = re.compile(r"^:(?:[\w.+-]+:)+`(?P<body>.*)`$", re.DOTALL)
_RST_TARGET = re.compile(r"^(?P<text>.*?)\s*<[^<>]+>$", re.DOTALL)
_RST_HEADING = re.compile(r"^\s*(?P<title>\S[^\n]*)\n([=\-~^\"'`#*+:.])\2{2,}\s*$", re.MULTILINE)
# Sphinx directives whose body is prose a reader wants; docutils does not know them. Any other
# directive it does not know (toctree, automodule, ...) is dropped with its error message.
_SPHINX_PROSE = {  # name -> the words Sphinx puts before the body ("" for none; "only" drops its test)
    "versionadded": "New in version {}",
    "versionchanged": "Changed in version {}",
    "deprecated": "Deprecated since version {}",
    "seealso": "See also",
    "glossary": "",
    "only": "",
    "hlist": "",
}
_rst_ready = False


def _rst_role_text(raw: str) -> str:
    """The words a Sphinx role shows: ':ref:`Setup <setup>`' -> 'Setup', ':class:`~a.b.C`' -> 'C'."""
    m = _RST_ROLE.match(raw.strip())
    if not m:
        return raw
    body = m.group("body")
    target = _RST_TARGET.match(body)
    if target and target.group("text"):
        return target.group("text")
    body = body.lstrip("!")
    return body.rsplit(".", 1)[-1] if body.startswith("~") else body


def _rst_setup() -> None:
    global _rst_ready
    if _rst_ready:
        return
    from docutils import nodes
    from docutils.parsers.rst import Directive, directives

    class Prose(Directive):
        """A Sphinx directive read as Sphinx shows it: "New in version 1.2: the --fast flag."."""

        optional_arguments = 1
        final_argument_whitespace = True
        has_content = True
        option_spec = None  # any option is accepted and ignored

        def run(self):
            box = nodes.container()
            arg = (self.arguments[0] if self.arguments and self.name != "only" else "").strip()
            label = _SPHINX_PROSE[self.name]
            if "{}" in label:  # the version directives: "1.2 text" -> "New in version 1.2: text"
                version, *rest = arg.split(None, 1) or [""]
                label, arg = label.format(version), (rest[0] if rest else "")
            if label or arg:
                inline = self.state.inline_text(arg, self.lineno)[0] if arg else []
                lead = label + (": " if arg else ":" if self.content else "") if label else ""
                box += nodes.paragraph("", "", *([nodes.Text(lead)] if lead else []), *inline)
            self.state.nested_parse(self.content, self.content_offset, box)
            return [box]

    for name in _SPHINX_PROSE:
        directives.register_directive(name, Prose)
    _rst_ready = True


def read_rst(path: Path, text_field: str, title_field: str) -> Iterator[tuple[str, str, str]]:
    """reStructuredText (Sphinx docs) as plain text: markup, comments and directives' noise removed."""
    source = _require_text(_decode(path, path.read_bytes()))
    try:
        text, title = _rst_plain(source, str(path))
    except Exception:  # docutils failing on a file must not lose it: read it as plain text instead
        m = _RST_HEADING.search(source)
        yield str(path), (m.group("title").strip() if m else path.stem), source
        return
    yield str(path), title or path.stem, _require_text(text, "no text in the reStructuredText")


def _rst_plain(source: str, where: str) -> tuple[str, str]:
    import docutils.core
    from docutils import nodes

    _rst_setup()
    settings = {
        "report_level": 5,  # nothing to stderr: what docutils cannot read is dropped below
        "halt_level": 5,
        "warning_stream": False,
        "file_insertion_enabled": False,  # never read other files (include::)
        "raw_enabled": False,
        "syntax_highlight": "none",
        "input_encoding": "unicode",
        "doctitle_xform": True,
    }
    doc = docutils.core.publish_doctree(source, source_path=where, settings_overrides=settings)
    drop = (nodes.system_message, nodes.comment, nodes.substitution_definition, nodes.target, nodes.raw)
    for node in list(doc.findall(lambda n: isinstance(n, drop))):
        node.parent.remove(node)
    for node in list(doc.findall(nodes.problematic)):  # a role docutils does not know (Sphinx's)
        node.parent.replace(node, nodes.Text(_rst_role_text(node.astext())))
    for node in list(doc.findall(nodes.Admonition)):  # "Warning: ...", as a rendered page shows it
        first = node.next_node(nodes.paragraph)
        if not isinstance(node, nodes.admonition) and first is not None:
            first.insert(0, nodes.Text(node.tagname.capitalize() + ": "))
    title = doc.get("title") or next((t.astext() for t in doc.findall(nodes.title)), "")
    text = re.sub(r"\n{3,}", "\n\n", doc.astext()).strip()
    return text, title.strip()


_ADOC_TITLE = re.compile(r"^=\s+(\S.*?)\s*$", re.MULTILINE)


def read_asciidoc(path: Path, text_field: str, title_field: str) -> Iterator[tuple[str, str, str]]:
    """AsciiDoc as its source text (like Markdown); the title is its "= Title" line."""
    text = _require_text(_decode(path, path.read_bytes()))
    m = _ADOC_TITLE.search(text)
    yield str(path), (m.group(1) if m else path.stem), text


def read_notebook(path: Path, text_field: str, title_field: str) -> Iterator[tuple[str, str, str]]:
    """A Jupyter notebook: its Markdown cells as they are, code cells fenced, outputs left out."""
    raw = _decode(path, path.read_bytes())
    try:
        nb = json.loads(raw)
    except json.JSONDecodeError as e:
        raise SkipFile(f"not a Jupyter notebook (invalid JSON: {e.msg} at line {e.lineno})") from None
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        raise SkipFile("not a Jupyter notebook (no 'cells' list)")
    meta = nb.get("metadata") if isinstance(nb.get("metadata"), dict) else {}
    info = meta.get("language_info") if isinstance(meta.get("language_info"), dict) else {}
    language = str(info.get("name") or "python")
    parts, title = [], ""
    for cell in cells:
        if not isinstance(cell, dict):
            continue
        src = cell.get("source", "")
        src = ("".join(map(str, src)) if isinstance(src, list) else str(src)).strip()
        if not src:
            continue
        if cell.get("cell_type") == "markdown":
            parts.append(src)
            if not title and (m := _MD_HEADING.search(src)):
                title = m.group(1)
        elif cell.get("cell_type") == "code":
            parts.append(f"```{language}\n{src}\n```")
    text = _require_text("\n\n".join(parts), "notebook has no Markdown or code cells with text")
    yield str(path), title or str(meta.get("title") or "") or path.stem, text


_BLOCKS = {"p", "li", "pre", "blockquote", "dt", "dd", "figcaption", "caption", "tr"}
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}


def _xhtml_text(data: bytes) -> str:
    """A book chapter's text: its headings (as Markdown headings), paragraphs, list items, table
    rows and innermost <div>s (some converters write paragraphs as divs) in order. A chapter has no
    page furniture to strip, and trafilatura drops a chapter's opening heading as the page's title."""
    import lxml.html

    root = lxml.html.document_fromstring(data)
    for junk in list(root.iter("script", "style", "nav")):
        if junk.getparent() is not None:
            junk.drop_tree()
    for br in root.iter("br"):  # a line break between words is a space, not nothing
        br.tail = "\n" + (br.tail or "")
    inner = {*_BLOCKS, *_HEADINGS}
    blocks = []
    for el in root.iter(*inner, "div"):
        if any(a.tag in inner for a in el.iterancestors()):
            continue  # its words are in the enclosing block's
        if el.tag == "div" and any(d.tag in inner or d.tag == "div" for d in el.iterdescendants()):
            continue  # a container: its blocks come one by one
        if el.tag == "tr":
            text = " | ".join(" ".join(c.text_content().split()) for c in el if c.tag in ("td", "th"))
        else:
            text = " ".join(el.text_content().split())
        if text.strip(" |"):
            blocks.append("#" * _HEADINGS[el.tag] + " " + text if el.tag in _HEADINGS else text)
    return "\n\n".join(blocks)


def read_epub(path: Path, text_field: str, title_field: str) -> Iterator[tuple[str, str, str]]:
    """An EPUB book: its chapters' main text in reading order (the spine), as one document."""
    import posixpath
    import zipfile
    from urllib.parse import unquote

    from lxml import etree

    try:
        with zipfile.ZipFile(path) as book:
            names = set(book.namelist())
            container = etree.fromstring(book.read("META-INF/container.xml"))
            opf_path = container.find(".//{*}rootfile").get("full-path")
            opf = etree.fromstring(book.read(opf_path))
            base = posixpath.dirname(opf_path)
            items = {item.get("id"): item for item in opf.iterfind(".//{*}manifest/{*}item")}
            locked = set()
            if "META-INF/encryption.xml" in names:  # DRM; fonts alone are often obfuscated, text not
                enc = etree.fromstring(book.read("META-INF/encryption.xml"))
                locked = {unquote(ref.get("URI", "")) for ref in enc.iterfind(".//{*}CipherReference")}
            title = opf.findtext(".//{http://purl.org/dc/elements/1.1/}title") or ""
            chapters = []
            for ref in opf.iterfind(".//{*}spine/{*}itemref"):
                item = items.get(ref.get("idref"))
                if item is None or ref.get("linear") == "no" or "html" not in (item.get("media-type") or ""):
                    continue
                href = posixpath.normpath(posixpath.join(base, unquote(item.get("href") or "")))
                if href in locked:
                    raise SkipFile("EPUB with DRM (its chapters are encrypted); remove the DRM first")
                if href in names:
                    chapters.append(_xhtml_text(book.read(href)))
    except SkipFile:
        raise
    except (zipfile.BadZipFile, KeyError, AttributeError, ValueError, etree.XMLSyntaxError) as e:
        raise SkipFile(f"not a readable EPUB ({type(e).__name__}: {e})") from None
    text = _require_text("\n\n".join(c for c in chapters if c), "EPUB has no text in its chapters")
    yield str(path), title.strip() or path.stem, text


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"


def _docx_text_boxes(paragraph: Any) -> list[str]:
    """The text of the text boxes (and shapes with text) anchored in a Word paragraph, a block
    each, in order. Word writes each box twice, as a drawing and again as a fallback for older
    readers: the fallback is passed over; a box inside a box is read with the outer one."""
    out = []
    for box in paragraph.iter(_W + "txbxContent"):
        if any(a.tag in (_MC_FALLBACK, _W + "txbxContent") for a in box.iterancestors()):
            continue
        lines = [
            " ".join("".join(t.text or "" for t in p.iter(_W + "t")).split()) for p in box.iter(_W + "p")
        ]
        text = "\n".join(line for line in lines if line)
        if text:
            out.append(text)
    return out


def _docx_notes(document: Any) -> dict[tuple[str, str], str]:
    """(reference kind, id) -> the text of each footnote and endnote of a Word document (Word's
    separator notes left out)."""
    from lxml import etree

    out = {}
    for rel in document.part.rels.values():
        kind = rel.reltype.rsplit("/", 1)[-1]  # .../footnotes, .../endnotes
        if kind not in ("footnotes", "endnotes") or rel.is_external:
            continue
        try:
            root = etree.fromstring(rel.target_part.blob, etree.XMLParser(resolve_entities=False))
        except (etree.XMLSyntaxError, ValueError, KeyError):
            continue  # damaged notes: the document's own text is still read
        for note in root.iter(_W + kind[:-1]):
            if note.get(_W + "type") in ("separator", "continuationSeparator", "continuationNotice"):
                continue
            lines = [
                " ".join("".join(t.text or "" for t in p.iter(_W + "t")).split()) for p in note.iter(_W + "p")
            ]
            text = " ".join(line for line in lines if line)
            if text:
                out[(kind[:-1] + "Reference", note.get(_W + "id", ""))] = text
    return out


def read_docx(path: Path, text_field: str, title_field: str) -> Iterator[tuple[str, str, str]]:
    """A Word document: paragraphs and tables in document order; headings as Markdown headings;
    a text box, and a footnote or endnote ("Note: ..."), after the paragraph it belongs to."""
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    try:
        document = docx.Document(str(path))
        notes = _docx_notes(document)
        blocks, heading = [], ""
        for item in document.iter_inner_content():
            if isinstance(item, Table):
                rows = [" | ".join(c.text.strip() for c in row.cells) for row in item.rows]
                blocks.append("\n".join(r for r in rows if r.strip(" |")))
                continue
            text = item.text.strip()
            boxes = _docx_text_boxes(item._p) + [
                f"Note: {notes[i]}"
                for kind in ("footnoteReference", "endnoteReference")
                for ref in item._p.iter(_W + kind)
                if (i := (kind, ref.get(_W + "id"))) in notes
            ]
            if not text:
                blocks += boxes
                continue
            style = (item.style.name if item.style is not None else "") or ""
            if style == "Title" or style.startswith("Heading"):
                level = int(style.rsplit(" ", 1)[-1]) if style[-1:].isdigit() else 1
                heading = heading or text
                text = "#" * min(level, 6) + " " + text
            blocks += [text, *boxes]
        title = document.core_properties.title or heading
    except PackageNotFoundError:
        raise SkipFile("not a Word .docx file (not a zip package; save a .doc as .docx first)") from None
    except Exception as e:  # python-docx raises many things on damaged files; none may stop the run
        raise SkipFile(f"not a readable Word file ({type(e).__name__}: {e})") from None
    text = _require_text("\n\n".join(b for b in blocks if b.strip()), "Word file has no text")
    yield str(path), title or path.stem, text


_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # a Compound File: a password-protected OOXML file, or an old .ppt/.doc


def _refuse_compound_file(path: Path, why: str) -> None:
    """Skip a file that is a Compound File, not the zip package its name says: a password-protected
    Office or OpenDocument file, or an old binary one renamed."""
    with open(path, "rb") as f:
        if f.read(4) == _OLE_MAGIC:
            raise SkipFile(why)


def _shape_blocks(shapes: Any) -> Iterator[str]:
    """The text of a slide's shapes, top to bottom then left to right (the order a reader sees;
    the file keeps them in drawing order); groups opened, tables as rows of " | "."""

    def place(shape: Any) -> tuple[int, int]:
        return (shape.top or 0, shape.left or 0)

    for shape in sorted(shapes, key=place):
        if shape.shape_type == 6:  # MSO_SHAPE_TYPE.GROUP
            yield from _shape_blocks(shape.shapes)
        elif getattr(shape, "has_table", False) and shape.has_table:
            rows = [" | ".join(c.text.strip() for c in row.cells) for row in shape.table.rows]
            yield "\n".join(r for r in rows if r.strip(" |"))
        elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            lines = [p.text.strip() for p in shape.text_frame.paragraphs]
            yield "\n".join(line for line in lines if line)


def read_pptx(path: Path, text_field: str, title_field: str) -> Iterator[tuple[str, str, str]]:
    """A PowerPoint deck: each shown slide in order, its title as a Markdown heading, its text
    boxes and tables as a reader sees them, then its speaker notes (where decks keep the
    explanation). Hidden slides are left out."""
    from pptx import Presentation
    from pptx.exc import PackageNotFoundError

    _refuse_compound_file(
        path, "password-protected, or an old binary .ppt: save it as .pptx without a password"
    )
    try:
        deck = Presentation(str(path))
        slides, first_title = [], ""
        for slide in deck.slides:
            if slide._element.get("show") == "0":  # hidden in the slide show
                continue
            title_shape = slide.shapes.title
            title = title_shape.text_frame.text.strip() if title_shape is not None else ""
            first_title = first_title or title
            title_id = title_shape.shape_id if title_shape is not None else None
            shapes = [s for s in slide.shapes if s.shape_id != title_id]
            body = [b for b in _shape_blocks(shapes) if b.strip()]
            notes = ""
            if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
                notes = slide.notes_slide.notes_text_frame.text.strip()
            parts = ([f"## {title}"] if title else []) + body + ([f"Notes: {notes}"] if notes else [])
            if parts:
                slides.append("\n\n".join(parts))
        name = deck.core_properties.title or first_title
    except PackageNotFoundError:
        raise SkipFile("not a PowerPoint .pptx file (not a zip package)") from None
    except Exception as e:  # python-pptx raises many things on damaged files; none may stop the run
        raise SkipFile(f"not a readable PowerPoint file ({type(e).__name__}: {e})") from None
    text = _require_text("\n\n".join(slides), "PowerPoint file has no text")
    yield str(path), name or path.stem, text


_ODF_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_ODF_TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"


def _odf_inline(el: Any) -> str:
    """The words of an ODF paragraph: its spans and links, <text:s/> spaces, tabs and line breaks;
    notes (footnote bodies) and tracked deletions left out."""
    t = f"{{{_ODF_TEXT}}}"
    parts = [el.text or ""]
    for child in el:
        tag = child.tag
        if tag == t + "s":
            parts.append(" " * int(child.get(t + "c", "1")))
        elif tag in (t + "tab", t + "line-break"):
            parts.append(" ")
        elif tag not in (t + "note", t + "tracked-changes", t + "bookmark-ref"):
            parts.append(_odf_inline(child))
        parts.append(child.tail or "")
    return "".join(parts)


_ODF_DRAW = "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
_ODF_PRESENTATION = "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0"
_ODF_SVG = "urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0"


def _odf_parts(path: Path, what: str) -> tuple[Any, bytes]:
    """content.xml (parsed) and meta.xml (bytes, b"" if none) of an OpenDocument file."""
    import zipfile

    from lxml import etree

    _refuse_compound_file(
        path, f"password-protected or not an OpenDocument file; save it as {what} without a password"
    )
    try:
        with zipfile.ZipFile(path) as z:
            content = etree.fromstring(z.read("content.xml"), etree.XMLParser(resolve_entities=False))
            meta = z.read("meta.xml") if "meta.xml" in z.namelist() else b""
    except (zipfile.BadZipFile, KeyError, etree.XMLSyntaxError) as e:
        raise SkipFile(f"not a readable OpenDocument file ({type(e).__name__}: {e})") from None
    return content, meta


def _odf_title(meta: bytes) -> str:
    """The document's title from meta.xml (dc:title), or ""."""
    from lxml import etree

    with contextlib.suppress(etree.XMLSyntaxError):
        found = etree.fromstring(meta).find(".//{http://purl.org/dc/elements/1.1/}title") if meta else None
        return (found.text or "").strip() if found is not None else ""
    return ""


def _odf_length(value: str | None) -> float:
    """An ODF length ("2.5cm", "1in", "12pt") in centimetres, to order a slide's shapes."""
    m = re.match(r"\s*(-?[\d.]+)\s*([a-z]*)", value or "")
    if not m:
        return 0.0
    scale = {"cm": 1.0, "mm": 0.1, "in": 2.54, "pt": 2.54 / 72, "pc": 2.54 / 6}.get(m.group(2), 1.0)
    return float(m.group(1)) * scale


def _odf_frame_text(frame: Any) -> str:
    """A slide shape's words: a table's rows as " | ", else its paragraphs, a line each."""
    t, tb = f"{{{_ODF_TEXT}}}", f"{{{_ODF_TABLE}}}"
    rows = []
    for row in frame.iter(tb + "table-row"):
        cells = [
            " ".join(" ".join(_odf_inline(p) for p in c.iter(t + "p")).split())
            for c in row.iter(tb + "table-cell")
        ]
        rows.append(" | ".join(cells))
    if rows:
        return "\n".join(r for r in rows if r.strip(" |"))
    lines = [" ".join(_odf_inline(p).split()) for p in frame.iter(t + "p", t + "h")]
    return "\n".join(line for line in lines if line)


def read_odp(path: Path, text_field: str, title_field: str) -> Iterator[tuple[str, str, str]]:
    """An OpenDocument presentation (LibreOffice Impress): each shown slide in order, its title
    as a Markdown heading, its shapes' text and tables top to bottom then left to right, then its
    speaker notes, as for .pptx. A slide hidden in the show (its page style says so) is left out."""
    content, meta = _odf_parts(path, ".odp")
    draw, pres, svg = (f"{{{ns}}}" for ns in (_ODF_DRAW, _ODF_PRESENTATION, _ODF_SVG))
    style = "{urn:oasis:names:tc:opendocument:xmlns:style:1.0}"
    hidden = {
        s.get(style + "name")
        for s in content.iter(style + "style")
        if any(p.get(pres + "visibility") == "hidden" for p in s.iter(style + "drawing-page-properties"))
    }
    slides, first_title = [], ""
    for page in content.iter(draw + "page"):
        if page.get(draw + "style-name") in hidden:
            continue
        title, body, notes = "", [], []
        shapes = [f for f in page if f.tag in (draw + "frame", draw + "custom-shape", draw + "g")]
        shapes.sort(key=lambda f: (_odf_length(f.get(svg + "y")), _odf_length(f.get(svg + "x"))))
        for shape in shapes:
            text = _odf_frame_text(shape)
            if text and shape.get(pres + "class") == "title" and not title:
                title = " ".join(text.split())
            elif text:
                body.append(text)
        for note in page.iter(pres + "notes"):
            notes += [
                _odf_frame_text(f) for f in note.iter(draw + "frame") if f.get(pres + "class") == "notes"
            ]
        said = " ".join(" ".join(notes).split())
        first_title = first_title or title
        parts = ([f"## {title}"] if title else []) + body + ([f"Notes: {said}"] if said else [])
        if parts:
            slides.append("\n\n".join(parts))
    text = _require_text("\n\n".join(slides), "OpenDocument presentation has no text")
    yield str(path), _odf_title(meta) or first_title or path.stem, text


def read_odt(path: Path, text_field: str, title_field: str) -> Iterator[tuple[str, str, str]]:
    """An OpenDocument text (LibreOffice Writer): headings (as Markdown headings by their outline
    level), paragraphs, list items and table rows, in document order; a footnote or endnote
    ("Note: ...") after the paragraph it is in."""
    content, meta = _odf_parts(path, ".odt")
    t, tb = f"{{{_ODF_TEXT}}}", f"{{{_ODF_TABLE}}}"
    body = content.find("{urn:oasis:names:tc:opendocument:xmlns:office:1.0}body")
    blocks, heading = [], ""
    for el in body.iter(t + "h", t + "p", tb + "table-row") if body is not None else ():
        if el.tag == tb + "table-row":
            cells = [" ".join(_odf_inline(p) for p in c.iter(t + "p")) for c in el.iter(tb + "table-cell")]
            row = " | ".join(" ".join(c.split()) for c in cells)
            if row.strip(" |"):
                blocks.append(row)
            continue
        if any(a.tag in (tb + "table-cell", t + "note") for a in el.iterancestors()):
            continue  # a cell's words are in its row; a note's are left out
        text = " ".join(_odf_inline(el).split())
        notes = [
            "Note: " + " ".join(" ".join(_odf_inline(p).split()) for p in body.iter(t + "p", t + "h"))
            for note in el.iter(t + "note")
            for body in note.iter(t + "note-body")
        ]
        if not text:
            blocks += [n for n in notes if n != "Note: "]
            continue
        if el.tag == t + "h":
            heading = heading or text
            text = "#" * min(int(el.get(t + "outline-level", "1")), 6) + " " + text
        blocks += [text, *(n for n in notes if n != "Note: ")]
    text = _require_text("\n\n".join(blocks), "OpenDocument text has no text")
    yield str(path), _odf_title(meta) or heading or path.stem, text


def read_html(path: Path, text_field: str, title_field: str) -> Iterator[tuple[str, str, str]]:
    import trafilatura

    html = _require_text(_decode(path, path.read_bytes()))
    # favor_recall keeps short pages and lists that the precision mode would drop as boilerplate
    text = trafilatura.extract(html, favor_recall=True, include_comments=False, include_tables=True)
    if not text or not text.strip():
        raise SkipFile("no main text found in the HTML")
    meta = trafilatura.extract_metadata(html)
    title = (meta.title if meta and meta.title else None) or path.stem
    # trafilatura separates paragraphs by one newline; a blank line lets chunking see paragraphs
    yield str(path), title, re.sub(r"\n+", "\n\n", text.strip())


def read_pdf(path: Path, text_field: str, title_field: str) -> Iterator[tuple[str, str, str]]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise SkipFile("encrypted PDF (needs a password); decrypt it first")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = (reader.metadata.title if reader.metadata else None) or path.stem
    except SkipFile:
        raise
    except (PdfReadError, ValueError, KeyError, OSError) as e:
        raise SkipFile(f"not a readable PDF ({type(e).__name__}: {e})") from None
    except Exception as e:  # pypdf raises many things on broken files; none may stop the run
        raise SkipFile(f"not a readable PDF ({type(e).__name__}: {e})") from None
    text = join_broken_words(join_pages([p.strip() for p in drop_page_furniture(pages) if p.strip()]))
    text = text.translate(_LIGATURES)
    yield str(path), str(title), _require_text(text, "PDF has no text layer (scanned?); OCR it first")


# typesetting ligatures a PDF's text layer keeps as one character ("\ufb01le" for "file"): the
# letters they stand for, so that the words match what a reader (and a question) writes
_LIGATURES = str.maketrans(
    {
        "\ufb00": "ff",
        "\ufb01": "fi",
        "\ufb02": "fl",
        "\ufb03": "ffi",
        "\ufb04": "ffl",
        "\ufb05": "st",
        "\ufb06": "st",
    }
)


def join_pages(pages: list[str]) -> str:
    """Pages as paragraphs, except where a sentence runs on over the page break (the page ends
    without closing punctuation and the next begins in lower case): there a line break, as within
    a page, so the sentence stays in one paragraph and one chunk."""
    out = pages[:1]
    for page in pages[1:]:
        runs_on = out[-1][-1:] not in ".!?:;)]\"'”" and page[:1].islower()
        out.append(("\n" if runs_on else "\n\n") + page)
    return "".join(out)


# a word broken at a line's end with a hyphen (or a soft hyphen), lower case going on
_BROKEN = re.compile(r"([^\W\d_]+)([-\u00ad])\n([a-z\u00df-\u00ff][^\W\d_]*)")
_WORD = re.compile(r"[^\W\d_]+")


def join_broken_words(text: str) -> str:
    """Mend the words a PDF's typesetting broke at a line's end ("informa-\ntion"): joined where
    the whole word is found elsewhere in the document, or the break is a soft hyphen; else joined
    keeping the hyphen, as a compound broken at its own hyphen ("well-\nknown") reads right that
    way. Chunks, quotes and grounding checks then see the words a reader sees."""
    if "-\n" not in text and "\u00ad\n" not in text:
        return text
    words = Counter(w.lower() for w in _WORD.findall(text))

    def mend(m: re.Match[str]) -> str:
        head, mark, tail = m.groups()
        if mark == "\u00ad" or words[(head + tail).lower()]:
            return head + tail
        return f"{head}-{tail}"

    return _BROKEN.sub(mend, text)


_NUMBER = re.compile(r"\d+")


def drop_page_furniture(pages: list[str]) -> list[str]:
    """Pages without their running headers and footers: a line of up to 80 characters among a
    page's first or last two that recurs, numbers aside ("Page 3 of 40"), on at least half the
    pages (and on three)."""
    if len(pages) < 3:
        return pages

    def key(line: str) -> str:
        return _NUMBER.sub("#", " ".join(line.split())).lower() if len(line.strip()) <= 80 else ""

    def edges(lines: list[str]) -> set[int]:
        filled = [i for i, line in enumerate(lines) if line.strip()]
        return set(filled[:2] + filled[-2:])

    split = [(lines, edges(lines)) for lines in (page.split("\n") for page in pages)]
    seen = Counter(k for lines, ends in split for k in {key(lines[i]) for i in ends} if k)
    furniture = {k for k, n in seen.items() if n >= max(3, (len(pages) + 1) // 2)}
    if not furniture:
        return pages
    return [
        "\n".join(line for i, line in enumerate(lines) if i not in ends or key(line) not in furniture)
        for lines, ends in split
    ]


def _row_doc(path: Path, where: str, row: object, text_field: str, title_field: str) -> tuple[str, str, str]:
    if not isinstance(row, dict):
        raise SkipFile(f"{where}: expected a JSON object, got {type(row).__name__}")
    text = row.get(text_field)
    if not isinstance(text, str):
        keys = ", ".join(sorted(map(str, row))) or "none"
        raise SkipFile(f"{where}: no string field '{text_field}' (fields: {keys}); set text_field")
    _require_text(text, f"{where}: field '{text_field}' is empty")
    title = row.get(title_field)
    return where, (str(title) if title else f"{path.stem} {where.rsplit(':', 1)[-1]}"), text


class RowSkipped(Exception):  # noqa: N818
    """One row of a multi-document file is unusable; the others are still read."""

    def __init__(self, location: str, reason: str):
        super().__init__(reason)
        self.location = location


def _row(
    path: Path, where: str, row: object, text_field: str, title_field: str
) -> tuple[str, str, str] | RowSkipped:
    """A row of a multi-document file as a document, or as the reason it is skipped."""
    try:
        return _row_doc(path, where, row, text_field, title_field)
    except SkipFile as e:
        return RowSkipped(where, str(e).removeprefix(f"{where}: "))


def read_jsonl(path: Path, text_field: str, title_field: str) -> Iterator[tuple[str, str, str] | RowSkipped]:
    data = path.read_bytes()
    text = _require_text(_decode(path, data))
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            yield RowSkipped(where, f"invalid JSON ({e.msg} at column {e.colno})")
            continue
        yield _row(path, where, row, text_field, title_field)


def read_csv(path: Path, text_field: str, title_field: str) -> Iterator[tuple[str, str, str] | RowSkipped]:
    """A table with a header line (.csv, or .tsv): one document per row, from its `text_field`
    column. The delimiter of a .csv is found from its start (",", ";" as spreadsheets in many
    locales write it, tab or "|"); a row's location is the line it starts on."""
    import csv
    import io

    text = _require_text(_decode(path, path.read_bytes()))
    if path.suffix.lower() == ".tsv":
        delimiter = "\t"
    else:
        try:
            delimiter = csv.Sniffer().sniff(text[:65536], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    csv.field_size_limit(1 << 30)  # a document per cell: far longer than the 128 KB default
    rows = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    try:
        columns = rows.fieldnames or []
    except csv.Error as e:
        raise SkipFile(f"not a readable CSV file ({e})") from None
    if text_field not in columns:
        shown = ", ".join(c for c in columns if c) or "none"
        raise SkipFile(f"no column '{text_field}' in the header line (columns: {shown}); set text_field")
    start = rows.line_num + 1
    while True:
        where = f"{path}:{start}"
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as e:  # the rest cannot be split into rows
            yield RowSkipped(where, f"not CSV from here on ({e})")
            return
        start = rows.line_num + 1
        yield _row(path, where, {k: v for k, v in row.items() if k is not None}, text_field, title_field)


def read_xlsx(path: Path, text_field: str, title_field: str) -> Iterator[tuple[str, str, str] | RowSkipped]:
    """An Excel workbook's rows as documents, as for .csv: every sheet whose first non-empty row
    (its header) has a `text_field` column; a row's location is `PATH:SHEET!ROW`. Cell values as
    Excel shows them computed (the cached results, not formulas)."""

    from openpyxl import load_workbook

    _refuse_compound_file(
        path, "password-protected, or an old binary .xls: save it as .xlsx without a password"
    )
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises many things on damaged files; none may stop the run
        raise SkipFile(f"not a readable Excel workbook ({type(e).__name__}: {e})") from None
    headers: list[str] = []  # each sheet's header, for the line when none has the column
    has_column = False
    try:
        for sheet in book.worksheets:
            header: list[str] = []
            try:
                for number, row in enumerate(sheet.iter_rows(values_only=True), 1):
                    if not header:
                        header = [str(c).strip() if c is not None else "" for c in row]
                        if not any(header):
                            header = []
                            continue
                        headers.append(f"{sheet.title}: {', '.join(c for c in header if c)}")
                        if text_field not in header:
                            break
                        has_column = True
                        continue
                    if all(c is None for c in row):
                        continue
                    where = f"{path}:{sheet.title}!{number}"
                    cells = {k: str(v) for k, v in zip(header, row, strict=False) if k and v is not None}
                    yield _row(path, where, cells, text_field, title_field)
            except Exception as e:  # a damaged sheet: what it gave so far stays, the next sheets are read
                yield RowSkipped(
                    f"{path}:{sheet.title}", f"cannot read the rest of the sheet ({type(e).__name__}: {e})"
                )
    finally:
        book.close()
    if not has_column:
        shown = "; ".join(headers) or "no rows"
        raise SkipFile(f"no sheet has a column '{text_field}' in its header line ({shown}); set text_field")


_ODS_WIDTH = 1024  # columns read from a row: sheets repeat an empty cell to the last column


def _ods_cells(row: Any) -> list[str]:
    """A spreadsheet row's cells as shown (each cell's paragraphs, a line each), repeats expanded
    up to _ODS_WIDTH, trailing empty cells dropped."""
    t, tb = f"{{{_ODF_TEXT}}}", f"{{{_ODF_TABLE}}}"
    cells: list[str] = []
    for cell in row:
        if cell.tag not in (tb + "table-cell", tb + "covered-table-cell"):
            continue
        text = "\n".join(" ".join(_odf_inline(p).split()) for p in cell.iter(t + "p")).strip()
        repeat = int(cell.get(tb + "number-columns-repeated", "1") or 1)
        cells += [text] * max(0, min(repeat, _ODS_WIDTH - len(cells)))
    while cells and not cells[-1]:
        cells.pop()
    return cells


def read_ods(path: Path, text_field: str, title_field: str) -> Iterator[tuple[str, str, str] | RowSkipped]:
    """An OpenDocument spreadsheet's (LibreOffice Calc) rows as documents, as for .xlsx: every
    sheet whose first non-empty row (its header) has a `text_field` column; a row's location is
    `PATH:SHEET!ROW`; cells as the sheet shows them. A row the file stores once with a repeat
    count (identical rows) is read once."""
    content, _ = _odf_parts(path, ".ods")
    tb = f"{{{_ODF_TABLE}}}"
    headers: list[str] = []
    has_column = False
    for sheet in content.iter(tb + "table"):
        name, header, number = sheet.get(tb + "name", ""), [], 0
        for row in sheet.iter(tb + "table-row"):
            first = number + 1
            number += int(row.get(tb + "number-rows-repeated", "1") or 1)
            cells = _ods_cells(row)
            if not any(cells):
                continue
            if not header:
                header = cells
                headers.append(f"{name}: {', '.join(c for c in header if c)}")
                if text_field not in header:
                    break
                has_column = True
                continue
            values = {k: v for k, v in zip(header, cells, strict=False) if k and v}
            yield _row(path, f"{path}:{name}!{first}", values, text_field, title_field)
    if not has_column:
        shown = "; ".join(headers) or "no rows"
        raise SkipFile(f"no sheet has a column '{text_field}' in its header line ({shown}); set text_field")


def read_parquet(
    path: Path, text_field: str, title_field: str
) -> Iterator[tuple[str, str, str] | RowSkipped]:
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception as e:
        raise SkipFile(f"not a readable Parquet file ({type(e).__name__}: {e})") from None
    if text_field not in schema.names:
        raise SkipFile(f"no column '{text_field}' (columns: {', '.join(schema.names)}); set text_field")
    columns = [text_field] + ([title_field] if title_field in schema.names else [])
    rows = pq.read_table(path, columns=columns).to_pylist()
    if not rows:
        raise SkipFile("Parquet file has no rows")
    for i, row in enumerate(rows):
        where = f"{path}:{i}"
        yield _row(path, where, row, text_field, title_field)


READERS: dict[str, Reader] = {
    ".txt": read_text,
    ".text": read_text,
    ".md": read_markdown,
    ".markdown": read_markdown,
    ".mdx": read_markdown,
    ".rst": read_rst,
    ".rest": read_rst,
    ".adoc": read_asciidoc,
    ".asciidoc": read_asciidoc,
    ".ipynb": read_notebook,
    ".docx": read_docx,
    ".pptx": read_pptx,
    ".odt": read_odt,
    ".odp": read_odp,
    ".epub": read_epub,
    ".html": read_html,
    ".htm": read_html,
    ".pdf": read_pdf,
    ".jsonl": read_jsonl,
    ".csv": read_csv,
    ".tsv": read_csv,
    ".xlsx": read_xlsx,
    ".ods": read_ods,
    ".parquet": read_parquet,
}
