from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shipyard import datasets
from shipyard.config import load_config_dict
from shipyard.pipeline import TrainRun, train
from shipyard.registry.store import Registry


@dataclass
class TrainedModel:
    registry: Registry
    run: TrainRun
    home: Path
    test_csv: Path


@pytest.fixture(scope="session")
def trained_adult(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    """A small real Adult model, trained once and registered in a temporary registry."""
    home = tmp_path_factory.mktemp("serving-registry")
    adult = datasets.load("adult")
    train_csv, test_csv = home / "adult-train.csv", home / "adult-test.csv"
    adult.train.sample(4000, random_state=0).to_csv(train_csv, index=False)
    adult.test.sample(1500, random_state=0).to_csv(test_csv, index=False)
    config = load_config_dict(
        {
            "name": "adult",
            "data": {"source": str(train_csv), "test_source": str(test_csv), "target": "income"},
            "training": {"cv_folds": 2, "models": ["lightgbm"], "n_trials": 1},
            "evaluation": {"bootstrap_samples": 100},
            "registry": {"home": str(home / ".shipyard")},
        }
    )
    registry = Registry.from_config(config.registry)
    run = train(config, registry=registry)
    return TrainedModel(registry, run, home, test_csv)


@dataclass
class FittedAdult:
    """A scikit-learn pipeline fitted here, registered twice (versions 1 and 2) from its export."""

    registry: Registry
    pipeline: Any
    frame: Any
    records: list[dict[str, Any]]
    classes: list[str]


def register_pipeline(
    registry: Registry, name: str, pipeline: Any, contract: Any, classes: list[str]
) -> Any:
    """Export a fitted binary pipeline and register it, as ``shipyard train`` does."""
    from shipyard.training.export import export_pipeline

    exported = export_pipeline(pipeline, "binary")
    manifest = {
        "task": "binary",
        "target": contract.target.name,
        "metric": "roc_auc",
        "classes": classes,
        "model": {
            "format": exported.model_format,
            "path": exported.model_filename,
            "family": "lightgbm",
        },
        "contract": "contract.yaml",
        "preprocessing": "preprocessing.json",
    }
    files = {
        "contract.yaml": contract.to_yaml().encode(),
        "preprocessing.json": json.dumps(exported.preprocessing, allow_nan=False).encode(),
        exported.model_filename: exported.model_payload.encode(),
    }
    return registry.register(name, files, manifest)


@pytest.fixture(scope="session")
def fitted_adult(tmp_path_factory: pytest.TempPathFactory) -> FittedAdult:
    """LightGBM on 4,000 Adult rows (100 trees, no early stopping), champion = version 1."""
    from shipyard.data.contract import infer_contract
    from shipyard.runtime.validate import RecordValidator
    from shipyard.tasks.tabular import LightGBMCandidate, feature_set
    from shipyard.training.export import frame_to_records

    home = tmp_path_factory.mktemp("fitted-adult")
    adult = datasets.load("adult")
    train_frame = adult.train.sample(4000, random_state=1).reset_index(drop=True)
    contract = infer_contract(train_frame, adult.target, drop=["fnlwgt"])
    classes = ["<=50K", ">50K"]
    candidate = LightGBMCandidate(feature_set(contract), "binary", seed=0)
    candidate.best_trees_ = 100  # a fixed tree count: no early stopping needed here
    columns = contract.feature_names
    labels = (train_frame[adult.target] == ">50K").astype(int).to_numpy()
    pipeline = candidate.cv_pipeline()
    pipeline.fit(train_frame[columns], labels, **candidate.fit_params())
    registry = Registry(f"sqlite:///{home / 'registry.db'}", home / "artifacts")
    first = register_pipeline(registry, "adult", pipeline, contract, classes)
    registry.promote("adult", first.version, "champion", reason="test")
    register_pipeline(registry, "adult", pipeline, contract, classes)
    # Real test rows that the contract accepts (a 4,000-row sample misses rare categories).
    candidates = adult.test.sample(1500, random_state=2).reset_index(drop=True)[columns]
    validator = RecordValidator(contract)
    valid = [not validator.problems(record) for record in frame_to_records(candidates)]
    test_frame = candidates[valid].head(1000).reset_index(drop=True)
    return FittedAdult(registry, pipeline, test_frame, frame_to_records(test_frame), classes)


@pytest.fixture
def registry_copy(trained_adult: TrainedModel, tmp_path: Path) -> Registry:
    """A private copy of the trained registry, so logged rows do not leak between tests."""
    home = tmp_path / "home"
    shutil.copytree(trained_adult.home / ".shipyard", home)
    return Registry(f"sqlite:///{home / 'registry.db'}", home / "artifacts")


@pytest.fixture
def records(trained_adult: TrainedModel) -> tuple[Any, list[dict[str, Any]]]:
    """Twenty Adult test rows: the frame (with the label) and the records to post."""
    import pandas as pd

    from shipyard.training.export import frame_to_records

    frame = pd.read_csv(trained_adult.test_csv, skipinitialspace=True).head(20)
    return frame, frame_to_records(frame.drop(columns=["income"]))
