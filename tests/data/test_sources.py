from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from shipyard import datasets
from shipyard.data.sources import fingerprint, read_table
from shipyard.errors import DataError


@pytest.fixture
def sample(adult: datasets.Dataset) -> pd.DataFrame:
    return adult.train.head(200).reset_index(drop=True)


def test_csv_round_trip(sample: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "adult.csv"
    sample.to_csv(path, index=False)
    frame = read_table(path)
    pd.testing.assert_frame_equal(frame, sample, check_dtype=False)
    assert frame["workclass"].isna().sum() == sample["workclass"].isna().sum()


def test_tsv_and_gzip(sample: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "adult.tsv.gz"
    sample.to_csv(path, sep="\t", index=False, compression="gzip")
    pd.testing.assert_frame_equal(read_table(path), sample, check_dtype=False)


def test_parquet_and_csv_give_the_same_fingerprint(sample: pd.DataFrame, tmp_path: Path) -> None:
    sample.to_parquet(tmp_path / "adult.parquet", index=False)
    sample.to_csv(tmp_path / "adult.csv", index=False)
    from_parquet = read_table(tmp_path / "adult.parquet")
    from_csv = read_table(tmp_path / "adult.csv")
    pd.testing.assert_frame_equal(from_parquet, sample)
    assert fingerprint(from_parquet) == fingerprint(from_csv) == fingerprint(sample)


def test_fingerprint_ignores_row_labels_but_sees_content(sample: pd.DataFrame) -> None:
    shifted = sample.set_axis(range(1000, 1000 + len(sample)))
    assert fingerprint(shifted) == fingerprint(sample)
    changed = sample.copy()
    changed.loc[5, "age"] += 1
    assert fingerprint(changed) != fingerprint(sample)
    assert fingerprint(sample.rename(columns={"age": "years"})) != fingerprint(sample)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_table(tmp_path / "absent.csv")


def test_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"not a spreadsheet")
    with pytest.raises(DataError, match="Cannot tell the format"):
        read_table(path)


def test_unreadable_parquet(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"definitely not parquet")
    with pytest.raises(DataError, match="Cannot read"):
        read_table(path)


def test_unknown_dataset_split() -> None:
    with pytest.raises(DataError, match="no split 'valid'"):
        read_table("dataset:adult:valid")
