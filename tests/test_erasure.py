"""Erasure on request: by request id and by a hashed field's value, audited, on both databases."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.errors import ConfigError, ModelNotFoundError
from shipyard.monitoring.log import MonitoringStore, PredictionRecord
from shipyard.monitoring.privacy import LogMask, hash_key_path, read_hash_key
from shipyard.pipeline.erasure import erase_records
from shipyard.registry.store import Registry

PEOPLE = ["ann@example.org", "bob@example.org", "cid@example.org"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def registry(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'registry.db'}"
    else:
        url = os.environ.get("SHIPYARD_TEST_POSTGRES_URL")
        if not url:
            pytest.skip("SHIPYARD_TEST_POSTGRES_URL is not set; set it to a PostgreSQL URL")
    opened = Registry(url, tmp_path / "artifacts")
    yield opened
    opened.close()


def logged_model(registry: Registry, policy: str = "hash") -> tuple[str, list[str]]:
    """Register a model tagging 'email', log 9 masked predictions (3 per person), label 4."""
    name = f"m-{uuid.uuid4().hex[:8]}"  # PostgreSQL is shared between tests
    manifest = {
        "task": "binary",
        "metrics": {},
        "personal_data": {"columns": ["email"], "log_policy": policy},
    }
    registry.register(name, {"model.txt": b"weights"}, manifest)
    mask = LogMask.for_manifest(manifest, lambda: read_hash_key(hash_key_path(registry.artifacts)))
    store = MonitoringStore(registry.url)
    ids = [f"{name}-{index}" for index in range(9)]
    store.add_predictions(
        [
            PredictionRecord(
                request_id,
                name,
                1,
                mask.apply({"email": PEOPLE[index % 3], "age": 30 + index}),
                {"prediction": 1},
                1.0,
            )
            for index, request_id in enumerate(ids)
        ]
    )
    store.add_feedback(name, [(request_id, 1) for request_id in ids[:4]])
    store.close()
    return name, ids


def remaining(registry: Registry, name: str) -> dict[str, int]:
    store = MonitoringStore(registry.url)
    try:
        return store.count(name)
    finally:
        store.close()


def test_erase_by_request_id_removes_predictions_and_feedback(registry):
    name, ids = logged_model(registry)
    erased = erase_records(registry, name, request_ids=[ids[0], ids[5], "unknown"], by="ops")
    assert (erased.predictions, erased.feedback) == (2, 1)
    assert remaining(registry, name) == {"predictions": 7, "labelled": 3}
    event = registry.events(name)[-1]
    assert event["action"] == "erase"
    assert event["detail"] == {
        "by": "ops",
        "by_request_id": 3,
        "predictions": 2,
        "feedback": 1,
    }


def test_erase_where_a_hashed_field_matches_its_value(registry):
    name, _ = logged_model(registry)
    erased = erase_records(registry, name, where=("email", " bob@example.org"))
    assert (erased.predictions, erased.feedback) == (3, 1)
    assert remaining(registry, name) == {"predictions": 6, "labelled": 3}
    detail = registry.events(name)[-1]["detail"]
    assert "bob" not in json.dumps(detail)
    assert len(detail["value_hash"]) == 32
    assert detail["by"]
    # An untagged field is matched as it was logged (a number given as text).
    assert erase_records(registry, name, where=("age", "30")).predictions == 1


def test_erase_refuses_what_it_cannot_match(registry):
    name, ids = logged_model(registry, policy="drop")
    with pytest.raises(ConfigError, match="dropped from the log"):
        erase_records(registry, name, where=("email", PEOPLE[0]))
    with pytest.raises(ConfigError, match="not both"):
        erase_records(registry, name, request_ids=ids[:1], where=("age", "30"))
    with pytest.raises(ConfigError, match="not both"):
        erase_records(registry, name)
    with pytest.raises(ModelNotFoundError):
        erase_records(registry, "no-such-model", request_ids=["x"])


def test_log_delete_and_purge_commands(tmp_path):
    registry = Registry(
        f"sqlite:///{tmp_path / 'home' / 'registry.db'}", tmp_path / "home" / "artifacts"
    )
    name, ids = logged_model(registry)
    runner = CliRunner()
    home = ["--home", str(tmp_path / "home")]
    result = runner.invoke(
        app, ["log", "delete", "--model", name, "--where", f"email={PEOPLE[2]}", *home]
    )
    assert result.exit_code == 0, result.output
    assert "Erased 3 predictions and 1 feedback labels" in result.output
    result = runner.invoke(
        app, ["log", "delete", "--model", name, "--request-id", ids[0], "--json", *home]
    )
    assert json.loads(result.output)["predictions"] == 1
    result = runner.invoke(app, ["log", "delete", "--model", name, "--where", "email", *home])
    assert result.exit_code == 1
    assert "COLUMN=VALUE" in result.output
    store = MonitoringStore(registry.url)
    store.add_predictions(
        [PredictionRecord("old", name, 1, {}, {}, 1.0, at=datetime.now(UTC) - timedelta(days=9))]
    )
    store.close()
    result = runner.invoke(app, ["log", "purge", "--days", "7", "--json", *home])
    assert json.loads(result.output) == {"removed": 1, "days": 7.0}
    assert remaining(registry, name) == {"predictions": 5, "labelled": 2}
