"""Reading a large prediction log back: the typed layout against the JSON layout it replaced.

The same ``--rows`` synthetic predictions (14 bike-sharing-like fields: 8 integers, 3 floats,
3 category names; the answer a float; seed 0) are logged twice, each in a SQLite database of
its own:

- **typed**: through ``MonitoringStore.add_predictions`` (one narrow log row and one typed row
  per prediction, in one transaction per batch);
- **JSON**: into the table release 0.1 to 0.3 wrote (``shipyard_predictions`` with the request
  and the answer as two JSON documents), with the same SQLite settings (WAL,
  ``synchronous=NORMAL``).

Then each is read back four ways, timed one after the other in the same run:

1. every row as records (``prediction_batch`` for typed; for JSON the previous release's
   ``prediction_batch``: the raw rows, then one ``json.loads`` per batch of joined texts);
2. every request field into a pandas frame (what retraining on logged rows needs);
3. one field's mean in SQL (``avg(in_temp)`` against ``avg(json_extract(inputs, '$.temp'))``);
4. typed only: ``shipyard log export`` to Parquet, then DuckDB's mean of one column.

Run from the repository root::

    python benchmarks/monitoring/log_scan.py WORKDIR [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import JSON, Column, DateTime, Float, Integer, MetaData, String, Table, insert
from sqlalchemy import create_engine as create_sql_engine

from shipyard.monitoring.columnar import table_name_for
from shipyard.monitoring.export import export_log
from shipyard.monitoring.log import MonitoringStore, PredictionRecord

NAME = "bike"
SEASONS = ["spring", "summer", "fall", "winter"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
WEATHER = ["clear", "mist", "light rain", "heavy rain"]


def records(count: int, start: int) -> list[PredictionRecord]:
    """``count`` synthetic predictions, the same for a given ``start`` (seeded by it)."""
    rng = np.random.default_rng(start)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    made = []
    for index in range(start, start + count):
        inputs = {
            "yr": 1,
            "mnth": int(rng.integers(1, 13)),
            "day": int(rng.integers(1, 29)),
            "week": int(rng.integers(1, 53)),
            "hr": int(rng.integers(0, 24)),
            "holiday": int(rng.integers(0, 2)),
            "workingday": int(rng.integers(0, 2)),
            "temp": float(rng.random()),
            "atemp": float(rng.random()),
            "hum": float(rng.random()),
            "windspeed": int(rng.integers(0, 40)),
            "season": SEASONS[int(rng.integers(0, 4))],
            "weekday": DAYS[int(rng.integers(0, 7))],
            "weathersit": WEATHER[int(rng.integers(0, 4))],
        }
        output = {"prediction": float(rng.random() * 900)}
        made.append(
            PredictionRecord(
                f"r{index}", NAME, 1, inputs, output, 1.0, at + timedelta(seconds=index)
            )
        )
    return made


def timed(what: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = what()
    return time.perf_counter() - started, result


def _pragmas(connection: Any, record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def json_table() -> Table:
    """The log table as releases before the typed layout wrote it."""
    return Table(
        "shipyard_predictions",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("request_id", String(64), unique=True),
        Column("model_name", String(100), index=True),
        Column("version", Integer),
        Column("at", DateTime(timezone=True), index=True),
        Column("inputs", JSON),
        Column("output", JSON),
        Column("latency_ms", Float),
    )


def log_both(workdir: Path, rows: int, batch: int) -> dict[str, float]:
    typed = MonitoringStore(f"sqlite:///{workdir / 'typed.db'}")
    engine = create_sql_engine(f"sqlite:///{workdir / 'json.db'}")
    from sqlalchemy import event

    event.listen(engine, "connect", _pragmas)
    table = json_table()
    table.metadata.create_all(engine)
    spent = {"typed": 0.0, "json": 0.0}
    for start in range(0, rows, batch):
        chunk = records(min(batch, rows - start), start)
        spent["typed"] += timed(lambda chunk=chunk: typed.add_predictions(chunk))[0]
        values = [
            {
                "request_id": record.request_id,
                "model_name": record.model_name,
                "version": record.version,
                "at": record.at,
                "inputs": record.inputs,
                "output": record.output,
                "latency_ms": record.latency_ms,
            }
            for record in chunk
        ]

        def write_json(values: list[dict[str, Any]] = values) -> None:
            with engine.begin() as connection:
                connection.execute(insert(table), values)

        spent["json"] += timed(write_json)[0]
    typed.close()
    engine.dispose()
    return spent


def json_records(path: Path, batch: int) -> int:
    """The previous release's ``prediction_batch``: raw rows, one JSON parse per batch."""
    connection = sqlite3.connect(path)
    after, count = 0, 0
    while True:
        rows = connection.execute(
            "SELECT id, version, at, inputs, output FROM shipyard_predictions "
            "WHERE model_name = ? AND id > ? ORDER BY id LIMIT ?",
            (NAME, after, batch),
        ).fetchall()
        if not rows:
            break
        inputs = json.loads("[" + ",".join(row[3] for row in rows) + "]")
        outputs = json.loads("[" + ",".join(row[4] for row in rows) + "]")
        count += len(inputs) + len(outputs) - len(rows)
        after = rows[-1][0]
    connection.close()
    return count


def typed_records(store: MonitoringStore, batch: int) -> int:
    after, count = 0, 0
    while found := store.prediction_batch(NAME, after, batch):
        count += len(found)
        after = found.ids[-1]
    return count


def json_frame(path: Path) -> pd.DataFrame:
    connection = sqlite3.connect(path)
    texts = [row[0] for row in connection.execute("SELECT inputs FROM shipyard_predictions")]
    connection.close()
    return pd.DataFrame(json.loads("[" + ",".join(texts) + "]"))


def typed_frame(path: Path) -> pd.DataFrame:
    connection = sqlite3.connect(path)
    table = table_name_for(NAME, 1)
    names = [
        row[0]
        for row in connection.execute(
            "SELECT name FROM shipyard_log_columns WHERE table_name = ? AND role = 'inputs' "
            "ORDER BY position",
            (table,),
        )
    ]
    columns = ", ".join(
        row[0]
        for row in connection.execute(
            "SELECT column_name FROM shipyard_log_columns WHERE table_name = ? "
            "AND role = 'inputs' ORDER BY position",
            (table,),
        )
    )
    frame = pd.DataFrame.from_records(
        connection.execute(f"SELECT {columns} FROM {table}").fetchall(), columns=names
    )
    connection.close()
    return frame


def one_field(path: Path, sql: str) -> float:
    connection = sqlite3.connect(path)
    value = connection.execute(sql).fetchone()[0]
    connection.close()
    return float(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    arguments = parser.parse_args()
    workdir: Path = arguments.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("typed.db", "json.db"):
        for suffix in ("", "-wal", "-shm"):
            (workdir / f"{name}{suffix}").unlink(missing_ok=True)
    results: dict[str, Any] = {"rows": arguments.rows, "load_before": os.getloadavg()}
    results["write_seconds"] = log_both(workdir, arguments.rows, arguments.batch)
    typed_path, json_path = workdir / "typed.db", workdir / "json.db"
    store = MonitoringStore(f"sqlite:///{typed_path}")
    reads: dict[str, dict[str, float]] = {}
    seconds, count = timed(lambda: typed_records(store, arguments.batch))
    reads["records"] = {"typed": seconds}
    seconds, json_count = timed(lambda: json_records(json_path, arguments.batch))
    reads["records"]["json"] = seconds
    assert count == json_count == arguments.rows, (count, json_count)
    seconds, typed_data = timed(lambda: typed_frame(typed_path))
    reads["frame"] = {"typed": seconds}
    seconds, json_data = timed(lambda: json_frame(json_path))
    reads["frame"]["json"] = seconds
    pd.testing.assert_frame_equal(typed_data, json_data, check_dtype=False)
    table = table_name_for(NAME, 1)
    seconds, typed_mean = timed(lambda: one_field(typed_path, f"SELECT avg(in_temp) FROM {table}"))
    reads["one_field"] = {"typed": seconds}
    seconds, json_mean = timed(
        lambda: one_field(
            json_path, "SELECT avg(json_extract(inputs, '$.temp')) FROM shipyard_predictions"
        )
    )
    reads["one_field"]["json"] = seconds
    assert abs(typed_mean - json_mean) < 1e-9
    parquet = workdir / "bike.parquet"
    reads["export_parquet"] = {"typed": timed(lambda: export_log(store, NAME, 1, parquet))[0]}
    try:
        import duckdb

        reads["duckdb_mean_of_export"] = {
            "typed": timed(lambda: duckdb.sql(f"SELECT avg(temp) FROM '{parquet}'").fetchall())[0]
        }
    except ImportError:
        pass
    store.close()
    results["read_seconds"] = reads
    results["ratios_json_over_typed"] = {
        what: round(times["json"] / times["typed"], 2)
        for what, times in reads.items()
        if "json" in times
    }
    results["database_bytes"] = {
        name: sum(
            (workdir / f"{name}.db{suffix}").stat().st_size
            for suffix in ("", "-wal")
            if (workdir / f"{name}.db{suffix}").exists()
        )
        for name in ("typed", "json")
    }
    results["load_after"] = os.getloadavg()
    print(json.dumps(results, indent=2))
    (workdir / "log_scan.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
