"""Sizing a family's first setting to the time left, from a timed probe (no clock races)."""

from __future__ import annotations

import numpy as np
import pytest

from shipyard import datasets
from shipyard.data.contract import infer_contract
from shipyard.tasks.tabular import CANDIDATES, feature_set
from shipyard.training.sizing import (
    MIN_ROWS,
    MIN_TREES,
    probe_fold_seconds,
    row_sample,
    size_setting,
)

LINEAR = CANDIDATES["linear"]
FOREST = CANDIDATES["random_forest"]


def test_a_setting_that_fits_the_time_left_is_left_alone() -> None:
    sizing = size_setting(
        LINEAR, {"regularisation": 1.0}, probe_s=0.1, probe_rows=100, fold_rows=1000, folds=5,
        left_s=60.0,
    )  # fmt: skip
    assert sizing.row_fraction == 1.0
    assert not sizing.shrunk
    assert sizing.note == ""
    assert sizing.full_estimate_s == pytest.approx(5.0)


def test_a_linear_setting_that_would_overrun_fits_on_a_share_of_the_rows() -> None:
    # 1 s per 100 rows -> 100 s a fold, 500 s in all; 50 s left, 40 s planned.
    sizing = size_setting(
        LINEAR, {}, probe_s=1.0, probe_rows=100, fold_rows=10_000, folds=5, left_s=50.0
    )
    assert sizing.row_fraction == pytest.approx(40.0 / 500.0)
    assert sizing.estimate_s == pytest.approx(40.0)
    assert "fitted on 8% of the rows" in sizing.note
    assert "about 500s" in sizing.note


def test_a_forest_loses_trees_before_rows() -> None:
    params = {"n_estimators": 200, "max_features": 0.5, "min_samples_leaf": 3}
    # 25 s needed, 12.5 s planned: half the trees, every row.
    sizing = size_setting(
        FOREST, params, probe_s=5.0, probe_rows=1000, fold_rows=1000, folds=5, left_s=12.5 / 0.8
    )
    assert sizing.params["n_estimators"] == 100
    assert sizing.row_fraction == 1.0
    assert "100 trees instead of 200" in sizing.note
    # Far too little time: ten trees, then a share of the rows.
    tiny = size_setting(
        FOREST, params, probe_s=1.0, probe_rows=1000, fold_rows=10_000, folds=5, left_s=0.0
    )
    assert tiny.params["n_estimators"] == MIN_TREES
    assert tiny.row_fraction == pytest.approx(MIN_ROWS / 10_000)
    assert tiny.params["max_features"] == 0.5  # the other settings stay


def test_the_row_share_never_drops_below_a_few_hundred_rows() -> None:
    sizing = size_setting(
        LINEAR, {}, probe_s=10.0, probe_rows=100, fold_rows=2000, folds=5, left_s=0.0
    )
    assert sizing.row_fraction == pytest.approx(MIN_ROWS / 2000)
    assert sizing.estimate_s > 0.0  # it will overrun, and the estimate says by how much


def test_row_samples_are_seeded_sorted_and_sized() -> None:
    rows = np.arange(10, 1010)
    first, again = row_sample(rows, 0.25, 3), row_sample(rows, 0.25, 3)
    np.testing.assert_array_equal(first, again)
    assert len(first) == 250
    assert np.all(np.diff(first) > 0)
    assert set(first) <= set(rows)
    assert row_sample(rows, 1.0, 3) is rows


def test_the_probe_fits_a_tenth_of_a_fold_on_real_data(adult: datasets.Dataset) -> None:
    frame = adult.train.sample(n=4000, random_state=2).reset_index(drop=True)
    contract = infer_contract(frame, "income")
    y = (frame["income"] == sorted(frame["income"].unique())[1]).to_numpy(dtype=np.int64)
    seconds, rows = probe_fold_seconds(
        LINEAR,
        LINEAR.defaults,
        x=frame[contract.feature_names],
        y=y,
        fit_rows=np.arange(3200),
        score_rows=np.arange(3200, 4000),
        features=feature_set(contract),
        task="binary",
        seed=0,
        threads=1,
    )
    assert rows == 320
    assert seconds > 0.0
