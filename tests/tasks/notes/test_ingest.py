"""Reading Markdown, HTML, text and PDF notes into chunks that cite file, heading and span."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.tasks.notes.notes_files import PDF_LINES, write_notes

from shipyard.errors import DataError
from shipyard.tasks.notes.ingest import (
    Chunk,
    chunk_document,
    deduplicate,
    markdown_document,
    notes_files,
    read_document,
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    notes, _ = write_notes(tmp_path_factory.mktemp("ingest"))
    return notes


def _chunks(folder: Path, name: str) -> tuple[str, list[Chunk]]:
    document = read_document(folder / name, name)
    return document.text, chunk_document(document, max_chars=400)


def test_every_kind_of_note_is_found_in_path_order(folder: Path):
    names = [path.name for path in notes_files(folder)]
    assert names == ["expenses.html", "leave.pdf", "office.txt", "security.md"]


def test_a_chunk_span_points_at_its_text_in_the_extracted_file(folder: Path):
    for name in ("expenses.html", "leave.pdf", "office.txt", "security.md"):
        text, chunks = _chunks(folder, name)
        assert chunks, name
        for chunk in chunks:
            assert chunk.file == name
            assert text[chunk.start : chunk.end] == chunk.text
            assert len(chunk.text) <= 400


def test_markdown_chunks_carry_their_heading_path(folder: Path):
    _, chunks = _chunks(folder, "security.md")
    headings = {chunk.heading for chunk in chunks}
    assert "Security > Threat model" in headings
    assert "Security > What is checked" in headings
    checked = next(chunk for chunk in chunks if "**Bundles.**" in chunk.text)
    assert checked.heading == "Security > What is checked"


def test_html_keeps_visible_text_and_headings(folder: Path):
    text, chunks = _chunks(folder, "expenses.html")
    assert "document.write" not in text
    assert "color: black" not in text
    meals = next(chunk for chunk in chunks if "25 euros" in chunk.text)
    assert meals.heading == "Travel expenses > Meals"
    assert "Train tickets are reimbursed in second class." in text


def test_pdf_text_is_extracted_with_a_page_heading(folder: Path):
    text, chunks = _chunks(folder, "leave.pdf")
    for line in PDF_LINES:
        assert line in text
    assert {chunk.heading for chunk in chunks} == {"page 1"}


def test_code_fences_hide_heading_lookalikes():
    document = markdown_document("a.md", "# Real\n\n```yaml\n# not a heading\n```\n\nText.")
    assert [title for _, _, title in document.headings] == ["Real"]


def test_duplicates_are_dropped_whatever_their_case_and_spacing():
    chunks = [Chunk("a.md", "", 0, 5, "Same  text"), Chunk("b.md", "", 0, 9, "same text")]
    kept, dropped = deduplicate(chunks)
    assert [chunk.file for chunk in kept] == ["a.md"]
    assert dropped == 1


def test_an_unreadable_note_is_named(tmp_path: Path):
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a pdf")
    with pytest.raises(DataError, match=r"broken\.pdf"):
        read_document(tmp_path / "broken.pdf", "broken.pdf")
    with pytest.raises(DataError, match="holds no"):
        notes_files(_empty(tmp_path))


def _empty(tmp_path: Path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "image.png").write_bytes(b"\x89PNG")
    return folder
