"""Labels as the metrics expect them: class indices in output order, or float values.

Shared by the tasks whose answers are a class or a number (tabular, text classification).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shipyard.errors import DataError

__all__ = ["encode_feedback", "encode_target"]


def encode_target(series: Any, kind: str, classes: Sequence[Any]) -> Any:
    """Encode labels as the metrics expect: class indices, or float values for regression.

    Raises
    ------
    DataError
        When a label is not one of ``classes``.
    """
    import numpy as np

    if kind == "regression":
        return np.asarray(series, dtype=np.float64)
    index = {str(label): position for position, label in enumerate(classes)}
    labels = [str(value) for value in series]
    unknown = sorted({label for label in labels if label not in index})
    if unknown:
        name = getattr(series, "name", None) or "the labels"
        raise DataError(
            f"Target '{name}' holds labels the training data did not have: "
            f"{unknown[:5]}; the model can only predict {list(classes)}."
        )
    return np.array([index[label] for label in labels], dtype=np.int64)


def encode_feedback(rows: list[dict[str, Any]], kind: str, classes: list[Any]) -> Any:
    """Encode feedback labels as the metrics expect: class indices, or float values.

    Raises
    ------
    DataError
        When a label is not a class of the model.
    """
    import numpy as np

    if kind == "regression":
        return np.array([float(row["label"]) for row in rows])
    index = {str(label): position for position, label in enumerate(classes)}
    unknown = sorted({str(row["label"]) for row in rows} - set(index))
    if unknown:
        raise DataError(f"Feedback labels {unknown[:5]} are not classes of the model ({classes}).")
    return np.array([index[str(row["label"])] for row in rows], dtype=np.int64)
