"""Malformed and unusual text files built from real Adult rows, shared by the reader tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

# A UTF-8 value and, on a later row, the same word in latin-1: what two exports pasted
# together look like.
UTF8_CITY = "México"
LATIN1_ROW = 30


def _lines(frame: pd.DataFrame) -> list[str]:
    return frame.to_csv(index=False, lineterminator="\n").splitlines()


def empty(frame: pd.DataFrame, path: Path) -> Path:
    path.write_bytes(b"")
    return path


def header_only(frame: pd.DataFrame, path: Path) -> Path:
    path.write_text(_lines(frame)[0] + "\n", encoding="utf-8")
    return path


def one_row(frame: pd.DataFrame, path: Path) -> Path:
    frame.head(1).to_csv(path, index=False)
    return path


def non_utf8(frame: pd.DataFrame, path: Path) -> Path:
    """A whole file in latin-1, with an accented value on row LATIN1_ROW."""
    changed = frame.astype({"native-country": object}).copy()
    changed.loc[LATIN1_ROW - 1, "native-country"] = "Réunion"
    path.write_bytes(("\n".join(_lines(changed)) + "\n").encode("latin-1"))
    return path


def mixed_encoding(frame: pd.DataFrame, path: Path) -> Path:
    """UTF-8 on the first rows (with a non-ASCII value), latin-1 further down."""
    changed = frame.astype({"native-country": object}).copy()
    changed.loc[2, "native-country"] = UTF8_CITY
    changed.loc[LATIN1_ROW - 1, "native-country"] = UTF8_CITY
    lines = _lines(changed)
    head = ("\n".join(lines[:LATIN1_ROW]) + "\n").encode("utf-8")
    tail = ("\n".join(lines[LATIN1_ROW:]) + "\n").encode("latin-1")
    path.write_bytes(head + tail)
    return path


def whitespace_headerless(frame: pd.DataFrame, path: Path) -> Path:
    """Runs of spaces between fields and no header, as the classic UCI ``.data`` files."""
    path.write_text(
        "\n".join("   ".join(line.split(",")) for line in _lines(frame.fillna("?"))[1:]) + "\n",
        encoding="utf-8",
    )
    return path


def semicolon(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False, sep=";")
    return path


def duplicate_columns(frame: pd.DataFrame, path: Path) -> Path:
    lines = _lines(frame)
    lines[0] = lines[0].replace("education-num", "age")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def missing_target(frame: pd.DataFrame, path: Path) -> Path:
    frame.assign(income=None).to_csv(path, index=False)
    return path


Builder = Callable[[pd.DataFrame, Path], Path]

# name -> (builder, the message every command gives for it, or None where the file is valid)
REFUSED: dict[str, tuple[Builder, str]] = {
    "empty": (empty, r"is empty: it holds no header and no rows"),
    "header_only": (header_only, r"has a header but no rows"),
    "non_utf8": (non_utf8, rf"is not valid UTF-8: byte \d+ \(line {LATIN1_ROW + 1}\) is 0xe9"),
    "mixed_encoding": (
        mixed_encoding,
        rf"mixes encodings: it holds UTF-8 text, but byte \d+ \(line {LATIN1_ROW + 1}\)",
    ),
    "duplicate_columns": (duplicate_columns, r"names a column twice: 'age' at positions 1, 5"),
}
