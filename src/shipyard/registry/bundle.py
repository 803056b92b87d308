"""The model bundle: a folder of files plus ``manifest.json`` holding the SHA-256 of each.

A bundle is written once and never changed. Loading verifies every hash, refuses files the
manifest does not list, and (when the registry supplies it) checks the manifest's own hash, so a
single changed byte anywhere is caught before anything is served. Nothing in a bundle is a
pickle: the serving path reads JSON, YAML and LightGBM's text format only.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from shipyard.errors import BundleIntegrityError, PackageVersionWarning

__all__ = [
    "BUNDLE_FORMAT",
    "MANIFEST",
    "MODEL_PACKAGES",
    "load_predictor",
    "package_version_changes",
    "read_manifest",
    "verify_bundle",
    "write_bundle",
]

MANIFEST = "manifest.json"
BUNDLE_FORMAT = 1

# The packages whose major version can change what a model computes; a bundle trained with
# another major version than the one installed loads with a PackageVersionWarning.
MODEL_PACKAGES = ("scikit-learn", "lightgbm", "xgboost", "catboost", "numpy", "pandas")
_MAJOR = re.compile(r"^\s*(\d+)")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_bundle(directory: Path, files: Mapping[str, bytes], manifest: Mapping[str, Any]) -> str:
    """Write ``files`` and a manifest listing their hashes into an empty ``directory``.

    Returns
    -------
    str
        The SHA-256 of the manifest file, for the registry to keep.
    """
    directory.mkdir(parents=True, exist_ok=False)
    hashes = {}
    for relative, data in sorted(files.items()):
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        hashes[relative] = _sha256(data)
    document = {**manifest, "bundle_format": BUNDLE_FORMAT, "files": hashes}
    encoded = (json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()
    (directory / MANIFEST).write_bytes(encoded)
    return _sha256(encoded)


def read_manifest(directory: Path) -> dict[str, Any]:
    """Read a bundle's manifest without verifying the files."""
    path = directory / MANIFEST
    if not path.is_file():
        raise BundleIntegrityError(
            f"Bundle '{directory}' has no {MANIFEST}; it is not a "
            "shipyard bundle or it was damaged."
        )
    try:
        manifest: dict[str, Any] = json.loads(path.read_bytes())
    except ValueError as error:
        raise BundleIntegrityError(
            f"{path} is not valid JSON ({error}); the bundle is damaged. Re-register the model."
        ) from error
    return manifest


def verify_bundle(directory: Path, manifest_sha256: str | None = None) -> dict[str, Any]:
    """Check every file of a bundle against its manifest; return the manifest.

    Raises
    ------
    BundleIntegrityError
        Naming the file that is missing, unlisted or altered, with the expected and found hash.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise BundleIntegrityError(
            f"Bundle folder '{directory}' does not exist; the registry "
            "points at files that were moved or deleted."
        )
    hint = (
        "The bundle was altered after it was registered; do not serve it. Re-train, or "
        "restore the folder from a backup."
    )
    if manifest_sha256 is not None:
        found = (
            _sha256((directory / MANIFEST).read_bytes())
            if (directory / MANIFEST).is_file()
            else "missing"
        )
        if found != manifest_sha256:
            raise BundleIntegrityError(
                f"{directory / MANIFEST} has SHA-256 {found}, but the "
                f"registry recorded {manifest_sha256}. {hint}"
            )
    manifest = read_manifest(directory)
    listed: dict[str, str] = manifest.get("files", {})
    for relative, expected in sorted(listed.items()):
        path = directory / relative
        if not path.is_file():
            raise BundleIntegrityError(
                f"Bundle file '{relative}' is missing from {directory}. {hint}"
            )
        found = _sha256(path.read_bytes())
        if found != expected:
            raise BundleIntegrityError(
                f"Bundle file '{relative}' in {directory} has SHA-256 "
                f"{found}, but the manifest says {expected}. {hint}"
            )
    present = {
        str(path.relative_to(directory)) for path in directory.rglob("*") if path.is_file()
    } - {MANIFEST}
    unlisted = sorted(present - set(listed))
    if unlisted:
        raise BundleIntegrityError(
            f"Bundle {directory} holds files its manifest does not list: "
            f"{', '.join(unlisted)}. {hint}"
        )
    return manifest


def load_predictor(
    directory: Path, manifest_sha256: str | None = None, unknown_fields: str = "reject"
) -> Any:
    """Verify a bundle and build the predictor its task loads from it.

    The manifest's task names the task (:func:`~shipyard.tasks.base.task_for_manifest`):
    tabular bundles give a :class:`~shipyard.runtime.Predictor`, text classifiers a
    :class:`~shipyard.runtime.text.TextPredictor`, recommenders a
    :class:`~shipyard.runtime.recommend.RecommenderScorer`. Only JSON, YAML, the models' own
    text formats and ``.npy`` arrays (without pickles) are read; no pickle is ever loaded.
    """
    from shipyard.tasks.base import task_for_manifest

    directory = Path(directory)
    manifest = verify_bundle(directory, manifest_sha256)
    _warn_on_package_changes(directory, manifest)
    return task_for_manifest(manifest).load(directory, manifest, unknown_fields)


def _trained_versions(manifest: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return the package versions that trained (lineage, or release 0.1's entry)."""
    lineage = manifest.get("lineage") or {}
    packages: Mapping[str, Any] = lineage.get("packages") or manifest.get("package_versions") or {}
    return packages


def _major(version: str) -> int | None:
    found = _MAJOR.match(str(version))
    return int(found.group(1)) if found else None


def package_version_changes(manifest: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """Return ``(package, trained, installed)`` for each model package whose major changed.

    Only packages in :data:`MODEL_PACKAGES` that the manifest records and that are installed
    now are compared; versions that do not start with a number are not compared.
    """
    changes = []
    for package, trained in sorted(_trained_versions(manifest).items()):
        if package not in MODEL_PACKAGES:
            continue
        try:
            installed = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
        then, now = _major(str(trained)), _major(installed)
        if then is not None and now is not None and then != now:
            changes.append((package, str(trained), installed))
    return changes


def _warn_on_package_changes(directory: Path, manifest: Mapping[str, Any]) -> None:
    """Warn once per load when the model's packages changed major version since training."""
    changes = package_version_changes(manifest)
    if not changes:
        return
    listed = "; ".join(
        f"{package} {trained} trained it, {installed} is installed now"
        for package, trained, installed in changes
    )
    warnings.warn(
        f"The bundle in {directory} was trained with another major version of a package its "
        f"model depends on: {listed}. Its answers may differ from the metrics measured at "
        "training: install the versions that trained it, or retrain the model.",
        PackageVersionWarning,
        stacklevel=3,
    )
