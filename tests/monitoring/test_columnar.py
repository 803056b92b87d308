"""The typed log tables: typed columns, exact round trips, unfit values, erasure, migration."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.errors import DataError
from shipyard.migrations import MONITORING, upgrade
from shipyard.migrations.runner import _config
from shipyard.monitoring import columnar
from shipyard.monitoring.columnar import fits, infer_kind, load_tables, table_name_for
from shipyard.monitoring.export import export_log
from shipyard.monitoring.log import MonitoringStore, PredictionRecord

POSTGRES_URL = os.environ.get("SHIPYARD_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of the test's own: a SQLite file, or a PostgreSQL schema dropped after."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'log.db'}"
        return
    if POSTGRES_URL is None:
        pytest.skip("set SHIPYARD_TEST_POSTGRES_URL to run PostgreSQL tests")
    schema = f"columnar_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield (
        make_url(POSTGRES_URL)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def store(url: str) -> Iterator[MonitoringStore]:
    opened = MonitoringStore(url)
    yield opened
    opened.close()


def logged(request_id: str, inputs: Any, output: Any, version: int = 1) -> PredictionRecord:
    return PredictionRecord(request_id, "m", version, inputs, output, 2.5)


def typed_columns(store: MonitoringStore, version: int = 1) -> dict[str, Any]:
    """The SQL columns of a version's typed table, as the database reports them."""
    columns = inspect(store.engine).get_columns(table_name_for("m", version))
    return {item["name"]: item["type"] for item in columns}


def raw_rows(store: MonitoringStore, version: int = 1) -> list[dict[str, Any]]:
    with store.engine.connect() as connection:
        typed = load_tables(connection, "m", [version])[version]
        return [dict(row._mapping) for row in connection.execute(typed.select())]


RECORDS = [
    logged(
        "a",
        {"age": 39, "hours": 40.5, "job": "clerk", "member": True, "tags": ["x", {"y": 1}]},
        {"prediction": 1, "probability": 0.75},
    ),
    logged(
        "b",
        {"age": None, "hours": 20.0, "job": "nurse", "member": False, "tags": []},
        {"prediction": 0, "probability": 0.25},
    ),
]


def test_each_field_gets_a_typed_column_and_the_json_documents_are_gone(store):
    store.add_predictions(RECORDS)
    columns = typed_columns(store)
    assert isinstance(columns["in_age"], sa.Integer)
    assert isinstance(columns["in_hours"], sa.Float)
    assert isinstance(columns["in_job"], sa.Text | sa.String)
    assert isinstance(columns["in_member"], sa.Boolean)
    assert isinstance(columns["in_tags"], sa.JSON)
    assert isinstance(columns["out_prediction"], sa.Integer)
    assert isinstance(columns["out_probability"], sa.Float)
    index = {item["name"] for item in inspect(store.engine).get_columns("shipyard_predictions")}
    assert "inputs" not in index
    assert "output" not in index
    # The values sit in their columns; nothing was left over.
    first = raw_rows(store)[0]
    assert (first["in_age"], first["in_job"], first["in_member"]) == (39, "clerk", True)
    assert first["inputs_unfit"] is None
    assert first["output_unfit"] is None


def test_every_reader_returns_what_was_logged(store):
    store.add_predictions(RECORDS)
    store.add_feedback("m", [("b", 1)])
    rows = store.predictions("m")
    assert [row["inputs"] for row in rows] == [record.inputs for record in RECORDS]
    assert [row["output"] for row in rows] == [record.output for record in RECORDS]
    assert [type(row["inputs"]["age"]) for row in rows] == [int, type(None)]
    assert [list(row) for row in rows] == [
        ["id", "request_id", "version", "at", "inputs", "output", "latency_ms"]
    ] * 2
    batch = store.prediction_batch("m")
    assert batch.ids == [row["id"] for row in rows]
    assert repr(batch.inputs) == repr([row["inputs"] for row in rows])
    assert repr(batch.outputs) == repr([row["output"] for row in rows])
    labelled = store.labelled("m")
    assert [(row["request_id"], row["inputs"], row["label"]) for row in labelled] == [
        ("b", RECORDS[1].inputs, 1)
    ]
    assert store.count("m") == {"predictions": 2, "labelled": 1}
    since = rows[0]["at"] - timedelta(seconds=1)
    assert store.activity("m", 1, since) == {"answered": 2, "failed": 0}


def test_a_value_that_does_not_fit_its_column_is_kept(store):
    store.add_predictions([logged("a", {"x": 1.5, "n": 3}, {"prediction": 1})])
    odd = {"x": "not a number", "n": 2.5, "z": 10**30}
    store.add_predictions([logged("b", odd, "a bare answer")])
    store.add_predictions([logged("c", {"x": 7, "n": 4}, {"prediction": 2})])
    rows = store.predictions("m")
    assert [row["inputs"] for row in rows] == [{"x": 1.5, "n": 3}, odd, {"x": 7.0, "n": 4}]
    assert rows[1]["output"] == "a bare answer"
    # An integer in a float column reads back as a float: equal as a number.
    assert type(rows[2]["inputs"]["x"]) is float
    stored = raw_rows(store)[1]
    assert stored["in_x"] is None
    assert stored["in_n"] is None
    assert stored["inputs_unfit"] == {"values": odd}
    assert stored["output_unfit"] == {"document": "a bare answer"}


def test_fields_absent_from_a_request_are_not_read_back_as_none(store):
    store.add_predictions([logged("a", {"a": 1}, {})])
    store.add_predictions([logged("b", {"a": 2, "b": "new", "c": None}, {})])
    store.add_predictions([logged("c", {"b": "only b"}, {})])
    store.add_predictions([logged("d", {"a": 4, "c": None}, {})])
    assert [row["inputs"] for row in store.predictions("m")] == [
        {"a": 1},
        {"a": 2, "b": "new", "c": None},
        {"b": "only b"},
        {"a": 4, "c": None},
    ]


def test_a_writer_that_missed_a_new_column_still_writes_exact_rows(url):
    # Two writers (two server processes): one adds a column the other does not know yet.
    first, second = MonitoringStore(url), MonitoringStore(url)
    try:
        first.add_predictions([logged("a", {"a": 1}, {"p": 1})])
        second.add_predictions([logged("b", {"a": 2}, {"p": 2})])
        first.add_predictions([logged("c", {"a": 3, "b": 3.5}, {"p": 3})])
        second.add_predictions([logged("d", {"a": 4}, {"p": 4})])  # knows only column a
        second.add_predictions([logged("e", {"b": 5.5}, {"p": 5})])  # reads the catalogue
        assert [row["inputs"] for row in first.predictions("m")] == [
            {"a": 1},
            {"a": 2},
            {"a": 3, "b": 3.5},
            {"a": 4},
            {"b": 5.5},
        ]
    finally:
        first.close()
        second.close()


def test_two_versions_with_different_fields_have_their_own_tables(store):
    store.add_predictions(
        [
            logged("a", {"age": 30}, {"prediction": "yes"}, version=1),
            logged("b", {"text": "hello"}, {"score": 0.5}, version=2),
            logged("c", {"age": 31}, {"prediction": "no"}, version=1),
        ]
    )
    assert set(typed_columns(store, 1)) >= {"in_age", "out_prediction"}
    assert "in_text" not in typed_columns(store, 1)
    assert set(typed_columns(store, 2)) >= {"in_text", "out_score"}
    rows = store.predictions("m")
    assert [(row["request_id"], row["version"], row["inputs"]) for row in rows] == [
        ("a", 1, {"age": 30}),
        ("b", 2, {"text": "hello"}),
        ("c", 1, {"age": 31}),
    ]
    assert [row["inputs"] for row in store.predictions("m", version=2)] == [{"text": "hello"}]


def test_field_names_with_any_character_keep_their_names(store):
    names = {"Age": 1, "age": 2, "a-b c": 3.0, 'quote"d': "x", "": True, "é" * 80: "long"}
    store.add_predictions([logged("a", names, {})])
    assert store.predictions("m")[0]["inputs"] == names
    columns = typed_columns(store)
    assert len([name for name in columns if name.startswith("in_")]) == len(names)


def test_erase_and_purge_remove_the_typed_rows(store):
    store.add_predictions(RECORDS)
    store.add_predictions([logged("c", {"age": 50}, {}, version=2)])
    store.add_feedback("m", [("a", 1)])
    assert store.erase("m", ["a", "unknown"]) == {"predictions": 1, "feedback": 1}
    assert [row["request_id"] for row in store.predictions("m")] == ["b", "c"]
    assert len(raw_rows(store, 1)) == 1
    assert len(raw_rows(store, 2)) == 1
    assert store.purge(timedelta(seconds=-1)) == 2
    assert raw_rows(store, 1) == []
    assert raw_rows(store, 2) == []
    assert store.predictions("m") == []


def test_a_rolled_back_batch_leaves_no_table_behind_in_the_writer(tmp_path):
    store = MonitoringStore(f"sqlite:///{tmp_path / 'failing.db'}")
    try:
        with store.engine.begin() as connection:
            connection.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON shipyard_prediction_failures "
                "BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        from shipyard.monitoring.log import PredictionFailure

        with pytest.raises(sa.exc.IntegrityError):
            store.add_batch(RECORDS, [PredictionFailure("m", 1, "boom")])
        assert store.count("m")["predictions"] == 0
        assert table_name_for("m", 1) not in inspect(store.engine).get_table_names()
        store.add_predictions(RECORDS)  # the writer created the table again
        assert [row["inputs"] for row in store.predictions("m")] == [
            record.inputs for record in RECORDS
        ]
    finally:
        store.close()


def test_kinds_are_inferred_and_checked():
    assert infer_kind([1, None, 2]) == "integer"
    assert infer_kind([1, 2.5]) == "float"
    assert infer_kind(["a", 1]) == "json"
    assert infer_kind([True, False]) == "boolean"
    assert infer_kind([None, float("nan")]) is None
    assert infer_kind([[1], {"a": 1}]) == "json"
    assert not fits(True, "integer")
    assert not fits(1, "boolean")
    assert fits(3, "float")
    assert not fits(2**60, "float")
    assert not fits(float("inf"), "float")
    assert not fits("a\x00b", "text")
    assert fits("ab", "text")


def _json_era_log(url: str, rows: list[dict[str, Any]]) -> None:
    """A log at revision monitoring_0003: the request and answer as JSON documents."""
    engine = create_engine(url)
    with engine.begin() as connection:
        config = _config()
        config.attributes.update(connection=connection, store=MONITORING, applied=[])
        from alembic import command

        command.upgrade(config, "monitoring_0003")
        table = sa.Table(
            "shipyard_predictions",
            sa.MetaData(),
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("request_id", sa.String(64)),
            sa.Column("model_name", sa.String(100)),
            sa.Column("version", sa.Integer),
            sa.Column("at", sa.DateTime(timezone=True)),
            sa.Column("inputs", sa.JSON),
            sa.Column("output", sa.JSON),
            sa.Column("latency_ms", sa.Float),
        )
        connection.execute(sa.insert(table), rows)
    engine.dispose()


def test_a_json_era_log_is_moved_into_typed_tables_in_batches(url, monkeypatch):
    at = datetime(2026, 1, 2, tzinfo=UTC)
    documents = [
        ({"age": 30, "plan": "a"}, {"prediction": 1}),
        ({"age": 31.5, "plan": "b"}, {"prediction": 0}),
        ({"age": "unknown", "plan": None, "extra": [1]}, {"prediction": 1}),
        ({"text": "hello"}, {"score": 0.5}),
        ({"age": 33}, {"prediction": 0}),
    ]
    rows = [
        {
            "request_id": f"r{index}",
            "model_name": "m",
            "version": 2 if "text" in inputs else 1,
            "at": at + timedelta(minutes=index),
            "inputs": inputs,
            "output": output,
            "latency_ms": 1.0,
        }
        for index, (inputs, output) in enumerate(documents)
    ]
    _json_era_log(url, rows)
    with pytest.raises(Exception, match="shipyard db upgrade"):
        MonitoringStore(url)
    monkeypatch.setattr(columnar, "UPGRADE_BATCH", 2)  # three batches of old rows
    engine = create_engine(url)
    done = upgrade(engine, MONITORING)
    engine.dispose()
    assert done.after == "monitoring_0004"
    store = MonitoringStore(url)
    try:
        read = store.predictions("m")
        assert [row["request_id"] for row in read] == [row["request_id"] for row in rows]
        assert [row["inputs"] for row in read] == [row["inputs"] for row in rows]
        assert [row["output"] for row in read] == [row["output"] for row in rows]
        assert [row["version"] for row in read] == [1, 1, 1, 2, 1]
        # Inferred from the first batch of version 1 (30 and 31.5): a float column.
        assert isinstance(typed_columns(store, 1)["in_age"], sa.Float)
        assert isinstance(typed_columns(store, 2)["in_text"], sa.Text | sa.String)
        index = inspect(store.engine).get_columns("shipyard_predictions")
        assert "inputs" not in {item["name"] for item in index}
        store.add_predictions([logged("after", {"age": 40.0, "plan": "c"}, {"prediction": 1})])
        assert store.predictions("m")[-1]["inputs"] == {"age": 40.0, "plan": "c"}
    finally:
        store.close()


def test_export_writes_typed_parquet_with_every_row(store, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    store.add_predictions(RECORDS)
    store.add_predictions(
        [
            logged("c", {"age": "old", "hours": 1.0, "request_id": "field"}, {"prediction": 1}),
            logged("d", {"age": 5}, {"prediction": 1}, version=2),
        ]
    )
    target = tmp_path / "log.parquet"
    assert export_log(store, "m", 1, target) == 3
    exported = pq.read_table(target)
    types = {name: exported.schema.field(name).type for name in exported.schema.names}
    assert types["age"] == pa.int64()
    assert types["hours"] == pa.float64()
    assert types["job"] == pa.string()
    assert types["member"] == pa.bool_()
    assert types["output.prediction"] == pa.int64()
    assert types["inputs.request_id"] == pa.string()
    assert pa.types.is_timestamp(types["at"])
    data = exported.to_pydict()
    assert data["request_id"] == ["a", "b", "c"]
    assert data["age"] == [39, None, None]
    assert json.loads(data["inputs_unfit"][2]) == {"age": "old"}
    assert json.loads(data["tags"][0]) == ["x", {"y": 1}]
    with pytest.raises(DataError, match="m:9"):
        export_log(store, "m", 9, tmp_path / "none.parquet")
    assert not (tmp_path / "none.parquet").exists()


def test_log_export_command_writes_a_file_duckdb_reads(url, tmp_path):
    duckdb = pytest.importorskip("duckdb")
    store = MonitoringStore(url)
    store.add_predictions(RECORDS)
    store.close()
    target = tmp_path / "log.parquet"
    where = ["--registry", url, "--home", str(tmp_path / "home")]
    result = CliRunner().invoke(
        app, ["log", "export", "m", str(target), "--version", "1", *where, "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == 2
    found = duckdb.sql(f"SELECT sum(hours), count(*) FROM '{target}'").fetchall()
    assert found == [(60.5, 2)]
    refused = CliRunner().invoke(
        app, ["log", "export", "m", str(target), "--version", "1", "--format", "csv"]
    )
    assert refused.exit_code == 2
