"""The one-pass record encoder is a shortcut, never a second opinion."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipyard.runtime.fast import RecordEncoder, SingleRecordPath, accelerate
from shipyard.runtime.validate import RecordValidationError


@pytest.fixture(scope="module")
def predictor(fitted_adult):
    return accelerate(fitted_adult.registry.load_predictor("adult:1"))


def test_encoder_rows_equal_the_compiled_preprocessing(predictor, fitted_adult):
    encoder = RecordEncoder(predictor)
    for record in fitted_adult.records:
        row = encoder.encode(record)
        assert row is not None
        expected = predictor.preprocessor.transform_record(record)
        assert np.array_equal(np.array(row), np.array(expected), equal_nan=True)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("age", "39"),
        ("age", True),
        ("age", math.inf),
        ("age", None),
        ("workclass", "Private-ish"),
        ("workclass", 3),
        ("agee", 39),
    ],
)
def test_unusual_records_go_to_the_full_check(predictor, fitted_adult, field, value):
    record = {**fitted_adult.records[0], field: value}
    if value is None:
        del record[field]
    assert RecordEncoder(predictor).encode(record) is None
    with pytest.raises(RecordValidationError):
        SingleRecordPath(predictor).predict(record)


values = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
    | st.sampled_from(["Private", "Bachelors", "Male", "United-States", "(missing)"])
)


@given(
    changes=st.dictionaries(
        st.sampled_from(
            ["age", "workclass", "education", "sex", "hours-per-week", "capital-gain", "extra"]
        ),
        values,
        max_size=4,
    )
)
def test_encoder_accepts_only_what_the_validator_accepts(predictor, fitted_adult, changes):
    record = {**fitted_adult.records[3], **changes}
    row = RecordEncoder(predictor).encode(record)
    if row is not None:
        assert predictor.validator.problems(record) == []
        expected = predictor.preprocessor.transform_record(record)
        assert np.array_equal(np.array(row), np.array(expected), equal_nan=True)
