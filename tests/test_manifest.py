"""The typed manifest: validation, the version migrations, and what it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shipyard.errors import BundleIntegrityError
from shipyard.manifest import MANIFEST_VERSION, Manifest, upgrade
from shipyard.registry.bundle import MANIFEST, load_manifest, write_bundle

RELEASE_0_1 = Path(__file__).parent / "fixtures" / "release_0_1" / "bundles"

MINIMAL = {
    "task": "binary",
    "target": "income",
    "metric": "roc_auc",
    "model": {"format": "lightgbm-text", "path": "model.lgb.txt", "family": "lightgbm"},
}


def test_a_release_0_1_manifest_is_upgraded_and_keeps_every_entry():
    for document_path in sorted(RELEASE_0_1.glob("*/v*/manifest.json")):
        document = json.loads(document_path.read_text())
        assert "manifest_version" not in document  # written before versions existed
        manifest = Manifest.from_document(document)
        assert manifest.manifest_version == MANIFEST_VERSION
        assert manifest.to_document() == {**document, "manifest_version": MANIFEST_VERSION}


def test_task_sections_are_kept_and_read_by_name():
    manifest = Manifest.from_document({**MINIMAL, "recommendation": {"k": 7}})
    assert manifest.section("recommendation") == {"k": 7}
    assert manifest.section("absent", "default") == "default"
    assert Manifest.from_document(manifest.to_document()) == manifest


def test_a_manifest_missing_an_entry_is_refused_naming_it():
    broken = {key: value for key, value in MINIMAL.items() if key != "metric"}
    with pytest.raises(BundleIntegrityError, match="'metric': Field required"):
        Manifest.from_document(broken, source="bundle/manifest.json")


def test_a_manifest_from_a_newer_release_is_refused_with_the_fix():
    with pytest.raises(BundleIntegrityError, match="newer than this shipyard reads"):
        upgrade({**MINIMAL, "manifest_version": MANIFEST_VERSION + 1})


def test_loading_a_bundle_validates_its_manifest(tmp_path: Path):
    write_bundle(tmp_path / "good", {"model.lgb.txt": b"tree"}, MINIMAL)
    assert load_manifest(tmp_path / "good").model.paths() == ["model.lgb.txt"]
    write_bundle(tmp_path / "bad", {"model.lgb.txt": b"tree"}, {**MINIMAL, "model": "x"})
    with pytest.raises(BundleIntegrityError, match=f"bad/{MANIFEST} is not a valid"):
        load_manifest(tmp_path / "bad")
