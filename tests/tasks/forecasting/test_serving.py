"""Serving a forecaster over a real socket: forecasts, clear 422s, actuals and monitoring."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest

from shipyard.config import PipelineConfig, ServingConfig, load_config_dict
from shipyard.datasets.bike_sharing import load_bike_sharing_daily
from shipyard.pipeline import TrainRun, train
from shipyard.pipeline.monitor import monitor
from shipyard.registry.store import Registry
from shipyard.serving import build_app, running_server

HORIZON = 7


@dataclass
class Served:
    config: PipelineConfig
    run: TrainRun
    registry: Registry
    future: pd.DataFrame
    url: str
    client: httpx.Client


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("forecast")
    daily = load_bike_sharing_daily()
    daily.iloc[-247:-HORIZON].to_csv(folder / "daily.csv", index=False)
    config = load_config_dict(
        {
            "name": "bikes",
            "task": "forecasting",
            "data": {"source": str(folder / "daily.csv"), "target": "cnt"},
            "forecasting": {
                "time": "dteday",
                "horizon": HORIZON,
                "windows": 3,
                "covariates": ["workingday"],
                "models": ["seasonal_naive", "lightgbm"],
                "lightgbm_rounds": 30,
            },
            "evaluation": {"bootstrap_samples": 100, "report": False},
            "registry": {"home": str(folder / "home")},
        }
    )
    run = train(config)
    registry = Registry.from_config(config.registry)
    app = build_app(registry, "bikes", ServingConfig(auth=False, log_predictions=True))
    with running_server(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield Served(config, run, registry, daily.iloc[-HORIZON:], url, client)


def _forecast(served: Served, **body: object) -> httpx.Response:
    return served.client.post("/v1/models/bikes/forecast", json=body)


def _covariates(served: Served) -> dict[str, list[int]]:
    return {"workingday": served.future["workingday"].astype(int).tolist()}


def test_a_forecast_has_stamps_points_and_intervals(served: Served):
    answer = _forecast(served, horizon=HORIZON, covariates=_covariates(served))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["timestamps"][0].startswith("2012-12-25")
    assert len(body["forecast"]) == HORIZON
    assert all(
        low < point < high
        for low, point, high in zip(body["lower"], body["forecast"], body["upper"], strict=True)
    )
    assert body["level"] == 0.9
    assert body["request_id"]


def test_a_horizon_beyond_the_trained_one_gets_a_clear_422(served: Served):
    answer = _forecast(served, horizon=HORIZON + 1, covariates=_covariates(served))
    assert answer.status_code == 422
    assert f"beyond the {HORIZON} steps" in answer.json()["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"horizon": 0}, "at least 1"),
        ({"horizon": 3, "series": "elsewhere"}, "Unknown series"),
        ({"horizon": 3, "colour": "red"}, "Unknown field"),
    ],
)
def test_bad_forecast_requests_are_named(served: Served, body: dict, message: str):
    answer = served.client.post("/v1/models/bikes/forecast", json=body)
    assert answer.status_code == 422
    assert message in answer.json()["message"]


def test_missing_covariates_are_refused_when_the_model_needs_them(served: Served):
    assert served.run.best == "lightgbm"  # the family that reads covariates won the backtest
    answer = _forecast(served, horizon=3)
    assert answer.status_code == 422
    assert "workingday" in answer.json()["message"]


def test_actuals_are_scored_by_monitoring(served: Served):
    for _ in range(3):
        assert _forecast(served, horizon=HORIZON, covariates=_covariates(served)).is_success
    actuals = [
        {"timestamp": str(row.dteday), "value": int(row.cnt)} for row in served.future.itertuples()
    ]
    stored = served.client.post("/v1/models/bikes/actuals", json=actuals)
    assert stored.status_code == 200, stored.text
    assert stored.json()["forecasts"] >= 3
    result = monitor(served.registry, "bikes", window_size=100)
    performance = next(item for item in result.performance if item)
    assert performance["metric"] == "mase"
    assert performance["labels"] >= 3 * HORIZON
    assert 0.0 <= performance["coverage"] <= 1.0
    assert performance["level_ratio"] == pytest.approx(1.0, abs=0.5)
    assert -1.0 <= performance["seasonality_correlation"] <= 1.0
    assert performance["error_ratio"] == pytest.approx(
        performance["value"] / served.run.test_metrics["mase"].value
    )
    assert result.windows[0].report, "the forecasts' level was not sketched"


def test_a_watch_pass_sees_the_realised_forecast_error(served: Served):
    from shipyard.config import MonitoringConfig
    from shipyard.pipeline.watch import Watcher

    for _ in range(3):
        assert _forecast(served, horizon=HORIZON, covariates=_covariates(served)).is_success
    actuals = [
        {"timestamp": str(row.dteday), "value": int(row.cnt)} for row in served.future.itertuples()
    ]
    assert served.client.post("/v1/models/bikes/actuals", json=actuals).is_success
    config = MonitoringConfig.model_validate({"retraining": {"enabled": False}})
    snapshot = Watcher(served.registry, "bikes", config).run_once().snapshot
    # The forecaster's own error over the actuals is the realised metric the policy compares
    # with the backtest's, lower being better: a worse forecast is a positive drop.
    assert snapshot.metric == "mase"
    assert snapshot.greater_is_better is False
    assert snapshot.reference_metric == pytest.approx(served.run.test_metrics["mase"].value)
    assert snapshot.realised_metric is not None
    assert snapshot.realised_metric > 0
    assert snapshot.metric_drop == pytest.approx(
        snapshot.realised_metric - snapshot.reference_metric
    )


def test_actuals_for_stamps_no_forecast_covered_get_a_404(served: Served):
    answer = served.client.post(
        "/v1/models/bikes/actuals", json={"timestamp": "2010-01-01", "value": 3}
    )
    assert answer.status_code == 404
    assert "No logged forecast" in answer.json()["message"]


def test_the_card_states_the_horizon_and_the_data_window(served: Served):
    card = served.client.get("/v1/models/bikes/card").text
    assert f"Horizon: {HORIZON} steps" in card
    assert "Data window: 2012-04-" in card
    assert "Backtest" in card


def test_batch_forecasts_are_written_to_a_file(served: Served, tmp_path: Path):
    from typer.testing import CliRunner

    from shipyard.cli.commands import app

    covariates = tmp_path / "future.csv"
    served.future[["dteday", "workingday", "holiday"]].to_csv(covariates, index=False)
    target = tmp_path / "forecasts.csv"
    home = ["--home", served.config.registry.home]
    outcome = CliRunner().invoke(
        app, ["forecast", "bikes", "-o", str(target), "--covariates", str(covariates), *home]
    )
    assert outcome.exit_code == 0, outcome.output
    written = pd.read_csv(target)
    assert len(written) == HORIZON
    assert list(written.columns) == ["series", "timestamp", "forecast", "lower", "upper", "level"]
    served_answer = _forecast(served, horizon=HORIZON, covariates=_covariates(served)).json()
    assert written["forecast"].tolist() == pytest.approx(served_answer["forecast"])

    refused = CliRunner().invoke(app, ["forecast", "bikes", "-o", str(target), *home])
    assert refused.exit_code == 1
    assert "workingday" in refused.output


def test_retraining_learns_the_actuals_and_is_gated_on_the_newest_ones(served: Served):
    from shipyard.pipeline.retrain import retrain

    for _ in range(4):
        assert _forecast(served, horizon=HORIZON, covariates=_covariates(served)).is_success
    actuals = [
        {"timestamp": str(row.dteday), "value": int(row.cnt)} for row in served.future.itertuples()
    ]
    assert served.client.post("/v1/models/bikes/actuals", json=actuals).is_success
    turn = retrain(served.registry, "bikes", min_gate_rows=1)
    # Of the 7 new days, the newest 2 (30%) are kept out of training for the gate...
    assert turn.new_rows == 5
    assert turn.challenger.version.version == 2
    # ...and each held-out forecast is scored on them by both versions.
    assert turn.gate.samples == 2 * turn.gate_rows
    assert turn.gate.metric == "negative scaled absolute error"
    assert turn.gate.champion <= 0
    assert turn.gate.challenger <= 0
