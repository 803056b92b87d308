"""Sniffing a delimited text file: its encoding, delimiter and header, and what is wrong with it.

Every command that reads a user's text file goes through :func:`sniff_text` first (by way of
:mod:`shipyard.data.sources`), so a file is understood, or refused, the same way everywhere.

Rules
-----
Encoding
    UTF-8, with or without a byte-order mark (or UTF-16 with a mark). The whole file is checked:
    a file that is not valid UTF-8 is refused with the byte offset and line of the first bad
    byte, unless an encoding is given (``--encoding cp1252``, ``data.encoding``). When UTF-8
    text comes before the bad byte, the file mixes encodings (two exports pasted together) and
    the message says so: no single encoding reads such a file correctly, so the hint is to
    re-export it, not to name an encoding.
Delimiter
    Comma, semicolon, tab or pipe: the one that splits the first 50 lines into the same number
    of fields (more than one), the most fields winning; else runs of spaces or tabs when those
    split every line alike (the classic ``.data`` files). A ``.tsv`` file is tab-separated.
Header
    Detected conservatively: the first row is taken as data only when every column whose other
    values are all numbers also holds a number in the first row. Otherwise it is the header.
    ``header=False`` (``--no-header``) forces no header, ``header=True`` forces one. Columns of
    a headerless file are named ``column_1`` ... ``column_N``.
Refused
    An empty file, a file with a header but no rows, and a header that names a column twice.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.errors import ConfigError, DataError

__all__ = ["WHITESPACE", "ReadOptions", "TextFormat", "check_utf8", "sniff_text"]

SNIFF_BYTES = 65536
SNIFF_LINES = 50
DELIMITERS = ",;\t|"
WHITESPACE = r"\s+"
"""The delimiter of a file whose fields are separated by runs of spaces or tabs."""
BLOCK_BYTES = 1 << 20
UTF8_FAMILY = frozenset({"utf-8", "utf-8-sig"})


@dataclass(frozen=True)
class ReadOptions:
    """How to read a text file, when sniffing should not decide.

    Parameters
    ----------
    encoding
        A Python codec name (``cp1252``, ``latin-1``); ``None`` reads UTF-8 and refuses
        anything else.
    header
        ``True``: the first row names the columns; ``False``: it is data; ``None``: detect.
    """

    encoding: str | None = None
    header: bool | None = None


@dataclass(frozen=True)
class TextFormat:
    """What sniffing found out about a delimited text file."""

    encoding: str
    delimiter: str
    compressed: bool
    header: bool = True
    names: tuple[str, ...] = ()

    @property
    def pandas_options(self) -> dict[str, Any]:
        """The ``pandas.read_csv`` arguments that read the file as sniffed."""
        options: dict[str, Any] = {"sep": self.delimiter, "encoding": self.encoding}
        if not self.header:
            options.update(header=None, names=list(self.names))
        return options


def _opener(path: Path) -> Any:
    return gzip.open if path.name.lower().endswith(".gz") else open


def _codec(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise ConfigError(
            f"Unknown encoding '{name}': use a Python codec name such as utf-8, cp1252 or latin-1."
        ) from None


def check_utf8(path: Path, skip: int = 0) -> None:
    """Read the whole file as UTF-8; refuse it at the first byte that is not.

    Parameters
    ----------
    path
        The file (``.gz`` files are checked after decompression).
    skip
        Bytes to skip first (a byte-order mark).

    Raises
    ------
    DataError
        Naming the byte offset and line of the first bad byte, and whether the file mixes
        UTF-8 with another encoding.
    """
    offset, lines, mixed = skip, 1, False
    carry = b""
    with _opener(path)(path, "rb") as handle:
        handle.read(skip)
        for block in iter(lambda: handle.read(BLOCK_BYTES), b""):
            data, start = carry + block, offset - len(carry)
            try:
                data.decode("utf-8")
                good, carry = len(data), b""
            except UnicodeDecodeError as error:
                good = error.start
                if error.reason != "unexpected end of data" or len(data) - good >= 4:
                    before = data[:good]
                    mixed = mixed or not before.isascii()
                    _refuse_encoding(
                        path, start + good, lines + before.count(b"\n"), data[good], mixed
                    )
                carry = data[good:]  # a character cut by the block's end: finish it next time
            mixed = mixed or not data[:good].isascii()
            lines += data[:good].count(b"\n")
            offset += len(block)
    if carry:
        _refuse_encoding(path, offset - len(carry), lines, carry[0], mixed, truncated=True)


def _refuse_encoding(
    path: Path, offset: int, line: int, byte: int, mixed: bool, truncated: bool = False
) -> None:
    where = f"byte {offset} (line {line})"
    if truncated:
        raise DataError(
            f"'{path}' is not valid UTF-8: it ends inside a character at {where}; the file "
            "looks cut short. Export it again."
        )
    if mixed:
        raise DataError(
            f"'{path}' mixes encodings: it holds UTF-8 text, but {where} is 0x{byte:02x}, "
            "which is not UTF-8 (parts were saved as latin-1 or cp1252?). No one encoding "
            "reads it correctly: re-export it as UTF-8."
        )
    raise DataError(
        f"'{path}' is not valid UTF-8: {where} is 0x{byte:02x}. Save it as UTF-8, or name "
        "its encoding, for example --encoding cp1252 (data.encoding: cp1252)."
    )


def _encoding(path: Path, head: bytes, chosen: str | None) -> str:
    if chosen is not None:
        name = _codec(chosen)
        if name in UTF8_FAMILY:
            check_utf8(path, len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0)
        return name
    if head.startswith(codecs.BOM_UTF8):
        check_utf8(path, len(codecs.BOM_UTF8))
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    check_utf8(path)
    return "utf-8"


def _rows(lines: list[str], delimiter: str) -> list[list[str]]:
    if delimiter == WHITESPACE:
        return [line.split() for line in lines]
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter, skipinitialspace=True)
    return [row for row in reader if row]


def _delimiter(path: Path, lines: list[str]) -> str:
    """Return the delimiter that splits the sample's lines alike into the most fields."""
    if ".tsv" in path.name.lower():
        return "\t"
    best, best_fields = ",", 1
    for mark in DELIMITERS:
        widths = Counter(len(row) for row in _rows(lines, mark))
        fields, count = widths.most_common(1)[0] if widths else (1, 0)
        if fields > best_fields and count >= 0.9 * sum(widths.values()):
            best, best_fields = mark, fields
    if best_fields > 1:
        return best
    widths = Counter(len(line.split()) for line in lines)
    fields, count = widths.most_common(1)[0] if widths else (1, 0)
    if len(lines) >= 2 and fields > 1 and count >= 0.9 * len(lines):
        return WHITESPACE
    return ","


def _is_number(text: str) -> bool:
    try:
        float(text.strip())
    except ValueError:
        return False
    return bool(text.strip())


def _first_row_is_data(rows: list[list[str]]) -> bool:
    """Whether every column numeric below the first row is numeric in it too (conservative)."""
    if len(rows) < 2:
        return False
    first, rest = rows[0], rows[1:]
    numeric = [
        index
        for index in range(len(first))
        if any(index < len(row) and row[index].strip() for row in rest)
        and all(_is_number(row[index]) for row in rest if index < len(row) and row[index].strip())
    ]
    return bool(numeric) and all(_is_number(first[index]) for index in numeric)


def _refuse_duplicates(path: Path, names: list[str]) -> None:
    counts = Counter(names)
    repeated = [name for name, count in counts.items() if count > 1]
    if repeated:
        where = "; ".join(
            f"'{name}' at positions "
            + ", ".join(str(index + 1) for index, value in enumerate(names) if value == name)
            for name in repeated
        )
        raise DataError(
            f"'{path}' names a column twice: {where}. Rename the columns so each name is "
            "unique (shipyard does not guess which one is meant)."
        )


def _head_lines(path: Path, encoding: str) -> tuple[list[str], bool]:
    """Return the first non-blank lines of the file, and whether they are the whole file."""
    with _opener(path)(path, "rb") as handle:
        head: bytes = handle.read(SNIFF_BYTES)
        whole = not handle.read(1)
    text = head.decode(encoding, errors="replace")
    lines = text.splitlines()
    if not whole and lines:
        lines = lines[:-1]  # the sample may end inside the last line
    if encoding == "utf-16" and lines:
        lines[0] = lines[0].lstrip("\ufeff")
    return [line for line in lines if line.strip()][:SNIFF_LINES], whole


def sniff_text(path: Path, options: ReadOptions | None = None) -> TextFormat:
    """Sniff (or take from ``options``) the encoding, delimiter and header of a text file.

    Raises
    ------
    DataError
        When the file is empty, holds only a header, is not valid UTF-8 (without an explicit
        encoding), or names a column twice.
    ConfigError
        When ``options.encoding`` is not a codec Python knows.
    """
    options = options or ReadOptions()
    with _opener(path)(path, "rb") as handle:
        start: bytes = handle.read(SNIFF_BYTES)
    if not start.strip(b" \t\r\n\x00" + codecs.BOM_UTF8):
        raise DataError(
            f"'{path}' is empty: it holds no header and no rows. Check that the file was "
            "written completely."
        )
    encoding = _encoding(path, start, options.encoding)
    lines, whole = _head_lines(path, encoding)
    delimiter = _delimiter(path, lines)
    rows = _rows(lines, delimiter)
    header = options.header if options.header is not None else not _first_row_is_data(rows)
    width = Counter(len(row) for row in rows).most_common(1)[0][0] if rows else 1
    if header:
        names = [name.strip() for name in rows[0]] if rows else []
        _refuse_duplicates(path, names)
        if whole and len(rows) < 2:
            raise DataError(
                f"'{path}' has a header but no rows (columns: {', '.join(names)[:200]}). "
                "Add data rows; if that line is data, pass --no-header (data.header: false)."
            )
    else:
        names = [f"column_{index}" for index in range(1, width + 1)]
    compressed = path.name.lower().endswith(".gz")
    return TextFormat(encoding, delimiter, compressed, bool(header), tuple(names))
