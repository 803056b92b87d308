"""Served predictions with personal fields: hashed or dropped before they reach the log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.config import ServingConfig
from shipyard.monitoring.log import MonitoringStore
from shipyard.monitoring.privacy import hash_key_path, keyed_hash, read_hash_key
from shipyard.pipeline.erasure import erase_records
from shipyard.registry.store import Registry
from shipyard.serving import build_app, running_server


def tagged_copy(source: Registry, into: Path, personal: dict[str, Any]) -> Registry:
    """Register ``source``'s adult:1 in a new registry, with ``personal`` in its manifest."""
    version = source.resolve("adult:1")
    manifest = json.loads((version.bundle_path / "manifest.json").read_text())
    files = {name: (version.bundle_path / name).read_bytes() for name in manifest.pop("files")}
    registry = Registry(f"sqlite:///{into / 'registry.db'}", into / "artifacts")
    registered = registry.register("adult", files, {**manifest, "personal_data": personal})
    registry.promote("adult", registered.version, "champion", reason="test")
    return registry


def serve_people(registry: Registry, records: list[dict[str, Any]]) -> list[str]:
    """Serve ``records`` one by one (each with an email the contract ignores); return ids."""
    app = build_app(registry, "adult", ServingConfig(auth=False, unknown_fields="ignore"))
    with running_server(app) as url:
        answers = [httpx.post(f"{url}/v1/models/adult/predict", json=row) for row in records]
    assert all(answer.status_code == 200 for answer in answers)
    return [answer.json()["request_id"] for answer in answers]


@pytest.fixture
def people(fitted_adult) -> list[dict[str, Any]]:
    """20 Adult records, with 10 distinct emails (each person asks twice)."""
    return [
        {**record, "email": f"person{index % 10}@example.org"}
        for index, record in enumerate(fitted_adult.records[:20])
    ]


def database_bytes(registry: Registry) -> bytes:
    """Every byte of the SQLite database, its journal and its WAL file."""
    folder = Path(registry.url.removeprefix("sqlite:///")).parent
    return b"".join(path.read_bytes() for path in sorted(folder.glob("registry.db*")))


def test_tagged_fields_are_logged_as_keyed_hashes(fitted_adult, people, tmp_path):
    registry = tagged_copy(
        fitted_adult.registry, tmp_path, {"columns": ["email", "sex"], "log_policy": "hash"}
    )
    ids = serve_people(registry, people)
    key = read_hash_key(hash_key_path(registry.artifacts))
    store = MonitoringStore(registry.url)
    rows = {row["request_id"]: row["inputs"] for row in store.predictions("adult")}
    store.close()
    assert sorted(rows) == sorted(ids)
    for request_id, person in zip(ids, people, strict=True):
        logged = rows[request_id]
        assert logged["email"] == keyed_hash(key, person["email"])
        assert logged["sex"] == keyed_hash(key, person["sex"])
        assert logged["age"] == person["age"]  # untagged fields as they came
    assert rows[ids[0]]["email"] == rows[ids[10]]["email"]  # same person, same hash
    assert len({logged["email"] for logged in rows.values()}) == 10
    stored = database_bytes(registry)
    assert b"@example.org" not in stored
    assert keyed_hash(key, "person3@example.org").encode() in stored

    # Erasure by the value of a hashed field finds the person's rows, and is audited.
    erased = erase_records(registry, "adult", where=("email", "person3@example.org"), by="dpo")
    assert (erased.predictions, erased.feedback) == (2, 0)
    [event] = [event for event in registry.events("adult") if event["action"] == "erase"]
    assert event["detail"]["by"] == "dpo"
    assert event["detail"]["value_hash"] == keyed_hash(key, "person3@example.org")
    assert "person3" not in json.dumps(event)


def test_dropped_fields_never_reach_the_log(fitted_adult, people, tmp_path):
    registry = tagged_copy(
        fitted_adult.registry, tmp_path, {"columns": ["email", "sex"], "log_policy": "drop"}
    )
    ids = serve_people(registry, people[:5])
    store = MonitoringStore(registry.url)
    rows = store.predictions("adult")
    store.close()
    assert [row["request_id"] for row in rows] == ids
    for row in rows:
        assert "email" not in row["inputs"]
        assert "sex" not in row["inputs"]
        assert "age" in row["inputs"]
    assert b"@example.org" not in database_bytes(registry)
    assert not hash_key_path(registry.artifacts).exists()  # no hashing, no key


def test_every_logged_row_is_built_where_the_mask_applies():
    """Routes log through ServedModel.log_record: no other serving module builds a row."""
    import shipyard.serving

    folder = Path(shipyard.serving.__file__).parent
    building = sorted(
        path.name for path in folder.glob("*.py") if "PredictionRecord(" in path.read_text()
    )
    assert building == ["app.py"]
