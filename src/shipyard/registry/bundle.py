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
import stat
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from shipyard.errors import BundleIntegrityError

__all__ = [
    "BUNDLE_FORMAT",
    "MANIFEST",
    "bundle_file",
    "load_predictor",
    "read_manifest",
    "verify_bundle",
    "write_bundle",
]

MANIFEST = "manifest.json"
BUNDLE_FORMAT = 1
_ALTERED = (
    "The bundle was altered after it was registered; do not serve it. Re-train, or "
    "restore the folder from a backup."
)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _entry_problem(relative: Any) -> str | None:
    """Say why a manifest entry is not a plain relative POSIX path, or return ``None``."""
    if not isinstance(relative, str) or not relative:
        return f"is {type(relative).__name__} {relative!r}, not a file name"
    if "\\" in relative or "\x00" in relative:
        return "holds a backslash or a NUL character; bundle paths are POSIX paths"
    pure = PurePosixPath(relative)
    if pure.is_absolute():
        return "is an absolute path; bundle paths are relative to the bundle folder"
    if ".." in pure.parts:
        return "has a '..' part, which leads out of the bundle folder"
    if str(pure) != relative or "." in relative.split("/"):
        return f"is not in plain form (expected {str(pure)!r})"
    return None


def _link_or_special(path: Path) -> str | None:
    """Say why ``path`` may not be read as a bundle file (``lstat``: links are not followed)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return "is missing"
    if stat.S_ISLNK(mode):
        return f"is a symbolic link (to '{os.readlink(path)}'); bundles hold regular files only"
    return None


def bundle_file(directory: Path, relative: Any) -> Path:
    """Return the path of the regular file ``relative`` names inside the bundle ``directory``.

    This is the one way into a bundle: every name a manifest holds (the listed files, the model,
    the contract, the preprocessing, cleaning and references) is resolved here.

    Parameters
    ----------
    directory
        The bundle folder.
    relative
        The file's name in the manifest: a relative POSIX path such as ``model.lgb.txt``.

    Raises
    ------
    BundleIntegrityError
        Naming the entry and why it is refused: not a relative POSIX path, a ``..`` part, a
        symbolic link anywhere on the path, missing, not a regular file (a folder, a device, a
        pipe), or resolving outside the bundle.
    """
    directory = Path(directory)
    problem = _entry_problem(relative)
    path = directory
    if problem is None:
        for part in PurePosixPath(relative).parts:
            path = path / part
            problem = _link_or_special(path)
            if problem is not None:
                if path.relative_to(directory).as_posix() != relative:
                    problem = f"(at '{path.relative_to(directory).as_posix()}') {problem}"
                break
    if problem is None and not stat.S_ISREG(os.lstat(path).st_mode):
        problem = "is not a regular file"
    if problem is None and not path.resolve().is_relative_to(directory.resolve()):
        problem = "resolves outside the bundle folder"
    if problem is not None:
        raise BundleIntegrityError(
            f"Bundle entry {relative!r} {problem} (bundle {directory}). {_ALTERED}"
        )
    return path


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


def _load_recommender(directory: Path, manifest: dict[str, Any], unknown_fields: str) -> Any:
    from shipyard.runtime.recommend import RecommenderScorer

    return RecommenderScorer(directory, manifest)


def _load_text_classifier(directory: Path, manifest: dict[str, Any], unknown_fields: str) -> Any:
    from shipyard.data.contract import Contract
    from shipyard.runtime.text import TextPredictor

    contract_path = bundle_file(directory, manifest["contract"])
    contract = Contract.from_yaml(
        contract_path.read_text(encoding="utf-8"), source=str(contract_path)
    )
    spec = json.loads(bundle_file(directory, manifest["model"]["path"]).read_bytes())
    return TextPredictor(
        contract,
        spec,
        manifest["classification"],
        manifest.get("classes", []),
        unknown_fields,
        int(manifest.get("explain_tokens", 5)),
    )


def _task_loader(task: Any) -> Any:
    """Return the loader of a non-tabular task's bundle, or ``None`` for the tabular path."""
    loaders = {
        "recommendation": _load_recommender,
        "text_classification": _load_text_classifier,
    }
    return loaders.get(str(task))


def load_predictor(
    directory: Path, manifest_sha256: str | None = None, unknown_fields: str = "reject"
) -> Any:
    """Verify a bundle and build the predictor its manifest's task calls for.

    Tabular bundles give a :class:`~shipyard.runtime.Predictor`; ``recommendation`` bundles a
    :class:`~shipyard.runtime.recommend.RecommenderScorer`; ``text_classification`` bundles a
    :class:`~shipyard.runtime.text.TextPredictor`. Only JSON, YAML, LightGBM text and
    ``.npy`` arrays (without pickles) are read; no pickle is ever loaded.
    """
    from shipyard.data.contract import Contract
    from shipyard.runtime.models import load_scorer
    from shipyard.runtime.predictor import Predictor
    from shipyard.runtime.preprocess import CompiledPreprocessor

    directory = Path(directory)
    manifest = verify_bundle(directory, manifest_sha256)
    special = _task_loader(manifest.get("task"))
    if special is not None:
        return special(directory, manifest, unknown_fields)
    contract_path = bundle_file(directory, manifest["contract"])
    contract = Contract.from_yaml(
        contract_path.read_text(encoding="utf-8"), source=str(contract_path)
    )
    spec = json.loads(bundle_file(directory, manifest["preprocessing"]).read_bytes())
    scorer = load_scorer(manifest["model"], directory, manifest["task"])
    cleaner = None
    if manifest.get("cleaning"):
        from shipyard.runtime.clean import Cleaner

        cleaner = Cleaner(json.loads(bundle_file(directory, manifest["cleaning"]).read_bytes()))
    return Predictor(
        contract,
        CompiledPreprocessor(spec),
        scorer,
        manifest["task"],
        manifest.get("classes", []),
        unknown_fields,
        cleaner=cleaner,
        threshold=(manifest.get("decision_threshold") or {}).get("value"),
    )
