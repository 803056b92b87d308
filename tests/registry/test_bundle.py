from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard import datasets
from shipyard.data.contract import infer_contract
from shipyard.errors import BundleIntegrityError
from shipyard.registry.bundle import (
    BUNDLE_FORMAT,
    MANIFEST,
    load_predictor,
    read_manifest,
    verify_bundle,
    write_bundle,
)
from shipyard.tasks.detect import class_order
from shipyard.tasks.tabular import CANDIDATES, feature_set
from shipyard.training.export import export_pipeline, frame_to_records, training_outputs


class Trained:
    """A fitted Adult pipeline, its bundle files and manifest, and rows to score."""

    def __init__(self, candidate_name: str, adult: datasets.Dataset) -> None:
        frame = adult.train.sample(n=2000, random_state=2)
        self.contract = infer_contract(adult.train, "income")
        classes = class_order(frame["income"])
        columns = self.contract.feature_names
        y = (frame["income"] == classes[1]).to_numpy(dtype=int)
        candidate = CANDIDATES[candidate_name](feature_set(self.contract), "binary", 0)
        self.pipeline = candidate.fit(
            frame[columns][:1600], y[:1600], frame[columns][1600:], y[1600:]
        )
        exported = export_pipeline(self.pipeline, "binary")
        self.files = {
            "contract.yaml": self.contract.to_yaml().encode(),
            "preprocessing.json": json.dumps(exported.preprocessing).encode(),
            exported.model_filename: exported.model_payload.encode(),
            "notes/README.md": b"# a nested file\n",
        }
        self.manifest = {
            "task": "binary",
            "target": "income",
            "metric": "roc_auc",
            "classes": classes,
            "contract": "contract.yaml",
            "preprocessing": "preprocessing.json",
            "model": {"format": exported.model_format, "path": exported.model_filename},
        }
        self.rows = adult.test.head(300)[columns]


@pytest.fixture(scope="module", params=sorted(CANDIDATES))
def trained(request: pytest.FixtureRequest, adult: datasets.Dataset) -> Trained:
    return Trained(request.param, adult)


@pytest.fixture
def bundle(trained: Trained, tmp_path: Path) -> tuple[Path, str]:
    directory = tmp_path / "bundle"
    return directory, write_bundle(directory, trained.files, trained.manifest)


def test_round_trip(trained: Trained, bundle: tuple[Path, str]) -> None:
    directory, manifest_sha256 = bundle
    manifest = verify_bundle(directory, manifest_sha256)
    assert manifest["bundle_format"] == BUNDLE_FORMAT
    assert set(manifest["files"]) == set(trained.files)
    assert manifest["model"] == trained.manifest["model"]
    assert read_manifest(directory) == manifest
    for relative, data in trained.files.items():
        assert (directory / relative).read_bytes() == data


def test_bundle_is_written_once(trained: Trained, bundle: tuple[Path, str]) -> None:
    with pytest.raises(FileExistsError):
        write_bundle(bundle[0], trained.files, trained.manifest)


def test_the_predictor_reproduces_the_trained_pipeline(
    trained: Trained, bundle: tuple[Path, str]
) -> None:
    predictor = load_predictor(*bundle)
    expected = training_outputs(trained.pipeline, trained.rows, "binary")
    scored = predictor.score_records(frame_to_records(trained.rows))
    np.testing.assert_allclose(scored, expected, rtol=0, atol=1e-9)
    answers = predictor.predict_records(frame_to_records(trained.rows.head(3)))
    assert set(answers[0]["probabilities"]) == {"<=50K", ">50K"}
    assert answers[0]["prediction"] in ("<=50K", ">50K")


@pytest.mark.parametrize(
    "relative", [MANIFEST, "contract.yaml", "preprocessing.json", "model", "notes/README.md"]
)
def test_one_changed_byte_is_caught_and_named(
    trained: Trained, bundle: tuple[Path, str], relative: str
) -> None:
    directory, manifest_sha256 = bundle
    if relative == "model":
        relative = trained.manifest["model"]["path"]
    path = directory / relative
    data = bytearray(path.read_bytes())
    position = len(data) // 2
    data[position] = (data[position] + 1) % 256
    path.write_bytes(bytes(data))
    with pytest.raises(BundleIntegrityError) as caught:
        verify_bundle(directory, manifest_sha256)
    if relative == MANIFEST:
        assert f"{MANIFEST} has SHA-256" in str(caught.value)
        assert manifest_sha256 in str(caught.value)
    else:
        assert f"Bundle file '{relative}'" in str(caught.value)
    with pytest.raises(BundleIntegrityError):
        load_predictor(directory, manifest_sha256)


def test_a_file_changed_with_its_hash_is_caught_by_the_manifest_hash(
    bundle: tuple[Path, str],
) -> None:
    directory, manifest_sha256 = bundle
    readme = directory / "notes" / "README.md"
    readme.write_bytes(b"# changed\n")
    manifest = json.loads((directory / MANIFEST).read_bytes())
    import hashlib

    manifest["files"]["notes/README.md"] = hashlib.sha256(b"# changed\n").hexdigest()
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    verify_bundle(directory)  # consistent with itself...
    with pytest.raises(BundleIntegrityError, match="but the registry recorded"):
        verify_bundle(directory, manifest_sha256)  # ...but not with the registry


def test_an_unlisted_file_is_refused(bundle: tuple[Path, str]) -> None:
    directory, manifest_sha256 = bundle
    (directory / "notes" / "extra.pkl").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(BundleIntegrityError, match=re.escape("does not list: notes/extra.pkl")):
        verify_bundle(directory, manifest_sha256)


def test_a_missing_file_is_named(trained: Trained, bundle: tuple[Path, str]) -> None:
    directory, manifest_sha256 = bundle
    (directory / "contract.yaml").unlink()
    with pytest.raises(BundleIntegrityError, match=re.escape("'contract.yaml' is missing")):
        verify_bundle(directory, manifest_sha256)


def test_missing_or_damaged_manifest(bundle: tuple[Path, str], tmp_path: Path) -> None:
    directory, _ = bundle
    (directory / MANIFEST).write_text("{not json")
    with pytest.raises(BundleIntegrityError, match="is not valid JSON"):
        verify_bundle(directory)
    (directory / MANIFEST).unlink()
    with pytest.raises(BundleIntegrityError, match=re.escape("has no manifest.json")):
        verify_bundle(directory)
    with pytest.raises(BundleIntegrityError, match="does not exist"):
        verify_bundle(tmp_path / "nowhere")


def test_loading_never_unpickles(
    trained: Trained, bundle: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = load_predictor(*bundle).score_frame(trained.rows)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a bundle must load without pickle")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    with pytest.raises(AssertionError, match="without pickle"):
        pickle.loads(pickle.dumps(1))  # the guard works

    predictor = load_predictor(*bundle)
    np.testing.assert_array_equal(predictor.score_frame(trained.rows), before)
    records = frame_to_records(trained.rows)
    np.testing.assert_allclose(predictor.score_records(records), before, rtol=0, atol=1e-12)


def test_bundle_files_hold_no_pickle(bundle: tuple[Path, str]) -> None:
    directory, _ = bundle
    for path in directory.rglob("*"):
        if path.is_file():
            assert not path.read_bytes().startswith(b"\x80"), path


def test_manifest_is_plain_json(bundle: tuple[Path, str]) -> None:
    manifest = json.loads((bundle[0] / MANIFEST).read_text())
    assert manifest["classes"] == ["<=50K", ">50K"]
    with pytest.raises(ValueError, match="Out of range float"):
        write_bundle(bundle[0].parent / "nan", {}, {"task": "binary", "bad": float("nan")})


def test_predictions_for_a_frame_and_records_agree(
    trained: Trained, bundle: tuple[Path, str]
) -> None:
    predictor = load_predictor(*bundle)
    rows = pd.concat([trained.rows.head(5)] * 2)
    outputs = predictor.score_frame(rows)
    assert predictor.labels_from_outputs(outputs)[:5] == predictor.labels_from_outputs(outputs)[5:]
    assert outputs.shape == (10, 2)
    np.testing.assert_allclose(outputs.sum(axis=1), 1.0)
