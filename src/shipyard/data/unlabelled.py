"""Tables for models learnt without a target: the numeric contract and a seeded row split.

Clustering and anomaly detection measure distances between rows, so they learn from the
numeric columns (numbers, integers, booleans) of the contract; text and categorical columns are
listed under the contract's ``ignored`` (requests may still carry them) and named in a note.
An anomaly model may read known labels from ``data.target``: they are kept out of the features
and used to evaluate it, never to train it.

Examples
--------
>>> import pandas as pd
>>> frame = pd.DataFrame({"age": range(20, 40), "sex": ["F", "M"] * 10})
>>> contract, notes = numeric_contract(frame, target=None)
>>> [column.name for column in contract.columns], contract.ignored, contract.target
(['age'], ('sex',), None)
>>> [len(part) for part in split_rows(frame, seed=0, test_size=0.25, validation_size=0.25)]
[10, 5, 5]
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from shipyard.data.contract import NUMERIC_TYPES, Contract, infer_contract
from shipyard.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["numeric_contract", "numeric_values", "split_rows"]

MIN_ROWS = 20


def numeric_contract(
    frame: pd.DataFrame, target: str | None, drop: Iterable[str] = ()
) -> tuple[Contract, list[str]]:
    """Infer the contract and keep its numeric columns; return it with notes for the manifest.

    Raises
    ------
    DataError
        When no numeric column remains.
    """
    contract = infer_contract(frame, target, drop=drop)
    numeric = tuple(column for column in contract.columns if column.type in NUMERIC_TYPES)
    others = [column.name for column in contract.columns if column not in numeric]
    if not numeric:
        raise DataError(
            "No numeric column to learn from: clustering and anomaly detection use number, "
            f"integer and boolean columns; the data has {', '.join(others)}."
        )
    notes = []
    if others:
        notes.append(f"non-numeric columns not used: {', '.join(others)}")
    narrowed = contract.model_copy(
        update={"columns": numeric, "ignored": (*contract.ignored, *others)}
    )
    return narrowed, notes


def numeric_values(frame: pd.DataFrame, columns: Iterable[str]) -> np.ndarray:
    """Return the named columns as a float matrix; missing values (None, NaN) become NaN."""
    values: np.ndarray = frame[list(columns)].astype("float64").to_numpy(dtype=np.float64)
    return values


def split_rows(
    frame: pd.DataFrame, seed: int, test_size: float, validation_size: float
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Shuffle rows with ``seed``; return the train, validation and test parts.

    Raises
    ------
    DataError
        When the table is too small to learn from.
    """
    if len(frame) < MIN_ROWS:
        raise DataError(
            f"The data has {len(frame)} rows; a model learnt without labels needs at least "
            f"{MIN_ROWS}."
        )
    order = np.random.default_rng(seed).permutation(len(frame))
    tests = round(test_size * len(frame))
    validations = round(validation_size * len(frame))
    parts = np.split(order, [tests, tests + validations])
    test, validation, train = (frame.iloc[np.sort(part)].reset_index(drop=True) for part in parts)
    return train, validation, test
