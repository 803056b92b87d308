"""The one reader: sniffing, and each malformed file refused alike by every way of reading it."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest
from tests.data.malformed import (
    LATIN1_ROW,
    REFUSED,
    UTF8_CITY,
    mixed_encoding,
    non_utf8,
    semicolon,
    whitespace_headerless,
)

from shipyard import datasets
from shipyard.data import sniff
from shipyard.data.sniff import WHITESPACE, check_utf8
from shipyard.data.sources import ReadOptions, read_chunks, read_table, scan_table, sniff_text
from shipyard.errors import ConfigError, DataError


@pytest.fixture
def rows(adult: datasets.Dataset) -> pd.DataFrame:
    return adult.train.head(60).reset_index(drop=True)


def _every_reader(path: Path, options: ReadOptions | None = None) -> list[str]:
    """The message each way of reading gives (whole, in chunks, lazily through DuckDB)."""
    messages = []
    for read in (
        lambda: read_table(path, options),
        lambda: list(read_chunks(path, 7, options)),
        lambda: scan_table(path, options=options),
    ):
        with pytest.raises(DataError) as caught:
            read()
        messages.append(str(caught.value))
    return messages


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_each_malformed_file_is_refused_alike_in_one_line(
    name: str, rows: pd.DataFrame, tmp_path: Path
) -> None:
    build, expected = REFUSED[name]
    path = build(rows, tmp_path / f"{name}.csv")
    messages = _every_reader(path)
    assert len(set(messages)) == 1, messages
    assert "\n" not in messages[0]
    assert str(path) in messages[0]
    assert pd.Series(messages).str.contains(expected).all(), messages[0]


def test_byte_offset_points_at_the_first_bad_byte(rows: pd.DataFrame, tmp_path: Path) -> None:
    path = non_utf8(rows, tmp_path / "latin.csv")
    with pytest.raises(DataError, match=r"byte (\d+)") as caught:
        read_table(path)
    offset = int(str(caught.value).split("byte ")[1].split()[0])
    assert path.read_bytes()[offset] == 0xE9
    assert path.read_bytes()[:offset].decode("utf-8").count("\n") == LATIN1_ROW


def test_an_explicit_encoding_reads_a_latin1_file(rows: pd.DataFrame, tmp_path: Path) -> None:
    path = non_utf8(rows, tmp_path / "latin.csv")
    read = read_table(path, ReadOptions(encoding="latin-1"))
    assert read.loc[LATIN1_ROW - 1, "native-country"] == "Réunion"
    assert len(read) == len(rows)
    with pytest.raises(ConfigError, match="Unknown encoding 'klingon'"):
        read_table(path, ReadOptions(encoding="klingon"))


def test_mixed_encoding_is_never_silently_misread(rows: pd.DataFrame, tmp_path: Path) -> None:
    path = mixed_encoding(rows, tmp_path / "mixed.csv")
    with pytest.raises(DataError, match="re-export it as UTF-8"):
        read_table(path)
    # Named explicitly as UTF-8, it is checked all the same.
    with pytest.raises(DataError, match="mixes encodings"):
        read_table(path, ReadOptions(encoding="utf-8"))


def test_a_character_cut_by_a_block_boundary_is_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cities.csv"
    path.write_text("city,n\n" + f"{UTF8_CITY},1\n" * 50, encoding="utf-8")
    for size in (5, 6, 7, 8):  # every cut through the two-byte 'é'
        monkeypatch.setattr(sniff, "BLOCK_BYTES", size)
        check_utf8(path)
    truncated = tmp_path / "truncated.csv"
    truncated.write_bytes(path.read_bytes() + "é".encode()[:1])
    with pytest.raises(DataError, match="ends inside a character"):
        check_utf8(truncated)


def test_whitespace_separated_headerless_file(rows: pd.DataFrame, tmp_path: Path) -> None:
    path = whitespace_headerless(rows, tmp_path / "adult.data")
    found = sniff_text(path)
    assert (found.delimiter, found.header) == (WHITESPACE, False)
    read = read_table(path)
    assert list(read.columns) == [f"column_{index}" for index in range(1, 16)]
    assert len(read) == len(rows)  # the first row is data, not a header
    assert read["column_1"].tolist() == rows["age"].tolist()
    assert read["column_15"].tolist() == rows["income"].tolist()
    assert scan_table(path).shape == (len(rows), 15)
    assert sum(len(chunk) for chunk in read_chunks(path, 7)) == len(rows)


def test_header_detection_is_conservative_and_can_be_forced(
    rows: pd.DataFrame, tmp_path: Path
) -> None:
    headerless = tmp_path / "headerless.csv"
    rows.to_csv(headerless, index=False, header=False)
    assert sniff_text(headerless).header is False
    # Forced: the first data row becomes the names, so one row fewer is read.
    assert len(read_table(headerless, ReadOptions(header=True))) == len(rows) - 1
    # Text-only tables cannot be told apart: the first row is taken as the header.
    words = tmp_path / "words.csv"
    rows[["workclass", "education"]].to_csv(words, index=False, header=False)
    assert sniff_text(words).header is True
    assert len(read_table(words, ReadOptions(header=False))) == len(rows)


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiters_are_sniffed(rows: pd.DataFrame, tmp_path: Path, delimiter: str) -> None:
    path = tmp_path / "adult.txt"
    rows.to_csv(path, index=False, sep=delimiter)
    assert sniff_text(path).delimiter == delimiter
    pd.testing.assert_frame_equal(
        read_table(path), read_table(semicolon(rows, tmp_path / "s.csv"))
    )


def test_gzipped_file_is_checked_after_decompression(rows: pd.DataFrame, tmp_path: Path) -> None:
    plain = non_utf8(rows, tmp_path / "latin.csv")
    packed = tmp_path / "latin.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    with pytest.raises(DataError, match=r"is not valid UTF-8: byte \d+"):
        read_table(packed)


def test_parquet_without_rows_is_refused(rows: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "none.parquet"
    rows.head(0).to_parquet(path)
    with pytest.raises(DataError, match="has a header but no rows"):
        read_table(path)
    with pytest.raises(DataError, match="has no rows"):
        list(read_chunks(path))
