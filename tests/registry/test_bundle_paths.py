"""Bundle names never lead out of the bundle: every read goes through ``bundle_file``.

Each escape found by hand (a manifest listing a system file, a model path with ``..`` or an
absolute one, a model replaced by a symbolic link whose target has the right hash, a link to
``/etc/passwd``) is refused with a message naming the entry; a normal bundle still loads.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from shipyard import datasets
from shipyard.data.contract import infer_contract
from shipyard.errors import BundleIntegrityError
from shipyard.registry.bundle import (
    MANIFEST,
    bundle_file,
    load_predictor,
    verify_bundle,
    write_bundle,
)
from shipyard.tasks.tabular import LightGBMCandidate, feature_set
from shipyard.training.export import export_pipeline, frame_to_records

_SYSTEM_FILE = Path("/etc/passwd")


@pytest.fixture(scope="module")
def files_and_manifest(adult: datasets.Dataset) -> tuple[dict[str, bytes], dict[str, Any], Any]:
    frame = adult.train.sample(n=1200, random_state=3)
    contract = infer_contract(adult.train, "income")
    columns = contract.feature_names
    labels = (frame["income"] == ">50K").to_numpy(dtype=int)
    candidate = LightGBMCandidate(feature_set(contract), "binary", 0)
    pipeline = candidate.fit(
        frame[columns][:900], labels[:900], frame[columns][900:], labels[900:]
    )
    exported = export_pipeline(pipeline, "binary")
    files = {
        "contract.yaml": contract.to_yaml().encode(),
        "preprocessing.json": json.dumps(exported.preprocessing).encode(),
        exported.model_filename: exported.model_payload.encode(),
    }
    manifest = {
        "task": "binary",
        "target": "income",
        "metric": "roc_auc",
        "classes": ["<=50K", ">50K"],
        "contract": "contract.yaml",
        "preprocessing": "preprocessing.json",
        "model": {"format": exported.model_format, "path": exported.model_filename},
    }
    return files, manifest, adult.test.head(20)[columns]


@pytest.fixture
def bundle(files_and_manifest: Any, tmp_path: Path) -> Path:
    files, manifest, _ = files_and_manifest
    directory = tmp_path / "artifacts" / "adult" / "v1"
    write_bundle(directory, files, manifest)
    return directory


def _rewrite_manifest(directory: Path, change: Any) -> None:
    """Edit the manifest as someone with write access to the artifacts folder could."""
    manifest = json.loads((directory / MANIFEST).read_bytes())
    change(manifest)
    (directory / MANIFEST).write_text(json.dumps(manifest))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_normal_bundle_loads_and_predicts(files_and_manifest: Any, bundle: Path) -> None:
    _, _, rows = files_and_manifest
    predictor = load_predictor(bundle)
    answers = predictor.predict_records(frame_to_records(rows))
    assert len(answers) == 20
    assert {answer["prediction"] for answer in answers} <= {"<=50K", ">50K"}


@pytest.mark.skipif(not _SYSTEM_FILE.is_file(), reason="needs /etc/passwd")
def test_a_manifest_listing_an_absolute_system_file_is_refused(bundle: Path) -> None:
    _rewrite_manifest(
        bundle, lambda manifest: manifest["files"].update({"/etc/passwd": _sha256(_SYSTEM_FILE)})
    )
    with pytest.raises(BundleIntegrityError, match=r"'/etc/passwd'.*is an absolute path"):
        verify_bundle(bundle)


def _move_model_outside(bundle: Path) -> tuple[str, Path]:
    name = json.loads((bundle / MANIFEST).read_bytes())["model"]["path"]
    outside = bundle.parent.parent.parent / f"outside_{name}"
    shutil.copyfile(bundle / name, outside)
    return name, outside


def test_a_model_path_with_dot_dot_is_refused(bundle: Path) -> None:
    name, outside = _move_model_outside(bundle)
    escape = f"../../../{outside.name}"
    assert (bundle / escape).resolve() == outside.resolve()  # the path would reach it

    def point_outside(manifest: dict[str, Any]) -> None:
        manifest["model"]["path"] = escape
        manifest["files"][escape] = manifest["files"].pop(name)

    _rewrite_manifest(bundle, point_outside)
    (bundle / name).unlink()
    with pytest.raises(BundleIntegrityError, match=re.escape(f"'{escape}'") + ".*'\\.\\.' part"):
        load_predictor(bundle)


def test_an_absolute_model_path_is_refused(bundle: Path) -> None:
    _, outside = _move_model_outside(bundle)
    _rewrite_manifest(bundle, lambda manifest: manifest["model"].update({"path": str(outside)}))
    with pytest.raises(BundleIntegrityError, match="is an absolute path"):
        load_predictor(bundle)


def test_a_model_replaced_by_a_link_to_an_identical_file_outside_is_refused(bundle: Path) -> None:
    name, outside = _move_model_outside(bundle)
    (bundle / name).unlink()
    (bundle / name).symlink_to(outside)  # same bytes: the manifest's hash still matches
    with pytest.raises(BundleIntegrityError, match=re.escape(f"'{name}'") + ".*symbolic link"):
        load_predictor(bundle)


@pytest.mark.skipif(not _SYSTEM_FILE.is_file(), reason="needs /etc/passwd")
@pytest.mark.parametrize("listed", [True, False])
def test_a_link_to_a_system_file_is_refused(bundle: Path, listed: bool) -> None:
    (bundle / "passwd").symlink_to(_SYSTEM_FILE)
    if listed:
        _rewrite_manifest(
            bundle, lambda manifest: manifest["files"].update({"passwd": _sha256(_SYSTEM_FILE)})
        )
    with pytest.raises(BundleIntegrityError, match=r"'passwd'.*symbolic link.*/etc/passwd"):
        verify_bundle(bundle)


def test_a_linked_folder_inside_the_bundle_is_refused(bundle: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "notes.txt").write_text("outside")
    (bundle / "notes").symlink_to(elsewhere, target_is_directory=True)
    _rewrite_manifest(
        bundle,
        lambda manifest: manifest["files"].update(
            {"notes/notes.txt": _sha256(elsewhere / "notes.txt")}
        ),
    )
    with pytest.raises(BundleIntegrityError, match=r"\(at 'notes'\) is a symbolic link"):
        verify_bundle(bundle)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_special_file_is_refused(bundle: Path) -> None:
    os.mkfifo(bundle / "pipe")
    with pytest.raises(BundleIntegrityError, match="'pipe', which is not a regular file"):
        verify_bundle(bundle)
    with pytest.raises(BundleIntegrityError, match=r"'pipe'.*not a regular file"):
        bundle_file(bundle, "pipe")


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("../model.txt", "'..' part"),
        ("notes/../../model.txt", "'..' part"),
        ("/etc/hostname", "absolute path"),
        ("notes\\model.txt", "POSIX paths"),
        ("./model.txt", "plain form"),
        ("notes//model.txt", "plain form"),
        ("", "not a file name"),
        (None, "not a file name"),
        (["model.txt"], "not a file name"),
        ("absent.txt", "is missing"),
    ],
)
def test_bundle_file_refuses_names_that_leave_the_bundle(
    bundle: Path, name: Any, words: str
) -> None:
    with pytest.raises(BundleIntegrityError, match=re.escape(words)):
        bundle_file(bundle, name)


def test_bundle_file_returns_the_file_inside(bundle: Path) -> None:
    assert bundle_file(bundle, "contract.yaml") == bundle / "contract.yaml"


def test_writing_a_bundle_refuses_names_that_leave_it(tmp_path: Path) -> None:
    with pytest.raises(BundleIntegrityError, match=re.escape("'..' part")):
        write_bundle(tmp_path / "bundle", {"../escaped.txt": b"x"}, {})
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "bundle").exists()
