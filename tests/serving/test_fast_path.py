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


def _batch_answer(predictor, record):
    """The general path's answer for one record: score a one-row matrix, then format it."""
    return predictor.format_outputs(
        predictor.score_records([record]), predictor.groups_of_records([record])
    )[0]


def _violations(call):
    with pytest.raises(RecordValidationError) as raised:
        call()
    return str(raised.value), raised.value.violations


@pytest.mark.parametrize("accelerated", [False, True])
def test_one_record_answers_equal_the_batch_path_on_real_rows(fitted_adult, accelerated):
    # predict_records([record]) takes the single-record path: every answer must be the general
    # path's, bit for bit, on real Adult rows (missing values included), as loaded or
    # accelerated as the server does.
    predictor = fitted_adult.registry.load_predictor("adult:1")
    if accelerated:
        accelerate(predictor)
    records = fitted_adult.records[:300]
    assert any(value is None for record in records for value in record.values())
    batch = predictor.predict_records(records)  # several records: the batch path
    for record, together in zip(records, batch, strict=True):
        alone = predictor.predict_records([record])
        assert alone == [_batch_answer(predictor, record)] == [together]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("age", "39"),
        ("age", math.nan),
        pytest.param("age", 10**400, id="age-huge-integer"),
        ("workclass", "Astronaut"),
        ("education", 3),
        ("agee", 39),
    ],
)
def test_one_record_errors_equal_the_batch_path(fitted_adult, field, value):
    predictor = fitted_adult.registry.load_predictor("adult:1")
    record = {**fitted_adult.records[1], field: value}
    alone = _violations(lambda: predictor.predict_records([record]))
    assert alone == _violations(lambda: _batch_answer(predictor, record))


@pytest.mark.parametrize("policy", ["as_missing", "as_rare"])
def test_one_record_with_unknown_categories_equals_the_batch_path(fitted_adult, policy):
    from shipyard.runtime.predictor import Predictor

    loaded = fitted_adult.registry.load_predictor("adult:1")
    predictor = Predictor(
        loaded.contract,
        loaded.preprocessor,
        loaded.scorer,
        loaded.task,
        loaded.classes,
        cleaner=loaded.cleaner,
        unknown_categories=policy,
    )
    seen: list = []
    predictor.unknown_seen = seen.append
    records = [
        {**record, "workclass": "Astronaut", "native-country": None if index % 2 else "Mars"}
        for index, record in enumerate(fitted_adult.records[:40])
    ]
    for record in records:
        alone = predictor.predict_records([record])
        assert alone == [_batch_answer(predictor, record)]
    # Each record was counted once per path: alone, then through the batch path.
    assert len(seen) == 2 * len(records)
    assert seen[0] == seen[1]
    assert seen[0]["workclass"] == 1


def test_a_swapped_scorer_is_used_by_the_next_single_record(fitted_adult):
    predictor = fitted_adult.registry.load_predictor("adult:1")
    record = fitted_adult.records[0]
    before = predictor.predict_records([record])
    first_path = predictor.single_record_path()
    accelerate(predictor)
    assert predictor.single_record_path() is not first_path
    assert predictor.predict_records([record]) == before
