"""Actuals: parsed by series and stamp, joined to the forecasts that covered them, learnt from."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from shipyard.config import load_config_dict
from shipyard.datasets.bike_sharing import load_bike_sharing_daily
from shipyard.errors import DataError
from shipyard.tasks.forecasting.loop import extend_series
from shipyard.tasks.forecasting.monitoring import merge_actuals, parse_actuals

STAMPS = ["2013-01-01T00:00:00", "2013-01-02T00:00:00", "2013-01-03T00:00:00"]


def _logged(request_id: str, series: str) -> dict:
    return {
        "request_id": request_id,
        "inputs": {"series": series, "horizon": 3, "covariates": {"workingday": [0, 1, 1]}},
        "output": {"series": series, "timestamps": STAMPS, "forecast": [1.0, 2.0, 3.0]},
    }


def test_actuals_are_parsed_with_their_stamps_normalised():
    parsed = parse_actuals([{"series": "a", "timestamp": "2013-01-02", "value": 5}])
    assert parsed == [("a", "2013-01-02T00:00:00", 5)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "non-empty list"),
        ([{"timestamp": "2013-01-02"}], "'timestamp' and 'value'"),
        ([{"timestamp": "2013-01-02", "value": "many"}], "must be a number"),
        ([{"timestamp": "someday", "value": 1}], "not a date"),
    ],
)
def test_malformed_actuals_are_named(body, message):
    with pytest.raises(DataError, match=message):
        parse_actuals(body)


def test_an_actual_joins_every_forecast_of_its_series_that_covered_it():
    logged = [_logged("r1", "a"), _logged("r2", "a"), _logged("r3", "b")]
    earlier = {"r1": {"actuals": {STAMPS[0]: 10.0}}}
    changed = merge_actuals(logged, earlier, [("a", STAMPS[1], 20.0), ("a", "2014-01-01", 1.0)])
    assert changed == {
        "r1": {"actuals": {STAMPS[0]: 10.0, STAMPS[1]: 20.0}},  # earlier actuals kept
        "r2": {"actuals": {STAMPS[1]: 20.0}},
    }


def test_learnt_actuals_extend_each_series_but_the_newest_are_kept_for_the_gate(tmp_path: Path):
    daily = load_bike_sharing_daily().tail(30)
    table = pd.concat([daily.assign(shop="a"), daily.assign(shop="b")], ignore_index=True)
    table.to_csv(tmp_path / "daily.csv", index=False)
    config = load_config_dict(
        {
            "name": "shops",
            "task": "forecasting",
            "data": {"source": str(tmp_path / "daily.csv"), "target": "cnt"},
            "forecasting": {"time": "dteday", "series": "shop", "covariates": ["workingday"]},
        }
    )
    rows = [
        {**_logged(name, shop), "label": {"actuals": dict.fromkeys(STAMPS, 7.0)}}
        for name, shop in (("r1", "a"), ("r2", "b"))
    ]
    total, new = extend_series(config, rows, tmp_path / "extended.parquet")
    extended = pd.read_parquet(tmp_path / "extended.parquet")
    # Three new days per shop; the newest (30% of 3, rounded: one) is kept out of training.
    assert new == 4
    assert total == len(table) + 4
    added = extended[pd.to_datetime(extended["dteday"]) >= "2013-01-01"]
    assert sorted(added["shop"]) == ["a", "a", "b", "b"]
    # Each day's covariate is the value the forecast request gave for that day.
    assert added.sort_values(["shop", "dteday"])["workingday"].tolist() == [0, 1, 0, 1]


def test_feedback_that_is_not_actuals_is_refused(tmp_path: Path):
    config = load_config_dict(
        {
            "name": "bikes",
            "task": "forecasting",
            "data": {"source": "dataset:bike_sharing_daily", "target": "cnt"},
            "forecasting": {"time": "dteday"},
        }
    )
    row = {**_logged("r1", "series"), "label": "spam"}
    with pytest.raises(DataError, match="not a set of actuals"):
        extend_series(config, [row], tmp_path / "extended.parquet")
