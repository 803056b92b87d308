"""Tuning folds that follow the split, and a search that tells Optuna what its portfolio found."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shipyard import datasets
from shipyard.data.contract import infer_contract
from shipyard.errors import ConfigError, ShipyardError
from shipyard.tasks.tabular import CANDIDATES, FeatureSet, feature_set
from shipyard.training.search import Folds, SearchSettings, make_folds, run_search
from shipyard.training.trainer import SelectionSettings, train_candidates

ROWS = 600


def _fit_and_score(folds: Folds) -> list[tuple[Any, Any]]:
    return [(fit_rows, score_rows) for fit_rows, score_rows, _ in folds.splits]


def test_time_folds_train_only_on_rows_earlier_than_their_validation_rows() -> None:
    rng = np.random.default_rng(0)
    # Shuffled rows with many ties on the time value.
    times = rng.integers(0, 40, size=500)
    y = rng.integers(0, 2, size=500)
    folds = make_folds(y, "binary", 4, None, 1, times=times)
    assert folds.kind == "time"
    assert folds.repeats == 1
    assert len(folds.splits) == 4
    for fit_rows, score_rows in _fit_and_score(folds):
        assert len(fit_rows) > 0
        assert len(score_rows) > 0
        # Strictly earlier: rows that share a time value never straddle a fold.
        assert times[fit_rows].max() < times[score_rows].min()
    # Each later fold trains on more history; every row but the oldest block is scored once.
    sizes = [len(fit_rows) for fit_rows, _ in _fit_and_score(folds)]
    assert sizes == sorted(sizes)
    scored = np.concatenate([score_rows for _, score_rows in _fit_and_score(folds)])
    assert len(scored) == len(np.unique(scored)) == len(folds.scored_rows)
    assert times[np.setdiff1d(np.arange(500), scored)].max() < times[scored].min()


def test_time_folds_read_text_dates_as_the_time_split_does() -> None:
    days = np.array([f"2024-01-{day:02d}" for day in range(1, 29)] * 5)
    y = np.arange(len(days)) % 2
    folds = make_folds(y, "binary", 3, None, 1, times=days)
    stamps = days.astype("datetime64[D]")
    for fit_rows, score_rows in _fit_and_score(folds):
        assert stamps[fit_rows].max() < stamps[score_rows].min()


def test_time_folds_refuse_repeats_and_too_few_times() -> None:
    y = np.arange(100) % 2
    times = np.arange(100)
    with pytest.raises(ConfigError, match="cv_repeats"):
        make_folds(y, "binary", 3, 2, 1, times=times)
    # One repeat asked explicitly is the same as leaving it unset.
    assert make_folds(y, "binary", 3, 1, 1, times=times).repeats == 1
    with pytest.raises(ConfigError, match="distinct times"):
        make_folds(y, "binary", 5, None, 1, times=np.arange(100) % 4)
    with pytest.raises(ConfigError, match="one value per training row"):
        make_folds(y, "binary", 3, None, 1, times=times[:50])
    with pytest.raises(ShipyardError, match="not both"):
        make_folds(y, "binary", 3, None, 1, times=times, groups=times)


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_grouped_folds_keep_every_group_on_one_side(task: str) -> None:
    rng = np.random.default_rng(1)
    groups = np.array([f"customer-{index}" for index in rng.integers(0, 60, size=700)])
    y = rng.integers(0, 2, size=700) if task == "binary" else rng.normal(size=700)
    # Small data: three repeats, each a different grouping of the same rows.
    folds = make_folds(y, task, 5, None, 3, groups=groups)
    assert folds.kind == "grouped"
    assert folds.repeats == 3
    assert len(folds.splits) == 15
    for fit_rows, score_rows in _fit_and_score(folds):
        assert not set(groups[fit_rows]) & set(groups[score_rows])
    for repeat in range(3):
        scored = [score_rows for _, score_rows, index in folds.splits if index == repeat]
        assert sorted(np.concatenate(scored).tolist()) == list(range(700))
    first, second = (
        [score_rows.tolist() for _, score_rows, index in folds.splits if index == repeat]
        for repeat in (0, 1)
    )
    assert first != second
    with pytest.raises(ConfigError, match="one value per training row"):
        make_folds(y, task, 5, None, 3, groups=groups[:100])


def test_grouped_folds_need_as_many_groups_as_folds() -> None:
    y = np.arange(100) % 2
    with pytest.raises(ConfigError, match=r"fewer than training\.cv_folds"):
        make_folds(y, "binary", 5, None, 3, groups=np.arange(100) % 3)


class Rows:
    def __init__(self, adult: datasets.Dataset) -> None:
        frame = adult.train.sample(n=ROWS + 200, random_state=11).reset_index(drop=True)
        contract = infer_contract(adult.train, "income")
        positive = sorted(adult.train["income"].unique())[1]
        y = (frame["income"] == positive).to_numpy(dtype=np.int64)
        columns = contract.feature_names
        self.features: FeatureSet = feature_set(contract)
        self.train_x = frame[columns][:ROWS]
        self.train_y = y[:ROWS]
        self.validation_x = frame[columns][ROWS:]
        self.validation_y = y[ROWS:]
        # A stand-in time column: the row's position in a shuffled order, many rows a day.
        self.days = np.random.default_rng(2).permutation(ROWS) // 10


@pytest.fixture(scope="module")
def rows(adult: datasets.Dataset) -> Rows:
    return Rows(adult)


def test_training_on_time_folds_shares_them_across_the_leaderboard(rows: Rows) -> None:
    search = SearchSettings(
        families=CANDIDATES,
        models=("linear", "extra_trees"),
        time_budget=600,
        n_trials=3,
        cv_folds=4,
        seed=5,
        fold_times=rows.days,
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
        cv_folds=4,
        time_budget=600,
        seed=5,
        search=search,
        selection=SelectionSettings(calibration="platt", threshold_metric="f1"),
    )
    ranked = [row for row in result.leaderboard if row.status == "ok"]
    assert {"linear", "extra_trees"} <= {row.name for row in ranked}
    for row in ranked:
        # Four forward-chaining folds, run once: the same folds for every row and the test.
        assert len(row.cv_scores) == 4
        assert np.all(np.isfinite(row.cv_scores))
        assert row.cv_low <= row.cv_mean <= row.cv_high
    assert result.verdict["vs_runner_up"]["p_value"] is not None
    # Calibration and threshold are fitted on the rows the folds scored (not the oldest).
    assert result.threshold is not None
    assert 0.0 < result.threshold["value"] < 1.0


def _search(rows: Rows, storage: Path, models: tuple[str, ...], n_trials: int) -> list[Any]:
    trials, _ = run_search(
        rows.train_x,
        rows.train_y,
        folds=make_folds(rows.train_y, "binary", 3, 1, 3),
        features=rows.features,
        task="binary",
        metric="roc_auc",
        settings=SearchSettings(
            families=CANDIDATES,
            models=models,
            time_budget=600,
            n_trials=n_trials,
            cv_folds=3,
            cv_repeats=1,
            seed=3,
            optuna_storage=f"journal:{storage}",
        ),
    )
    return trials


def _studies(storage: Path) -> dict[str, Any]:
    import optuna
    from optuna.storages.journal import JournalFileBackend

    journal = optuna.storages.JournalStorage(JournalFileBackend(str(storage)))
    return {
        name.split("-")[1]: optuna.load_study(study_name=name, storage=journal)
        for name in optuna.study.get_all_study_names(journal)
    }


def test_the_study_holds_the_portfolio_trials_with_their_scores(
    rows: Rows, tmp_path: Path
) -> None:
    trials = _search(rows, tmp_path / "studies.log", ("linear", "lightgbm"), 4)
    studies = _studies(tmp_path / "studies.log")
    linear = [trial for trial in trials if trial.family == "linear"]
    lightgbm = [trial for trial in trials if trial.family == "lightgbm"]
    # Turns: linear portfolio, LightGBM portfolio #1, linear Optuna, LightGBM portfolio #2.
    assert [trial.source for trial in linear] == ["portfolio", "optuna"]
    assert [trial.source for trial in lightgbm] == ["portfolio", "portfolio"]
    recorded = studies["lightgbm"].trials
    assert [trial.user_attrs.get("source") for trial in recorded] == ["portfolio"] * 2
    assert [trial.value for trial in recorded] == [trial.mean for trial in lightgbm]
    assert recorded[0].params["lightgbm.learning_rate"] == 0.03
    assert recorded[0].params["lightgbm.num_leaves"] == 15
    # The pruner compares later trials with the portfolio's running mean after each fold.
    scores = lightgbm[0].scores
    assert recorded[0].intermediate_values == {
        1: pytest.approx(scores[0]),
        2: pytest.approx(np.mean(scores[:2])),
        3: pytest.approx(np.mean(scores)),
    }
    # The linear study: the portfolio first, then the trial TPE proposed knowing it.
    linear_study = studies["linear"].trials
    assert [trial.user_attrs.get("source") for trial in linear_study] == ["portfolio", None]
    assert linear_study[0].params == {
        "linear.regularisation": 1.0,
        "linear.min_frequency": 5,
    }
    assert [trial.value for trial in linear_study] == [trial.mean for trial in linear]


def test_a_warm_started_search_is_reproducible(rows: Rows, tmp_path: Path) -> None:
    first = _search(rows, tmp_path / "first.log", ("linear",), 5)
    second = _search(rows, tmp_path / "second.log", ("linear",), 5)
    assert [trial.source for trial in first] == ["portfolio"] + ["optuna"] * 4
    assert [(trial.params, trial.scores) for trial in first] == [
        (trial.params, trial.scores) for trial in second
    ]
    assert len({trial.params["regularisation"] for trial in first}) == 5
