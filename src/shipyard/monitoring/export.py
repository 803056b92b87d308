"""Export a model version's logged predictions as Parquet, one typed column per field.

``shipyard log export NAME --version V OUT`` writes what the log holds for one version, so
DuckDB, pandas or Spark can read it by column (``SELECT avg(age) FROM 'log.parquet'``). The
columns follow the version's typed table (:mod:`shipyard.monitoring.columnar`):

- ``log_id``, ``request_id``, ``at`` (UTC), ``latency_ms``;
- one column per request field, named as the field (``inputs.NAME`` when the name is taken by
  one of the columns above), then one per answer field, ``output.NAME``; booleans, 64-bit
  integers, doubles and texts keep their type, JSON values are written as JSON text;
- ``inputs_unfit`` and ``output_unfit``: JSON text of the values of a row that have no column
  or do not fit theirs (``NULL`` when everything fitted), so the file holds every value.

A field a request did not send is ``NULL``, as is a ``None`` it sent. The file is written
beside ``OUT`` and moved there once complete, so a failed export leaves no half file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shipyard.errors import DataError
from shipyard.monitoring.columnar import LoggedColumn, fits, load_tables
from shipyard.monitoring.log import MonitoringStore

__all__ = ["export_log"]

_FIXED = ("log_id", "request_id", "at", "latency_ms", "inputs_unfit", "output_unfit")


def _exported_names(columns: Sequence[LoggedColumn]) -> list[str]:
    names = []
    for item in columns:
        if item.role == "output":
            names.append(f"output.{item.name}")
        elif item.name in _FIXED or item.name.startswith(("output.", "inputs.")):
            names.append(f"inputs.{item.name}")
        else:
            names.append(item.name)
    return names


def _arrow_type(kind: str) -> Any:
    import pyarrow as pa

    types = {
        "boolean": pa.bool_(),
        "integer": pa.int64(),
        "float": pa.float64(),
        "text": pa.string(),
        "json": pa.string(),
    }
    return types[kind]


def _cell(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "float":
        return float(value)
    if kind == "json":
        return json.dumps(value)
    return value


def _split(
    document: Any, role: str, columns: Sequence[LoggedColumn]
) -> tuple[list[Any], str | None]:
    """Split ``document`` into one value per column of ``role`` and its unfit JSON."""
    own = [item for item in columns if item.role == role]
    if not isinstance(document, dict):
        return [None] * len(own), json.dumps({"document": document})
    cells = []
    placed = set()
    unfit: dict[str, Any] = {}
    for item in own:
        value = document.get(item.name)
        if fits(value, item.kind):
            cells.append(_cell(value, item.kind))
        else:
            cells.append(None)
            unfit[item.name] = value
        placed.add(item.name)
    for name, value in document.items():
        if str(name) not in placed:
            unfit[str(name)] = value
    return cells, json.dumps(unfit) if unfit else None


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def export_log(
    store: MonitoringStore,
    model_name: str,
    version: int,
    path: str | os.PathLike[str],
    batch_size: int = 10_000,
) -> int:
    """Write a version's logged predictions to a Parquet file at ``path``; return the rows.

    Raises
    ------
    DataError
        When no prediction of ``model_name`` version ``version`` was ever logged.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    with store.engine.connect() as connection:
        typed = load_tables(connection, model_name, [version]).get(version)
    if typed is None:
        raise DataError(
            f"No prediction of {model_name}:{version} was logged, so there is nothing to "
            f"export; check the name and the version ('shipyard models versions {model_name}')."
        )
    columns = typed.columns
    inputs = [item for item in columns if item.role == "inputs"]
    outputs = [item for item in columns if item.role == "output"]
    ordered = [*inputs, *outputs]
    fields = [
        pa.field("log_id", pa.int64(), nullable=False),
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("latency_ms", pa.float64()),
        *(
            pa.field(name, _arrow_type(item.kind))
            for name, item in zip(_exported_names(ordered), ordered, strict=True)
        ),
        pa.field("inputs_unfit", pa.string()),
        pa.field("output_unfit", pa.string()),
    ]
    schema = pa.schema(fields)
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial")
    written = 0
    after = 0
    try:
        with pq.ParquetWriter(partial, schema) as writer:
            while rows := store.predictions(model_name, after, batch_size, version=version):
                after = rows[-1]["id"]
                data: list[list[Any]] = [[] for _ in fields]
                for row in rows:
                    input_cells, inputs_unfit = _split(row["inputs"], "inputs", inputs)
                    output_cells, output_unfit = _split(row["output"], "output", outputs)
                    values = [
                        row["id"],
                        row["request_id"],
                        _utc(row["at"]),
                        row["latency_ms"],
                        *input_cells,
                        *output_cells,
                        inputs_unfit,
                        output_unfit,
                    ]
                    for column_values, value in zip(data, values, strict=True):
                        column_values.append(value)
                arrays = [
                    pa.array(values, type=item.type)
                    for values, item in zip(data, fields, strict=True)
                ]
                writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
                written += len(rows)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return written
