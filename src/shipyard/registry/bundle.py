"""The model bundle: a folder of files plus ``manifest.json`` holding the SHA-256 of each.

A bundle is written once and never changed. Loading verifies every hash, refuses files the
manifest does not list, and (when the registry supplies it) checks the manifest's own hash, so a
single changed byte anywhere is caught before anything is served. Nothing in a bundle is a
pickle: the serving path reads JSON, YAML and LightGBM's text format only.

Every file of a bundle is reached through :func:`bundle_file`, which refuses names that leave
the bundle (absolute paths, ``..``), symbolic links anywhere on the path and anything but a
regular file: a manifest is data written by whoever can write the artifacts folder, and the
hash of a symlink's target would match, so a link to a file outside must be refused by name.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import warnings
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from shipyard.errors import BundleIntegrityError, PackageVersionWarning
from shipyard.manifest import Manifest
from shipyard.runtime.bundle_files import ALTERED as _ALTERED
from shipyard.runtime.bundle_files import bundle_file
from shipyard.runtime.bundle_files import entry_problem as _entry_problem

__all__ = [
    "BUNDLE_FORMAT",
    "MANIFEST",
    "MODEL_PACKAGES",
    "bundle_file",
    "load_manifest",
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
    for relative in files:
        problem = _entry_problem(relative)
        if problem is not None:
            raise BundleIntegrityError(
                f"Cannot write bundle file {relative!r}: the name {problem}. Name bundle files "
                "with relative POSIX paths inside the bundle, such as 'model.lgb.txt'."
            )
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
    directory = Path(directory)
    if not os.path.lexists(directory / MANIFEST):
        raise BundleIntegrityError(
            f"Bundle '{directory}' has no {MANIFEST}; it is not a "
            "shipyard bundle or it was damaged."
        )
    path = bundle_file(directory, MANIFEST)
    try:
        manifest: dict[str, Any] = json.loads(path.read_bytes())
    except ValueError as error:
        raise BundleIntegrityError(
            f"{path} is not valid JSON ({error}); the bundle is damaged. Re-register the model."
        ) from error
    if not isinstance(manifest, dict):
        raise BundleIntegrityError(
            f"{path} holds {type(manifest).__name__}, not a JSON object; the bundle is damaged. "
            "Re-register the model."
        )
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

    if manifest_sha256 is not None:
        found = (
            _sha256(bundle_file(directory, MANIFEST).read_bytes())
            if os.path.lexists(directory / MANIFEST)
            else "missing"
        )
        if found != manifest_sha256:
            raise BundleIntegrityError(
                f"{directory / MANIFEST} has SHA-256 {found}, but the "
                f"registry recorded {manifest_sha256}. {_ALTERED}"
            )
    manifest = read_manifest(directory)
    listed: dict[str, str] = manifest.get("files", {})
    if not isinstance(listed, dict):
        raise BundleIntegrityError(f"{directory / MANIFEST}: 'files' is not a mapping. {_ALTERED}")
    for relative, expected in sorted(listed.items()):
        found = _sha256(bundle_file(directory, relative).read_bytes())
        if found != expected:
            raise BundleIntegrityError(
                f"Bundle file '{relative}' in {directory} has SHA-256 "
                f"{found}, but the manifest says {expected}. {_ALTERED}"
            )
    unlisted = sorted(_regular_files(directory) - {MANIFEST} - set(listed))
    if unlisted:
        raise BundleIntegrityError(
            f"Bundle {directory} holds files its manifest does not list: "
            f"{', '.join(unlisted)}. {_ALTERED}"
        )
    return manifest


def _regular_files(directory: Path) -> set[str]:
    """List a bundle's files as relative POSIX paths, refusing links and special files.

    The walk does not follow symbolic links: a link anywhere in the folder is refused by name.
    """
    found = set()
    for root, folders, files in os.walk(directory, followlinks=False):
        for name in [*folders, *files]:
            path = Path(root) / name
            mode = os.lstat(path).st_mode
            relative = path.relative_to(directory).as_posix()
            if stat.S_ISLNK(mode):
                raise BundleIntegrityError(
                    f"Bundle {directory} holds '{relative}', a symbolic link (to "
                    f"'{os.readlink(path)}'); bundles hold regular files only. {_ALTERED}"
                )
            if not stat.S_ISDIR(mode) and not stat.S_ISREG(mode):
                raise BundleIntegrityError(
                    f"Bundle {directory} holds '{relative}', which is not a regular file (a "
                    f"pipe, socket or device). {_ALTERED}"
                )
            if stat.S_ISREG(mode):
                found.add(relative)
    return found


def load_manifest(directory: Path, manifest_sha256: str | None = None) -> Manifest:
    """Verify a bundle and return its manifest, typed and upgraded to the current version.

    Raises
    ------
    BundleIntegrityError
        When a file differs from its hash, or the manifest is not one shipyard reads.
    """
    document = verify_bundle(directory, manifest_sha256)
    return Manifest.from_document(document, source=str(Path(directory) / MANIFEST))


def load_predictor(
    directory: Path,
    manifest_sha256: str | None = None,
    unknown_fields: str = "reject",
    store_url: str | None = None,
) -> Any:
    """Verify a bundle and build the predictor its task loads from it.

    The manifest's task names the task (:func:`~shipyard.tasks.base.task_for_manifest`):
    tabular bundles give a :class:`~shipyard.runtime.Predictor`, text classifiers a
    :class:`~shipyard.runtime.text.TextPredictor`, recommenders a
    :class:`~shipyard.runtime.recommend.RecommenderScorer`. Only JSON, YAML, the models' own
    text formats and ``.npy`` arrays (without pickles) are read; no pickle is ever loaded.
    ``store_url``, the registry's database, is handed to tasks that can use it
    (:meth:`~shipyard.tasks.base.Task.load_with_store`).
    """
    from shipyard.tasks.base import task_for_manifest

    directory = Path(directory)
    manifest = load_manifest(directory, manifest_sha256)
    _warn_on_package_changes(directory, manifest.to_document())
    task = task_for_manifest(manifest)
    if store_url is None:
        return task.load(directory, manifest, unknown_fields)
    return task.load_with_store(directory, manifest, unknown_fields, store_url)


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
