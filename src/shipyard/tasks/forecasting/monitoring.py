"""Monitoring a forecaster: the level of what it forecasts, and its error as actuals arrive.

- ``forecast``: a sketch of the served point forecasts, against the target's recent values at
  training time (the last four seasons, or two horizons, of every series). Forecasts drifting
  out of that range mean the model extrapolates a level or trend the data never showed.
- Actuals (``POST /v1/models/{name}/actuals``, by series and timestamp) are stored against
  the logged forecasts that covered them (:func:`merge_actuals`). Each window then reports the
  forecast error as MASE (each series' training scale), the share of actuals inside the
  served intervals against the nominal level, the level ratio (mean actual over mean
  forecast: far from 1 is a level shift of the target itself), the seasonality correlation
  (of actuals with forecasts: a falling one is a changed pattern) and the error ratio (window
  MASE over the backtest's: above 1 the model does worse than it promised; retrain).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shipyard.errors import DataError
from shipyard.monitoring.adapters import TaskMonitoring
from shipyard.monitoring.sketch import NumericSketch, Sketch, sketch_from_json
from shipyard.stats import bootstrap

if TYPE_CHECKING:
    from shipyard.tasks.forecasting.served import ServedForecaster
    from shipyard.tasks.forecasting.training import ForecastRun

__all__ = [
    "MIN_ACTUALS",
    "actual_points",
    "forecast_monitoring",
    "forecast_reference",
    "merge_actuals",
    "parse_actuals",
]

MIN_ACTUALS = 10
"""Windows with fewer actuals report no error."""


def forecast_reference(run: ForecastRun) -> dict[str, Sketch]:
    """Sketch the recent target values every series had at training time."""
    recent = max(4 * run.season, 2 * run.horizon)
    values = np.concatenate([series.values[-recent:] for series in run.series])
    return {"forecast": NumericSketch.from_values(values)}


def parse_actuals(payload: Any) -> list[tuple[str | None, str, float]]:
    """``(series, timestamp, value)`` triples from an actuals body.

    Raises
    ------
    DataError
        Naming the malformed item and the expected shape.
    """
    items = [payload] if isinstance(payload, Mapping) else payload
    if not isinstance(items, list) or not items:
        raise DataError(
            'Send {"timestamp": STAMP, "value": NUMBER} (and "series" for a model of many '
            "series), or a non-empty list of them."
        )
    triples = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping) or "timestamp" not in item or "value" not in item:
            raise DataError(f"Actual {index} must be an object with 'timestamp' and 'value'.")
        value = item["value"]
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise DataError(f"Actual {index}: 'value' must be a number; got {value!r}.")
        series = item.get("series")
        try:
            stamp = pd.Timestamp(str(item["timestamp"])).isoformat()
        except ValueError:
            raise DataError(
                f"Actual {index}: 'timestamp' {item['timestamp']!r} is not a date or time."
            ) from None
        triples.append((None if series is None else str(series), stamp, value))
    return triples


def merge_actuals(
    logged: Iterable[Mapping[str, Any]],
    labels: Mapping[str, Any],
    actuals: Sequence[tuple[str, str, float]],
) -> dict[str, dict[str, Any]]:
    """Return new labels of logged forecasts: each actual joins the forecasts covering it.

    ``logged`` are prediction rows (``request_id``, ``output``), ``labels`` their current
    labels by request id, ``actuals`` ``(series, ISO timestamp, value)`` triples with the
    series resolved. Returns ``request_id -> {"actuals": {stamp: value}}`` for the changed ones.
    """
    wanted: dict[tuple[str, str], float] = {
        (series, stamp): float(value) for series, stamp, value in actuals
    }
    changed: dict[str, dict[str, Any]] = {}
    for row in logged:
        output = row["output"]
        series = output.get("series")
        stamps = set(output.get("timestamps", []))
        hits = {
            stamp: value
            for (wanted_series, stamp), value in wanted.items()
            if wanted_series == series and stamp in stamps
        }
        if hits:
            current = dict((labels.get(row["request_id"]) or {}).get("actuals", {}))
            current.update(hits)
            changed[row["request_id"]] = {"actuals": current}
    return changed


def actual_points(
    rows: Iterable[Mapping[str, Any]], scales: Mapping[str, float]
) -> dict[str, np.ndarray]:
    """Per actual: scaled absolute error, inside the interval, actual and forecast."""
    errors, inside, actual, forecast = [], [], [], []
    for row in rows:
        output, label = row["output"], row.get("label") or {}
        position = {stamp: index for index, stamp in enumerate(output.get("timestamps", []))}
        scale = scales.get(str(output.get("series")), 1.0)
        for stamp, value in (label.get("actuals") or {}).items():
            index = position.get(stamp)
            if index is None:
                continue
            point = float(output["forecast"][index])
            errors.append(abs(float(value) - point) / scale)
            inside.append(output["lower"][index] <= float(value) <= output["upper"][index])
            actual.append(float(value))
            forecast.append(point)
    return {
        "errors": np.asarray(errors, dtype=np.float64),
        "inside": np.asarray(inside, dtype=bool),
        "actual": np.asarray(actual, dtype=np.float64),
        "forecast": np.asarray(forecast, dtype=np.float64),
    }


def _seasonality(actual: np.ndarray, forecast: np.ndarray) -> float | None:
    """Correlation of the actuals' and the forecasts' ups and downs (1: the same pattern)."""
    if len(actual) < 3 or actual.std() == 0 or forecast.std() == 0:
        return None
    return float(np.corrcoef(actual, forecast)[0, 1])


def forecast_monitoring(
    served: ServedForecaster, reference: Mapping[str, Any], backtest_mase: float | None = None
) -> TaskMonitoring:
    """Describe how a forecaster's logged forecasts and actuals are monitored.

    ``backtest_mase`` is the error the backtest promised; each window reports its own beside
    it, so that a worsening error shows as the ratio of the two.
    """
    sketches = {name: sketch_from_json(value) for name, value in reference.items()}
    scales = {series: float(entry["scale"]) for series, entry in served.document["series"].items()}

    def values(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
        points: list[Any] = []
        for row in rows:
            points += list(row["output"].get("forecast", []))
        return {"forecast": points}

    def performance(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
        points = actual_points(rows, scales)
        errors = points["errors"]
        if len(errors) < MIN_ACTUALS:
            return None
        estimate = bootstrap(
            lambda picked: float(errors[picked].mean()), len(errors), n_samples=300, seed=0
        )
        forecast_mean = float(points["forecast"].mean())
        return {
            "metric": "mase",
            "labels": len(errors),
            "value": estimate.value,
            "low": estimate.low,
            "high": estimate.high,
            "confidence": 0.95,
            "coverage": float(points["inside"].mean()),
            "nominal_coverage": served.level,
            "level_ratio": float(points["actual"].mean()) / forecast_mean
            if forecast_mean
            else None,
            "seasonality_correlation": _seasonality(points["actual"], points["forecast"]),
            "backtest_mase": backtest_mase,
            "error_ratio": estimate.value / backtest_mase if backtest_mase else None,
        }

    return TaskMonitoring(sketches, "forecasting", [], values=values, performance=performance)


def resolve_series(served: ServedForecaster, series: str | None) -> str:
    """Return the series an actual belongs to (the only one when none is named)."""
    try:
        return served.series_id(series)
    except DataError as error:
        raise DataError(f"Actual for series {series!r}: {error}") from None
