"""Compiled preprocessing: fitted transformers reduced to JSON and run in plain Python.

The spec is a list of feature encoders, each reading one input column and writing one or more
output columns. It is produced by :mod:`shipyard.training.export` from a fitted scikit-learn
``ColumnTransformer`` and holds only numbers and strings, so loading it runs no code. Two paths
execute it: :meth:`CompiledPreprocessor.transform_record` for one request (a few microseconds,
no numpy per value) and :meth:`CompiledPreprocessor.transform_columns` for batches.

Encoder kinds
-------------
``numeric``
    ``(value if present else fill - center) / scale``; one output.
``onehot``
    One output per known category; unknown values go to the ``infrequent`` output when the
    encoder grouped rare categories, else every output stays 0.
``ordinal``
    The category's index, or NaN when missing or unknown; one output.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from shipyard.errors import ExportError

__all__ = ["SPEC_VERSION", "CompiledPreprocessor"]

SPEC_VERSION = 1
_NAN = float("nan")


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


class CompiledPreprocessor:
    """Run a preprocessing spec on single records or on column batches.

    Parameters
    ----------
    spec
        ``{"version": 1, "encoders": [...]}`` as written by the exporter.
    """

    def __init__(self, spec: Mapping[str, Any]) -> None:
        if spec.get("version") != SPEC_VERSION:
            raise ExportError(
                f"Preprocessing spec version {spec.get('version')!r} is not "
                f"supported by this shipyard (expects {SPEC_VERSION}); upgrade "
                "shipyard or re-export the model."
            )
        self.spec = dict(spec)
        self.encoders: list[dict[str, Any]] = [dict(item) for item in spec["encoders"]]
        self.n_outputs = 0
        # Precompute, per encoder, the output offset and a category -> position lookup.
        self._plan: list[tuple[str, str, int, Any]] = []
        for encoder in self.encoders:
            kind, column = encoder["kind"], encoder["column"]
            plan: Any
            if kind == "numeric":
                # A null fill keeps missing values as NaN (LightGBM handles them itself).
                fill = _NAN if encoder["fill"] is None else float(encoder["fill"])
                plan = (fill, float(encoder.get("center", 0.0)), float(encoder.get("scale", 1.0)))
                width = 1
            elif kind == "onehot":
                positions = {
                    category: index for index, category in enumerate(encoder["categories"])
                }
                width = len(encoder["categories"])
                other = None
                if encoder.get("infrequent"):
                    other = width
                    for category in encoder["infrequent"]:
                        positions[category] = other
                    width += 1
                plan = (positions, other)
            elif kind == "ordinal":
                plan = {
                    category: float(index) for index, category in enumerate(encoder["categories"])
                }
                width = 1
            else:
                raise ExportError(
                    f"Unknown encoder kind '{kind}' for column '{column}' in the "
                    "preprocessing spec; the bundle was made by a newer shipyard."
                )
            self._plan.append((kind, column, self.n_outputs, plan))
            self.n_outputs += width

    @property
    def input_columns(self) -> list[str]:
        """The input columns, in encoder order."""
        return [encoder["column"] for encoder in self.encoders]

    def transform_record(self, record: Mapping[str, Any]) -> list[float]:
        """Encode one record (a mapping of column to value) into a feature row."""
        row = [0.0] * self.n_outputs
        for kind, column, offset, plan in self._plan:
            value = record.get(column)
            if kind == "numeric":
                fill, center, scale = plan
                number = fill if value is None or _is_missing(value) else float(value)
                row[offset] = (number - center) / scale
            elif kind == "onehot":
                positions, other = plan
                key = MISSING_CATEGORY if _is_missing(value) else str(value)
                position = positions.get(key, other)
                if position is not None:
                    row[offset + position] = 1.0
            else:
                row[offset] = _NAN if _is_missing(value) else plan.get(str(value), _NAN)
        return row

    def transform_columns(self, columns: Mapping[str, Sequence[Any]]) -> npt.NDArray[np.float64]:
        """Encode a batch given as a mapping of column name to equal-length sequences."""
        n_rows = len(next(iter(columns.values()))) if columns else 0
        out = np.zeros((n_rows, self.n_outputs), dtype=np.float64)
        for kind, column, offset, plan in self._plan:
            values = columns[column]
            if kind == "numeric":
                fill, center, scale = plan
                numbers = np.asarray(_to_float_array(values), dtype=np.float64)
                numbers = np.where(np.isnan(numbers), fill, numbers)
                out[:, offset] = (numbers - center) / scale
            elif kind == "onehot":
                positions, other = plan
                codes, keys = _factorize(values)
                # One lookup per distinct value, then one vectorised scatter for the column.
                lookup = [positions.get(key, other) for key in [*keys, MISSING_CATEGORY]]
                places = np.array([-1 if place is None else place for place in lookup], np.int64)
                chosen = places[codes]
                hit = np.flatnonzero(chosen >= 0)
                out[hit, offset + chosen[hit]] = 1.0
            else:
                codes, keys = _factorize(values)
                levels = np.array([*(plan.get(key, _NAN) for key in keys), _NAN], np.float64)
                out[:, offset] = levels[codes]
        return out


# Categorical missing values are imputed to this category before one-hot encoding, so that
# "missing" is a level the linear model can learn; the exporter writes the same constant.
MISSING_CATEGORY = "(missing)"


def _factorize(values: Sequence[Any]) -> tuple[npt.NDArray[np.intp], list[str]]:
    """Return a code per value (-1 when missing) and the category key of each code.

    Keys are ``str(value)``, as in :meth:`CompiledPreprocessor.transform_record`; two values
    with the same string (``1`` and ``"1"``) get the same key. pandas' hash table does the
    per-row work in C (the batch path already holds pandas frames).
    """
    import pandas as pd

    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.StringDtype):
        # A string column (the batch path passes pandas' own): its values are their own keys.
        codes, uniques = values.factorize(use_na_sentinel=True)
        return np.asarray(codes, dtype=np.intp), [str(value) for value in uniques]
    codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    keys = [str(value) for value in uniques]
    # Callers append the missing entry to their lookups, so that code -1 indexes it.
    return np.asarray(codes, dtype=np.intp), keys


def _to_float_array(values: Sequence[Any]) -> npt.NDArray[np.float64]:
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":
        return values.astype(np.float64)
    return np.array(
        [_NAN if _is_missing(value) else float(value) for value in values], dtype=np.float64
    )
