from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from augment.cli import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    """A private copy of examples/ (docs and config)."""
    dst = tmp_path / "examples"
    shutil.copytree(EXAMPLES, dst)
    return dst


class CliResult:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """Run `augment ARGS...` in-process; returns exit code, stdout and stderr."""
    monkeypatch.delenv("AUGMENT_DEBUG", raising=False)
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exc:
            main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(int(exc.value.code or 0), captured.out, captured.err)

    return run


def make_pdf(
    path: Path, paragraphs: list[str], title: str | None = None, password: str | None = None
) -> Path:
    """A real PDF with a text layer (fpdf2), optionally encrypted with a user password (pypdf)."""
    from fpdf import FPDF

    pdf = FPDF()
    if title:
        pdf.set_title(title)
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    for para in paragraphs:
        pdf.multi_cell(0, 6, para)
        pdf.ln(3)
    pdf.output(str(path))
    if password:
        from pypdf import PdfReader, PdfWriter

        writer = PdfWriter(clone_from=PdfReader(path))
        writer.encrypt(user_password=password, owner_password=password + "-owner")
        with open(path, "wb") as f:
            writer.write(f)
    return path
