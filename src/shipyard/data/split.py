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

__all__ = ["Split", "labelled_rows", "minimum_rows", "split_frame"]

MIN_SPLIT_ROWS = 10


class Split(NamedTuple):
    """The three parts of a split."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame | None


def minimum_rows(validation_size: float, test_size: float | None) -> int:
    """Return the fewest rows :func:`split_frame` splits: a row at least per held-out part."""
    smallest = min(validation_size, test_size or 1.0)
    # A tiny tolerance, so that 1 / 0.1 counts as 10 rows, not 11.
    return max(MIN_SPLIT_ROWS, math.ceil(1 / smallest - 1e-9))


def labelled_rows(
    frame: pd.DataFrame, target: str, source: str, minimum: int
) -> tuple[pd.DataFrame, list[str]]:
    """Drop the rows whose target is missing; refuse a table left with too few to train on.

    Returns the rows kept and a note when some were dropped. A frame without the target
    column is returned as it is (the contract step names the column that is missing).

    Raises
    ------
    DataError
        When every target value is missing, or fewer than ``minimum`` rows are labelled.
    """
    if target not in frame.columns:
        return frame, []
    notes = []
    missing = frame[target].isna()
    if missing.all():
        raise DataError(
            f"Every value of the target column '{target}' is missing in '{source}' "
            f"({len(frame)} rows): there is nothing to learn from. Check the target name "
            "and that the export kept its values."
        )
    if missing.any():
        frame = frame[~missing].reset_index(drop=True)
        notes.append(f"dropped {int(missing.sum())} rows whose target '{target}' is missing")
    if len(frame) < minimum:
        raise DataError(
            f"'{source}' has {len(frame)} labelled row(s): too few to train. At least "
            f"{minimum} are needed to hold out validation and test rows "
            "(split.validation_size, split.test_size)."
        )
    return frame, notes


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
    if len(frame) < minimum_rows(validation_size, test_size):
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
