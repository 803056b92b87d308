"""Lineage in the manifest and the card; loading warns when a model package changed major."""

from __future__ import annotations

import platform
import re
import subprocess
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

import shipyard
from shipyard.errors import PackageVersionWarning
from shipyard.pipeline.lineage import lineage
from shipyard.registry.bundle import MANIFEST, load_predictor, read_manifest, write_bundle

PACKAGE_FOLDER = Path(shipyard.__file__).resolve().parent


def _from_git_checkout() -> bool:
    """Whether the imported shipyard is a tracked file of a git checkout, as the tests see it."""
    try:
        found = subprocess.run(
            ["git", "-C", str(PACKAGE_FOLDER), "ls-files", "--error-unmatch", "__init__.py"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return found.returncode == 0


def _registered(adult_model: Any) -> tuple[Path, dict[str, Any]]:
    registry = adult_model.registry()
    try:
        version = registry.resolve("adult:1")
        return Path(version.bundle_path), registry.verify("adult:1")
    finally:
        registry.close()


def test_training_records_python_cpus_and_packages(adult_model: Any) -> None:
    bundle, manifest = _registered(adult_model)
    recorded = manifest["lineage"]
    assert set(recorded) >= {"code_version", "commit", "dirty", "python", "cpu_count"}
    assert recorded["code_version"] == manifest["code_version"] == shipyard.__version__
    assert recorded["python"] == platform.python_version()
    assert isinstance(recorded["cpu_count"], int)
    assert recorded["cpu_count"] > 0
    assert recorded["packages"]["lightgbm"] == metadata.version("lightgbm")
    card = (bundle / "model_card.md").read_text(encoding="utf-8")
    assert f"Python: {recorded['python']}; CPUs: {recorded['cpu_count']}" in card
    assert (recorded["commit"] or "no git commit recorded") in card


@pytest.mark.skipif(
    not _from_git_checkout(),
    reason="the imported shipyard is not a tracked file of a git checkout (an installed "
    "copy), so training records the distribution's version instead of a commit",
)
def test_training_from_a_checkout_names_the_commit(adult_model: Any) -> None:
    _, manifest = _registered(adult_model)
    assert re.fullmatch(r"[0-9a-f]{40}", manifest["lineage"]["commit"])
    assert isinstance(manifest["lineage"]["dirty"], bool)


def test_without_git_the_distribution_version_is_recorded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # No git on the PATH: the lineage must still be recorded, and say why there is no commit.
    monkeypatch.setenv("PATH", str(tmp_path))
    recorded = lineage()
    assert recorded["commit"] is None
    assert recorded["dirty"] is None
    assert "installed distribution shipyard" in recorded["source"]
    assert recorded["cpu_count"] > 0


def _rewritten(adult_model: Any, into: Path, lightgbm: str) -> Path:
    """Write the registered bundle again with another LightGBM version in its lineage."""
    bundle, _ = _registered(adult_model)
    manifest = read_manifest(bundle)
    files = {relative: (bundle / relative).read_bytes() for relative in manifest.pop("files")}
    manifest.pop("bundle_format")
    packages = {**manifest["lineage"]["packages"], "lightgbm": lightgbm}
    manifest["lineage"] = {**manifest["lineage"], "packages": packages}
    write_bundle(into, files, manifest)
    assert (into / MANIFEST).is_file()
    return into


def test_a_changed_major_version_warns_once_naming_both_versions(
    adult_model: Any, tmp_path: Path
) -> None:
    bundle = _rewritten(adult_model, tmp_path / "bundle", "1.0.0")
    installed = metadata.version("lightgbm")
    with pytest.warns(PackageVersionWarning) as caught:
        predictor = load_predictor(bundle)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "lightgbm 1.0.0 trained it" in message
    assert f"{installed} is installed now" in message
    assert predictor.contract.feature_names  # it still loads


def test_the_same_major_version_loads_without_a_warning(adult_model: Any, tmp_path: Path) -> None:
    major = metadata.version("lightgbm").split(".")[0]
    bundle = _rewritten(adult_model, tmp_path / "bundle", f"{major}.99.0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predictor = load_predictor(bundle)
    assert predictor.contract.feature_names
