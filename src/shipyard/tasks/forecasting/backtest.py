"""Rolling-origin backtests: every candidate refitted at each origin, scored on what followed.

The last ``windows`` origins are ``step`` steps apart, the latest one ``horizon`` steps before
the end: each candidate is fitted on the series up to an origin and forecasts the next
``horizon`` steps. One (series, window) pair is one unit: its MASE (scaled by the in-sample
seasonal naive error, Hyndman & Koehler 2006), sMAPE and RMSE. Metrics are means over units
with bootstrap intervals, and each candidate is compared with the seasonal naive baseline
paired over units. The scaled absolute errors of the chosen family calibrate the conformal
intervals (:mod:`shipyard.tasks.forecasting.conformal`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shipyard.errors import DataError
from shipyard.evaluation.metrics import MetricValue
from shipyard.stats import bootstrap, paired_difference
from shipyard.tasks.forecasting.models import make_model
from shipyard.tasks.forecasting.runtime import Array
from shipyard.tasks.forecasting.series import Series

__all__ = [
    "BASELINE",
    "Backtest",
    "FamilyScores",
    "mase_scale",
    "origins",
    "run_backtest",
    "summarise",
    "verdict",
]

BASELINE = "seasonal_naive"
METRICS = ("mase", "smape", "rmse")


def mase_scale(values: Array, season: int) -> float:
    """Mean absolute error of the in-sample seasonal naive forecast (one step when too short).

    Examples
    --------
    >>> mase_scale(np.array([1.0, 2.0, 4.0, 8.0]), 1)
    2.3333333333333335
    """
    period = season if len(values) > season else 1
    errors = np.abs(values[period:] - values[:-period])
    scale = float(errors.mean()) if len(errors) else 0.0
    return scale if scale > 0 else 1.0


def origins(length: int, horizon: int, windows: int, step: int, minimum: int) -> list[int]:
    """Return the backtest origins, oldest first, or a clear error when the series is too short.

    Examples
    --------
    >>> origins(100, 7, 3, 7, 20)
    [79, 86, 93]
    """
    last = length - horizon
    first = last - (windows - 1) * step
    if first < minimum:
        raise DataError(
            f"A series of {length} steps cannot hold {windows} backtest windows of {horizon} "
            f"steps, {step} apart, after at least {minimum} training steps; lower "
            "forecasting.windows, forecasting.step or forecasting.horizon."
        )
    return [first + index * step for index in range(windows)]


@dataclass
class FamilyScores:
    """One family's backtest: metrics and scaled errors per unit, or why it failed."""

    family: str
    units: list[dict[str, float]] = field(default_factory=list)
    scaled_errors: list[Array] = field(default_factory=list)
    windows: list[int] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    def values(self, metric: str) -> Array:
        """Return the metric of every unit, in unit order."""
        return np.array([unit[metric] for unit in self.units], dtype=np.float64)


@dataclass
class Backtest:
    """Every family's backtest over the same units."""

    horizon: int
    windows: int
    step: int
    families: dict[str, FamilyScores]
    units: int


def _unit_metrics(actual: Array, forecast: Array, scale: float) -> dict[str, float]:
    errors = actual - forecast
    denominator = np.abs(actual) + np.abs(forecast)
    ratios = np.divide(
        2.0 * np.abs(errors), denominator, out=np.zeros_like(errors), where=denominator > 0
    )
    return {
        "mase": float(np.mean(np.abs(errors)) / scale),
        "smape": float(100.0 * np.mean(ratios)),
        "rmse": float(np.sqrt(np.mean(errors**2))),
    }


def _covariates(series: Series, names: Sequence[str]) -> Array:
    if not names:
        return np.zeros((len(series.values), 0))
    return np.column_stack([series.covariates[name] for name in names])


def run_backtest(
    series_list: Sequence[Series],
    families: Sequence[str],
    *,
    horizon: int,
    windows: int,
    step: int,
    season: int,
    rounds: int,
    covariates: Sequence[str] = (),
    report: Callable[[str], None] = lambda message: None,
) -> Backtest:
    """Refit every family at every origin of every series; score the forecasts."""
    minimum = max(2 * season, 10)
    plans = [
        (series, origins(len(series.values), horizon, windows, step, minimum))
        for series in series_list
    ]
    results: dict[str, FamilyScores] = {}
    for family in families:
        scores = FamilyScores(family)
        started = time.perf_counter()
        try:
            for series, starts in plans:
                for window, origin in enumerate(starts):
                    history = series.head(origin)
                    actual = series.slice(origin, origin + horizon)
                    model = make_model(family, season, rounds, covariates).fit(history)
                    forecast = model.forecast(
                        horizon, actual.stamps, _covariates(actual, covariates)
                    )
                    scale = mase_scale(history.values, season)
                    scores.units.append(_unit_metrics(actual.values, forecast, scale))
                    scores.scaled_errors.append(np.abs(actual.values - forecast) / scale)
                    scores.windows.append(window)
        except Exception as error:  # a family that fails is reported, not fatal
            scores = FamilyScores(family, error=f"{type(error).__name__}: {error}")
        scores.seconds = time.perf_counter() - started
        results[family] = scores
        status = scores.error or f"MASE {np.mean(scores.values('mase')):.3f}"
        report(f"backtest {family}: {status} ({scores.seconds:.1f} s)")
    units = sum(len(starts) for _, starts in plans)
    return Backtest(horizon, windows, step, results, units)


def _mean_of(values: Array) -> Callable[[Any], float]:
    return lambda rows: float(values[rows].mean())


def summarise(
    scores: FamilyScores, *, n_samples: int, confidence: float, seed: int
) -> dict[str, MetricValue]:
    """Mean MASE, sMAPE and RMSE over units, each with its bootstrap interval."""
    summary = {}
    for metric in METRICS:
        estimate = bootstrap(
            _mean_of(scores.values(metric)),
            len(scores.units),
            n_samples=n_samples,
            confidence=confidence,
            seed=seed,
        )
        summary[metric] = MetricValue(estimate.value, estimate.low, estimate.high, confidence)
    return summary


def verdict(
    scores: FamilyScores,
    baseline: FamilyScores,
    *,
    n_samples: int,
    confidence: float,
    seed: int,
) -> dict[str, Any]:
    """Return the MASE difference to the seasonal naive, paired over units, and what it means."""
    new, old = scores.values("mase"), baseline.values("mase")
    estimate = paired_difference(
        lambda rows: float(new[rows].mean()),
        lambda rows: float(old[rows].mean()),
        len(new),
        n_samples=n_samples,
        confidence=confidence,
        seed=seed,
    )
    if estimate.high < 0:
        said = "better than the seasonal naive baseline"
    elif estimate.low > 0:
        said = "worse than the seasonal naive baseline"
    else:
        said = "no significant difference from the seasonal naive baseline"
    return {
        "baseline": BASELINE,
        "metric": "mase",
        "difference": round(estimate.value, 6),
        "low": round(estimate.low, 6),
        "high": round(estimate.high, 6),
        "confidence": confidence,
        "units": len(new),
        "verdict": said,
    }
