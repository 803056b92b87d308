"""Forecasting benchmark: shipyard's pick against statsforecast's AutoETS and seasonal naive.

Series (real, public): air passengers (monthly, Box & Jenkins), CTA daily boardings (the last
four years, 2017-2020, so that the COVID break of March 2020 is in the history), and the UCI
bike sharing counts, daily and hourly (hourly: the last 60 days, missing hours filled with 0,
which is what a missing hour means in that data: no rentals were recorded).

Evaluation is nested, so that shipyard's choice is not scored on the windows it was chosen on:
at each of the last ``--windows`` origins (``horizon`` steps apart), shipyard trains exactly as
``shipyard train`` does on the history before the origin (its own inner rolling-origin
backtest, the choice by MASE, conformal intervals) and forecasts the next ``horizon`` steps;
statsforecast's AutoETS (its own fit and predict, with its own 90% intervals) and the seasonal
naive forecast the same steps from the same history. Reported per series: mean MASE over the
outer windows (scaled by the in-sample seasonal naive error of each history), wall time per
origin, and 90% interval coverage.

Usage::

    python benchmarks/forecasting/run.py --data ../shared/datasets [--series air bike_daily]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shipyard.tasks.forecasting.backtest import mase_scale
from shipyard.tasks.forecasting.series import Series, build_series, season_length_for
from shipyard.tasks.forecasting.training import train_forecaster

LEVEL = 0.9
FAMILIES = ("seasonal_naive", "drift", "auto_ets", "lightgbm")


def air_passengers(folder: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    frame = pd.read_csv(folder / "air_passengers" / "AirPassengers.csv")
    return frame, {"time": "date", "target": "value", "horizon": 12, "inner": 3}


def cta_daily(folder: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    path = folder / "cta_ridership" / "CTA_-_Ridership_-_Daily_Boarding_Totals.csv"
    frame = pd.read_csv(path)
    frame["service_date"] = pd.to_datetime(frame["service_date"], format="%m/%d/%Y")
    # The source repeats a few dates (two rows a day); keep the last row of each.
    frame = frame.drop_duplicates("service_date", keep="last").sort_values("service_date")
    frame = frame[frame["service_date"] >= "2017-01-01"]
    return frame, {"time": "service_date", "target": "total_rides", "horizon": 14, "inner": 5}


def bike_daily(folder: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    frame = pd.read_csv(folder / "bike_sharing" / "day.csv")
    return frame, {"time": "dteday", "target": "cnt", "horizon": 14, "inner": 5}


def bike_hourly(folder: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    frame = pd.read_csv(folder / "bike_sharing" / "hour.csv")
    frame["stamp"] = pd.to_datetime(frame["dteday"]) + pd.to_timedelta(frame["hr"], unit="h")
    frame = frame[frame["stamp"] >= frame["stamp"].max() - pd.Timedelta(days=60)]
    return frame, {"time": "stamp", "target": "cnt", "horizon": 24, "inner": 5, "fill": "zero"}


SERIES: dict[str, Callable[[Path], tuple[pd.DataFrame, dict[str, Any]]]] = {
    "air_passengers": air_passengers,
    "cta_daily": cta_daily,
    "bike_daily": bike_daily,
    "bike_hourly": bike_hourly,
}


def _errors(actual: np.ndarray, forecast: np.ndarray, scale: float) -> float:
    return float(np.mean(np.abs(actual - forecast)) / scale)


def _autoets(history: np.ndarray, season: int, horizon: int) -> dict[str, np.ndarray]:
    from statsforecast.models import AutoETS

    period = season if 1 < season <= 24 and len(history) >= 2 * season else 1
    model = AutoETS(season_length=period, model="ZZZ" if period > 1 else "ZZN").fit(history)
    answer = model.predict(h=horizon, level=[int(LEVEL * 100)])
    return {
        "mean": np.asarray(answer["mean"]),
        "lower": np.asarray(answer[f"lo-{int(LEVEL * 100)}"]),
        "upper": np.asarray(answer[f"hi-{int(LEVEL * 100)}"]),
    }


def evaluate(name: str, frame: pd.DataFrame, spec: dict[str, Any], windows: int) -> dict:
    built, frequency = build_series(
        frame, time=spec["time"], target=spec["target"], fill=spec.get("fill", "error")
    )
    series, season, horizon = built[0], season_length_for(frequency), spec["horizon"]
    length = len(series.values)
    origins = [length - horizon * (windows - index) for index in range(windows)]
    rows: dict[str, list[float]] = {"shipyard": [], "auto_ets": [], "seasonal_naive": []}
    seconds: dict[str, list[float]] = {key: [] for key in rows}
    inside: dict[str, list[float]] = {"shipyard": [], "auto_ets": []}
    picks = []
    for origin in origins:
        history: Series = series.head(origin)
        actual = series.values[origin : origin + horizon]
        scale = mase_scale(history.values, season)

        started = time.perf_counter()
        run = train_forecaster(
            [history],
            frequency=frequency,
            season=season,
            horizon=horizon,
            windows=spec["inner"],
            step=horizon,
            families=FAMILIES,
            level=LEVEL,
            rounds=200,
            covariates=(),
            report=lambda message: None,
        )
        stamps = series.stamps[origin : origin + horizon]
        forecast = run.models[history.id].forecast(horizon, stamps, np.zeros((horizon, 0)))
        seconds["shipyard"].append(time.perf_counter() - started)
        width = run.quantiles * scale
        lower = (
            np.maximum(forecast - width, 0.0) if (history.values >= 0).all() else forecast - width
        )
        rows["shipyard"].append(_errors(actual, forecast, scale))
        inside["shipyard"].append(float(np.mean((actual >= lower) & (actual <= forecast + width))))
        picks.append(run.family)

        started = time.perf_counter()
        ets = _autoets(history.values, season, horizon)
        seconds["auto_ets"].append(time.perf_counter() - started)
        rows["auto_ets"].append(_errors(actual, ets["mean"], scale))
        inside["auto_ets"].append(
            float(np.mean((actual >= ets["lower"]) & (actual <= ets["upper"])))
        )

        started = time.perf_counter()
        period = season if len(history.values) > season else 1
        naive = np.resize(history.values[-period:], horizon)
        seconds["seasonal_naive"].append(time.perf_counter() - started)
        rows["seasonal_naive"].append(_errors(actual, naive, scale))
    return {
        "series": name,
        "frequency": frequency,
        "steps": length,
        "horizon": horizon,
        "outer_windows": windows,
        "inner_windows": spec["inner"],
        "picks": picks,
        "mase": {key: float(np.mean(values)) for key, values in rows.items()},
        "mase_per_window": rows,
        "seconds_per_origin": {key: float(np.mean(values)) for key, values in seconds.items()},
        "coverage": {key: float(np.mean(values)) for key, values in inside.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the shared datasets folder")
    parser.add_argument("--series", nargs="*", default=list(SERIES), choices=list(SERIES))
    parser.add_argument("--windows", type=int, default=4, help="outer evaluation windows")
    parser.add_argument("--json", type=Path, help="write the results here too")
    arguments = parser.parse_args()
    import statsforecast.models  # noqa: F401  (imported before any timing, for both sides)

    results = []
    for name in arguments.series:
        frame, spec = SERIES[name](arguments.data)
        result = evaluate(name, frame, spec, arguments.windows)
        results.append(result)
        mase, cost, coverage = result["mase"], result["seconds_per_origin"], result["coverage"]
        print(
            f"{name}: MASE shipyard {mase['shipyard']:.3f} ({', '.join(result['picks'])}) | "
            f"AutoETS {mase['auto_ets']:.3f} | seasonal naive {mase['seasonal_naive']:.3f}; "
            f"s/origin {cost['shipyard']:.1f} vs {cost['auto_ets']:.2f}; 90% coverage "
            f"{coverage['shipyard']:.0%} vs {coverage['auto_ets']:.0%}",
            flush=True,
        )
    machine = {
        "cpus": os.cpu_count(),
        "load": os.getloadavg(),
        "python": platform.python_version(),
    }
    if arguments.json:
        arguments.json.write_text(json.dumps({"machine": machine, "results": results}, indent=2))


if __name__ == "__main__":
    main()
