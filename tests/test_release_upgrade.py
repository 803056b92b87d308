"""A registry written by shipyard 0.1.0 still opens, loads, answers and serves.

``tests/fixtures/release_0_1/`` holds what release 0.1.0 wrote (see
``tests/fixtures/make_release_fixtures.py``): a SQLite registry with three models (tabular,
text, recommendation), their bundles, an API key store, logged predictions with feedback, and
``expected.json``, the answers 0.1.0 gave. Each test opens a private copy with the current code,
after ``shipyard db upgrade`` as a user upgrading from 0.1.0 runs it. A failure here means
users' registries would break on upgrade: add a migration, do not regenerate the fixture.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from shipyard.config import ServingConfig
from shipyard.errors import DatabaseSchemaError
from shipyard.migrations import upgrade_database
from shipyard.monitoring.log import MonitoringStore
from shipyard.registry.bundle import load_predictor, verify_bundle
from shipyard.registry.store import Registry
from shipyard.serving import KeyStore, build_app, running_server

FIXTURE = Path(__file__).parent / "fixtures" / "release_0_1"
EXPECTED: dict[str, Any] = json.loads((FIXTURE / "expected.json").read_text())
TOLERANCE = 1e-9
ROW_MODELS = ("adult", "spam")


@pytest.fixture
def copied(tmp_path: Path) -> Path:
    """A private copy of the fixture, somewhere other than where it was written, upgraded."""
    home = Path(shutil.copytree(FIXTURE, tmp_path / "registry-home"))
    upgrade_database(f"sqlite:///{home / 'registry.db'}")
    return home


@pytest.fixture
def registry(copied: Path) -> Any:
    opened = Registry(f"sqlite:///{copied / 'registry.db'}", copied / "bundles")
    yield opened
    opened.close()


def assert_same(actual: Any, expected: Any, where: str = "answer") -> None:
    """Compare JSON-like values: floats within TOLERANCE, everything else exactly."""
    if isinstance(expected, float) or isinstance(actual, float):
        assert isinstance(actual, int | float), f"{where}: {actual!r} is not a number"
        assert abs(actual - expected) <= TOLERANCE, f"{where}: {actual!r} != {expected!r}"
    elif isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not an object"
        assert sorted(actual) == sorted(expected), f"{where}: keys differ"
        for key, value in expected.items():
            assert_same(actual[key], value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{where}: {actual!r} is not a list"
        assert len(actual) == len(expected), f"{where}: lengths differ"
        for position, (got, wanted) in enumerate(zip(actual, expected, strict=True)):
            assert_same(got, wanted, f"{where}[{position}]")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def test_fixture_was_written_by_release_0_1():
    assert EXPECTED["shipyard_version"] == "0.1.0"
    assert sorted(EXPECTED["registry"]) == ["adult", "spam", "wines"]


def test_the_release_database_is_refused_until_upgraded(tmp_path: Path):
    home = Path(shutil.copytree(FIXTURE, tmp_path / "registry-home"))
    url = f"sqlite:///{home / 'registry.db'}"
    with pytest.raises(DatabaseSchemaError, match="run 'shipyard db upgrade'"):
        Registry(url, home / "bundles")
    with pytest.raises(DatabaseSchemaError, match="run 'shipyard db upgrade'"):
        MonitoringStore(url)
    assert [upgrade.before for upgrade in upgrade_database(url)] == [None, None]


def test_every_model_version_alias_and_event_is_still_there(registry: Registry):
    recorded = EXPECTED["registry"]
    summaries = {summary["name"]: summary for summary in registry.models()}
    assert sorted(summaries) == sorted(recorded)
    for name, wanted in recorded.items():
        versions = registry.versions(name)
        assert [
            {"version": version.version, "task": version.task, "sha256": version.manifest_sha256}
            for version in versions
        ] == wanted["versions"]
        assert summaries[name]["aliases"] == wanted["aliases"]
        for alias, number in wanted["aliases"].items():
            assert registry.resolve(f"{name}@{alias}").version == number
        # Time, version, action and detail of every audit event, in order.
        assert_same(registry.events(name), wanted["events"], f"{name} events")
    assert recorded["adult"]["aliases"] == {"champion": 1, "staging": 1}
    assert [event["action"] for event in recorded["adult"]["events"]] == [
        "register",
        "promote",
        "promote",
    ]


def test_every_bundle_verifies_and_loads_through_both_entry_points(registry: Registry):
    for name, wanted in EXPECTED["registry"].items():
        for entry in wanted["versions"]:
            version = registry.get(name, entry["version"])
            # Bundle paths are stored relative to the artifact folder, so the copy is found.
            assert version.bundle_path.is_relative_to(registry.artifacts)
            manifest = registry.verify(version.reference)
            assert manifest["task"] == entry["task"]
            assert verify_bundle(version.bundle_path, version.manifest_sha256) == manifest
            assert registry.load_predictor(version.reference) is not None
            assert load_predictor(version.bundle_path, version.manifest_sha256) is not None


@pytest.mark.parametrize("name", ROW_MODELS)
def test_row_models_answer_the_recorded_records_as_before(registry: Registry, name: str):
    recorded = EXPECTED[name]
    predictor = registry.load_predictor(recorded["reference"])
    assert_same(predictor.predict_records(recorded["records"]), recorded["answers"], name)


def test_recommender_answers_as_before(registry: Registry):
    recorded = EXPECTED["wines"]
    scorer = registry.load_predictor(recorded["reference"])
    assert any(call["answer"]["cold_start"] for call in recorded["recommend"])
    for call in recorded["recommend"]:
        assert_same(scorer.recommend(call["user"], k=call["k"]), call["answer"], "recommend")
    for call in recorded["similar"]:
        assert_same(scorer.similar(call["item"], k=call["k"]), call["answer"], "similar")


def _request(url: str, key: str, payload: Any = None) -> tuple[int, Any]:
    body = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="GET" if body is None else "POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.parametrize("name", ROW_MODELS)
def test_row_models_serve_a_recorded_record_over_a_socket(
    registry: Registry, copied: Path, name: str
):
    recorded = EXPECTED[name]
    keys = KeyStore(copied / "api-keys.json")
    app = build_app(registry, recorded["reference"], ServingConfig(), keys)
    with running_server(app) as url:
        endpoint = f"{url}/v1/models/{name}/predict"
        # The key written by 0.1.0 still opens the server, and the server still needs one.
        assert _request(endpoint, "sy_wrong", recorded["records"][-1])[0] == 401
        status, answer = _request(endpoint, EXPECTED["api_key"], recorded["records"][-1])
    assert status == 200
    assert answer.pop("model") == name
    assert answer.pop("version") == 1
    assert answer.pop("request_id")
    assert_same(answer, recorded["answers"][-1], f"served {name}")


def test_recommender_serves_a_recorded_list_over_a_socket(registry: Registry, copied: Path):
    recorded = EXPECTED["wines"]
    call = recorded["recommend"][0]
    keys = KeyStore(copied / "api-keys.json")
    app = build_app(registry, recorded["reference"], ServingConfig(), keys)
    query = urllib.parse.urlencode({"user": call["user"], "k": call["k"]})
    with running_server(app) as url:
        status, answer = _request(f"{url}/v1/models/wines/recommend?{query}", EXPECTED["api_key"])
    assert status == 200
    assert answer["model"] == "wines"
    assert answer["cold_start"] is call["answer"]["cold_start"] is False
    assert_same(answer["items"], call["answer"]["items"], "served wines")


def test_logged_predictions_and_feedback_are_readable(copied: Path):
    log = EXPECTED["log"]
    store = MonitoringStore(f"sqlite:///{copied / 'registry.db'}")
    try:
        rows = store.predictions("adult")
        labelled = store.labelled("adult")
        counts = store.count("adult")
    finally:
        store.close()
    assert [row["request_id"] for row in rows] == log["request_ids"]
    assert [row["version"] for row in rows] == [1] * len(rows)
    assert_same([row["inputs"] for row in rows], EXPECTED["adult"]["records"], "logged inputs")
    assert_same([row["output"] for row in rows], EXPECTED["adult"]["answers"], "logged outputs")
    assert all(row["at"].year == 2025 for row in rows)
    assert {row["request_id"]: row["label"] for row in labelled} == log["feedback"]
    assert counts == {"predictions": len(log["request_ids"]), "labelled": len(log["feedback"])}
