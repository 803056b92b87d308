from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipyard.monitoring.columns import column_cleaner
from shipyard.monitoring.sketch import CategoricalSketch, NumericSketch
from shipyard.runtime.clean import Cleaner

SPEC = {
    "version": 1,
    "missing_tokens": ["?", "NA", ""],
    "drop": ["identifier"],
    "columns": {
        "age": {"kind": "number", "thousands": ",", "clip": [0, 90]},
        "hours": {"kind": "number", "thousands": ","},
        "member": {"kind": "boolean"},
        "joined": {"kind": "datetime", "format": "%m/%d/%Y"},
        "sex": {"kind": "category", "canonical": {"f": "F", "m": "M"}, "rare": ["X"]},
        "identifier": {"kind": "number"},
    },
}
COLUMNS = ["age", "hours", "member", "joined", "sex", "identifier", "untouched"]

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([" f", "m", "X", "?", "NA", "", "1,234", " 12 ", "yes", "no", "01/02/2020"]),
    st.text(max_size=4),
)
# Columns of one type, as served requests have, and mixed ones.
column_values = st.one_of(
    st.lists(values, max_size=30),
    st.lists(st.integers(-5, 200), max_size=30),
    st.lists(st.floats(-5, 200), max_size=30),
    st.lists(st.sampled_from([" f", "m", "X", "?", "F "]), max_size=30),
)


def sketched(sketch, column):
    """The sketch's counts after ``update``, or the exception it raised."""
    try:
        sketch.update(column)
    except (TypeError, ValueError, OverflowError) as error:
        return type(error)
    return sketch.counts, sketch.missing


def same_as_record_by_record(name, column):
    cleaner = Cleaner(SPEC)
    records = [{name: value} for value in column]
    expected = [record.get(name) for record in cleaner.clean_records(records)]
    clean = column_cleaner(cleaner, COLUMNS)
    assert clean is not None
    actual = clean(name, list(column))
    for fresh in (
        lambda: NumericSketch(edges=[-1.0, 0.0, 1.0, 50.0, 1e6], counts=[0] * 6),
        lambda: CategoricalSketch(categories=["F", "M", "__rare__", "1"], counts=[0] * 5),
    ):
        assert sketched(fresh(), actual) == sketched(fresh(), expected)
    if not isinstance(actual, np.ndarray):
        assert [repr(value) for value in actual] == [repr(value) for value in expected]


@given(name=st.sampled_from(COLUMNS), column=column_values)
def test_column_cleaning_sketches_like_record_cleaning(name, column):
    same_as_record_by_record(name, column)


@pytest.mark.parametrize(
    ("name", "column"),
    [
        ("age", [-3, 40, 120, 35.5, math.nan]),  # clipped numbers: the vectorised path
        ("age", [-3, None, 120]),
        ("hours", [1, 2.5, None]),  # no limits: values as they are
        ("sex", [" f", "m", "X", "?", "F", "f  "]),  # text: each distinct one cleaned once
        ("sex", [-0.0, 0.0, 1, True]),
        ("identifier", [1, 2]),  # dropped by the cleaning
        ("untouched", ["a", 1]),
    ],
)
def test_column_cleaning_examples(name, column):
    same_as_record_by_record(name, column)


def test_missing_indicators_fall_back_to_records():
    spec = {**SPEC, "indicators": ["age"]}
    assert column_cleaner(Cleaner(spec), ["age", "age__missing"]) is None
    assert column_cleaner(Cleaner(spec), ["age"]) is not None
