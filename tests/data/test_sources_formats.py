from __future__ import annotations

import os
import uuid
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy

from shipyard import datasets
from shipyard.data.sources import ReadOptions, read_table, scan_table, sniff_text
from shipyard.errors import DataError

POSTGRES_URL = os.environ.get("SHIPYARD_TEST_POSTGRES_URL")


@pytest.fixture
def sample(adult: datasets.Dataset) -> pd.DataFrame:
    return adult.train.head(300).reset_index(drop=True)


@pytest.mark.parametrize(
    ("delimiter", "encoding", "given", "expected_encoding"),
    [
        (";", "utf-8-sig", None, "utf-8-sig"),
        ("|", "utf-8", None, "utf-8"),
        ("\t", "cp1252", "cp1252", "cp1252"),  # not UTF-8: read when the encoding is named
        (",", "utf-16", None, "utf-16"),
    ],
)
def test_csv_delimiter_and_encoding_are_sniffed(
    tmp_path: Path, delimiter: str, encoding: str, given: str | None, expected_encoding: str
) -> None:
    frame = pd.DataFrame(
        {"city": ["Zürich", "Málaga", "Århus", "Köln"], "price": [1.5, 2.0, 3.25, 4.0]}
    )
    path = tmp_path / "cities.txt"
    frame.to_csv(path, sep=delimiter, encoding=encoding, index=False)
    options = ReadOptions(encoding=given)
    found = sniff_text(path, options)
    assert (found.delimiter, found.encoding) == (delimiter, expected_encoding)
    read = read_table(path, options)
    assert list(read.columns) == ["city", "price"]  # no BOM glued to the first name
    pd.testing.assert_frame_equal(read, frame)


def test_json_lines_and_json_array(sample: pd.DataFrame, tmp_path: Path) -> None:
    sample.to_json(tmp_path / "adult.jsonl", orient="records", lines=True)
    sample.to_json(tmp_path / "adult.json", orient="records")
    for name in ("adult.jsonl", "adult.json"):
        read = read_table(tmp_path / name)
        pd.testing.assert_frame_equal(read, sample, check_dtype=False)


def test_scan_table_is_lazy_and_matches(sample: pd.DataFrame, tmp_path: Path) -> None:
    sample.to_csv(tmp_path / "adult.csv", sep=";", index=False)
    sample.to_parquet(tmp_path / "adult.parquet", index=False)
    for name in ("adult.csv", "adult.parquet"):
        relation = scan_table(tmp_path / name)
        assert relation.columns == list(sample.columns)
        assert relation.aggregate("count(*)").fetchall() == [(len(sample),)]


def _sql_round_trip(url: str, sample: pd.DataFrame) -> None:
    table = f"adult_{uuid.uuid4().hex[:8]}"
    engine = sqlalchemy.create_engine(url)
    try:
        sample.to_sql(table, engine, index=False)
        read = read_table(f"{url}#{table}")
        # SQL promises no row order without ORDER BY: compare the rows as sorted sets.
        columns = list(sample.columns)
        pd.testing.assert_frame_equal(
            read.sort_values(columns).reset_index(drop=True),
            sample.sort_values(columns).reset_index(drop=True),
            check_dtype=False,
        )
        query = read_table(f"{url}#SELECT age, sex FROM {table} WHERE age > 40")
        assert list(query.columns) == ["age", "sex"]
        assert len(query) == int((sample["age"] > 40).sum())
        with pytest.raises(DataError, match=f"Table 'absent' is not in .*{table}"):
            read_table(f"{url}#absent")
    finally:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()


def test_sqlite_table_and_query(sample: pd.DataFrame, tmp_path: Path) -> None:
    _sql_round_trip(f"sqlite:///{tmp_path / 'shop.db'}", sample)


@pytest.mark.postgres
@pytest.mark.skipif(
    POSTGRES_URL is None,
    reason="SHIPYARD_TEST_POSTGRES_URL is unset: set it to a PostgreSQL URL (.ci/run does)",
)
def test_postgres_table_and_query(sample: pd.DataFrame) -> None:
    assert POSTGRES_URL is not None
    _sql_round_trip(POSTGRES_URL, sample)


def test_sql_source_without_table_and_bad_url(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="names no table or query"):
        read_table(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(DataError, match="Cannot use the database URL"):
        read_table("nosuchdialect://host/db#t")
