from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from shipyard import datasets
from shipyard.config import load_config_dict
from shipyard.lifecycle import TrainRun, train
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
