"""The time budget: boosters stop at a deadline, the linear baseline always runs first."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from shipyard import datasets
from shipyard.data.contract import infer_contract
from shipyard.tasks.tabular import CANDIDATES, FeatureSet, feature_set
from shipyard.training.search import SearchSettings
from shipyard.training.trainer import train_candidates

BOOSTERS = ["lightgbm", "xgboost", "catboost"]
ROWS = 1000


class Rows:
    def __init__(self, adult: datasets.Dataset) -> None:
        frame = adult.train.sample(n=ROWS + 300, random_state=5).reset_index(drop=True)
        contract = infer_contract(adult.train, "income")
        positive = sorted(adult.train["income"].unique())[1]
        y = (frame["income"] == positive).to_numpy(dtype=np.int64)
        columns = contract.feature_names
        self.features: FeatureSet = feature_set(contract)
        self.train_x: pd.DataFrame = frame[columns][:ROWS]
        self.train_y = y[:ROWS]
        self.validation_x: pd.DataFrame = frame[columns][ROWS:]
        self.validation_y = y[ROWS:]


@pytest.fixture(scope="module")
def rows(adult: datasets.Dataset) -> Rows:
    return Rows(adult)


def ticking_clock(step: float = 1.0) -> Callable[[], float]:
    """A fake clock that moves ``step`` seconds forward each time it is read."""
    now = [0.0]

    def read() -> float:
        now[0] += step
        return now[0]

    return read


def _usable(pipeline: object, rows: Rows) -> None:
    probabilities = np.asarray(pipeline.predict_proba(rows.validation_x))  # type: ignore[attr-defined]
    assert probabilities.shape == (len(rows.validation_x), 2)
    assert np.all(np.isfinite(probabilities))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)


@pytest.mark.parametrize("family", BOOSTERS)
def test_a_deadline_already_past_stops_the_fit_after_one_tree(rows: Rows, family: str) -> None:
    candidate = CANDIDATES[family](rows.features, "binary", 0, n_jobs=1)
    candidate.stop_at = 0.0
    pipeline = candidate.fit(rows.train_x, rows.train_y, rows.validation_x, rows.validation_y)
    assert candidate.best_trees_ == 1
    _usable(pipeline, rows)


@pytest.mark.parametrize("family", BOOSTERS)
def test_a_fake_clock_stops_the_fit_at_its_deadline(rows: Rows, family: str) -> None:
    candidate = CANDIDATES[family](rows.features, "binary", 0, n_jobs=1, learning_rate=0.3)
    # The clock is read once per boosting round, so the deadline passes in round 8.
    candidate.clock = ticking_clock()
    candidate.stop_at = 7.5
    pipeline = candidate.fit(rows.train_x, rows.train_y, rows.validation_x, rows.validation_y)
    assert candidate.best_trees_ is not None
    assert 1 <= candidate.best_trees_ <= 8
    _usable(pipeline, rows)


@pytest.mark.parametrize("family", BOOSTERS)
def test_a_refit_on_every_row_stops_at_the_deadline(rows: Rows, family: str) -> None:
    candidate = CANDIDATES[family](rows.features, "binary", 0, n_jobs=1)
    candidate.clock = ticking_clock()
    candidate.stop_at = 4.5
    pipeline = candidate.fit_all(rows.train_x, rows.train_y, 500)
    _usable(pipeline, rows)
    model = pipeline.named_steps["model"]
    grown = {
        "lightgbm": lambda: model.booster_.current_iteration(),
        "xgboost": lambda: model.get_booster().num_boosted_rounds(),
        "catboost": lambda: model.tree_count_,
    }[family]()
    assert grown <= 5


@pytest.mark.parametrize("family", BOOSTERS)
def test_the_first_setting_keeps_a_fold_the_clock_cut_short(rows: Rows, family: str) -> None:
    from shipyard.training.search import _FoldJob, _run_fold

    indices = np.arange(ROWS)
    job = _FoldJob(
        CANDIDATES[family],
        {},
        rows.features,
        "binary",
        0,
        1,
        None,
        indices[:800],
        indices[800:],
        0.0,
        True,
    )
    outputs, trees, _, cut = _run_fold(job, rows.train_x, rows.train_y)
    # Stopped after the first tree, and still scored.
    assert cut
    assert trees == 1
    assert outputs.shape == (ROWS - 800, 2)
    assert np.all(np.isfinite(outputs))


def test_without_the_baseline_a_spent_budget_still_ships_a_booster(rows: Rows) -> None:
    # A budget of nothing: the deadline has passed before the first tree.
    search = SearchSettings(
        families=CANDIDATES,
        models=("lightgbm",),
        time_budget=0,
        cv_folds=3,
        cv_repeats=1,
        seed=1,
    )
    result = train_candidates(
        rows.train_x,
        rows.train_y,
        rows.validation_x,
        rows.validation_y,
        features=rows.features,
        task="binary",
        metric="roc_auc",
        models=search.models,
        cv_folds=3,
        time_budget=0,
        seed=1,
        search=search,
    )
    assert result.best == "lightgbm"
    # Its folds stopped at the deadline and kept the one tree grown by then.
    row = result.leaderboard[0]
    assert row.status == "ok"
    assert len(row.cv_scores) == 3
    assert row.params["n_estimators"] == 1
    _usable(result.pipeline, rows)
