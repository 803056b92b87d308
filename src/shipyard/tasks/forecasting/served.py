"""The served forecaster: a bundle's exported series models, answering forecast requests.

:class:`ServedForecaster` reads ``forecast.json`` (each series' parameters, its MASE scale and
last stamp, the conformal quantiles) and the LightGBM text models, and answers
``forecast(series, horizon, covariates)`` with the future stamps, point forecasts and
intervals. A request it cannot answer (an unknown series, a horizon beyond the trained one,
missing or misshapen covariates) raises :class:`~shipyard.errors.DataError` naming the fix.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shipyard.errors import DataError
from shipyard.runtime.bundle_files import bundle_file
from shipyard.tasks.forecasting.runtime import Array, forecast_from_parameters

__all__ = ["MODEL_FILE", "ServedForecaster"]

MODEL_FILE = "forecast.json"


class ServedForecaster:
    """Forecasts from a bundle's exported parameters (no training library, no pickle)."""

    def __init__(self, document: Mapping[str, Any], boosters: Mapping[str, Any]) -> None:
        self.document = document
        self.boosters = boosters
        self.horizon = int(document["horizon"])
        self.frequency = str(document["frequency"])
        self.covariates: list[str] = list(document["covariates_used"])
        self.series_ids: list[str] = list(document["series"])
        self.quantiles = np.asarray(document["quantiles"], dtype=np.float64)
        self.level = float(document["level"])

    @classmethod
    def from_directory(cls, directory: Path, files: Mapping[str, str]) -> ServedForecaster:
        """Load ``forecast.json`` and the LightGBM text models named in ``files``."""
        document = json.loads(bundle_file(directory, files["parameters"]).read_bytes())
        boosters: dict[str, Any] = {}
        for series_id, entry in document["series"].items():
            if entry["family"] == "lightgbm":
                import lightgbm

                text = bundle_file(directory, entry["model_file"]).read_text(encoding="utf-8")
                boosters[series_id] = lightgbm.Booster(model_str=text)
        return cls(document, boosters)

    def series_id(self, requested: Any) -> str:
        """Return the series a request names; the only one when the model has one."""
        if requested is None:
            if len(self.series_ids) == 1:
                return self.series_ids[0]
            raise DataError(
                f"This model forecasts {len(self.series_ids)} series; name one in 'series' "
                f"(for example {self.series_ids[0]!r})."
            )
        key = str(requested)
        if key not in self.document["series"]:
            shown = ", ".join(repr(name) for name in self.series_ids[:5])
            raise DataError(f"Unknown series {key!r}; the model knows {shown}.")
        return key

    def _horizon(self, horizon: Any) -> int:
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise DataError(
                f"'horizon' must be a whole number of steps, at least 1; got {horizon!r}."
            )
        if horizon > self.horizon:
            raise DataError(
                f"horizon {horizon} is beyond the {self.horizon} steps this model was trained "
                f"and backtested for; ask for at most {self.horizon}, or retrain with a larger "
                "forecasting.horizon."
            )
        return horizon

    def _covariates(self, given: Any, horizon: int) -> Array:
        if not self.covariates:
            return np.zeros((horizon, 0))
        if not isinstance(given, Mapping):
            raise DataError(
                f"This model needs the future values of {', '.join(self.covariates)}: send "
                "'covariates' as {name: [one value per step]}."
            )
        columns = []
        for name in self.covariates:
            values = given.get(name)
            if not isinstance(values, Sequence) or isinstance(values, str):
                raise DataError(
                    f"Covariate '{name}' is missing; send {horizon} future values of it."
                )
            if len(values) < horizon:
                raise DataError(
                    f"Covariate '{name}' has {len(values)} values; send one per step ({horizon})."
                )
            try:
                columns.append(np.asarray(values[:horizon], dtype=np.float64))
            except (TypeError, ValueError):
                raise DataError(f"Covariate '{name}' must hold numbers.") from None
        return np.column_stack(columns)

    def point_forecast(self, series: str, horizon: int, covariates: Array) -> Array:
        """Return the point forecasts of one series."""
        entry = self.document["series"][series]
        stamps = self.stamps(series, horizon)
        return forecast_from_parameters(
            entry, horizon, stamps, covariates, self.boosters.get(series)
        )

    def stamps(self, series: str, horizon: int) -> pd.DatetimeIndex:
        """Return the ``horizon`` stamps after the series' last training stamp."""
        last = pd.Timestamp(self.document["series"][series]["last_stamp"])
        return pd.date_range(last, periods=horizon + 1, freq=self.frequency)[1:]

    def forecast(
        self, series: Any = None, horizon: Any = None, covariates: Any = None
    ) -> dict[str, Any]:
        """Answer one request: stamps, point forecasts and conformal intervals.

        Raises
        ------
        DataError
            When the series is unknown, the horizon is beyond the trained one, or the
            covariates the model needs are missing or misshapen.
        """
        key = self.series_id(series)
        steps = self._horizon(self.horizon if horizon is None else horizon)
        points = self.point_forecast(key, steps, self._covariates(covariates, steps))
        width = self.quantiles[:steps] * float(self.document["series"][key]["scale"])
        lower = points - width
        if self.document.get("non_negative"):
            lower = np.maximum(lower, 0.0)
        return {
            "series": key,
            "horizon": steps,
            "level": self.level,
            "timestamps": [stamp.isoformat() for stamp in self.stamps(key, steps)],
            "forecast": points.tolist(),
            "lower": lower.tolist(),
            "upper": (points + width).tolist(),
        }
