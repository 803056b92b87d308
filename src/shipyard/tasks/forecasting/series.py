"""Reading a table of time series: one regular grid of stamps per series, checked.

A forecasting table has a time column, a target, optionally a series column (many series in
one table) and covariates known in advance. :func:`build_series` turns it into one
:class:`Series` per id, on one regular grid: the frequency is inferred from the stamps (or
taken from the config) and every series is checked against it. Duplicate stamps and stamps
off the grid are refused with an error naming the series and the stamps; missing stamps are
refused too, unless ``forecasting.fill`` says how to fill them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from shipyard.errors import DataError

__all__ = [
    "SINGLE_SERIES",
    "Series",
    "build_series",
    "future_stamps",
    "infer_frequency",
    "season_length_for",
]

SINGLE_SERIES = "series"
"""The id of the only series of a table without a series column."""

# Steps per season for the usual frequencies (pandas offset prefixes).
_SEASONS = {"h": 24, "D": 7, "B": 5, "W": 52, "M": 12, "MS": 12, "ME": 12, "Q": 4, "QS": 4}
_SHOWN = 5  # stamps listed in an error


@dataclass
class Series:
    """One series on its regular grid: stamps, values and known covariates."""

    id: str
    stamps: pd.DatetimeIndex
    values: npt.NDArray[np.float64]
    covariates: dict[str, npt.NDArray[np.float64]] = field(default_factory=dict)
    filled: int = 0

    def head(self, rows: int) -> Series:
        """Return the first ``rows`` steps (a backtest's training part)."""
        return Series(
            self.id,
            self.stamps[:rows],
            self.values[:rows],
            {name: values[:rows] for name, values in self.covariates.items()},
        )

    def slice(self, start: int, stop: int) -> Series:
        """Return steps ``start`` to ``stop`` (a backtest's actuals)."""
        return Series(
            self.id,
            self.stamps[start:stop],
            self.values[start:stop],
            {name: values[start:stop] for name, values in self.covariates.items()},
        )


def season_length_for(frequency: str) -> int:
    """Return steps per season for a pandas frequency: 7 for days, 24 for hours, 12 for months.

    Examples
    --------
    >>> season_length_for("D"), season_length_for("h"), season_length_for("MS")
    (7, 24, 12)
    """
    offset = pd.tseries.frequencies.to_offset(frequency)
    name = offset.rule_code.split("-")[0]
    if offset.n != 1:
        return 1
    return _SEASONS.get(name, _SEASONS.get(name.rstrip("E"), 1))


def infer_frequency(stamps: pd.DatetimeIndex, series: str) -> str:
    """Infer the frequency of sorted, unique stamps, or say why it cannot be inferred.

    The most common step between stamps decides when pandas cannot name the whole index (an
    index with gaps); calendar steps (months, quarters) are named by pandas.

    Raises
    ------
    DataError
        When there are fewer than three stamps, or no step is regular.
    """
    if len(stamps) < 3:
        raise DataError(
            f"Series '{series}' has {len(stamps)} stamps; a forecast needs at least 3 (and "
            "a few seasons for seasonal models)."
        )
    with warnings.catch_warnings():
        # pandas 3 warns that infer_freq will return an offset; both forms are handled.
        warnings.simplefilter("ignore")
        named = pd.infer_freq(stamps)
    if named is not None:
        return str(pd.tseries.frequencies.to_offset(named).freqstr)
    steps = pd.Series(np.diff(stamps.values)).value_counts()
    seconds = pd.Timedelta(steps.index[0]).total_seconds()
    for unit, size in (("D", 86_400), ("h", 3_600), ("min", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return unit if count == 1 else f"{count}{unit}"
    raise DataError(
        f"Series '{series}' has no regular step between its stamps; resample it to one "
        "frequency, or set forecasting.frequency."
    )


def _grid(stamps: pd.DatetimeIndex, frequency: str) -> pd.DatetimeIndex:
    return pd.date_range(stamps[0], stamps[-1], freq=frequency)


def _listed(stamps: Sequence[Any]) -> str:
    shown = ", ".join(str(stamp) for stamp in list(stamps)[:_SHOWN])
    more = len(stamps) - _SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def _one_series(
    frame: pd.DataFrame,
    series_id: str,
    time: str,
    target: str,
    covariates: Sequence[str],
    frequency: str,
    fill: str,
) -> Series:
    """Check one series' stamps against the grid; fill or refuse the missing ones."""
    stamps = pd.DatetimeIndex(frame[time])
    duplicated = stamps[stamps.duplicated()].unique()
    if len(duplicated):
        raise DataError(
            f"Series '{series_id}' has {len(duplicated)} duplicate stamps in column '{time}' "
            f"({_listed(duplicated)}); keep one row per stamp (aggregate them, for example "
            "with a sum or a mean) or name the series column in forecasting.series."
        )
    order = np.argsort(stamps.asi8, kind="stable")
    stamps, frame = stamps[order], frame.iloc[order]
    grid = _grid(stamps, frequency)
    off_grid = stamps.difference(grid)
    if len(off_grid):
        raise DataError(
            f"Series '{series_id}' has {len(off_grid)} stamps off its {frequency} grid "
            f"({_listed(off_grid)}); resample the data to one frequency, or set "
            "forecasting.frequency to the frequency the stamps follow."
        )
    missing = grid.difference(stamps)
    columns = [target, *covariates]
    values = frame[columns].set_axis(stamps).astype("float64")
    if values[target].isna().any() and fill == "error":
        raise DataError(
            f"Series '{series_id}' has {int(values[target].isna().sum())} missing values of "
            f"'{target}'; fill them, or set forecasting.fill (zero, previous, interpolate)."
        )
    if len(missing) and fill == "error":
        raise DataError(
            f"Series '{series_id}' has {len(missing)} gaps on its {frequency} grid (missing "
            f"{_listed(missing)}); add the rows, or set forecasting.fill to zero, previous "
            "or interpolate."
        )
    values = values.reindex(grid)
    gaps = int(values[target].isna().sum())
    if fill == "zero":
        values = values.fillna(0.0)
    elif fill == "previous":
        values = values.ffill().bfill()
    elif fill == "interpolate":
        values = values.interpolate(limit_direction="both")
    for column in covariates:
        if values[column].isna().any():
            raise DataError(
                f"Covariate '{column}' of series '{series_id}' has missing values; a covariate "
                "is known in advance, so give it on every stamp."
            )
    return Series(
        series_id,
        grid,
        values[target].to_numpy(np.float64),
        {column: values[column].to_numpy(np.float64) for column in covariates},
        filled=gaps,
    )


def build_series(
    frame: pd.DataFrame,
    *,
    time: str,
    target: str,
    series: str | None = None,
    covariates: Sequence[str] = (),
    frequency: str | None = None,
    fill: str = "error",
) -> tuple[list[Series], str]:
    """Split a table into checked series on one regular grid; return them and the frequency.

    Raises
    ------
    DataError
        When a column is missing or not numeric, a stamp cannot be parsed, stamps are
        duplicated or off the grid, or there are gaps and ``fill`` is ``error``.
    """
    needed = [time, target, *([series] if series else []), *covariates]
    absent = [column for column in needed if column not in frame.columns]
    if absent:
        raise DataError(
            f"The table has no column {', '.join(repr(name) for name in absent)}; its columns "
            f"are {', '.join(map(str, frame.columns))}. Check forecasting.time, "
            "forecasting.series, forecasting.covariates and data.target."
        )
    for column in (target, *covariates):
        if not pd.api.types.is_numeric_dtype(frame[column]) and not pd.api.types.is_bool_dtype(
            frame[column]
        ):
            raise DataError(
                f"Column '{column}' must be numeric to be forecast or used as a covariate; "
                f"it holds {frame[column].dtype} values."
            )
    try:
        stamps = pd.to_datetime(frame[time])
    except (ValueError, TypeError) as error:
        raise DataError(
            f"Column '{time}' (forecasting.time) holds values that are not dates or times: {error}"
        ) from None
    table = frame.assign(**{time: stamps})
    groups = (
        [(SINGLE_SERIES, table)]
        if series is None
        else [(str(key), part) for key, part in table.groupby(series, sort=True)]
    )
    if frequency is None:
        longest = max(groups, key=lambda pair: len(pair[1]))
        unique = pd.DatetimeIndex(longest[1][time]).unique().sort_values()
        frequency = infer_frequency(unique, longest[0])
    else:
        try:
            frequency = str(pd.tseries.frequencies.to_offset(frequency).freqstr)
        except ValueError:
            raise DataError(
                f"forecasting.frequency '{frequency}' is not a pandas frequency; use one "
                "such as 'D', 'h', 'W-SUN' or 'MS'."
            ) from None
    built = [
        _one_series(part, key, time, target, covariates, frequency, fill) for key, part in groups
    ]
    return built, frequency


def future_stamps(last: pd.Timestamp, frequency: str, horizon: int) -> pd.DatetimeIndex:
    """Return the ``horizon`` stamps after ``last`` on the series' grid."""
    return pd.date_range(last, periods=horizon + 1, freq=frequency)[1:]
