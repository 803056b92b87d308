"""Text files profiled through PyArrow's reader give the profile DuckDB's loader gives."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import duckdb
import pytest

from shipyard.data import profile
from shipyard.data.profile import MISSING_TOKENS, profile_table
from shipyard.data.profile_arrow import memory_bytes, read_csv_arrow
from shipyard.data.sources import sniff_text

MESSY = "\n".join(
    [
        "id,score,price,city,note",
        "1,1.5,10.25,  INLAND ,first",
        "2,?,11.0,NEAR BAY,",
        '3,NA,,INLAND,"quoted, with a comma"',
        '4,2.5,12.5, ? ,"say ""hi"""',
        "5,3.5,13.0,ISLAND,n/a",
        "6,4.5,14.75,NEAR BAY,sixth",
        "",
    ]
)


def _without_timing(found: profile.Profile) -> dict[str, Any]:
    result = found.as_dict()
    result.pop("seconds")
    return result


def _arrow_table(path: Path) -> Any:
    connection = duckdb.connect()
    try:
        return read_csv_arrow(path, sniff_text(path), connection, 10**9, MISSING_TOKENS)
    finally:
        connection.close()


@pytest.fixture
def messy_csv(tmp_path: Path) -> Path:
    path = tmp_path / "messy.csv"
    path.write_text(MESSY, encoding="utf-8")
    return path


def test_arrow_table_is_typed_and_cleaned_as_duckdb_loads_it(messy_csv: Path) -> None:
    table = _arrow_table(messy_csv)
    assert table is not None
    text = "dictionary<values=string, indices=int32, ordered=0>"
    assert [str(field.type) for field in table.schema] == [
        "int64",
        text,  # '?' and 'NA' made DuckDB sniff text: the column stays text
        "double",
        text,
        text,
    ]
    assert table.column("score").to_pylist() == ["1.5", None, None, "2.5", "3.5", "4.5"]
    assert table.column("price").null_count == 1
    assert table.column("city").to_pylist() == [
        "INLAND",
        "NEAR BAY",
        "INLAND",
        None,
        "ISLAND",
        "NEAR BAY",
    ]
    assert table.column("note").to_pylist()[2:5] == ["quoted, with a comma", 'say "hi"', None]


def test_profile_through_arrow_equals_profile_through_duckdb(
    messy_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    through_arrow = profile_table(messy_csv, target="price")
    monkeypatch.setattr(profile, "ARROW_SHARE", 0.0)  # every file is then too large for Arrow
    through_duckdb = profile_table(messy_csv, target="price")
    assert _without_timing(through_arrow) == _without_timing(through_duckdb)
    # Placeholders in a number column still count as missing.
    assert through_arrow.column("score").missing == 2
    assert through_arrow.column("city").missing == 1
    assert through_arrow.column("note").missing == 2


@pytest.mark.parametrize(
    ("column", "values"),
    [
        ("day", [f"2024-01-0{index + 1}" for index in range(4)]),  # a DATE
        ("member", ["yes", "no", "yEs", "no"]),  # BOOLEAN to DuckDB; 'yEs' not to PyArrow
    ],
)
def test_what_arrow_would_read_differently_goes_through_duckdb(
    tmp_path: Path, column: str, values: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "other.csv"
    rows = "\n".join(f"{index},{value}" for index, value in enumerate(values))
    path.write_text(f"id,{column}\n{rows}\n", encoding="utf-8")
    assert _arrow_table(path) is None
    found = profile_table(path)
    monkeypatch.setattr(profile, "ARROW_SHARE", 0.0)
    assert _without_timing(found) == _without_timing(profile_table(path))
    assert found.column(column).storage_type in ("DATE", "BOOLEAN")


def test_padded_numbers_and_booleans_are_read_as_duckdb_reads_them(tmp_path: Path) -> None:
    path = tmp_path / "padded.csv"
    path.write_text("id,count,member\n1, 7,yes\n2,8 ,no\n3,9,YES\n", encoding="utf-8")
    table = _arrow_table(path)
    assert table is not None
    assert table.column("count").to_pylist() == [7, 8, 9]
    assert table.column("member").to_pylist() == [True, False, True]
    frame = duckdb.connect().read_csv(str(path)).df()
    assert frame["count"].tolist() == [7, 8, 9]
    assert frame["member"].tolist() == [True, False, True]


def test_compressed_files_go_through_duckdb(tmp_path: Path) -> None:
    path = tmp_path / "messy.csv.gz"
    path.write_bytes(gzip.compress(MESSY.encode()))
    assert _arrow_table(path) is None
    assert profile_table(path).column("score").missing == 2


def test_memory_limits_in_bytes() -> None:
    assert memory_bytes("3GB") == 3 * 10**9
    assert memory_bytes("512 MiB") == 512 * 2**20
    assert memory_bytes("1.5gb") == 1_500_000_000
    assert memory_bytes("lots") is None
