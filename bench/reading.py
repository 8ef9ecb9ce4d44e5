"""Reading a folder of documents: in this process against worker processes.

    python bench/reading.py [--pdfs 40] [--pages 25] [--docx 100] [--pptx 50] [--html 300] [--md 300]
                            [--workers N]

Writes a corpus of real files (PDFs with fpdf2, Word files with python-docx, PowerPoint decks with
python-pptx, HTML and Markdown pages), then reads it with `augment.ingest` twice: every file in this process (the peer), and
the slow types (PDF, Word, EPUB, HTML, reST) in `--workers` processes (default: what the command
line uses, the cores up to 8), keeping what they read in a read store (RUN/reads.sqlite in a
run), then once more as a re-run of the unchanged folder does, from the store. Prints one table:
files and seconds per type read alone, the three totals and their speed-ups over the first, and
whether all gave the same documents in the same order.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from augment.ingest import auto_read_workers, ingest
from augment.ingest.readers import READERS
from augment.pipeline.cache import ReadCache

# the words of the bundled example manual, drawn at random: prose-like text of a product manual
# (ASCII only: fpdf2's built-in fonts have no other characters)
MANUAL = Path(__file__).resolve().parents[1] / "examples" / "docs" / "kestrel-k2-manual.md"
WORDS = [w for w in MANUAL.read_text(encoding="utf-8").split() if w.isascii()]


def make_corpus(
    folder: Path, pdfs: int, pages: int, docx_files: int, pptx_files: int, html: int, md: int
) -> None:
    import docx
    from fpdf import FPDF
    from pptx import Presentation

    rng = random.Random(0)

    def para() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(120)) + "."

    for i in range(pdfs):
        pdf = FPDF()
        pdf.set_font("Helvetica", size=10)
        for p in range(pages):
            pdf.add_page()
            pdf.multi_cell(0, 5, f"Manual {i}, page {p}\n" + "\n\n".join(para() for _ in range(4)))
        pdf.output(str(folder / f"manual{i:04d}.pdf"))
    for i in range(docx_files):
        d = docx.Document()
        d.add_heading(f"Report {i}", 1)
        for _ in range(20):
            d.add_paragraph(para())
        d.save(str(folder / f"report{i:04d}.docx"))
    for i in range(pptx_files):
        deck = Presentation()
        for s in range(12):
            slide = deck.slides.add_slide(deck.slide_layouts[1])
            slide.shapes.title.text = f"Deck {i}, slide {s}"
            slide.placeholders[1].text = "\n".join(para()[:200] for _ in range(3))
            slide.notes_slide.notes_text_frame.text = para()
        deck.save(str(folder / f"deck{i:04d}.pptx"))
    for i in range(html):
        body = "".join(f"<p>{para()}</p>" for _ in range(10))
        (folder / f"page{i:04d}.html").write_text(
            f"<html><head><title>Page {i}</title></head><body><nav>Home</nav><article><h1>Page {i}</h1>"
            f"{body}</article></body></html>",
            encoding="utf-8",
        )
    for i in range(md):
        (folder / f"note{i:04d}.md").write_text(
            f"# Note {i}\n\n" + "\n\n".join(para() for _ in range(10)), encoding="utf-8"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pdfs", type=int, default=40)
    ap.add_argument("--pages", type=int, default=25)
    ap.add_argument("--docx", type=int, default=100)
    ap.add_argument("--pptx", type=int, default=50)
    ap.add_argument("--html", type=int, default=300)
    ap.add_argument("--md", type=int, default=300)
    ap.add_argument("--workers", type=int, default=auto_read_workers())
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_corpus(folder, args.pdfs, args.pages, args.docx, args.pptx, args.html, args.md)
        per_type: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
        for path in sorted(folder.iterdir()):
            t = time.perf_counter()
            list(READERS[path.suffix](path, "text", "title"))
            per_type[path.suffix][0] += 1
            per_type[path.suffix][1] += time.perf_counter() - t
        t = time.perf_counter()
        alone = ingest([str(folder)], workers=1)
        here = time.perf_counter() - t
        store = ReadCache(folder / "reads.sqlite")
        t = time.perf_counter()
        pooled = ingest([str(folder)], workers=args.workers, store=store)
        store.save()
        spread = time.perf_counter() - t
        t = time.perf_counter()
        rerun = ingest([str(folder)], workers=args.workers, store=ReadCache(folder / "reads.sqlite"))
        again = time.perf_counter() - t

    def docs(result) -> list[tuple[str, str, str]]:
        return [(d.doc_id, d.path, d.text) for d in result.documents]

    same = docs(alone) == docs(pooled) == docs(rerun)
    table = Table(title=f"augment.ingest on {sum(n for n, _ in per_type.values())} files")
    for col in ("what", "files", "seconds", "ms per file", "speed-up"):
        table.add_column(col, justify="left" if col == "what" else "right")
    for suffix, (n, secs) in sorted(per_type.items()):
        table.add_row(f"{suffix} alone", str(n), f"{secs:.2f}", f"{1000 * secs / n:.1f}", "")
    files = len(alone.documents) + len(alone.skipped)
    rows = [
        ("all, this process (peer)", here),
        (f"all, {pooled.workers} processes, kept in the store", spread),
        (f"re-run: {rerun.from_store} from the store", again),
    ]
    for what, secs in rows:
        table.add_row(what, str(files), f"{secs:.2f}", f"{1000 * secs / files:.1f}", f"{here / secs:.2f}x")
    Console().print(table)
    print(f"same documents in the same order, all three: {same}")


if __name__ == "__main__":
    main()
