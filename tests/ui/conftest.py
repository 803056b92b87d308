"""The UI's fixtures: one small registry (two Adult versions with a report, a spam model)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shipyard import datasets
from shipyard.config import load_config_dict
from shipyard.registry.bundle import read_manifest
from shipyard.registry.store import Registry
from shipyard.tasks.base import task_by_name


@dataclass
class UIRegistry:
    """A registry home: ``adult:1`` (champion, with its report), ``adult:2`` (the same
    model registered again as its child, not promoted) and ``spam:1`` (text)."""

    home: Path

    def registry(self) -> Registry:
        return Registry(f"sqlite:///{self.home / 'registry.db'}", self.home / "artifacts")

    def copy(self, into: Path) -> UIRegistry:
        """A private copy, for tests that move aliases."""
        shutil.copytree(self.home, into)
        return UIRegistry(into)


def _register_again(registry: Registry, reference: str) -> None:
    """Register a version's bundle once more, as its child (a cheap second version)."""
    version = registry.resolve(reference)
    manifest = read_manifest(version.bundle_path)
    files = {path: (version.bundle_path / path).read_bytes() for path in manifest["files"]}
    kept = {key: value for key, value in manifest.items() if key != "files"}
    registry.register(
        version.name,
        files,
        kept,
        params=version.params,
        config=version.config,
        data_fingerprint=version.data_fingerprint,
        package_versions=version.package_versions,
        parent_version=version.version,
    )


@pytest.fixture(scope="session")
def ui_registry(tmp_path_factory: pytest.TempPathFactory) -> UIRegistry:
    from shipyard.pipeline import train

    folder = tmp_path_factory.mktemp("ui")
    home = folder / "home"
    source = folder / "adult.csv"
    datasets.load("adult").train.sample(n=1500, random_state=0).to_csv(source, index=False)
    raw: dict[str, Any] = {
        "name": "adult",
        "sensitive": ["sex"],
        "data": {"source": str(source), "target": "income"},
        # The trial count ends the search; the budget only keeps a loaded machine's clock from
        # dropping the report (the version page links to it).
        "training": {
            "cv_folds": 2,
            "models": ["lightgbm"],
            "n_trials": 1,
            "model_threads": 1,
            "time_budget": 900,
        },
        "evaluation": {"bootstrap_samples": 100},
        "registry": {"home": str(home)},
    }
    model = UIRegistry(home)
    registry = model.registry()
    train(load_config_dict(raw), registry=registry)
    _register_again(registry, "adult:1")
    text = task_by_name("text_classification").small_config(folder)
    text["registry"] = {"home": str(home)}
    train(load_config_dict(text), registry=registry)
    registry.close()
    return model
