"""Batch forecasts of a registered forecaster: every series (or some) to one table file.

:func:`forecast_table` asks the served forecaster (the same code ``POST /forecast`` runs) for
each series' next ``horizon`` steps; future covariates come from a table holding the time
column, the series column (for a model of many series) and the covariates, one row per future
stamp. :func:`write_forecasts` writes the result as CSV or Parquet.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from shipyard.errors import DataError

__all__ = ["forecast_table", "write_forecasts"]


def _covariates_of(
    table: pd.DataFrame | None, settings: dict[str, Any], series: str, stamps: list[str]
) -> dict[str, list[float]] | None:
    """Return one series' future covariates on its forecast stamps, from the given table."""
    if table is None:
        return None
    time, by = settings["time"], settings.get("series")
    rows = table if by is None else table[table[by].astype(str) == series]
    indexed = rows.assign(**{time: pd.to_datetime(rows[time])}).set_index(time)
    wanted = pd.DatetimeIndex(pd.to_datetime(stamps))
    missing = wanted.difference(indexed.index)
    if len(missing):
        raise DataError(
            f"The covariates table has no row for series {series!r} at {missing[0]} (and "
            f"{len(missing) - 1} more stamps); give one row per forecast stamp."
        )
    return {
        name: indexed.loc[wanted, name].astype(float).tolist()
        for name in settings.get("covariates", [])
        if name in indexed.columns
    }


def forecast_table(
    forecaster: Any,
    settings: dict[str, Any],
    horizon: int | None = None,
    series: Sequence[str] = (),
    covariates: pd.DataFrame | None = None,
    progress: Callable[[int], None] = lambda done: None,
) -> pd.DataFrame:
    """One row per series and future stamp: forecast, lower and upper bounds.

    Raises
    ------
    DataError
        When a series is unknown, the horizon beyond the trained one, or covariates the
        model needs are missing.
    """
    chosen = list(series) or list(forecaster.series_ids)
    steps = horizon or forecaster.horizon
    parts = []
    for key in chosen:
        identifier = forecaster.series_id(key)
        stamps = [stamp.isoformat() for stamp in forecaster.stamps(identifier, steps)]
        answer = forecaster.forecast(
            identifier, steps, _covariates_of(covariates, settings, identifier, stamps)
        )
        parts.append(
            pd.DataFrame(
                {
                    "series": identifier,
                    "timestamp": pd.to_datetime(answer["timestamps"]),
                    "forecast": answer["forecast"],
                    "lower": answer["lower"],
                    "upper": answer["upper"],
                    "level": answer["level"],
                }
            )
        )
        progress(1)
    return pd.concat(parts, ignore_index=True)


def write_forecasts(frame: pd.DataFrame, path: Path) -> None:
    """Write the forecasts as Parquet (``.parquet``) or CSV (anything else)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
