"""The log mask: keyed hashes (same value, same hash; no plain SHA), drop, and drift on hashes."""

from __future__ import annotations

import hashlib
import stat

import pytest

from shipyard.errors import ConfigError
from shipyard.monitoring.adapters import TaskMonitoring
from shipyard.monitoring.drift import drift_report
from shipyard.monitoring.privacy import (
    LogMask,
    hash_key_path,
    keyed_hash,
    masked_monitoring,
    read_hash_key,
)
from shipyard.monitoring.sketch import CategoricalSketch, NumericSketch


def test_key_is_created_once_private_and_reused(tmp_path):
    path = hash_key_path(tmp_path / "artifacts")
    key = read_hash_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_hash_key(path) == key
    path.write_text("not a key")
    with pytest.raises(ConfigError, match="does not hold a log hash key"):
        read_hash_key(path)


def test_hash_is_keyed_stable_and_not_the_plain_sha():
    key, other = b"a" * 32, b"b" * 32
    assert keyed_hash(key, "ann@example.org") == keyed_hash(key, " ann@example.org ")
    assert keyed_hash(key, 39) == keyed_hash(key, "39") == keyed_hash(key, 39.0)
    assert keyed_hash(key, "ann@example.org") != keyed_hash(other, "ann@example.org")
    assert keyed_hash(key, "ann@example.org") not in hashlib.sha256(b"ann@example.org").hexdigest()
    assert keyed_hash(key, None) is None


def test_mask_from_manifest_hashes_drops_or_keeps():
    record = {"email": "ann@example.org", "age": 39, "hours": 40}
    manifest = {"personal_data": {"columns": ["email", "age"], "log_policy": "hash"}}
    hashed = LogMask.for_manifest(manifest, lambda: b"k" * 32).apply(record)
    assert hashed["hours"] == 40
    assert hashed["email"] == keyed_hash(b"k" * 32, "ann@example.org")
    assert hashed["age"] == keyed_hash(b"k" * 32, 39)
    assert record["email"] == "ann@example.org"  # the request record is not changed

    def no_key() -> bytes:
        raise AssertionError("the key is read only to hash")

    dropped = {"personal_data": {"columns": ["email", "age"], "log_policy": "drop"}}
    assert LogMask.for_manifest(dropped, no_key).apply(record) == {"hours": 40}
    kept = {"personal_data": {"columns": ["email"], "log_policy": "keep"}}
    assert LogMask.for_manifest(kept, no_key).apply(record) == record
    # Manifests written before personal data was tagged log as they always did.
    assert LogMask.for_manifest({}, no_key).apply(record) == record
    with pytest.raises(ConfigError, match="dropped from the log"):
        LogMask.for_manifest(dropped, no_key).logged_value("email", "ann@example.org")


def test_drift_compares_hashed_categories_and_leaves_numbers_out():
    key = b"k" * 32
    reference = {
        "sex": CategoricalSketch.from_values(["Male"] * 60 + ["Female"] * 40),
        "age": NumericSketch.from_values(list(range(20, 80)), bins=5),
        "age__missing": CategoricalSketch.from_values(["0"] * 10),
        "hours": NumericSketch.from_values(list(range(30, 50)), bins=5),
    }

    def clean(name, values):
        return [str(value).upper() for value in values]  # a cleaning that cannot read hashes

    watched = TaskMonitoring(reference, "binary", ["no", "yes"], clean_column=clean)
    mask = LogMask(frozenset({"sex", "age"}), "hash", key)
    masked = masked_monitoring(watched, mask)
    assert sorted(masked.reference) == ["hours", "sex"]
    assert masked.clean_column is not None
    logged = [keyed_hash(key, value) for value in ["Male"] * 58 + ["Female"] * 42]
    window = masked.reference["sex"].empty()
    window.update(masked.clean_column("sex", logged))
    assert window.counts[-1] == 0  # every logged hash is a known (hashed) category
    unmasked = reference["sex"].empty()
    unmasked.update(logged)
    assert unmasked.counts[-1] == 100  # against the clear reference, every hash is "other"
    [sex] = drift_report({"sex": masked.reference["sex"]}, {"sex": window})
    assert sex.drifted is False
    assert masked.clean_column("hours", ["a"]) == ["A"]  # other columns are still cleaned
    dropped = masked_monitoring(watched, LogMask(frozenset({"sex"}), "drop"))
    assert "sex" not in dropped.reference
    assert masked_monitoring(watched, LogMask(frozenset(), "keep")) is watched
