"""Shared fixtures: the bundled Adult data and small, fast pipeline configs built on it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from shipyard import datasets
from shipyard.config import PipelineConfig, apply_overrides, load_config_dict

# Hypothesis: no per-example deadline (the first example pays for imports). The default
# profile keeps the suite fast; run `pytest --hypothesis-profile=thorough` to search harder.
settings.register_profile(
    "shipyard", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", parent=settings.get_profile("shipyard"), max_examples=1000)
settings.load_profile("shipyard")

ADULT_SAMPLE_ROWS = 3000


@pytest.fixture(scope="session")
def adult() -> datasets.Dataset:
    """The bundled UCI Adult dataset (loaded once per session)."""
    return datasets.load("adult")


@pytest.fixture
def small_adult_config(adult: datasets.Dataset, tmp_path: Path) -> Callable[..., PipelineConfig]:
    """Build a fast Adult pipeline config whose data and registry live under ``tmp_path``.

    Call it with dotted-key overrides, e.g. ``small_adult_config(**{"training.models":
    ["linear"]})``. The data is a seeded 3,000-row sample written to ``adult.csv``.
    """
    source = tmp_path / "adult.csv"
    adult.train.sample(n=ADULT_SAMPLE_ROWS, random_state=0).to_csv(source, index=False)

    def build(**overrides: Any) -> PipelineConfig:
        raw = {
            "name": "adult",
            "sensitive": ["sex", "race"],
            "data": {"source": str(source), "target": "income"},
            "training": {"cv_folds": 3, "models": ["linear", "lightgbm"], "n_trials": 4},
            "evaluation": {"bootstrap_samples": 200},
            "registry": {"home": str(tmp_path / "home")},
        }
        return load_config_dict(apply_overrides(raw, overrides))

    return build
