from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shipyard import datasets
from shipyard.data.split import split_frame
from shipyard.errors import DataError


@pytest.fixture(scope="module")
def frame(adult: datasets.Dataset) -> pd.DataFrame:
    return adult.train.sample(n=2000, random_state=1)


def test_parts_are_disjoint_and_cover_the_frame(frame: pd.DataFrame) -> None:
    split = split_frame(
        frame, "income", classification=True, seed=0, test_size=0.2, validation_size=0.1
    )
    assert split.test is not None
    sizes = (len(split.train), len(split.validation), len(split.test))
    assert sizes == (1400, 200, 400)
    labels = [set(part.index) for part in (split.train, split.validation, split.test)]
    assert set.union(*labels) == set(frame.index)
    assert sum(map(len, labels)) == len(frame)


def test_stratified_parts_keep_the_class_share(frame: pd.DataFrame) -> None:
    split = split_frame(
        frame, "income", classification=True, seed=0, test_size=0.2, validation_size=0.1
    )
    share = (frame["income"] == ">50K").mean()
    for part in split:
        assert abs((part["income"] == ">50K").mean() - share) < 0.01


def test_same_seed_same_split_other_seed_other_split(frame: pd.DataFrame) -> None:
    def test_rows(seed: int) -> list[int]:
        part = split_frame(
            frame, "income", classification=True, seed=seed, test_size=0.2, validation_size=0.1
        ).test
        assert part is not None
        return list(part.index)

    assert test_rows(3) == test_rows(3)
    assert test_rows(3) != test_rows(4)


def test_without_test_size_there_is_no_test_part(frame: pd.DataFrame) -> None:
    split = split_frame(
        frame, "income", classification=True, seed=0, test_size=None, validation_size=0.25
    )
    assert split.test is None
    assert (len(split.train), len(split.validation)) == (1500, 500)


def test_rare_classes_skip_stratification_without_error() -> None:
    frame = pd.DataFrame({"x": range(30), "y": ["a"] * 15 + ["b"] * 14 + ["c"]})
    split = split_frame(
        frame, "y", classification=True, seed=0, test_size=0.2, validation_size=0.2
    )
    assert sum(len(part) for part in split if part is not None) == 30


def test_too_few_rows() -> None:
    frame = pd.DataFrame({"x": range(8), "y": [0, 1] * 4})
    with pytest.raises(DataError, match="8 rows are too few"):
        split_frame(frame, "y", classification=True, seed=0, test_size=0.2, validation_size=0.1)


def test_grouped_split_keeps_groups_whole() -> None:
    frame = pd.DataFrame({"customer": np.repeat(np.arange(50), 4), "y": [0, 1] * 100})
    first = split_frame(
        frame,
        "y",
        classification=True,
        seed=3,
        test_size=0.2,
        validation_size=0.1,
        group_column="customer",
    )
    assert first.test is not None
    parts = [
        set(first.train["customer"]),
        set(first.validation["customer"]),
        set(first.test["customer"]),
    ]
    assert sum(len(part) for part in parts) == 50
    assert not parts[0] & parts[1]
    assert not parts[0] & parts[2]
    assert not parts[1] & parts[2]
    assert (len(parts[2]), len(parts[1])) == (10, 5)
    again = split_frame(
        frame,
        "y",
        classification=True,
        seed=3,
        test_size=0.2,
        validation_size=0.1,
        group_column="customer",
    )
    assert again.test is not None
    assert set(again.test["customer"]) == parts[2]


def test_time_split_trains_on_the_past() -> None:
    days = pd.date_range("2024-01-01", periods=100, freq="D").astype(str)
    frame = pd.DataFrame({"day": days[::-1], "y": range(100)})
    parts = split_frame(
        frame,
        "y",
        classification=False,
        seed=0,
        test_size=0.2,
        validation_size=0.1,
        time_column="day",
    )
    assert parts.test is not None
    assert (len(parts.train), len(parts.validation), len(parts.test)) == (70, 10, 20)
    assert parts.train["day"].max() < parts.validation["day"].min()
    assert parts.validation["day"].max() < parts.test["day"].min()


def test_split_columns_must_exist_and_exclude_each_other() -> None:
    frame = pd.DataFrame({"g": range(20), "t": range(20), "y": [0, 1] * 10})
    with pytest.raises(DataError, match="group_column 'gg' is not a column"):
        split_frame(
            frame,
            "y",
            classification=True,
            seed=0,
            test_size=0.2,
            validation_size=0.1,
            group_column="gg",
        )
    with pytest.raises(DataError, match="not both"):
        split_frame(
            frame,
            "y",
            classification=True,
            seed=0,
            test_size=0.2,
            validation_size=0.1,
            group_column="g",
            time_column="t",
        )
