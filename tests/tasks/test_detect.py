from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shipyard import datasets
from shipyard.errors import DataError
from shipyard.tasks.detect import MAX_CLASSES_FOR_NUMERIC, class_order, detect_task


@pytest.mark.parametrize(
    ("values", "task"),
    [
        (["yes", "no", "yes"], "binary"),
        ([True, False, True], "binary"),
        ([0, 1, 1, 0], "binary"),
        ([0.0, 1.0, None, 1.0], "binary"),
        (["a", "b", "c"], "multiclass"),
        ([1, 2, 3, 4, 5], "multiclass"),
        (list(range(MAX_CLASSES_FOR_NUMERIC)), "multiclass"),
        (list(range(MAX_CLASSES_FOR_NUMERIC + 1)), "regression"),
        ([0.5, 1.7, 2.2], "regression"),
        ([1.0, 2.0, 2.5], "regression"),
    ],
)
def test_detect_task(values: list[object], task: str) -> None:
    assert detect_task(pd.Series(values, name="y")) == task


def test_detect_task_on_real_targets(adult: datasets.Dataset) -> None:
    from sklearn.datasets import load_diabetes, load_iris

    assert detect_task(adult.train["income"]) == "binary"
    assert detect_task(pd.Series(load_iris().target)) == "multiclass"
    assert detect_task(pd.Series(load_diabetes().target)) == "regression"


def test_constant_target_is_refused() -> None:
    with pytest.raises(DataError, match="'y' has 1 distinct value"):
        detect_task(pd.Series([3, 3, 3, None], name="y"))


def test_class_order_puts_the_larger_label_last_by_default(adult: datasets.Dataset) -> None:
    assert class_order(adult.train["income"]) == ["<=50K", ">50K"]
    assert class_order(pd.Series(["yes", "no"])) == ["no", "yes"]
    labels = class_order(pd.Series(np.array([1, 0, 1])))
    assert labels == [0, 1]
    assert all(type(label) is int for label in labels)  # plain Python, not numpy


def test_class_order_honours_positive_class() -> None:
    assert class_order(pd.Series(["yes", "no"]), positive_class="no") == ["yes", "no"]
    # Matched by text, so "0" from a YAML file or the CLI selects the integer 0.
    assert class_order(pd.Series([0, 1, 1]), positive_class="0") == [1, 0]
    # Multiclass ignores it: there is no positive class.
    assert class_order(pd.Series(["c", "a", "b"]), positive_class="a") == ["a", "b", "c"]


def test_unknown_positive_class_is_refused() -> None:
    with pytest.raises(DataError, match="positive_class 'maybe' is not a label of 'y'"):
        class_order(pd.Series(["yes", "no"], name="y"), positive_class="maybe")
