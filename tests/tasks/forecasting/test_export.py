"""Export parity: every family forecasts the same from its JSON parameters as when trained."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from shipyard.datasets.bike_sharing import load_bike_sharing_daily
from shipyard.errors import ExportError
from shipyard.tasks.forecasting.models import AutoETS, make_model
from shipyard.tasks.forecasting.runtime import ets_forecast
from shipyard.tasks.forecasting.series import Series, build_series, future_stamps
from shipyard.tasks.forecasting.training import (
    check_forecast_parity,
    export_forecaster,
    train_forecaster,
)

HORIZON = 14


@pytest.fixture(scope="module")
def series() -> Series:
    daily = load_bike_sharing_daily().tail(200).reset_index(drop=True)
    built, _ = build_series(daily, time="dteday", target="cnt", covariates=["workingday"])
    return built[0]


@pytest.mark.parametrize(("model", "damped"), [("ANN", False), ("AAA", True), ("MAM", False)])
def test_ets_forecasts_from_its_final_states_as_statsforecast_does(series, model, damped):
    from statsforecast.models import AutoETS as StatsForecastETS

    fitted = AutoETS(season_length=7)
    fitted.model_ = StatsForecastETS(season_length=7, model=model, damped=damped)
    fitted.model_.fit(series.values)
    expected = fitted.forecast(HORIZON, future_stamps(series.stamps[-1], "D", HORIZON), None)
    parameters = json.loads(json.dumps(fitted.parameters()))  # what the bundle holds
    assert parameters["components"][:3] == model
    np.testing.assert_allclose(ets_forecast(parameters, HORIZON), expected, rtol=1e-9)


@pytest.mark.parametrize("family", ["seasonal_naive", "drift", "auto_ets", "lightgbm"])
def test_the_exported_family_answers_like_the_trained_one(series, family):
    run = train_forecaster(
        [series],
        frequency="D",
        season=7,
        horizon=HORIZON,
        windows=2,
        step=HORIZON,
        families=[family],
        level=0.9,
        rounds=30,
        covariates=["workingday"],
        report=lambda message: None,
    )
    run.family = family  # export the family under test even when the baseline won
    run.models = {series.id: make_model(family, 7, 30, run.covariates).fit(series)}
    files, entry = export_forecaster(run)
    assert check_forecast_parity(run, files, entry) <= 1e-9
    assert not any(name.endswith((".pkl", ".pickle", ".joblib")) for name in files)


def test_a_perturbed_export_fails_the_parity_check(series):
    run = train_forecaster(
        [series],
        frequency="D",
        season=7,
        horizon=HORIZON,
        windows=2,
        step=HORIZON,
        families=["drift"],
        level=0.9,
        rounds=30,
        covariates=[],
        report=lambda message: None,
    )
    files, entry = export_forecaster(run)
    document = json.loads(files["forecast.json"])
    first = next(iter(document["series"].values()))
    key = "slope" if "slope" in first else "season"
    first[key] = first[key] * 1.01 if key == "slope" else [value + 1.0 for value in first[key]]
    files["forecast.json"] = json.dumps(document).encode()
    with pytest.raises(ExportError, match="differ from the trained model"):
        check_forecast_parity(run, files, entry)


def test_hourly_lightgbm_reads_the_weekly_cycle_and_exports_it():
    from shipyard.datasets.bike_sharing import load_bike_sharing

    hours = load_bike_sharing().test.tail(24 * 30)
    hours = hours.assign(stamp=pd.to_datetime(hours["dteday"]) + pd.to_timedelta(hours["hr"], "h"))
    built, frequency = build_series(hours, time="stamp", target="cnt", fill="zero")
    assert frequency == "h"
    model = make_model("lightgbm", 24, 20).fit(built[0])
    assert 168 in model.lags_
    stamps = future_stamps(built[0].stamps[-1], "h", 24)
    trained = model.forecast(24, stamps, np.zeros((24, 0)))
    parameters = json.loads(json.dumps(model.parameters()))
    from lightgbm import Booster

    from shipyard.tasks.forecasting.runtime import forecast_from_parameters

    booster = Booster(model_str=model.model_text().decode())
    exported = forecast_from_parameters(parameters, 24, stamps, np.zeros((24, 0)), booster)
    np.testing.assert_allclose(exported, trained, rtol=1e-12)
