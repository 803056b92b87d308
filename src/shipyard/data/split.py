"""Seeded train/validation/test splits, stratified by class for classification."""

from __future__ import annotations

import math
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
) -> Split:
    """Split a frame into train, validation and (unless ``test_size`` is None) test parts.

    ``validation_size`` and ``test_size`` are shares of the whole frame. Stratification keeps
    class shares equal across parts; it is skipped, with no error, for classes too rare for it.

    Raises
    ------
    DataError
        When the frame is too small to split.
    """
    from sklearn.model_selection import train_test_split

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

    train, rest = train_test_split(
        frame, test_size=rows(held_out), random_state=seed, stratify=labels(frame)
    )
    if test_size is None:
        return Split(train, rest, None)
    validation, test = train_test_split(
        rest, test_size=rows(test_size), random_state=seed, stratify=labels(rest)
    )
    return Split(train, validation, test)
