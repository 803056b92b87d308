"""The forecasting demo: daily bike rentals -> backtest -> registry -> server -> 14-day forecast.

Trains on the bundled daily counts of the UCI Bike Sharing data (CC BY 4.0; Fanaee-T & Gama
2013), 2011-2012: every candidate is backtested on rolling origins, the best by MASE is
registered, served, and asked over HTTP for the 14 days after the data ends, with 90%
conformal intervals. The future working days and holidays (the covariates) come from the US
federal holiday calendar, as a planner would know them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shipyard.config import PipelineConfig, load_config
from shipyard.demos.adult import demo_key, post_json
from shipyard.examples import example_path
from shipyard.pipeline import TrainRun, train
from shipyard.registry.store import Registry

__all__ = ["ForecastDemoResult", "forecast_demo_config", "future_calendar", "run_forecast_demo"]


@dataclass
class ForecastDemoResult:
    """What the demo did: the training run, the backtest section and the served forecast."""

    run: TrainRun
    url: str
    forecasting: dict[str, Any]
    forecast: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary, the shape ``shipyard demo forecast --json`` prints."""
        return {
            **self.run.as_dict(),
            "server": self.url,
            "forecasting": self.forecasting,
            "forecast": self.forecast,
        }


def forecast_demo_config(overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Load the demo's config (``shipyard/examples/bike_daily.yaml``) with overrides applied."""
    return load_config(example_path("bike_daily"), overrides)


def future_calendar(first: str, days: int) -> dict[str, list[int]]:
    """Working days and US federal holidays for ``days`` days from ``first``.

    Examples
    --------
    >>> future_calendar("2013-01-01", 3)
    {'workingday': [0, 1, 1], 'holiday': [1, 0, 0]}
    """
    import pandas as pd
    from pandas.tseries.holiday import USFederalHolidayCalendar

    stamps = pd.date_range(first, periods=days, freq="D")
    holidays = set(USFederalHolidayCalendar().holidays(stamps[0], stamps[-1]))
    holiday = [int(stamp in holidays) for stamp in stamps]
    working = [
        int(stamp.day_of_week < 5 and not free)
        for stamp, free in zip(stamps, holiday, strict=True)
    ]
    return {"workingday": working, "holiday": holiday}


def run_forecast_demo(
    overrides: dict[str, Any] | None = None, report: Callable[[str], None] | None = None
) -> ForecastDemoResult:
    """Run the whole forecasting demo and return what happened."""
    from shipyard.registry.bundle import read_manifest
    from shipyard.serving import build_app, running_server

    report = report or (lambda message: None)
    config = forecast_demo_config(overrides)
    settings = config.forecasting
    assert settings is not None
    registry = Registry.from_config(config.registry)
    run = train(config, report=report, registry=registry)
    section = dict(read_manifest(run.version.bundle_path)["forecasting"])
    last = section["data_window"]["last"]
    import pandas as pd

    first = (pd.Timestamp(last) + pd.Timedelta(days=1)).date().isoformat()
    calendar = future_calendar(first, settings.horizon)
    report(f"starting a server for {run.version.reference}")
    demo = demo_key(config)
    app = build_app(registry, run.version.reference, config.serving, demo.store)
    with running_server(app, host=config.serving.host, port=0) as url:
        target = f"{url}/v1/models/{config.name}/forecast"
        report(f"POST {target} (horizon {settings.horizon})")
        body = {"horizon": settings.horizon, "covariates": calendar}
        forecast = post_json(target, body, demo.key)
    report("server stopped")
    demo.retire(report)
    return ForecastDemoResult(run, url, section, forecast)
