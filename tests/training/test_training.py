"""Search, ensemble, calibration and selection on small real data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from shipyard import datasets
from shipyard.data.contract import Contract, infer_contract
from shipyard.errors import TrainingError
from shipyard.runtime.predictor import Predictor
from shipyard.runtime.preprocess import CompiledPreprocessor
from shipyard.tasks.tabular import CANDIDATES, feature_set
from shipyard.training.ensemble import (
    CompositeModel,
    fit_calibration,
    greedy_ensemble,
    tune_threshold,
)
from shipyard.training.execution import Executor
from shipyard.training.export import PARITY_TOLERANCE, check_parity, frame_to_records
from shipyard.training.search import SearchSettings
from shipyard.training.trainer import SelectionSettings, train_candidates

ROWS = 1200


class Data:
    def __init__(self, adult: datasets.Dataset) -> None:
        frame = adult.train.sample(n=ROWS + 300, random_state=3).reset_index(drop=True)
        self.contract: Contract = infer_contract(adult.train, "income")
        self.columns = self.contract.feature_names
        self.classes = sorted(adult.train["income"].unique())
        y = (frame["income"] == self.classes[1]).to_numpy(dtype=np.int64)
        self.train_x, self.train_y = frame[self.columns][:ROWS], y[:ROWS]
        self.validation_x, self.validation_y = frame[self.columns][ROWS:], y[ROWS:]
        self.features = feature_set(self.contract)

    def predictor(self, exported: Any) -> Predictor:
        return Predictor(
            self.contract,
            CompiledPreprocessor(exported.preprocessing),
            exported.scorer("binary"),
            "binary",
            self.classes,
        )

    def train(
        self, models: tuple[str, ...] = ("linear", "lightgbm", "extra_trees"), **selection: Any
    ) -> Any:
        search = SearchSettings(
            families=CANDIDATES,
            models=models,
            time_budget=600,
            n_trials=4,
            cv_folds=3,
            cv_repeats=1,
            seed=7,
        )
        return train_candidates(
            self.train_x,
            self.train_y,
            self.validation_x,
            self.validation_y,
            features=self.features,
            task="binary",
            metric="roc_auc",
            models=search.models,
            cv_folds=3,
            time_budget=600,
            seed=7,
            search=search,
            selection=SelectionSettings(**selection),
            build_predictor=self.predictor,
            cost_records=frame_to_records(self.validation_x.head(20)),
        )


@pytest.fixture(scope="module")
def data(adult: datasets.Dataset) -> Data:
    return Data(adult)


def test_same_seed_and_trial_count_give_the_same_model(data: Data) -> None:
    first = data.train(prefer_simpler=False)
    second = data.train(prefer_simpler=False)
    assert first.best == second.best

    def summary(result: Any) -> list[Any]:
        return [(row.name, row.cv_scores, row.params, row.trials) for row in result.leaderboard]

    assert summary(first) == summary(second)
    assert first.pipeline.export().files() == second.pipeline.export().files()
    # Four settings in all, families taking turns.
    assert sum(row.trials for row in first.leaderboard if row.name != "ensemble") == 4
    rows = {row.name: row for row in first.leaderboard}
    assert {"linear", "lightgbm", "extra_trees"} <= set(rows)
    for row in rows.values():
        assert row.cv_low <= row.cv_mean <= row.cv_high
        assert row.single_per_second
        assert row.single_per_second > 0
        assert row.batch_per_second
        assert row.batch_per_second > 0
    verdict = first.verdict
    assert verdict["best_by_cv"] == first.leaderboard[0].name
    assert verdict["vs_runner_up"]["other"] == first.leaderboard[1].name
    assert "significantly" in verdict["summary"]


def test_the_served_ensemble_matches_its_training_time_predictions(data: Data) -> None:
    members = []
    for name in ("linear", "lightgbm", "random_forest", "mlp"):
        candidate = CANDIDATES[name](data.features, "binary", 0)
        members.append(
            candidate.fit(data.train_x, data.train_y, data.validation_x, data.validation_y)
        )
    rows = data.validation_x.head(150)
    for calibration in (None, "platt", "isotonic"):
        ensemble = CompositeModel(list(zip(members, [0.4, 0.3, 0.2, 0.1], strict=True)), "binary")
        if calibration:
            positive = ensemble.predict_proba(data.validation_x)[:, 1]
            ensemble = CompositeModel(
                ensemble.members,
                "binary",
                fit_calibration(calibration, positive, data.validation_y),
            )
        exported = ensemble.export()
        assert exported.model_format == "composite-json"
        assert len(exported.extra_files) == 4
        gaps = check_parity(ensemble, data.predictor(exported), rows, "binary")
        assert max(gaps["single"], gaps["batched"], gaps["columns"]) <= PARITY_TOLERANCE
        served = data.predictor(exported).score_frame(rows)
        np.testing.assert_allclose(served, ensemble.predict_proba(rows), rtol=0, atol=1e-6)


def test_greedy_selection_puts_its_weight_on_the_informative_model() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=400)
    signal = 0.3 * y + 0.7 * rng.random(400)  # informative but imperfect
    informative = np.column_stack([1 - signal, signal])
    noise = rng.random(400)
    weights = greedy_ensemble([np.column_stack([1 - noise, noise]), informative], y, "roc_auc")
    assert weights[1] > 0.9
    assert sum(weights) == pytest.approx(1.0)


def test_threshold_tuning_finds_the_separating_cut() -> None:
    positive = np.r_[np.linspace(0.0, 0.3, 50), np.linspace(0.35, 1.0, 50)]
    y = np.r_[np.zeros(50), np.ones(50)]
    threshold, value = tune_threshold("accuracy", positive, y)
    assert 0.3 < threshold <= 0.35
    assert value == 1.0


def test_prefer_simpler_and_latency_limits(data: Data) -> None:
    simple = data.train(prefer_simpler=True)
    best = simple.verdict["best_by_cv"]
    rows = {row.name: row for row in simple.leaderboard}
    if simple.best != best:
        # Only when the best is not significantly better than the simpler choice.
        assert rows[simple.best].complexity < rows[best].complexity
        assert rows[simple.best].p_value_vs_best >= 0.05
    with pytest.raises(TrainingError, match="max_latency_ms"):
        data.train(max_latency_ms=1e-6)


def test_the_executor_runs_items_in_process_or_on_a_backend() -> None:
    items = list(range(6))
    assert Executor().map(np.square, items) == [0, 1, 4, 9, 16, 25]
    assert Executor("threading", 2).map(np.square, items) == [0, 1, 4, 9, 16, 25]


@pytest.mark.parametrize("family", ["lightgbm", "catboost", "xgboost", "linear"])
def test_a_fold_running_past_the_deadline_is_abandoned(data: Data, family: str) -> None:
    import time

    from shipyard.training.search import _FoldJob, _Pruned, _run_fold

    def job(stop_at: float | None) -> _FoldJob:
        rows = np.arange(ROWS)
        return _FoldJob(
            CANDIDATES[family],
            {},
            data.features,
            "binary",
            0,
            1,
            None,
            rows[:900],
            rows[900:],
            stop_at,
        )

    outputs, trees, _, cut = _run_fold(job(None), data.train_x, data.train_y)
    assert not cut
    assert outputs.shape == (ROWS - 900, 2)
    with pytest.raises(_Pruned):
        _run_fold(job(time.time() - 1.0), data.train_x, data.train_y)
    if family != "linear":
        # A booster stops adding trees at the deadline instead of finishing its search.
        candidate = CANDIDATES[family](data.features, "binary", 0)
        candidate.stop_at = time.time() - 1.0
        candidate.fit(data.train_x, data.train_y, data.validation_x, data.validation_y)
        assert candidate.best_trees_ is not None
        assert trees is not None
        assert candidate.best_trees_ < trees


def test_a_spent_budget_still_ships_the_linear_baseline_and_reports_the_rest(
    data: Data,
) -> None:
    search = SearchSettings(
        families=CANDIDATES,
        models=("lightgbm", "linear"),
        time_budget=0.5,
        cv_folds=3,
        cv_repeats=1,
        seed=7,
    )
    messages: list[str] = []
    result = train_candidates(
        data.train_x,
        data.train_y,
        data.validation_x,
        data.validation_y,
        features=data.features,
        task="binary",
        metric="roc_auc",
        models=search.models,
        cv_folds=3,
        time_budget=0.5,
        seed=7,
        search=search,
        report=messages.append,
    )
    rows = {row.name: row for row in result.leaderboard}
    # The linear baseline takes the first turn and always finishes, so that there is a
    # model; LightGBM either never starts or is stopped at the deadline.
    assert result.best == "linear"
    assert rows["linear"].status == "ok"
    assert rows["lightgbm"].status == "skipped"
    assert "budget" in rows["lightgbm"].message
    # Progress: the finished setting, the best score so far and the time left.
    progress = next(message for message in messages if message.startswith("linear portfolio"))
    assert "best so far" in progress
    assert "search time left" in progress


def test_the_tuned_threshold_decides_the_served_label(data: Data) -> None:
    result = data.train(threshold_metric="f1", prefer_simpler=False)
    assert result.threshold is not None
    threshold = result.threshold["value"]
    predictor = data.predictor(result.pipeline.export())
    predictor.threshold = threshold
    outputs = predictor.score_frame(data.validation_x)
    labels = predictor.labels_from_outputs(outputs)
    expected = [data.classes[int(p >= threshold)] for p in outputs[:, 1]]
    assert labels == expected
    answers = predictor.predict_records(frame_to_records(data.validation_x.head(50)))
    assert [answer["prediction"] for answer in answers] == expected[:50]
    predictor.threshold = None
    assert predictor.labels_from_outputs(outputs) == [
        data.classes[int(index)] for index in np.argmax(outputs, axis=1)
    ]


def test_refit_trees_are_the_mean_of_the_folds_early_stopped_counts() -> None:
    from shipyard.training.trainer import refit_trees

    assert refit_trees([100, 201]) == 150
    assert refit_trees([1]) == 1
    assert refit_trees([]) is None


def test_final_fit_all_rows_refits_on_training_and_validation_rows(data: Data) -> None:
    import pandas as pd

    every_row = data.train(models=("lightgbm",), ensemble=False)
    training_only = data.train(models=("lightgbm",), ensemble=False, final_fit="early_stopping")
    # Cross-validation is the same; only the refit differs.
    assert every_row.leaderboard[0].cv_scores == training_only.leaderboard[0].cv_scores
    trees = every_row.leaderboard[0].params["n_estimators"]
    booster = every_row.pipeline.members[0][0].named_steps["model"].booster_
    assert booster.num_trees() == trees
    assert trees != training_only.leaderboard[0].params["n_estimators"]
    settings = {
        key: value
        for key, value in every_row.leaderboard[0].params.items()
        if key != "n_estimators"
    }
    full_x = pd.concat([data.train_x, data.validation_x], ignore_index=True)
    full_y = np.concatenate([data.train_y, data.validation_y])
    again = CANDIDATES["lightgbm"](data.features, "binary", 7, **settings).fit_all(
        full_x, full_y, trees
    )
    # The shipped model is exactly a fit on every row with that tree count.
    np.testing.assert_array_equal(
        again.predict_proba(data.validation_x),
        every_row.pipeline.members[0][0].predict_proba(data.validation_x),
    )
    with pytest.raises(ValueError, match="needs a tree count"):
        CANDIDATES["lightgbm"](data.features, "binary", 7).fit_all(full_x, full_y, None)
