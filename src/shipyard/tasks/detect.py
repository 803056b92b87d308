"""Detecting the task (binary, multiclass or regression) from the target column."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["class_order", "detect_task"]

# A numeric target with at most this many distinct integer values is treated as classes.
MAX_CLASSES_FOR_NUMERIC = 20


def detect_task(target: pd.Series) -> str:
    """Return ``binary``, ``multiclass`` or ``regression`` for a target column.

    Text and boolean targets are classification; numeric targets are classification only when
    they hold few distinct integers (for example 0/1 or ratings 1-5), else regression.

    Examples
    --------
    >>> import pandas as pd
    >>> detect_task(pd.Series(["yes", "no", "yes"])), detect_task(pd.Series([0.5, 1.7, 2.2]))
    ('binary', 'regression')
    """
    import pandas as pd

    distinct = target.nunique(dropna=True)
    if distinct < 2:
        raise DataError(
            f"Target column '{target.name}' has {distinct} distinct value(s); "
            "there is nothing to learn. Check the target name and the data."
        )
    numeric = pd.api.types.is_numeric_dtype(target) and not pd.api.types.is_bool_dtype(target)
    if numeric:
        values = target.dropna()
        integral = bool((values == values.round()).all())
        if not (integral and distinct <= MAX_CLASSES_FOR_NUMERIC):
            return "regression"
    return "binary" if distinct == 2 else "multiclass"


def class_order(target: pd.Series, positive_class: Any = None) -> list[Any]:
    """Return the class labels in model output order; for binary tasks the positive one last.

    The default positive class is the larger label in sorted order (1 of 0/1, 'yes' of
    'no'/'yes', '>50K' of '<=50K'/'>50K').

    Raises
    ------
    DataError
        When ``positive_class`` is not one of the labels.
    """
    labels = sorted(target.dropna().unique().tolist(), key=lambda label: (str(type(label)), label))
    labels = [label.item() if hasattr(label, "item") else label for label in labels]
    if positive_class is None or len(labels) != 2:
        return labels
    matches = [label for label in labels if str(label) == str(positive_class)]
    if not matches:
        raise DataError(
            f"positive_class {positive_class!r} is not a label of "
            f"'{target.name}'; labels are {labels}."
        )
    return [label for label in labels if label != matches[0]] + matches
