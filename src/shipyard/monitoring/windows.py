"""Drift over the prediction log, in count-based windows, computed incrementally.

:class:`DriftMonitor` reads only the predictions logged since its last call (by log id), adds
them to the open window's sketches, and closes the window when it holds ``window_size``
predictions. Each closed window's sketches and drift report are stored in the database, with the
last log id read, so the next call (in this process or another) starts where this one stopped:
the log is never rescanned.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, DateTime, Integer, String, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from shipyard.monitoring.drift import ColumnDrift, DriftThresholds, drift_report
from shipyard.monitoring.log import LoggedBatch, MonitoringStore, _Base
from shipyard.monitoring.sketch import Sketch, sketch_from_json
from shipyard.monitoring.sketching import RowSketcher, output_value

if TYPE_CHECKING:
    from shipyard.monitoring.columns import ColumnCleaner

__all__ = ["DriftMonitor", "DriftWindow", "output_value"]


class _Window(_Base):
    __tablename__ = "shipyard_drift_windows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[int] = mapped_column(Integer)
    closed: Mapped[int] = mapped_column(Integer, default=0)
    first_log_id: Mapped[int] = mapped_column(Integer)
    last_log_id: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    sketches: Mapped[dict[str, Any]] = mapped_column(JSON)
    report: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


@dataclass(frozen=True)
class DriftWindow:
    """A window of predictions and the drift of each column in it."""

    index: int
    version: int
    count: int
    first_log_id: int
    last_log_id: int
    started_at: datetime | None
    ended_at: datetime | None
    closed: bool
    report: list[dict[str, Any]]

    @property
    def drifted(self) -> list[str]:
        """Columns with a drift verdict in this window."""
        return [row["column"] for row in self.report if row["drifted"]]


class DriftMonitor:
    """Incremental drift of one model's logged predictions against its reference sketches.

    Parameters
    ----------
    store
        The prediction log.
    model_name
        Whose predictions to read.
    version
        The version whose reference sketches are used; predictions of other versions are skipped.
    reference
        Column name -> reference sketch (from the bundle's ``drift_reference.json``).
    task, classes
        To reduce logged outputs like the reference did.
    window_size
        Predictions per window.
    thresholds
        When a column counts as drifted.
    prepare
        Turns logged request records into what the reference was computed on (the bundle's
        fitted cleaning, when it has one).
    values
        Turns logged rows (``id``, ``version``, ``at``, ``inputs``, ``output``) into
        ``{sketch name: values}`` directly, any number of values per row (a recommender's
        listed items); replaces the column-by-column reading.
    clean_column
        ``(name, values) -> values``: the same cleaning as ``prepare``, one column of a batch
        at a time (:func:`shipyard.monitoring.columns.column_cleaner`); used instead of
        ``prepare`` when given, because it is much faster on large batches.
    """

    def __init__(
        self,
        store: MonitoringStore,
        model_name: str,
        version: int,
        reference: Mapping[str, Sketch],
        task: str,
        classes: Sequence[Any] = (),
        window_size: int = 1000,
        thresholds: DriftThresholds | None = None,
        prepare: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
        values: Callable[[Sequence[Mapping[str, Any]]], Mapping[str, Sequence[Any]]] | None = None,
        clean_column: ColumnCleaner | None = None,
    ) -> None:
        self.store = store
        self.model_name = model_name
        self.version = version
        self.reference = dict(reference)
        self.task = task
        self.classes = list(classes)
        self.window_size = window_size
        self.thresholds = thresholds or DriftThresholds()
        self.prepare = prepare
        self.values = values
        self.clean_column = clean_column

    def update(self, batch_size: int = 10_000) -> list[DriftWindow]:
        """Read the predictions logged since the last call; return every window touched.

        Updaters of the same model version (a server refreshing its gauges, ``shipyard watch``)
        take turns: each reads the window state only once it holds the lock, so no prediction
        is counted twice.
        """
        with Session(self.store.engine) as session, session.begin():
            self._lock(session)
            window = self._open_window(session)
            sketches = {name: sketch_from_json(data) for name, data in window.sketches.items()}
            touched: list[_Window] = []
            after = window.last_log_id
            read = self.store.prediction_batch
            while batch := read(self.model_name, after, batch_size, session):
                after = batch.ids[-1]
                pending = [
                    position
                    for position, version in enumerate(batch.versions)
                    if version == self.version
                ]
                while pending:
                    # Fill the open window column by column, never across its boundary.
                    room = self.window_size - window.count
                    chunk, pending = pending[:room], pending[room:]
                    self._add(sketches, batch, chunk)
                    window.count += len(chunk)
                    window.started_at = window.started_at or batch.at(chunk[0])
                    window.ended_at = batch.at(chunk[-1])
                    window.last_log_id = batch.ids[chunk[-1]]
                    if window.count >= self.window_size:
                        self._close(window, sketches)
                        touched.append(window)
                        window = self._new_window(session, batch.ids[chunk[-1]])
                        sketches = {
                            name: sketch.empty() for name, sketch in self.reference.items()
                        }
                # Rows of other versions are read once and skipped for good.
                window.last_log_id = max(window.last_log_id, after)
            window.sketches = {name: sketch.to_json() for name, sketch in sketches.items()}
            window.report = [row.as_dict() for row in self._report(sketches)]
            touched.append(window)
            session.flush()
            return [self._to_window(item) for item in touched]

    def _lock(self, session: Session) -> None:
        dialect = self.store.engine.dialect.name
        if dialect == "sqlite":
            # Take the write lock before reading; a deferred transaction would read first.
            session.connection().exec_driver_sql("BEGIN IMMEDIATE")
        elif dialect == "postgresql":
            key = zlib.crc32(f"shipyard-drift:{self.model_name}:{self.version}".encode())
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    def windows(self) -> list[DriftWindow]:
        """Every window of this model version so far, oldest first."""
        with Session(self.store.engine) as session:
            rows = session.scalars(
                select(_Window)
                .where(_Window.model_name == self.model_name, _Window.version == self.version)
                .order_by(_Window.id)
            ).all()
            return [self._to_window(row) for row in rows]

    def latest(self) -> DriftWindow | None:
        """Return the most recent closed window, else the open one if it holds predictions."""
        with Session(self.store.engine) as session:
            rows = session.scalars(
                select(_Window)
                .where(_Window.model_name == self.model_name, _Window.version == self.version)
                .order_by(_Window.id.desc())
                .limit(2)
            ).all()
        closed = [row for row in rows if row.closed]
        if closed:
            return self._to_window(closed[0])
        return self._to_window(rows[0]) if rows and rows[0].count else None

    def _report(self, sketches: Mapping[str, Sketch]) -> list[ColumnDrift]:
        return drift_report(self.reference, sketches, self.thresholds)

    def _add(self, sketches: dict[str, Sketch], batch: LoggedBatch, positions: list[int]) -> None:
        def rows() -> list[dict[str, Any]]:
            return [
                {
                    "id": batch.ids[position],
                    "version": batch.versions[position],
                    "at": batch.at(position),
                    "inputs": batch.inputs[position],
                    "output": batch.outputs[position],
                }
                for position in positions
            ]

        sketcher = RowSketcher(
            self.reference,
            self.task,
            self.classes,
            prepare=self.prepare,
            values=self.values,
            clean_column=self.clean_column,
        )
        sketcher.add(
            sketches,
            [batch.inputs[position] for position in positions],
            [batch.outputs[position] for position in positions],
            rows,
        )

    def _close(self, window: _Window, sketches: Mapping[str, Sketch]) -> None:
        window.closed = 1
        window.sketches = {name: sketch.to_json() for name, sketch in sketches.items()}
        window.report = [row.as_dict() for row in self._report(sketches)]

    def _open_window(self, session: Session) -> _Window:
        current = session.scalar(
            select(_Window)
            .where(_Window.model_name == self.model_name, _Window.version == self.version)
            .order_by(_Window.id.desc())
            .limit(1)
        )
        if current is not None and not current.closed:
            return current
        return self._new_window(session, current.last_log_id if current else 0)

    def _new_window(self, session: Session, after: int) -> _Window:
        window = _Window(
            model_name=self.model_name,
            version=self.version,
            closed=0,
            first_log_id=after + 1,
            last_log_id=after,
            count=0,
            sketches={name: sketch.empty().to_json() for name, sketch in self.reference.items()},
            report=[],
        )
        session.add(window)
        session.flush()
        return window

    def _to_window(self, row: _Window) -> DriftWindow:
        def aware(moment: datetime | None) -> datetime | None:
            return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment

        return DriftWindow(
            index=row.id,
            version=row.version,
            count=row.count,
            first_log_id=row.first_log_id,
            last_log_id=row.last_log_id,
            started_at=aware(row.started_at),
            ended_at=aware(row.ended_at),
            closed=bool(row.closed),
            report=list(row.report),
        )
