r"""Reading a folder of notes into heading-aware chunks with their source and character span.

Markdown, plain text, HTML and PDF files are read into plain text (the *extracted text*):
Markdown and plain text as they are, HTML through the standard library's parser (scripts and
styles dropped, ``h1``-``h6`` kept as headings), PDF through pypdf (one heading per page).
Each file is cut at its headings into sections, and each section into chunks of whole
paragraphs (whole sentences when a paragraph is too long) of at most ``max_chars``
characters. A chunk keeps its file, the path of headings above it (``Serving > Auth``) and its
character span in the file's extracted text, so that a citation points at the exact passage.
Chunks whose normalised text was already seen are dropped (deduplication).

Examples
--------
>>> document = markdown_document("a.md", "# Title\n\nFirst paragraph.\n\n## Part\n\nSecond.")
>>> [(chunk.heading, chunk.text) for chunk in chunk_document(document, max_chars=200)]
[('Title', 'First paragraph.'), ('Title > Part', 'Second.')]
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from shipyard.errors import DataError, require

__all__ = [
    "SUFFIXES",
    "Chunk",
    "Document",
    "chunk_document",
    "deduplicate",
    "file_sha256",
    "html_document",
    "markdown_document",
    "normalised",
    "notes_files",
    "read_document",
    "sentence_spans",
]

SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".html": "html"}
SUFFIXES |= {".htm": "html", ".pdf": "pdf"}

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_FENCE = re.compile(r"^(```|~~~)", re.MULTILINE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`\"'(\[*_])|\n\s*\n|\n(?=\s*[-*|] )")


@dataclass(frozen=True)
class Document:
    """One file's extracted text and where its headings start.

    ``headings`` holds ``(offset, level, title)``, offsets into ``text``, in order.
    """

    path: str
    text: str
    headings: tuple[tuple[int, int, str], ...]


@dataclass(frozen=True)
class Chunk:
    """A passage of a file: its text, the headings above it and its span ``[start, end)``."""

    file: str
    heading: str
    start: int
    end: int
    text: str

    @property
    def embedded_text(self) -> str:
        """What the encoder reads: the heading path as context, then the passage."""
        return f"{self.heading}\n{self.text}" if self.heading else self.text


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (what decides that it changed)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def notes_files(folder: Path) -> list[Path]:
    """Every readable note under ``folder`` (recursively), sorted by relative path.

    Raises
    ------
    DataError
        When the folder does not exist or holds no readable note.
    """
    if not folder.is_dir():
        raise DataError(
            f"The notes folder '{folder}' does not exist; set notes.folder to a folder of "
            "Markdown, text, HTML or PDF files."
        )
    files = sorted(
        (path for path in folder.rglob("*") if path.is_file() and path.suffix.lower() in SUFFIXES),
        key=lambda path: path.relative_to(folder).as_posix(),
    )
    if not files:
        raise DataError(
            f"The notes folder '{folder}' holds no {', '.join(sorted(SUFFIXES))} file."
        )
    return files


def read_document(path: Path, relative: str) -> Document:
    """Read one file into its extracted text, by its suffix.

    Raises
    ------
    DataError
        When the file cannot be decoded or parsed (the file is named).
    """
    kind = SUFFIXES.get(path.suffix.lower())
    try:
        if kind == "pdf":
            return pdf_document(relative, path.read_bytes())
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(
            f"The note '{relative}' is not UTF-8 text ({error}); convert it to UTF-8."
        ) from error
    if kind == "html":
        return html_document(relative, text)
    if kind == "markdown":
        return markdown_document(relative, text)
    return Document(relative, text.replace("\r\n", "\n"), ())


def markdown_document(relative: str, text: str) -> Document:
    """Markdown as it is; ``#`` headings outside code fences."""
    text = text.replace("\r\n", "\n")
    fences = [match.start() for match in _FENCE.finditer(text)]
    headings = []
    for match in _HEADING.finditer(text):
        inside_fence = sum(1 for offset in fences if offset < match.start()) % 2 == 1
        if not inside_fence:
            headings.append((match.start(), len(match.group(1)), match.group(2).strip()))
    return Document(relative, text, tuple(headings))


class _HTMLText(HTMLParser):
    """Collects an HTML page's visible text; headings become heading entries."""

    _BLOCKS = frozenset(
        [
            "p",
            "div",
            "section",
            "article",
            "li",
            "ul",
            "ol",
            "table",
            "tr",
            "br",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "pre",
            "blockquote",
        ]
    )
    _SKIPPED = frozenset(("script", "style", "head", "template", "noscript"))

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.length = 0
        self.headings: list[tuple[int, int, str]] = []
        self._skip = 0
        self._heading: tuple[int, int] | None = None

    def _write(self, text: str) -> None:
        self.parts.append(text)
        self.length += len(text)

    def _break(self) -> None:
        if self.parts and not "".join(self.parts[-2:]).endswith("\n\n"):
            self._write("\n\n" if not self.parts[-1].endswith("\n") else "\n")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIPPED:
            self._skip += 1
        elif tag in self._BLOCKS:
            self._break()
            if len(tag) == 2 and tag[0] == "h" and tag[1].isdigit():
                self._heading = (self.length, int(tag[1]))

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIPPED:
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCKS:
            if self._heading is not None and tag == f"h{self._heading[1]}":
                start, level = self._heading
                title = " ".join("".join(self.parts)[start:].split())
                if title:
                    self.headings.append((start, level, title))
                self._heading = None
            self._break()

    def handle_data(self, data: str) -> None:
        if not self._skip:
            text = re.sub(r"\s+", " ", data)
            if text.strip() or (self.parts and not self.parts[-1].endswith((" ", "\n"))):
                self._write(text.lstrip() if self.length == 0 else text)


def html_document(relative: str, text: str) -> Document:
    """Visible text of an HTML page; ``h1``-``h6`` become headings."""
    parser = _HTMLText()
    parser.feed(text)
    parser.close()
    return Document(relative, "".join(parser.parts), tuple(parser.headings))


def pdf_document(relative: str, data: bytes) -> Document:
    """Text of each PDF page (pypdf); every page starts a heading ``page N``.

    Raises
    ------
    DataError
        When pypdf cannot read the file.
    """
    require("pypdf", "notes")
    import io

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        pages = [page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages]
    except (PdfReadError, ValueError, KeyError) as error:
        raise DataError(f"The PDF '{relative}' cannot be read ({error}).") from error
    text, headings = "", []
    for number, page in enumerate(pages, start=1):
        headings.append((len(text), 1, f"page {number}"))
        text += page.strip() + "\n\n"
    return Document(relative, text, tuple(headings))


def _sections(document: Document) -> Iterator[tuple[str, int, int]]:
    """Yield ``(heading path, start, end)`` of each section of a document."""
    stack: list[tuple[int, str]] = []
    bounds = [*document.headings, (len(document.text), 0, "")]
    if not document.headings or document.headings[0][0] > 0:
        yield "", 0, bounds[0][0]
    for (offset, level, title), (following, _, _) in itertools.pairwise(bounds):
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        # A Markdown heading line is context, not passage text (an HTML heading's text is).
        body = offset
        if document.text.startswith("#", offset):
            line_end = document.text.find("\n", offset, following)
            body = following if line_end < 0 else line_end + 1
        yield " > ".join(name for _, name in stack), body, following


def _pieces(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """Yield the spans of the paragraphs of ``text[start:end]`` (blank-line separated)."""
    for match in re.finditer(r"\S(?:.*?\S)?(?=\n\s*\n|\s*$)", text[start:end], re.DOTALL):
        yield start + match.start(), start + match.end()


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Spans of the sentences of ``text[start:end]``, trimmed of surrounding space.

    Examples
    --------
    >>> text = "One idea. Two ideas! Three?"
    >>> [text[a:b] for a, b in sentence_spans(text)]
    ['One idea.', 'Two ideas!', 'Three?']
    """
    end = len(text) if end is None else end
    spans, cursor = [], start
    for match in _SENTENCE_END.finditer(text, start, end):
        spans.append((cursor, match.start()))
        cursor = match.end()
    spans.append((cursor, end))
    trimmed = []
    for low, high in spans:
        piece = text[low:high]
        stripped = piece.strip()
        if stripped:
            offset = low + piece.index(stripped)
            trimmed.append((offset, offset + len(stripped)))
    return trimmed


def _split_long(text: str, start: int, end: int, max_chars: int) -> Iterator[tuple[int, int]]:
    """Cut a paragraph longer than ``max_chars`` at sentence ends (hard cuts as a last resort)."""
    low = high = start
    for sentence_start, sentence_end in sentence_spans(text, start, end):
        if sentence_end - low > max_chars and high > low:
            yield low, high
            low = sentence_start
        while sentence_end - low > max_chars:
            yield low, low + max_chars
            low += max_chars
        high = sentence_end
    if high > low:
        yield low, high


def chunk_document(document: Document, max_chars: int = 800) -> list[Chunk]:
    """Cut a document into chunks of whole paragraphs, each within one section.

    Parameters
    ----------
    document
        The file's extracted text and headings.
    max_chars
        The longest chunk, in characters (a longer paragraph is cut at sentence ends).
    """
    text, chunks = document.text, []
    for heading, section_start, section_end in _sections(document):
        low = high = -1
        for piece_start, piece_end in _pieces(text, section_start, section_end):
            for part_start, part_end in _split_long(text, piece_start, piece_end, max_chars):
                if low >= 0 and part_end - low > max_chars:
                    chunks.append(Chunk(document.path, heading, low, high, text[low:high]))
                    low = -1
                if low < 0:
                    low = part_start
                high = part_end
        if low >= 0:
            chunks.append(Chunk(document.path, heading, low, high, text[low:high]))
    return chunks


def normalised(text: str) -> str:
    """Lower case, single spaces: what two passages must share to count as duplicates."""
    return " ".join(text.lower().split())


def deduplicate(chunks: Iterable[Chunk]) -> tuple[list[Chunk], int]:
    """Keep the first chunk of each normalised text; return the kept ones and the dropped count."""
    seen: set[str] = set()
    kept, dropped = [], 0
    for chunk in chunks:
        key = hashlib.sha256(normalised(chunk.text).encode()).hexdigest()
        if key in seen:
            dropped += 1
            continue
        seen.add(key)
        kept.append(chunk)
    return kept, dropped
