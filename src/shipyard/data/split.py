"""Seeded train/validation/test splits: stratified by class, grouped, or in time order.

- *stratified* (the default for classification): class shares equal across parts;
- *grouped* (``group_column``): all rows of a group (a customer, a patient) land in one part,
  so the model is tested on groups it has never seen;
- *time-ordered* (``time_column``): the oldest rows train, the newest test, as in production.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from shipyard.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Split", "split_frame"]


class Split(NamedTuple):
    """The three parts of a split."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame | None


def split_frame(
    frame: pd.DataFrame,
    target: str,
    *,
    classification: bool,
    seed: int,
    test_size: float | None,
    validation_size: float,
    stratify: bool = True,
    group_column: str | None = None,
    time_column: str | None = None,
) -> Split:
    """Split a frame into train, validation and (unless ``test_size`` is None) test parts.

    ``validation_size`` and ``test_size`` are shares of the whole frame. Stratification keeps
    class shares equal across parts; it is skipped, with no error, for classes too rare for it.

    With ``group_column`` the shares count groups, not rows; with ``time_column`` the parts are
    consecutive periods (validation just before test). The two exclude each other.

    Raises
    ------
    DataError
        When the frame is too small to split, or a named column is absent.
    """
    from sklearn.model_selection import train_test_split

    for role, column in (("group_column", group_column), ("time_column", time_column)):
        if column is not None and column not in frame.columns:
            raise DataError(f"split.{role} '{column}' is not a column of the data.")
    if group_column is not None and time_column is not None:
        raise DataError("Set split.group_column or split.time_column, not both.")

    held_out = validation_size + (test_size or 0.0)
    if len(frame) * min(validation_size, test_size or 1.0) < 1 or len(frame) < 10:
        raise DataError(
            f"{len(frame)} rows are too few to split into train, validation and "
            "test parts; provide more data or a separate test file."
        )

    def labels(part: pd.DataFrame) -> pd.Series | None:
        if not (classification and stratify):
            return None
        counts = part[target].value_counts()
        return part[target] if counts.min() >= 2 else None

    def rows(share: float) -> int:
        # Counts, not shares, go to scikit-learn: it rounds shares up, so float error in
        # 0.1 + 0.2 would move a row (2,000 rows gave 1,399/200/401, not 1,400/200/400).
        return math.floor(len(frame) * share + 0.5)

    if time_column is not None:
        return _time_split(frame, time_column, test_size, validation_size, rows)
    if group_column is not None:
        return _group_split(frame, group_column, seed, test_size, validation_size)

    train, rest = train_test_split(
        frame, test_size=rows(held_out), random_state=seed, stratify=labels(frame)
    )
    if test_size is None:
        return Split(train, rest, None)
    validation, test = train_test_split(
        rest, test_size=rows(test_size), random_state=seed, stratify=labels(rest)
    )
    return Split(train, validation, test)


def _time_split(
    frame: pd.DataFrame,
    time_column: str,
    test_size: float | None,
    validation_size: float,
    rows: Callable[[float], int],
) -> Split:
    import pandas as pd

    times = frame[time_column]
    if not pd.api.types.is_numeric_dtype(times):
        times = pd.to_datetime(times, errors="coerce", format="mixed")
    if times.isna().any():
        raise DataError(
            f"split.time_column '{time_column}' has {int(times.isna().sum())} missing or "
            "unreadable values; fix or drop those rows."
        )
    ordered = frame.iloc[times.argsort(kind="stable")]
    n_test = rows(test_size) if test_size is not None else 0
    n_validation = rows(validation_size)
    cut = len(ordered) - n_test - n_validation
    train, validation = ordered.iloc[:cut], ordered.iloc[cut : cut + n_validation]
    return Split(train, validation, ordered.iloc[cut + n_validation :] if n_test else None)


def _group_split(
    frame: pd.DataFrame,
    group_column: str,
    seed: int,
    test_size: float | None,
    validation_size: float,
) -> Split:
    import numpy as np

    groups = frame[group_column].astype(str).to_numpy()
    unique = np.unique(groups)
    if len(unique) < 3:
        raise DataError(
            f"split.group_column '{group_column}' has {len(unique)} groups; at least 3 are "
            "needed for train, validation and test parts."
        )
    shuffled = np.random.default_rng(seed).permutation(unique)
    n_test = max(1, round(len(unique) * test_size)) if test_size is not None else 0
    n_validation = max(1, round(len(unique) * validation_size))
    test_groups = set(shuffled[:n_test])
    validation_groups = set(shuffled[n_test : n_test + n_validation])
    in_test = np.isin(groups, list(test_groups))
    in_validation = np.isin(groups, list(validation_groups))
    train = frame[~in_test & ~in_validation]
    return Split(train, frame[in_validation], frame[in_test] if test_size is not None else None)
