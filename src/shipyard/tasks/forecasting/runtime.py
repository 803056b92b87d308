"""Forecasting from exported parameters: the code the server runs, without the training libraries.

Every family is exported as numbers in JSON (LightGBM as its text model file) and forecast here
by a few lines of arithmetic: the seasonal naive repeats the last season, the drift extends the
line from the first to the last value, ETS runs its point-forecast recursion from the final
level, trend and seasonal states, and LightGBM is run recursively on lag, level, calendar and
covariate features. Nothing here imports statsforecast; nothing is unpickled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from shipyard.errors import DataError

__all__ = [
    "CALENDAR_FEATURES",
    "calendar_features",
    "ets_forecast",
    "forecast_from_parameters",
    "lag_features",
    "recursive_forecast",
]

Array = npt.NDArray[np.float64]
CALENDAR_FEATURES = ("hour", "day_of_week", "day_of_month", "day_of_year", "month")


def calendar_features(stamps: pd.DatetimeIndex) -> Array:
    """Return the calendar of each stamp: hour, day of week, of month, of year, month."""
    return np.column_stack(
        [
            stamps.hour.to_numpy(),
            stamps.day_of_week.to_numpy(),
            stamps.day.to_numpy(),
            stamps.day_of_year.to_numpy(),
            stamps.month.to_numpy(),
        ]
    ).astype(np.float64)


def lag_features(history: Array, lags: Sequence[int], season: int, ratio: bool) -> list[float]:
    """Lags of the target relative to the last season's mean, and that mean (the level).

    The model learns the next value relative to the level, so a trend or a level shift moves
    every forecast with it instead of being clipped to the range seen in training (trees
    cannot extrapolate). ``ratio`` (a positive series): relative means divided by the level,
    so seasonal swings scale with it (a series that halves swings half as much); otherwise
    minus the level.
    """
    level = float(np.mean(history[-season:]))
    if ratio:
        return [float(history[-lag]) / level for lag in lags] + [level]
    return [float(history[-lag]) - level for lag in lags] + [level]


def from_relative(value: float, level: float, ratio: bool) -> float:
    """Undo :func:`lag_features`' scaling of the target."""
    return value * level if ratio else value + level


def to_relative(value: float, level: float, ratio: bool) -> float:
    """Return the target as the model learns it: relative to the level."""
    return value / level if ratio else value - level


def recursive_forecast(
    predict: Callable[[Array], Array],
    history: Array,
    lags: Sequence[int],
    season: int,
    calendar: Array,
    covariates: Array,
    ratio: bool = False,
) -> Array:
    """Forecast one step at a time, each forecast joining the history the next step reads."""
    values = list(history[-max(max(lags), season) :])
    forecasts = []
    for step in range(len(calendar)):
        features = lag_features(np.asarray(values), lags, season, ratio)
        row = np.array([[*features, *calendar[step], *covariates[step]]])
        forecast = from_relative(float(predict(row)[0]), features[len(lags)], ratio)
        forecasts.append(forecast)
        values.append(forecast)
    return np.asarray(forecasts, dtype=np.float64)


def ets_forecast(parameters: Mapping[str, Any], horizon: int) -> Array:
    """Return the ETS point forecast from the final states (Hyndman et al., 2008, the R recursion).

    ``components`` is statsforecast's four letters (error, trend, season, damped); ``level``,
    ``trend`` and ``season`` (most recent last) the final states; ``phi`` the damping.
    """
    components = str(parameters["components"])
    trend, season_kind = components[1], components[2]
    level, slope = float(parameters["level"]), float(parameters["trend"])
    season = np.asarray(parameters["season"], dtype=np.float64)
    phi = float(parameters["phi"])
    period = max(len(season), 1)
    forecasts = np.empty(horizon)
    phistar = phi
    for step in range(horizon):
        if trend == "N":
            value = level
        elif trend == "A":
            value = level + phistar * slope
        else:
            value = level * slope**phistar if slope >= 0 else -99999.0
        if season_kind != "N":
            index = (period - 1 - step) % period
            value = value + season[index] if season_kind == "A" else value * season[index]
        forecasts[step] = value
        phistar = phistar + 1.0 if abs(phi - 1.0) < 1e-10 else phistar + phi ** (step + 1)
    return forecasts


def forecast_from_parameters(
    parameters: Mapping[str, Any],
    horizon: int,
    stamps: pd.DatetimeIndex,
    covariates: Array,
    booster: Any = None,
) -> Array:
    """Point forecasts of one exported series model, ``horizon`` steps ahead.

    ``stamps`` are the future stamps (LightGBM's calendar), ``covariates`` their known
    values (one column per covariate, in the exported order); ``booster`` the loaded LightGBM
    model for the ``lightgbm`` family.

    Raises
    ------
    DataError
        When the family is unknown (a bundle from a newer shipyard).
    """
    family = parameters["family"]
    if family == "seasonal_naive":
        season = np.asarray(parameters["season"], dtype=np.float64)
        return season[np.arange(horizon) % len(season)]
    if family == "drift":
        steps = np.arange(1, horizon + 1, dtype=np.float64)
        return float(parameters["last"]) + float(parameters["slope"]) * steps
    if family == "auto_ets":
        return ets_forecast(parameters, horizon)
    if family == "lightgbm":
        return recursive_forecast(
            lambda row: np.asarray(booster.predict(row), dtype=np.float64),
            np.asarray(parameters["history"], dtype=np.float64),
            parameters["lags"],
            int(parameters["season_length"]),
            calendar_features(stamps),
            covariates,
            bool(parameters.get("ratio", False)),
        )
    raise DataError(
        f"This shipyard cannot forecast with the '{family}' family; upgrade shipyard to "
        "serve this bundle."
    )
