"""Reference sketches of a model's inputs and outputs, computed at training time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.monitoring.sketch import CategoricalSketch, NumericSketch, Sketch, sketch_from_json

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.data.contract import Contract

__all__ = ["PREDICTION_COLUMN", "build_reference", "reference_from_json", "reference_to_json"]

# The key under which the model's output (positive-class probability, predicted class, or
# predicted value) is sketched next to the input columns.
PREDICTION_COLUMN = "__prediction__"


def build_reference(
    frame: pd.DataFrame, contract: Contract, outputs: np.ndarray, task: str, bins: int = 20
) -> dict[str, Sketch]:
    """Sketch each contract column of ``frame`` and the model's outputs on it.

    For binary tasks the output sketched is the positive-class probability; for multiclass the
    predicted class; for regression the predicted value.
    """
    sketches: dict[str, Sketch] = {}
    for column in contract.columns:
        values = frame[column.name].to_numpy(dtype=object)
        if column.is_categorical:
            sketches[column.name] = CategoricalSketch.from_values(values)
        else:
            sketches[column.name] = NumericSketch.from_values(values, bins=bins)
    sketches[PREDICTION_COLUMN] = prediction_sketch(outputs, task, bins)
    return sketches


def prediction_sketch(outputs: np.ndarray, task: str, bins: int = 20) -> Sketch:
    """Sketch model outputs the way :func:`build_reference` does."""
    if task == "binary":
        return NumericSketch.from_values(outputs[:, 1], bins=bins)
    if task == "multiclass":
        return CategoricalSketch.from_values(np.argmax(outputs, axis=1).astype(str))
    return NumericSketch.from_values(outputs, bins=bins)


def reference_to_json(sketches: Mapping[str, Sketch]) -> dict[str, Any]:
    """Plain dict for the bundle's ``drift_reference.json``."""
    return {name: sketch.to_json() for name, sketch in sketches.items()}


def reference_from_json(data: Mapping[str, Any]) -> dict[str, Sketch]:
    """Rebuild reference sketches from :func:`reference_to_json` output."""
    return {name: sketch_from_json(item) for name, item in data.items()}
