"""The candidate families, as trained: seasonal naive, drift, AutoETS and LightGBM on lags.

Each model is fitted on one :class:`~shipyard.tasks.forecasting.series.Series`, forecasts
with its training-time object (statsforecast's AutoETS, the trained LightGBM booster), and
exports its parameters as JSON (and LightGBM its text model) for
:mod:`shipyard.tasks.forecasting.runtime`. AutoARIMA and Theta are not candidates: their
forecasts come from a state-space filter and a decomposition that statsforecast does not expose
as a few final states, so they could not be served without their library or a pickle.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from shipyard.errors import DataError
from shipyard.tasks.forecasting.runtime import (
    Array,
    calendar_features,
    lag_features,
    recursive_forecast,
    to_relative,
)
from shipyard.tasks.forecasting.series import Series

__all__ = ["FAMILIES", "AutoETS", "Drift", "LightGBMLags", "SeasonalNaive", "make_model"]


class SeasonalNaive:
    """Repeat the last observed season (the baseline every forecast must beat)."""

    family = "seasonal_naive"

    def __init__(self, season_length: int = 1) -> None:
        self.season_length = season_length

    def fit(self, series: Series) -> SeasonalNaive:
        """Keep the last season."""
        period = min(self.season_length, len(series.values))
        self.season_ = series.values[-period:].copy()
        return self

    def forecast(self, horizon: int, stamps: pd.DatetimeIndex, covariates: Array) -> Array:
        """Tile the last season over the horizon."""
        return np.resize(self.season_, horizon).astype(np.float64)

    def parameters(self) -> dict[str, Any]:
        """Return the last season, in order."""
        return {"family": self.family, "season": self.season_.tolist()}


class Drift:
    """Extend the straight line from the first to the last value (random walk with drift)."""

    family = "drift"

    def __init__(self, season_length: int = 1) -> None:
        self.season_length = season_length

    def fit(self, series: Series) -> Drift:
        """Keep the last value and the mean step."""
        values = series.values
        self.last_ = float(values[-1])
        self.slope_ = float((values[-1] - values[0]) / max(len(values) - 1, 1))
        return self

    def forecast(self, horizon: int, stamps: pd.DatetimeIndex, covariates: Array) -> Array:
        """Return the last value plus the mean step per step ahead."""
        return self.last_ + self.slope_ * np.arange(1, horizon + 1, dtype=np.float64)

    def parameters(self) -> dict[str, Any]:
        """Return the last value and the slope."""
        return {"family": self.family, "last": self.last_, "slope": self.slope_}


class AutoETS:
    """statsforecast's AutoETS (error, trend and season chosen by AICc), exported as states."""

    family = "auto_ets"

    def __init__(self, season_length: int = 1) -> None:
        self.season_length = season_length

    def fit(self, series: Series) -> AutoETS:
        """Fit AutoETS; a season longer than statsforecast allows (24) is left out."""
        from shipyard.errors import require

        require("statsforecast", "forecast")
        from statsforecast.models import AutoETS as StatsForecastETS

        # statsforecast's ETS refuses seasons over 24 steps and needs two full seasons.
        seasonal = 1 < self.season_length <= 24 and len(series.values) >= 2 * self.season_length
        period = self.season_length if seasonal else 1
        self.model_ = StatsForecastETS(season_length=period, model="ZZZ" if seasonal else "ZZN")
        self.model_.fit(series.values.astype(np.float64))
        return self

    def forecast(self, horizon: int, stamps: pd.DatetimeIndex, covariates: Array) -> Array:
        """Statsforecast's own forecast."""
        return np.asarray(self.model_.predict(h=horizon)["mean"], dtype=np.float64)

    def parameters(self) -> dict[str, Any]:
        """Return the chosen components, the damping and the final states."""
        fitted = self.model_.model_
        components = str(fitted["components"])
        states = np.asarray(fitted["states"][-1], dtype=np.float64)
        has_trend = components[1] != "N"
        period = int(fitted["m"]) if components[2] != "N" else 0
        phi = float(fitted["par"][3])
        return {
            "family": self.family,
            "method": str(fitted["method"]),
            "components": components,
            "phi": 1.0 if np.isnan(phi) else phi,
            "level": float(states[0]),
            "trend": float(states[1]) if has_trend else 0.0,
            "season": states[1 + has_trend : 1 + has_trend + period].tolist(),
        }


class LightGBMLags:
    """LightGBM on lags, the recent level, the calendar and covariates, forecast recursively."""

    family = "lightgbm"

    def __init__(
        self, season_length: int = 1, rounds: int = 200, covariates: Sequence[str] = ()
    ) -> None:
        self.season_length = season_length
        self.rounds = rounds
        self.covariates = covariates

    def _lags(self, series: Series) -> list[int]:
        season = max(self.season_length, 1)
        wanted = {*range(1, min(season, 14) + 1), season, 2 * season}
        if len(series.stamps) > 1 and series.stamps[1] - series.stamps[0] == pd.Timedelta(hours=1):
            wanted.add(WEEK_OF_HOURS)  # hourly data has a weekly cycle beside the daily one
        return [lag for lag in sorted(wanted) if lag < len(series.values) // 2] or [1]

    def fit(self, series: Series) -> LightGBMLags:
        """Train on every step with a full history of lags."""
        import lightgbm

        values = series.values
        self.lags_ = self._lags(series)
        self.level_window_ = max(1, min(self.season_length, len(values) // 4))
        start = max(max(self.lags_), self.level_window_)
        if len(values) - start < 10:
            raise DataError(
                f"Series '{series.id}' is too short for LightGBM on lags ({len(values)} steps)."
            )
        calendar = calendar_features(series.stamps)
        covariates = self._covariate_matrix(series)
        # A positive series learns ratios to its level (seasonal swings scale with the level).
        self.ratio_ = bool((values > 0).all())
        rows, targets = [], []
        for t in range(start, len(values)):
            features = lag_features(values[:t], self.lags_, self.level_window_, self.ratio_)
            rows.append([*features, *calendar[t], *covariates[t]])
            targets.append(to_relative(values[t], features[len(self.lags_)], self.ratio_))
        parameters = {
            "objective": "regression",
            "learning_rate": 0.05,
            "num_leaves": 15,
            "min_data_in_leaf": 5,
            "num_threads": 1,
            "deterministic": True,
            "force_row_wise": True,
            "seed": 0,
            "verbosity": -1,
        }
        dataset = lightgbm.Dataset(np.asarray(rows), np.asarray(targets), free_raw_data=False)
        self.booster_ = lightgbm.train(parameters, dataset, num_boost_round=self.rounds)
        self.history_ = values[-start:].copy()
        return self

    def _covariate_matrix(self, series: Series) -> Array:
        if not self.covariates:
            return np.zeros((len(series.values), 0))
        return np.column_stack([series.covariates[name] for name in self.covariates])

    def forecast(self, horizon: int, stamps: pd.DatetimeIndex, covariates: Array) -> Array:
        """Recursive forecast with the trained booster."""
        return recursive_forecast(
            lambda row: np.asarray(self.booster_.predict(row), dtype=np.float64),
            self.history_,
            self.lags_,
            self.level_window_,
            calendar_features(stamps),
            covariates,
            self.ratio_,
        )

    def parameters(self) -> dict[str, Any]:
        """Return the lags, the level window and the history the recursion starts from."""
        return {
            "family": self.family,
            "lags": self.lags_,
            "season_length": self.level_window_,
            "history": self.history_.tolist(),
            "ratio": self.ratio_,
            "covariates": list(self.covariates),
        }

    def model_text(self) -> bytes:
        """LightGBM's own text model file."""
        return str(self.booster_.model_to_string()).encode()


FAMILIES = ("seasonal_naive", "drift", "auto_ets", "lightgbm")
WEEK_OF_HOURS = 168


def make_model(
    family: str, season_length: int, rounds: int = 200, covariates: Sequence[str] = ()
) -> Any:
    """Build an unfitted model of ``family``."""
    if family == "seasonal_naive":
        return SeasonalNaive(season_length)
    if family == "drift":
        return Drift(season_length)
    if family == "auto_ets":
        return AutoETS(season_length)
    if family == "lightgbm":
        return LightGBMLags(season_length, rounds, covariates)
    raise DataError(f"Unknown forecasting family '{family}'; use one of {', '.join(FAMILIES)}.")
