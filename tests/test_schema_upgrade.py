"""``shipyard db upgrade`` keeps every row of stores written before schema versions.

``tests/fixtures/before_migrations/`` holds a registry, a prediction log with feedback and
failures, drift windows and an API key store written by the code that created its tables with
``metadata.create_all`` (see ``tests/fixtures/make_before_migrations.py``), and
``expected.json``, what that code read back. Each test upgrades a private copy (SQLite, or the
same rows in the baseline's tables on PostgreSQL) and reads everything back with the current
code. A failure here means a user's upgrade would lose or garble data: fix the migration, do not
regenerate the fixture.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, insert, select, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.errors import DatabaseSchemaError
from shipyard.migrations import MONITORING, REGISTRY, STORES, read_status, upgrade
from shipyard.migrations.runner import _scripts
from shipyard.monitoring import buckets as buckets_module  # noqa: F401 (declares a table)
from shipyard.monitoring import columnar as columnar_module  # noqa: F401 (declares tables)
from shipyard.monitoring import log as log_module
from shipyard.monitoring.alerts import Alert
from shipyard.monitoring.deliveries import AlertDeliveries
from shipyard.monitoring.log import MonitoringStore, PredictionRecord
from shipyard.monitoring.sketch import CategoricalSketch, NumericSketch
from shipyard.monitoring.windows import DriftMonitor
from shipyard.registry import store as registry_module
from shipyard.registry.store import Registry
from shipyard.serving.keys import KeyStore

FIXTURE = Path(__file__).parent / "fixtures" / "before_migrations"
EXPECTED: dict[str, Any] = json.loads((FIXTURE / "expected.json").read_text())
POSTGRES_URL = os.environ.get("SHIPYARD_TEST_POSTGRES_URL")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d)?")


def as_json(value: Any) -> Any:
    """A value as JSON holds it, times as aware UTC text (SQLite reads them back naive)."""
    if isinstance(value, dict):
        return {key: as_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [as_json(item) for item in value]
    if isinstance(value, str) and TIME.fullmatch(value):
        moment = datetime.fromisoformat(value)
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, datetime):
        return as_json(value.isoformat())
    return value


def run_cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def assert_everything_is_there(url: str, home: Path) -> None:
    """Read every store back with the current code and compare with what the old code read."""
    registry = Registry(url, home / "bundles")
    try:
        inventory = {
            summary["name"]: {
                "versions": [version.as_dict() for version in registry.versions(summary["name"])],
                "aliases": summary["aliases"],
                "events": registry.events(summary["name"]),
            }
            for summary in registry.models()
        }
        for recorded in EXPECTED["registry"].values():
            for version in recorded["versions"]:
                registry.verify(version["reference"])  # the bundles are still found, intact
    finally:
        registry.close()
    text_form = json.dumps(as_json(inventory)).replace(str(home), "<fixture>")
    assert as_json(json.loads(text_form)) == as_json(EXPECTED["registry"])

    store = MonitoringStore(url)
    try:
        log = EXPECTED["log"]
        rows = store.predictions("churn")
        assert [row["request_id"] for row in rows] == log["request_ids"]
        assert {row["request_id"]: row["label"] for row in store.labelled("churn")} == (
            log["feedback"]
        )
        activity = store.activity("churn", 2, since=rows[0]["at"])
        assert activity == {"answered": len(log["request_ids"]), "failed": log["failures"]}
        monitor = DriftMonitor(
            store,
            "churn",
            2,
            {"age": NumericSketch.from_values([1.0]), "plan": CategoricalSketch.from_values("a")},
            "binary",
            [0, 1],
            window_size=10,
        )
        windows = [
            {
                "index": window.index,
                "count": window.count,
                "closed": window.closed,
                "first_log_id": window.first_log_id,
                "last_log_id": window.last_log_id,
                "drifted": window.drifted,
                "report": window.report,
            }
            for window in monitor.windows()
        ]
        assert as_json(windows) == EXPECTED["windows"]
        # The table the upgrade added works.
        deliveries = AlertDeliveries(store)
        deliveries.add([Alert("error_rate", "churn", 2, "churn:2: failures", 0.1, 0.01)])
        assert [row.key for row in deliveries.pending("churn")] == ["error_rate:2:"]
    finally:
        store.close()


def test_sqlite_stores_written_before_schema_versions_upgrade_and_keep_every_row(
    tmp_path: Path,
) -> None:
    home = Path(shutil.copytree(FIXTURE, tmp_path / "home"))
    url = f"sqlite:///{home / 'registry.db'}"
    with pytest.raises(DatabaseSchemaError, match="written before shipyard kept schema versions"):
        Registry(url, home / "bundles")

    printed = run_cli("db", "upgrade", "--registry", url)
    assert "registry: unversioned -> registry_0001" in printed
    assert "monitoring: unversioned -> monitoring_0004" in printed
    assert "applied monitoring_0002: Alert deliveries" in printed
    assert "applied monitoring_0003: Sketch buckets" in printed
    assert_everything_is_there(url, home)

    # The API keys live in their own file, which no upgrade touches: the old key still opens.
    key_store = KeyStore(home / "api-keys.json")
    stored = key_store.keys()
    assert [key.as_dict() for key in stored] == EXPECTED["keys"]
    assert key_store.verify(EXPECTED["api_key"])
    assert EXPECTED["revoked_key_id"] not in {key.id for key in stored}

    # Upgrading again changes nothing; `db current` agrees.
    again = json.loads(run_cli("db", "upgrade", "--registry", url, "--json"))
    assert [(step["store"], step["applied"]) for step in again] == [
        ("registry", []),
        ("monitoring", []),
    ]
    current = json.loads(run_cli("db", "current", "--registry", url, "--json"))
    assert {status["store"]: status["state"] for status in current} == {
        "registry": "current",
        "monitoring": "current",
    }


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    """A URL whose tables land in a schema of their own, dropped afterwards."""
    if POSTGRES_URL is None:
        pytest.skip("set SHIPYARD_TEST_POSTGRES_URL to run PostgreSQL tests")
    schema = f"upgrade_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    # The run's own schema may already be in the URL's options: this one replaces it.
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def baseline_metadata(revision: str) -> MetaData:
    """The tables a baseline revision creates: what releases before it created themselves."""
    module = _scripts().get_revision(revision).module  # type: ignore[union-attr]
    return module.metadata  # type: ignore[no-any-return]


def copy_fixture_rows(target_url: str) -> None:
    """Create the baseline tables on ``target_url`` and copy every fixture row into them."""
    source = create_engine(f"sqlite:///{FIXTURE / 'registry.db'}")
    target = create_engine(target_url)
    for revision in ("registry_0001", "monitoring_0001"):
        metadata = baseline_metadata(revision)
        metadata.create_all(target)
        for table in metadata.sorted_tables:
            with source.connect() as reading:
                rows = [dict(row._mapping) for row in reading.execute(select(table))]
            with target.begin() as writing:
                if rows:
                    writing.execute(insert(table), rows)
                if "id" in table.c:  # as if the rows had been inserted one by one
                    writing.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                            f"(SELECT coalesce(max(id), 0) + 1 FROM {table.name}), false)"
                        )
                    )
    source.dispose()
    target.dispose()


@pytest.mark.postgres
def test_postgresql_stores_written_before_schema_versions_upgrade_and_keep_every_row(
    postgres_schema: str, tmp_path: Path
) -> None:
    home = Path(shutil.copytree(FIXTURE, tmp_path / "home"))
    copy_fixture_rows(postgres_schema)
    with pytest.raises(DatabaseSchemaError, match="run 'shipyard db upgrade'"):
        MonitoringStore(postgres_schema)

    printed = run_cli("db", "upgrade", "--registry", postgres_schema)
    assert "monitoring: unversioned -> monitoring_0004" in printed
    assert_everything_is_there(postgres_schema, home)
    # New rows go in after the old ones.
    registry = Registry(postgres_schema, home / "bundles")
    registry.register("churn", {"model.txt": b"v4"}, {"task": "binary", "metrics": {}})
    assert [version.version for version in registry.versions("churn")] == [1, 2, 3, 4]
    registry.close()
    store = MonitoringStore(postgres_schema)
    store.add_predictions([PredictionRecord("after-upgrade", "churn", 2, {}, {}, 1.0)])
    assert store.count("churn")["predictions"] == len(EXPECTED["log"]["request_ids"]) + 1
    store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    return str(request.getfixturevalue("postgres_schema"))


def only_tables_of(metadata: MetaData) -> Any:
    """Leave the other store's tables and the version tables out of a comparison."""
    names = set(metadata.tables)

    def include(item: Any, name: Any, kind: str, reflected: bool, other: Any) -> bool:
        return kind != "table" or name in names

    return include


def test_the_models_match_the_tables_the_revisions_create(fresh_url: str) -> None:
    # A model changed without a revision (or a revision without its model) shows up here.
    engine = create_engine(fresh_url)
    for store in STORES:
        assert upgrade(engine, store).after == store.head
    # The modules that declare monitoring tables (imported above) put them on one metadata.
    assert {
        "shipyard_drift_windows",
        "shipyard_alert_deliveries",
        "shipyard_sketch_buckets",
        "shipyard_log_tables",
        "shipyard_log_columns",
    } <= set(log_module._Base.metadata.tables)
    for metadata in (registry_module._Base.metadata, log_module._Base.metadata):
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={"include_object": only_tables_of(metadata), "compare_type": True},
            )
            assert compare_metadata(context, metadata) == []
    engine.dispose()


def test_a_new_database_opens_at_head_even_when_opened_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    errors: list[BaseException] = []

    def open_both() -> None:
        try:
            Registry(url, tmp_path / "artifacts").close()
            MonitoringStore(url).close()
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=open_both) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    engine = create_engine(url)
    with engine.connect() as connection:
        assert [read_status(connection, store).state for store in STORES] == [
            "current",
            "current",
        ]
        versions = connection.execute(text("SELECT version_num FROM shipyard_registry_version"))
        assert [row[0] for row in versions] == [REGISTRY.head]
    engine.dispose()


def test_an_older_revision_is_refused_then_upgraded_by_one_step(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'older.db'}"
    MonitoringStore(url).close()
    engine = create_engine(url)
    with engine.begin() as connection:  # what a database at monitoring_0001 looks like
        connection.execute(text("DROP TABLE shipyard_alert_deliveries"))
        connection.execute(text("DROP TABLE shipyard_sketch_buckets"))
        connection.execute(text("DROP TABLE shipyard_log_columns"))
        connection.execute(text("DROP TABLE shipyard_log_tables"))
        connection.execute(text("ALTER TABLE shipyard_predictions ADD COLUMN inputs JSON"))
        connection.execute(text("ALTER TABLE shipyard_predictions ADD COLUMN output JSON"))
        connection.execute(
            text("UPDATE shipyard_monitoring_version SET version_num = :old"),
            {"old": "monitoring_0001"},
        )
    with pytest.raises(DatabaseSchemaError) as refused:
        MonitoringStore(url)
    message = str(refused.value)
    assert "at schema revision monitoring_0001 and this shipyard needs monitoring_0004" in message
    assert "shipyard db upgrade" in message
    assert "\n" not in message
    done = upgrade(engine, MONITORING)
    assert (done.before, done.after) == ("monitoring_0001", "monitoring_0004")
    assert [step.split(":")[0] for step in done.applied] == [
        "monitoring_0002",
        "monitoring_0003",
        "monitoring_0004",
    ]
    MonitoringStore(url).close()
    engine.dispose()


def test_a_database_newer_than_the_code_is_refused_and_not_upgraded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'newer.db'}"
    Registry(url, tmp_path / "artifacts").close()
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE shipyard_registry_version SET version_num = 'registry_0099'")
        )
    with pytest.raises(DatabaseSchemaError, match="newer release upgraded this database"):
        Registry(url, tmp_path / "artifacts")
    result = CliRunner().invoke(app, ["db", "upgrade", "--registry", url])
    assert result.exit_code == 1
    assert "at schema revision registry_0099, which" in " ".join(result.output.split())
    engine.dispose()


def test_a_foreign_table_of_the_same_name_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'foreign.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text("CREATE TABLE shipyard_events (id INTEGER PRIMARY KEY, what TEXT)")
        )
    with pytest.raises(DatabaseSchemaError, match="written before shipyard kept schema"):
        Registry(url, tmp_path / "artifacts")
    with pytest.raises(DatabaseSchemaError, match="was not written by shipyard"):
        upgrade(engine, REGISTRY)
    # The failed upgrade left the database as it was: no version table, no other table.
    with engine.connect() as connection:
        assert read_status(connection, REGISTRY).state == "unversioned"
        tables = connection.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))
        assert [row[0] for row in tables] == ["shipyard_events"]
    engine.dispose()


def test_db_upgrade_refuses_a_missing_sqlite_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["db", "upgrade", "--home", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert "no registry database" in " ".join(result.output.split())
    assert not (tmp_path / "nowhere").exists()
