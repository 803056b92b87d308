"""Typed log tables: the logged requests and answers of a model version, one column per field.

The prediction log keeps one narrow row per prediction in ``shipyard_predictions`` (log id,
request id, model, version, time, latency): counts, traffic, feedback joins and the order of
the log read it alone. What a request held and what the model answered go to a table of their
own per model version (``shipyard_log_<model>_<hash>_v<version>``), keyed by the log id, with
one typed column per field (boolean, integer, float, text, or JSON for values that are not
scalars), so a full scan (retraining on logged rows, analysis in DuckDB after ``shipyard log
export``) reads columns instead of parsing one JSON document per row.

The catalogue (``shipyard_log_tables``, ``shipyard_log_columns``) maps a model version to its
table and each column to the field it holds: a field name may hold any character, the SQL
names are slugs with a hash when they would collide. A table is created on the first write of
its version, and a column when a field first appears, in the transaction that writes the rows
(PostgreSQL takes an advisory lock per version meanwhile; SQLite holds its write lock
already), so a prediction is acknowledged only once its typed row is committed.

Nothing logged is lost or changed on the way back:

- A value that does not fit its column (text in a float column, a float in an integer column,
  a float that is not finite, a text holding NUL) is kept in the row's ``inputs_unfit`` or
  ``output_unfit`` JSON document, and so is a field with no column (only ``None`` seen yet,
  or past :data:`MAX_COLUMNS`), and a document that is not an object.
- Each row records how many columns its table had when it was written (``layout``): a column
  added later does not apply to it, so a field that an earlier request did not send is not
  read back as ``None``. A field a request left out while its column existed is listed as
  missing in the unfit document.

One value changes type on the way: an integer stored in a float column reads back as a float
(``40`` -> ``40.0``, equal as a number; JSON has one number type, and clients differ in
whether they write ``40`` or ``40.0``). Fields read back in their column order, which is the
order the version first saw them in.
"""

from __future__ import annotations

import hashlib
import math
import re
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Double,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    column,
    delete,
    insert,
    select,
    table,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from shipyard.monitoring.log import _Base, _Prediction

__all__ = [
    "MAX_COLUMNS",
    "UPGRADE_BATCH",
    "LogLayout",
    "LoggedColumn",
    "TypedTable",
    "fits",
    "infer_kind",
    "load_tables",
    "table_name_for",
]

ROLES = ("inputs", "output")
PREFIXES = {"inputs": "in_", "output": "out_"}
MAX_COLUMNS = 1000  # per table: PostgreSQL allows 1,600 columns, SQLite 2,000
_LARGEST_EXACT_FLOAT_INTEGER = 2**53
_BIGINT = 2**63
_CHUNK = 500  # ids per IN list, within every driver's parameter limit
UPGRADE_BATCH = 5000  # JSON-era rows moved at once by the upgrade: a big log never fits in memory


class _LogTable(_Base):
    __tablename__ = "shipyard_log_tables"

    model_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    table_name: Mapped[str] = mapped_column(String(63), unique=True)


class _LogColumn(_Base):
    __tablename__ = "shipyard_log_columns"
    __table_args__ = (
        UniqueConstraint("table_name", "column_name", name="uq_shipyard_log_columns_name"),
    )

    table_name: Mapped[str] = mapped_column(String(63), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    column_name: Mapped[str] = mapped_column(String(63))
    role: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(8))


def _sql_type(kind: str) -> TypeEngine[Any]:
    types: dict[str, TypeEngine[Any]] = {
        "boolean": Boolean(),
        "integer": BigInteger(),
        "float": Double(),
        "text": Text(),
        "json": JSON(none_as_null=True),
    }
    return types[kind]


def fits(value: Any, kind: str) -> bool:
    """Whether ``value`` can be stored in a column of ``kind`` and read back unchanged."""
    if value is None or kind == "json":
        return True
    if kind == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind == "integer":
        return isinstance(value, int) and -_BIGINT <= value < _BIGINT
    if kind == "float":
        if isinstance(value, float):
            return math.isfinite(value)
        return isinstance(value, int) and abs(value) <= _LARGEST_EXACT_FLOAT_INTEGER
    return kind == "text" and isinstance(value, str) and "\x00" not in value


def _kind_of(value: Any) -> str | None:
    """Return the column kind a single value asks for (``None``: it votes for nothing)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    for kind in ("integer", "float", "text"):
        if fits(value, kind):
            return kind
    if isinstance(value, int | float | str):
        return None  # a huge integer, a NaN, a text with NUL: kept in the unfit document
    return "json"


def infer_kind(values: Iterable[Any]) -> str | None:
    """Return the column kind for a field's values: one kind, float for numbers, else JSON.

    Returns ``None`` when no value says anything (all ``None``): the field gets its column
    once a value does.
    """
    kinds = {kind for kind in map(_kind_of, values) if kind is not None}
    if len(kinds) <= 1:
        return kinds.pop() if kinds else None
    return "float" if kinds == {"integer", "float"} else "json"


class Logged(Protocol):
    """What the typed tables need of a logged prediction."""

    @property
    def model_name(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def inputs(self) -> Any: ...

    @property
    def output(self) -> Any: ...


@dataclass(frozen=True)
class LoggedColumn:
    """One typed column of a log table: which field it holds, and as what."""

    position: int
    column_name: str
    role: str  # "inputs" or "output"
    name: str  # the field's name as logged
    kind: str  # boolean, integer, float, text or json


def _slug(name: str, length: int) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:length]


def _short_hash(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:8]


def table_name_for(model_name: str, version: int) -> str:
    """Name a version's table: a slug of the model and a hash of its exact name."""
    return f"shipyard_log_{_slug(model_name, 24)}_{_short_hash(model_name)}_v{version}"


def _column_name(role: str, name: str, taken: set[str]) -> str:
    slug = _slug(name, 40)
    candidate = f"{PREFIXES[role]}{slug}"
    if not slug or candidate in taken:
        candidate = f"{PREFIXES[role]}{slug}_{_short_hash(name)}".replace("__", "_")
    position = 1
    while candidate in taken:  # a hash collision: never in practice, still never a clash
        candidate = f"{PREFIXES[role]}{_short_hash(name)}_{position}"
        position += 1
    return candidate


@dataclass
class TypedTable:
    """A model version's log table, as the catalogue describes it."""

    model_name: str
    version: int
    name: str
    columns: tuple[LoggedColumn, ...]
    declined: frozenset[tuple[str, str]] = frozenset()  # fields seen with no column to hold them
    table: Table = field(init=False)
    fields: dict[str, dict[str, LoggedColumn]] = field(init=False)
    _indexes: dict[str, list[tuple[LoggedColumn, int]]] = field(init=False)
    _getters: dict[str, tuple[tuple[str, ...], Callable[[Sequence[Any]], tuple[Any, ...]]]] = (
        field(init=False)
    )
    _processors: dict[str, list[tuple[int, Callable[[Any], Any]]]] = field(init=False)

    def __post_init__(self) -> None:
        self.table = Table(
            self.name,
            MetaData(),
            Column("log_id", Integer, primary_key=True, autoincrement=False),
            Column("layout", Integer, nullable=False),
            Column("inputs_unfit", JSON(none_as_null=True), nullable=True),
            Column("output_unfit", JSON(none_as_null=True), nullable=True),
            *(Column(item.column_name, _sql_type(item.kind)) for item in self.columns),
        )
        self.fields = {role: {} for role in ROLES}
        # Where each role's columns sit in a row of select(): after the four fixed columns.
        self._indexes = {role: [] for role in ROLES}
        for index, item in enumerate(self.columns, start=4):
            self.fields[item.role][item.name] = item
            self._indexes[item.role].append((item, index))
        # The common row (every column applies, everything fitted) is rebuilt with C calls.
        self._getters = {
            role: (
                tuple(item.name for item, _ in self._indexes[role]),
                _getter([index for _, index in self._indexes[role]]),
            )
            for role in ROLES
        }
        self._processors = {}

    def processors(
        self, dialect: Dialect, description: Sequence[Any]
    ) -> list[tuple[int, Callable[[Any], Any]]]:
        """Return the conversions a driver's raw row needs, as ``(position, function)``.

        Only the columns whose type converts what the driver returns (SQLite's booleans and
        JSON texts; none on PostgreSQL, whose driver decodes both) are touched.
        """
        if dialect.name not in self._processors:
            found: list[tuple[int, Callable[[Any], Any]]] = []
            for position, sql_column in enumerate(self.table.columns):
                driver_type = description[position][1]  # what the driver says it returns
                implementation = sql_column.type.dialect_impl(dialect)
                process = implementation.result_processor(dialect, driver_type)
                if process is not None:
                    found.append((position, process))
            self._processors[dialect.name] = found
        return self._processors[dialect.name]

    def holds(self, records: Sequence[Logged]) -> bool:
        """Whether every field of ``records`` has its column (or was declined one already)."""
        for record in records:
            for role in ROLES:
                document = getattr(record, role)
                if not isinstance(document, dict):
                    continue
                known = self.fields[role]
                for name, value in document.items():
                    if name in known:
                        continue
                    if (role, name) not in self.declined or (
                        value is not None and len(self.columns) < MAX_COLUMNS
                    ):
                        return False
        return True

    def row(self, log_id: int, record: Logged) -> dict[str, Any]:
        """Return the typed row of ``record``: every column, ``None`` where it has no value."""
        row: dict[str, Any] = dict.fromkeys(self.table.columns.keys())
        row["log_id"] = log_id
        row["layout"] = len(self.columns)
        for role in ROLES:
            row[f"{role}_unfit"] = self._place(row, role, getattr(record, role))
        return row

    def _place(self, row: dict[str, Any], role: str, document: Any) -> dict[str, Any] | None:
        """Put ``document``'s values in their columns; return what does not fit, or ``None``."""
        if not isinstance(document, dict):
            return {"document": document}
        known = self.fields[role]
        unfit: dict[str, Any] = {}
        for name, value in document.items():
            key = name if isinstance(name, str) else str(name)  # as JSON would write it
            column_of = known.get(key)
            if column_of is None or not fits(value, column_of.kind):
                unfit[key] = value
            elif column_of.kind == "float" and value is not None:
                row[column_of.column_name] = float(value)
            else:
                row[column_of.column_name] = value
        missing = [name for name in known if name not in document]
        if not unfit and not missing:
            return None
        left: dict[str, Any] = {}
        if unfit:
            left["values"] = unfit
        if missing:
            left["missing"] = missing
        return left

    def documents(self, row: Sequence[Any]) -> tuple[Any, Any]:
        """Rebuild the logged request and answer from a row of :meth:`select`."""
        layout = row[1]
        return (
            self._document(row, layout, row[2], "inputs"),
            self._document(row, layout, row[3], "output"),
        )

    def _document(
        self,
        row: Sequence[Any],
        layout: int,
        unfit: dict[str, Any] | None,
        role: str,
    ) -> Any:
        if unfit is None and layout == len(self.columns):
            names, getter = self._getters[role]
            return dict(zip(names, getter(row), strict=True))
        if unfit is not None and "document" in unfit:
            return unfit["document"]
        missing = set(unfit.get("missing", ())) if unfit else set()
        document = {
            item.name: row[index]
            for item, index in self._indexes[role]
            if item.position < layout and item.name not in missing
        }
        if unfit:
            document.update(unfit.get("values", {}))
        return document

    def select(self) -> Any:
        """Return the select whose rows :meth:`documents` reads (filter it by ``log_id``)."""
        return select(*self.table.columns)


def load_tables(
    connection: Connection, model_name: str, versions: Iterable[int] | None = None
) -> dict[int, TypedTable]:
    """Read the catalogue: a model's typed tables by version (all, or ``versions``)."""
    query = select(_LogTable.version, _LogTable.table_name).where(
        _LogTable.model_name == model_name
    )
    if versions is not None:
        query = query.where(_LogTable.version.in_(sorted(set(versions))))
    names = dict(connection.execute(query).all())
    if not names:
        return {}
    columns: dict[str, list[LoggedColumn]] = {name: [] for name in names.values()}
    rows = connection.execute(
        select(
            _LogColumn.table_name,
            _LogColumn.position,
            _LogColumn.column_name,
            _LogColumn.role,
            _LogColumn.name,
            _LogColumn.kind,
        )
        .where(_LogColumn.table_name.in_(sorted(columns)))
        .order_by(_LogColumn.table_name, _LogColumn.position)
    )
    for table_name, position, column_name, role, name, kind in rows:
        columns[table_name].append(LoggedColumn(position, column_name, role, name, kind))
    return {
        version: TypedTable(model_name, version, name, tuple(columns[name]))
        for version, name in names.items()
    }


class LogLayout:
    """Writes typed rows and reads them back, for one store (its dialect, its known tables).

    The tables a writer knows are kept between batches; a batch with a field they lack reads
    the catalogue again under the version's lock, and adds what is still missing.
    """

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self._known: dict[tuple[str, int], TypedTable] = {}

    def forget(self) -> None:
        """Drop the known tables (a failed transaction may have created some of them)."""
        self._known.clear()

    def write(self, connection: Connection, logged: Sequence[tuple[int, Logged]]) -> None:
        """Insert the typed rows of ``logged`` (log id, record) in the caller's transaction.

        Every table and column is prepared before the first row goes in, in one order, so
        two PostgreSQL writers that both change tables wait for each other in one order.
        """
        groups: dict[tuple[str, int], list[tuple[int, Logged]]] = {}
        for log_id, record in logged:
            groups.setdefault((record.model_name, record.version), []).append((log_id, record))
        prepared = {
            key: self._prepare(connection, key, [record for _, record in groups[key]])
            for key in sorted(groups)
        }
        for key, typed in prepared.items():
            rows = [typed.row(log_id, record) for log_id, record in groups[key]]
            connection.execute(insert(typed.table), rows)

    def _prepare(
        self, connection: Connection, key: tuple[str, int], records: Sequence[Logged]
    ) -> TypedTable:
        typed = self._known.get(key)
        if typed is not None and typed.holds(records):
            return typed
        if self.dialect == "postgresql":
            lock = zlib.crc32(f"shipyard-log:{key[0]}:{key[1]}".encode())
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock})
        typed = load_tables(connection, key[0], [key[1]]).get(key[1])
        typed = _extend(connection, key, typed, records)
        self._known[key] = typed
        return typed

    def documents(
        self, connection: Connection, model_name: str, wanted: Mapping[int, Sequence[int]]
    ) -> dict[int, tuple[Any, Any]]:
        """Return ``{log id: (inputs, output)}`` for the log ids of each version in ``wanted``."""
        if not wanted:
            return {}
        tables = load_tables(connection, model_name, wanted)
        found: dict[int, tuple[Any, Any]] = {}
        for version, ids in wanted.items():
            typed = tables.get(version)
            if typed is None or not ids:
                continue
            rows = _rows(connection, typed, ids)
            if max((row[1] for row in rows), default=0) > len(typed.columns):
                # A writer added columns since the catalogue was read: read both again.
                typed = load_tables(connection, model_name, [version])[version]
                rows = _rows(connection, typed, ids)
            for row in rows:
                found[row[0]] = typed.documents(row)
        return found

    def delete(
        self, connection: Connection, model_name: str, wanted: Mapping[int, Sequence[int]]
    ) -> None:
        """Delete the typed rows of the log ids of each version in ``wanted``."""
        if not wanted:
            return
        tables = load_tables(connection, model_name, wanted)
        for version, ids in wanted.items():
            typed = tables.get(version)
            if typed is None:
                continue
            ordered = sorted(ids)
            for start in range(0, len(ordered), _CHUNK):
                chunk = ordered[start : start + _CHUNK]
                connection.execute(delete(typed.table).where(typed.table.c.log_id.in_(chunk)))

    def purge(self, connection: Connection, cutoff: datetime) -> None:
        """Delete the typed rows of every prediction logged before ``cutoff``."""
        catalogue = connection.execute(
            select(_LogTable.model_name, _LogTable.version, _LogTable.table_name)
        ).all()
        for model_name, version, table_name in catalogue:
            old = select(_Prediction.id).where(
                _Prediction.model_name == model_name,
                _Prediction.version == version,
                _Prediction.at < cutoff,
            )
            rows = table(table_name, column("log_id"))
            connection.execute(delete(rows).where(rows.c.log_id.in_(old)))


def _getter(indexes: Sequence[int]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    if len(indexes) == 1:
        only = indexes[0]
        return lambda row: (row[only],)
    if not indexes:
        return _nothing
    return itemgetter(*indexes)


def _nothing(row: Sequence[Any]) -> tuple[Any, ...]:
    return ()


def _fetch(connection: Connection, typed: TypedTable, statement: Any) -> list[Any]:
    """Run ``statement``; return the driver's rows, converted only where a type needs it.

    Building SQLAlchemy rows costs more than reading them; the conversions are the column
    types' own.
    """
    result = connection.execute(statement)
    try:
        cursor = result.cursor
        if cursor is None:
            return []
        processors = typed.processors(connection.dialect, cursor.description)
        raw = cursor.fetchall()
    finally:
        result.close()
    if not processors:
        return list(raw)
    converted = []
    for row in raw:
        values = list(row)
        for position, process in processors:
            values[position] = process(values[position])
        converted.append(values)
    return converted


def _rows(connection: Connection, typed: TypedTable, ids: Sequence[int]) -> list[Any]:
    """Read the typed rows of ``ids``: one range when they are dense, else lists of ids."""
    log_id = typed.table.c.log_id
    first, last = min(ids), max(ids)
    if last - first < 2 * len(ids):
        chosen = set(ids)
        rows = _fetch(connection, typed, typed.select().where(log_id.between(first, last)))
        return rows if len(rows) == len(chosen) else [row for row in rows if row[0] in chosen]
    ordered = sorted(ids)
    found: list[Any] = []
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        found.extend(_fetch(connection, typed, typed.select().where(log_id.in_(chunk))))
    return found


def _extend(
    connection: Connection,
    key: tuple[str, int],
    typed: TypedTable | None,
    records: Sequence[Logged],
) -> TypedTable:
    """Create the version's table, or add the columns its fields lack (under the lock)."""
    model_name, version = key
    existing = typed.columns if typed is not None else ()
    fields = typed.fields if typed is not None else {role: {} for role in ROLES}
    values: dict[tuple[str, str], list[Any]] = {}
    for record in records:
        for role in ROLES:
            document = getattr(record, role)
            if isinstance(document, dict):
                for name, value in document.items():
                    key_name = name if isinstance(name, str) else str(name)
                    if key_name not in fields[role]:
                        values.setdefault((role, key_name), []).append(value)
    taken = {item.column_name for item in existing}
    added: list[LoggedColumn] = []
    declined: set[tuple[str, str]] = set()
    for (role, name), seen in values.items():
        kind = infer_kind(seen)
        if kind is None or len(existing) + len(added) >= MAX_COLUMNS:
            declined.add((role, name))
            continue
        column_name = _column_name(role, name, taken)
        taken.add(column_name)
        added.append(LoggedColumn(len(existing) + len(added), column_name, role, name, kind))
    table_name = typed.name if typed is not None else table_name_for(model_name, version)
    extended = TypedTable(
        model_name, version, table_name, (*existing, *added), frozenset(declined)
    )
    if typed is None:
        connection.execute(
            insert(_LogTable),
            {"model_name": model_name, "version": version, "table_name": table_name},
        )
        extended.table.create(connection)
    else:
        preparer = connection.dialect.identifier_preparer
        for item in added:
            type_sql = _sql_type(item.kind).compile(dialect=connection.dialect)
            connection.execute(
                text(
                    f"ALTER TABLE {preparer.quote(table_name)} "
                    f"ADD COLUMN {preparer.quote(item.column_name)} {type_sql}"
                )
            )
    if added:
        connection.execute(
            insert(_LogColumn),
            [
                {
                    "table_name": table_name,
                    "position": item.position,
                    "column_name": item.column_name,
                    "role": item.role,
                    "name": item.name,
                    "kind": item.kind,
                }
                for item in added
            ],
        )
    return extended
