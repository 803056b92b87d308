from __future__ import annotations

import re

import pytest

from shipyard import datasets
from shipyard.data.sources import read_table
from shipyard.errors import DataError


def test_adult_has_the_official_shapes(adult: datasets.Dataset) -> None:
    assert adult.train.shape == (32561, 15)
    assert adult.test.shape == (16281, 15)
    assert list(adult.train.columns) == datasets.ADULT_COLUMNS
    assert adult.target == "income"
    assert adult.sensitive == ("sex", "race")


def test_adult_labels_have_no_trailing_dot(adult: datasets.Dataset) -> None:
    assert sorted(adult.train["income"].unique()) == ["<=50K", ">50K"]
    assert sorted(adult.test["income"].unique()) == ["<=50K", ">50K"]


def test_adult_missing_values_are_nan_not_question_marks(adult: datasets.Dataset) -> None:
    assert adult.train["workclass"].isna().sum() == 1836
    assert not (adult.train == "?").any().any()
    assert adult.train["age"].dtype.kind == "i"


def test_split_by_name(adult: datasets.Dataset) -> None:
    assert adult.split("test") is adult.test
    with pytest.raises(DataError, match="no split 'validation'; choose one of train, test"):
        adult.split("validation")


def test_read_table_resolves_dataset_references() -> None:
    assert read_table("dataset:adult").shape == (32561, 15)
    assert read_table("dataset:adult:test").shape == (16281, 15)


def test_unknown_dataset_lists_the_available_ones() -> None:
    message = (
        "No bundled dataset named 'adlut'. Available: adult, bike_sharing, bike_sharing_daily, "
        "sms_spam, xwines."
    )
    with pytest.raises(DataError, match=re.escape(message)):
        datasets.load("adlut")
    assert datasets.available() == [
        "adult",
        "bike_sharing",
        "bike_sharing_daily",
        "sms_spam",
        "xwines",
    ]
