"""Two small real Adult models (LightGBM and linear) with the evaluation suite, trained once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from shipyard import datasets
from shipyard.config import PipelineConfig, load_config_dict
from shipyard.pipeline import TrainRun, train
from shipyard.registry.store import Registry

# Stricter than any model trained on Adult meets: the gap in selection rate between men and
# women is about 0.2 there.
STRICT = {"demographic_parity_difference": 0.05}


@dataclass
class Evaluated:
    registry: Registry
    config: PipelineConfig
    runs: dict[str, TrainRun]
    home: Path
    test_csv: Path


@pytest.fixture(scope="session")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> Evaluated:
    home = tmp_path_factory.mktemp("evaluation")
    adult = datasets.load("adult")
    # One source, split by the pipeline: the test split is 600 rows. Records for explanation
    # tests come from the same file (they only need to satisfy the contract).
    train_csv = home / "adult.csv"
    adult.train.sample(3000, random_state=3).to_csv(train_csv, index=False)
    runs = {}
    config = None
    for family in ("lightgbm", "linear"):
        config = load_config_dict(
            {
                "name": f"adult-{family}",
                "sensitive": ["sex", "race"],
                "data": {"source": str(train_csv), "target": "income"},
                "training": {"cv_folds": 2, "models": [family], "n_trials": 2},
                "evaluation": {
                    "bootstrap_samples": 100,
                    "intended_use": "Testing shipyard's evaluation suite.",
                    "out_of_scope_use": "Decisions about real people.",
                },
                "fairness": {
                    "thresholds": STRICT,
                    "mitigation": "threshold_optimizer",
                    "bootstrap_samples": 50,
                },
                "registry": {"home": str(home / ".shipyard")},
            }
        )
        runs[family] = train(config)
    assert config is not None
    return Evaluated(Registry.from_config(config.registry), config, runs, home, train_csv)
