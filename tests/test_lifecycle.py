from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_iris

from shipyard import datasets
from shipyard.config import PipelineConfig, load_config_dict
from shipyard.errors import DataError, DataValidationError
from shipyard.pipeline import evaluate, train
from shipyard.registry.bundle import load_predictor
from shipyard.registry.store import Registry

ConfigFactory = Callable[..., PipelineConfig]


def model_files(bundle: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in bundle.glob("model.*")}


def test_train_registers_a_champion_then_a_challenger(small_adult_config: ConfigFactory) -> None:
    config = small_adult_config()
    messages: list[str] = []
    first = train(config, report=messages.append)

    assert first.task == "binary"
    assert first.metric == "roc_auc"
    auc = first.test_metrics["roc_auc"]
    assert auc.value > 0.85
    assert auc.low <= auc.value <= auc.high
    assert first.rows == {"train": 2100, "validation": 300, "test": 600}
    names = {row.name for row in first.leaderboard}
    assert {"linear", "lightgbm"} <= names <= {"linear", "lightgbm", "ensemble"}
    assert all(row.status == "ok" and len(row.cv_scores) == 3 for row in first.leaderboard)
    assert first.verdict["best_by_cv"] == first.leaderboard[0].name
    assert first.best == first.verdict["chosen"]
    assert all(row.single_per_second and row.batch_per_second for row in first.leaderboard)
    assert max(first.parity["single"], first.parity["batched"], first.parity["columns"]) <= 1e-6
    assert first.version.reference == "adult:1"
    assert first.version.aliases == ("champion",)
    assert first.promoted
    assert messages[-1] == "registered adult:1 as champion"
    summary = first.as_dict()
    assert summary["test_metrics"]["roc_auc"]["value"] == auc.value
    assert summary["leaderboard"][0]["cv_mean"] == first.leaderboard[0].cv_mean

    second = train(config)
    registry = Registry.from_config(config.registry)
    assert second.version.reference == "adult:2"
    assert not second.promoted
    assert second.version.aliases == ()
    assert second.version.parent_version == 1
    assert registry.resolve("adult").version == 1

    # Same config and seed: the same model, byte for byte.
    first_files = model_files(registry.get("adult", 1).bundle_path)
    assert first_files
    assert model_files(registry.get("adult", 2).bundle_path) == first_files
    assert second.test_metrics == first.test_metrics

    # What was registered can be served and evaluated.
    manifest = registry.verify("adult:1")
    assert manifest["sensitive"] == ["sex", "race"]
    assert manifest["classes"] == ["<=50K", ">50K"]
    assert registry.get("adult", 1).data_fingerprint == registry.get("adult", 2).data_fingerprint
    assert (
        load_config_dict(
            __import__("yaml").safe_load(
                (registry.get("adult", 1).bundle_path / "config.yaml").read_text()
            )
        )
        == config
    )


def test_evaluate_scores_a_labelled_file(
    small_adult_config: ConfigFactory, adult: datasets.Dataset, tmp_path: Path
) -> None:
    config = small_adult_config(**{"training.models": ["linear"]})
    train(config)
    registry = Registry.from_config(config.registry)
    # Keep the official test rows whose categories the 3,000-row training sample had.
    contract = registry.load_predictor("adult").contract
    rows = adult.test.head(1520)
    rejected = {v.row for v in contract.validate_frame(rows, with_target=True).violations}
    assert 0 < len(rejected) < 20
    labelled = tmp_path / "adult-test.csv"
    rows.drop(index=list(rejected)).head(1500).to_csv(labelled, index=False)

    result = evaluate(registry, "adult@champion", str(labelled), bootstrap_samples=200)
    assert result.rows == 1500
    assert set(result.metrics) == {"roc_auc", "accuracy", "f1", "log_loss"}
    assert result.metrics["roc_auc"].value > 0.85
    for value in result.metrics.values():
        assert value.low <= value.value <= value.high
    assert result.as_dict()["reference"] == "adult:1"

    # The same numbers as scoring the file by hand through the bundle.
    predictor = load_predictor(registry.resolve("adult").bundle_path)
    frame = pd.read_csv(labelled, skipinitialspace=True)
    outputs = predictor.score_frame(frame[predictor.contract.feature_names])
    accuracy = np.mean(np.array(predictor.labels_from_outputs(outputs)) == frame["income"])
    assert result.metrics["accuracy"].value == pytest.approx(accuracy, abs=1e-12)

    unlabelled = tmp_path / "unlabelled.csv"
    adult.test.head(50).drop(columns="income").to_csv(unlabelled, index=False)
    with pytest.raises(DataError, match="has no target column 'income'"):
        evaluate(registry, "adult", str(unlabelled))

    broken = tmp_path / "broken.csv"
    adult.test.head(50).assign(age=-1).to_csv(broken, index=False)
    with pytest.raises(DataValidationError, match="does not satisfy the data contract"):
        evaluate(registry, "adult", str(broken))


def test_regression_on_a_csv(tmp_path: Path) -> None:
    frame = load_diabetes(as_frame=True, scaled=False).frame
    source = tmp_path / "diabetes.csv"
    frame.to_csv(source, index=False)
    config = load_config_dict(
        {
            "name": "diabetes",
            "data": {"source": str(source), "target": "target"},
            "training": {"cv_folds": 3, "n_trials": 6},
            "evaluation": {"bootstrap_samples": 200},
            "registry": {"home": str(tmp_path / "home")},
        }
    )
    run = train(config)
    assert run.task == "regression"
    assert run.metric == "rmse"
    assert set(run.test_metrics) == {"rmse", "mae", "r2"}
    assert run.test_metrics["r2"].value > 0.3
    rmse = run.test_metrics["rmse"]
    assert rmse.low <= rmse.value <= rmse.high
    assert run.version.aliases == ("champion",)
    predictor = Registry.from_config(config.registry).load_predictor("diabetes")
    answer = predictor.predict_records([frame.drop(columns="target").iloc[0].to_dict()])
    assert isinstance(answer[0]["prediction"], float)


def test_multiclass_with_a_separate_test_file(tmp_path: Path) -> None:
    iris = load_iris(as_frame=True)
    frame = iris.frame.assign(species=iris.target_names[iris.target]).drop(columns="target")
    test_rows = frame.index % 5 == 0
    frame[~test_rows].to_csv(tmp_path / "train.csv", index=False)
    frame[test_rows].to_csv(tmp_path / "test.csv", index=False)
    config = load_config_dict(
        {
            "name": "iris",
            "data": {
                "source": str(tmp_path / "train.csv"),
                "test_source": str(tmp_path / "test.csv"),
                "target": "species",
            },
            "training": {"cv_folds": 3, "models": ["linear"], "n_trials": 2},
            "evaluation": {"bootstrap_samples": 200},
            "registry": {"home": str(tmp_path / "home")},
        }
    )
    run = train(config)
    assert run.task == "multiclass"
    assert run.metric == "log_loss"
    assert run.rows["test"] == 30
    assert run.test_metrics["accuracy"].value > 0.85


def test_sensitive_column_must_exist(small_adult_config: ConfigFactory) -> None:
    with pytest.raises(DataError, match="Sensitive column 'gender'"):
        train(small_adult_config(sensitive=["sex", "gender"]))


def test_missing_target_suggests_the_nearest_column(small_adult_config: ConfigFactory) -> None:
    with pytest.raises(
        DataError,
        match=r"Target column 'incme' is not in the data.*"
        r"Did you mean 'income'",
    ):
        train(small_adult_config(**{"data.target": "incme"}))


def test_unknown_positive_class(small_adult_config: ConfigFactory) -> None:
    with pytest.raises(DataError, match="positive_class '>50k' is not a label"):
        train(small_adult_config(positive_class=">50k"))


def test_missing_data_file(small_adult_config: ConfigFactory, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        train(small_adult_config(**{"data.source": str(tmp_path / "nope.csv")}))


def test_rows_without_a_target_are_dropped_with_a_note(
    small_adult_config: ConfigFactory, tmp_path: Path
) -> None:
    source = tmp_path / "adult.csv"
    frame = pd.read_csv(source)
    frame.loc[:9, "income"] = np.nan
    gappy = tmp_path / "gappy.csv"
    frame.to_csv(gappy, index=False)
    run = train(small_adult_config(**{"data.source": str(gappy), "training.models": ["linear"]}))
    assert "dropped 10 rows whose target 'income' is missing" in run.notes
    assert sum(run.rows.values()) == len(frame) - 10


def test_two_first_trainings_at_once_make_one_champion(
    small_adult_config: ConfigFactory,
) -> None:
    import threading

    config = small_adult_config(
        **{"training.models": ["linear"], "training.n_trials": 1, "evaluation.report": False}
    )
    runs: list[object] = []
    errors: list[BaseException] = []

    def first_training() -> None:
        try:
            runs.append(train(config))
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=first_training) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert errors == []
    registry = Registry.from_config(config.registry)
    versions = registry.versions("adult")
    assert [version.version for version in versions] == [1, 2]
    assert [version.aliases for version in versions] == [("champion",), ()]
    assert versions[1].parent_version == 1
    promotions = [event for event in registry.events("adult") if event["action"] == "promote"]
    assert [event["version"] for event in promotions] == [1]
