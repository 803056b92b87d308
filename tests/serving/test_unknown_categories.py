"""The unknown-categories policy on the serving path: one record, a batch, a frame agree."""

from __future__ import annotations

import pandas as pd
import pytest

from shipyard.runtime.fast import SingleRecordPath
from shipyard.runtime.predictor import Predictor
from shipyard.runtime.validate import RecordValidationError


def _with_policy(predictor: Predictor, policy: str) -> Predictor:
    return Predictor(
        predictor.contract,
        predictor.preprocessor,
        predictor.scorer,
        predictor.task,
        predictor.classes,
        cleaner=predictor.cleaner,
        threshold=predictor.threshold,
        unknown_categories=policy,
    )


def test_bundles_without_a_policy_keep_refusing_unknown_categories(fitted_adult) -> None:
    predictor = fitted_adult.registry.load_predictor("adult:1")
    assert predictor.unknown.policy == "error"  # its manifest predates the policy
    record = {**fitted_adult.records[0], "workclass": "Astronaut"}
    with pytest.raises(RecordValidationError, match="unknown category 'Astronaut'"):
        predictor.predict_records([record])
    with pytest.raises(RecordValidationError):
        SingleRecordPath(predictor).predict(record)


def test_as_missing_scores_an_unknown_category_as_a_missing_value(fitted_adult) -> None:
    predictor = _with_policy(fitted_adult.registry.load_predictor("adult:1"), "as_missing")
    seen = []
    predictor.unknown_seen = seen.append
    records = fitted_adult.records[:20]
    unknown = [{**record, "workclass": "Astronaut"} for record in records]
    missing = [{**record, "workclass": None} for record in records]
    expected = predictor.predict_records(missing)
    assert predictor.predict_records(unknown) == expected
    path = SingleRecordPath(predictor)
    assert [path.predict(record) for record in unknown] == expected
    assert sum(counts["workclass"] for counts in seen) == 40  # the batch, then one by one
    frame = pd.DataFrame(unknown)
    settled, counts = predictor.unknown.settle_frame(predictor.clean_frame(frame))
    assert counts == {"workclass": 20}
    outputs = predictor.score_frame(settled)
    assert predictor.labels_from_outputs(outputs) == [answer["prediction"] for answer in expected]
