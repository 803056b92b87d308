from __future__ import annotations

from typer.testing import CliRunner

from shipyard.cli.commands import app
from shipyard.demos.forecast import future_calendar, run_forecast_demo


def test_forecast_demo_backtests_registers_and_serves_two_weeks(tmp_path):
    result = run_forecast_demo(
        {
            "registry.home": str(tmp_path / "home"),
            "forecasting.windows": 4,
            "forecasting.models": ["seasonal_naive", "drift", "lightgbm"],
            "evaluation.bootstrap_samples": 200,
        }
    )
    section = result.forecasting
    families = section["backtest"]["families"]
    assert set(families) == {"seasonal_naive", "drift", "lightgbm"}
    chosen = families[section["chosen"]]["metrics"]["mase"]
    assert chosen["low"] <= chosen["value"] <= chosen["high"]
    assert "seasonal naive" in section["verdict"]["verdict"]
    assert 0.0 < section["intervals"]["coverage"] <= 1.0
    forecast = result.forecast
    assert forecast["horizon"] == 14
    assert forecast["timestamps"][0].startswith("2013-01-01")
    assert all(
        0 <= low <= point <= high
        for low, point, high in zip(
            forecast["lower"], forecast["forecast"], forecast["upper"], strict=True
        )
    )
    assert result.run.version.aliases == ("champion",)


def test_the_demo_knows_the_future_holidays():
    calendar = future_calendar("2013-01-14", 14)
    assert calendar["holiday"][7] == 1  # Martin Luther King Jr. Day, 21 January 2013
    assert calendar["workingday"][7] == 0
    assert sum(calendar["workingday"]) == 9


def test_forecast_is_a_listed_demo(tmp_path):
    outcome = CliRunner().invoke(app, ["demo", "forecasts", "--home", str(tmp_path)])
    assert outcome.exit_code == 1
    assert "forecast" in outcome.output
