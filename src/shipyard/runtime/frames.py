"""The batch path's vectorised shortcut for the contract check.

:func:`frame_passes` proves, with a few numpy and Arrow operations per column, that a chunk
breaks none of the rules :meth:`Contract.validate_frame <shipyard.data.contract.Contract>`
checks. It is a shortcut, never a second opinion: it answers ``True`` only for columns whose
dtype and rules it understands (numeric numpy columns, boolean ones, pandas string columns;
null, type, ``min``/``max`` and category rules) and ``False`` as soon as anything is unusual,
and the caller then runs the full check, which gives the detailed report. A test checks that
whenever it answers ``True`` the full check finds nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.data.contract import ColumnContract, Contract

__all__ = ["frame_passes"]


def frame_passes(contract: Contract, frame: pd.DataFrame, categories: bool = True) -> bool:
    """Whether every contract column of ``frame`` is present and breaks no rule (fast).

    ``False`` means "not proven", not "invalid": run the full check for the report.
    ``categories=False`` skips the category rule (the model scores unknown categories).
    """
    columns = frame.columns
    return all(
        column.name in columns and _column_passes(column, frame[column.name], categories)
        for column in contract.columns
    )


def _column_passes(column: ColumnContract, series: pd.Series, categories: bool) -> bool:
    if column.unique or column.min_length is not None or column.max_length is not None:
        return False
    dtype: Any = series.dtype
    if column.type in ("number", "integer", "boolean"):
        if not isinstance(dtype, np.dtype) or dtype.kind not in "biuf":
            return False
        values = series.to_numpy()
        if dtype.kind == "f":
            missing = np.isnan(values)
            if missing.any():
                if not column.nullable:
                    return False
                values = values[~missing]
        if column.type == "boolean":
            if column.min is not None or column.max is not None:
                return False
            return bool(dtype.kind == "b" or np.isin(values, (0, 1)).all())
        if dtype.kind == "b":
            return False  # the full check decides how booleans count as numbers
        # Infinities pass the integer rule (floor(inf) == inf) and meet min/max, as in the full
        # check.
        if column.type == "integer" and dtype.kind == "f" and (np.floor(values) != values).any():
            return False
        if column.min is not None and (values < column.min).any():
            return False
        return not (column.max is not None and (values > column.max).any())
    if column.type != "string":
        return False
    import pandas as pd

    if not isinstance(dtype, pd.StringDtype):
        return False  # object columns may hold non-strings, whose text the full check compares
    missing = series.isna()
    if missing.any():
        if not column.nullable:
            return False
        series = series[~missing]
    if column.categories is None or not categories:
        return True
    # Every value is a str, so str(value), which the full check compares, is the value itself.
    return bool(series.isin(column.categories).all())
