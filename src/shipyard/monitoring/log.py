"""The prediction and feedback log, in the registry's database (SQLite or PostgreSQL).

Predictions go through :class:`PredictionLogger`: a background thread writes what is queued in
one transaction per batch. By default (``monitoring.log_durability: durable``) a request waits
for the commit of the batch that holds its rows before it is answered, so an acknowledged
prediction is in the database (group commit: concurrent requests share one commit). In
``async`` mode requests only queue their rows, and a crash loses what was still queued.
Feedback (a request id and its true label) is always durable:
:meth:`MonitoringStore.add_feedback` returns only after the transaction has committed. SQLite
runs in WAL mode with ``synchronous=NORMAL``: a commit survives the process being killed, not
a power loss (see :func:`_sqlite_durability`).

``shipyard_predictions`` holds one narrow row per prediction (log id, request id, model,
version, time, latency); the request and the answer go, in the same transaction, to the
version's typed table (:mod:`shipyard.monitoring.columnar`), and the readers put them back
together.

Examples
--------
>>> store = MonitoringStore("sqlite://")
>>> store.add_predictions([PredictionRecord("r1", "adult", 1, {"age": 39}, {"prediction": 1},
...                                         2.5)])
>>> store.add_feedback("adult", [("r1", 1)])
1
>>> [(row["request_id"], row["label"]) for row in store.labelled("adult")]
[('r1', 1)]
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    Integer,
    String,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from shipyard.errors import DataError, PredictionLogError
from shipyard.migrations import MONITORING, check_schema

if TYPE_CHECKING:
    from shipyard.monitoring.buckets import SketchBook

__all__ = [
    "LoggedBatch",
    "MonitoringStore",
    "PredictionFailure",
    "PredictionLogger",
    "PredictionRecord",
]

logger = logging.getLogger("shipyard.monitoring")
_NOTHING = (None, None)  # the request and answer of a log row whose typed row is missing


def _now() -> datetime:
    return datetime.now(UTC)


class _Base(DeclarativeBase):
    pass


class _Prediction(_Base):
    __tablename__ = "shipyard_predictions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(64), unique=True)
    model_name: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True, default=_now)
    latency_ms: Mapped[float] = mapped_column(Float)
    # The request and the answer live in the version's typed table (shipyard.monitoring.columnar).


class _Feedback(_Base):
    __tablename__ = "shipyard_feedback"

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(100), index=True)
    label: Mapped[Any] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class _Failure(_Base):
    __tablename__ = "shipyard_prediction_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True, default=_now)
    error: Mapped[str] = mapped_column(String(64))


@dataclass(frozen=True)
class PredictionFailure:
    """A request a model version failed to answer (a server error, not a bad request)."""

    model_name: str
    version: int
    error: str
    at: datetime = field(default_factory=_now)


@dataclass(frozen=True)
class PredictionRecord:
    """One served prediction, as logged."""

    request_id: str
    model_name: str
    version: int
    inputs: dict[str, Any]
    output: dict[str, Any]
    latency_ms: float
    at: datetime = field(default_factory=_now)


@dataclass
class LoggedBatch:
    """Logged predictions as columns, for readers that go through many rows (drift windows).

    ``inputs`` and ``output`` hold the same values :meth:`MonitoringStore.predictions` returns;
    the times are converted only when asked for (:meth:`at`), as a window needs only the first
    and the last of its rows.
    """

    ids: list[int]
    versions: list[int]
    inputs: list[Any]
    outputs: list[Any]
    times: list[Any]
    convert_time: Callable[[Any], Any] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def at(self, position: int) -> datetime:
        """When the row at ``position`` was logged, as :meth:`MonitoringStore.predictions` says."""
        value = self.times[position]
        if self.convert_time is not None and isinstance(value, str):
            return self.convert_time(value)  # type: ignore[no-any-return]
        return value  # type: ignore[no-any-return]


def _prediction_rows(records: Sequence[PredictionRecord]) -> list[dict[str, Any]]:
    return [
        {
            "request_id": record.request_id,
            "model_name": record.model_name,
            "version": record.version,
            "at": record.at,
            "latency_ms": record.latency_ms,
        }
        for record in records
    ]


def _by_version(rows: Iterable[tuple[int, int]]) -> dict[int, list[int]]:
    """Group ``(log id, version)`` pairs as ``{version: [log ids]}``."""
    grouped: dict[int, list[int]] = {}
    for log_id, version in rows:
        grouped.setdefault(version, []).append(log_id)
    return grouped


def _first_of_each(
    records: Sequence[PredictionRecord], inserted: set[str]
) -> list[PredictionRecord]:
    """Keep the records that were inserted: the first of each inserted request id."""
    kept = []
    for record in records:
        if record.request_id in inserted:
            kept.append(record)
            inserted.discard(record.request_id)
    return kept


def _failure_rows(failures: Sequence[PredictionFailure]) -> list[dict[str, Any]]:
    return [
        {
            "model_name": failure.model_name,
            "version": failure.version,
            "at": failure.at,
            "error": failure.error[:64],
        }
        for failure in failures
    ]


class MonitoringStore:
    """Predictions and feedback in a SQL database.

    Parameters
    ----------
    url
        SQLAlchemy URL; usually the registry's.
    """

    def __init__(self, url: str) -> None:
        from shipyard.databases import create_private_sqlite_file
        from shipyard.monitoring.columnar import LogLayout

        self.url = url
        create_private_sqlite_file(url)  # it holds logged requests: owner-only when new
        self.engine = create_engine(url)
        self.layout = LogLayout(self.engine.dialect.name)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_durability)
        try:
            # A new database is created at the head revision; another is refused, with the way
            # to upgrade it (shipyard.migrations).
            check_schema(self.engine, MONITORING)
        except BaseException:
            self.engine.dispose()  # a refused database keeps no connection open
            raise

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def add_predictions(self, records: Sequence[PredictionRecord]) -> None:
        """Write predictions in one transaction (request ids already logged are skipped)."""
        self.add_batch(records, ())

    def add_failures(self, failures: Sequence[PredictionFailure]) -> None:
        """Write failed requests in one transaction (they make the live error rate)."""
        self.add_batch((), failures)

    def add_batch(
        self,
        records: Sequence[PredictionRecord],
        failures: Sequence[PredictionFailure],
        sketches: SketchBook | None = None,
    ) -> None:
        """Write predictions and failed requests in one transaction (one commit to wait for).

        With ``sketches``, the predictions actually inserted (not those whose request id was
        already logged) are added to their time buckets' sketches in the same transaction
        (:class:`~shipyard.monitoring.buckets.SketchBook`).
        """
        if not records and not failures:
            return
        committed: Callable[[], None] | None = None
        try:
            with self.engine.begin() as connection:
                if records:
                    logged = self._inserted(connection, records)
                    # The typed rows go in the same transaction: acknowledged means logged.
                    self.layout.write(connection, logged)
                    if sketches is not None:
                        committed = sketches.stage(connection, [record for _, record in logged])
                if failures:
                    connection.execute(insert(_Failure), _failure_rows(failures))
        except BaseException:
            self.layout.forget()  # the rolled back transaction may have created tables
            raise
        if committed is not None:
            committed()

    def _inserted(
        self, connection: Any, records: Sequence[PredictionRecord]
    ) -> list[tuple[int, PredictionRecord]]:
        """Insert ``records`` (skipping logged request ids); return ``(log id, record)`` pairs.

        Only the records actually inserted are returned: the first of each request id that
        was not logged before.
        """
        rows = _prediction_rows(records)
        if self.engine.dialect.name != "sqlite":
            statement = postgresql_insert(_Prediction).on_conflict_do_nothing()
            returned = connection.execute(
                statement.returning(_Prediction.request_id, _Prediction.id), rows
            )
            ids = dict(returned.all())
        else:
            # SQLite holds its one write lock from the insert to the commit, and gives a new
            # row the largest id yet: the rows this insert added are the newest ``added`` rows.
            # (RETURNING costs about as much as the insert at a few dozen rows.)
            ignoring = sqlite_insert(_Prediction).on_conflict_do_nothing()
            added = max(int(connection.execute(ignoring, rows).rowcount or 0), 0)
            newest = connection.execute(
                select(_Prediction.request_id, _Prediction.id)
                .order_by(_Prediction.id.desc())
                .limit(added)
            )
            ids = dict(newest.all()) if added else {}
        kept = _first_of_each(records, set(ids))
        return [(ids[record.request_id], record) for record in kept]

    def activity(
        self, model_name: str, version: int, since: datetime, until: datetime | None = None
    ) -> dict[str, int]:
        """Count a version's answered and failed requests logged in ``[since, until)``."""
        counts = {}
        for key, table in (("answered", _Prediction), ("failed", _Failure)):
            query = (
                select(func.count())
                .select_from(table)
                .where(
                    table.model_name == model_name,
                    table.version == version,
                    table.at >= since,
                )
            )
            if until is not None:
                query = query.where(table.at < until)
            with Session(self.engine) as session:
                counts[key] = int(session.scalar(query) or 0)
        return counts

    def traffic(
        self, model_name: str, since: datetime, until: datetime, buckets: int
    ) -> dict[str, Any]:
        """Count a model's answered requests per version, and its failures, per time bucket.

        ``[since, until)`` is cut into ``buckets`` equal spans; the answer holds each span's
        start (``starts``, ISO 8601), ``answered`` (version -> counts), ``failed`` (counts)
        and ``bucket_seconds``. The UI's request rate, error and canary share charts read it.
        """
        width = (until - since) / buckets

        def position(at: datetime) -> int:
            at = at if at.tzinfo else at.replace(tzinfo=UTC)
            return min(int((at - since) / width), buckets - 1)

        answered: dict[str, list[int]] = {}
        failed = [0] * buckets
        with Session(self.engine) as session:
            for table, counts in ((_Prediction, None), (_Failure, failed)):
                rows = session.execute(
                    select(table.at, table.version).where(
                        table.model_name == model_name, table.at >= since, table.at < until
                    )
                )
                for at, version in rows:
                    target = (
                        counts
                        if counts is not None
                        else answered.setdefault(str(version), [0] * buckets)
                    )
                    target[position(at)] += 1
        return {
            "starts": [(since + width * index).isoformat() for index in range(buckets)],
            "answered": dict(sorted(answered.items(), key=lambda pair: int(pair[0]))),
            "failed": failed,
            "bucket_seconds": width.total_seconds(),
        }

    def labels_since(self, model_name: str, since: datetime) -> int:
        """Count the feedback labels of a model that arrived at or after ``since``."""
        with Session(self.engine) as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(_Feedback)
                    .where(_Feedback.model_name == model_name, _Feedback.at >= since)
                )
                or 0
            )

    def add_feedback(self, model_name: str, labels: Iterable[tuple[str, Any]]) -> int:
        """Record true labels by request id; return how many were stored.

        Returns only after the commit, so an acknowledged feedback is durable. A request id
        given again replaces its earlier label.

        Raises
        ------
        DataError
            When a request id is unknown for this model (nothing is stored then).
        """
        pairs = [(str(request_id), label) for request_id, label in labels]
        if not pairs:
            return 0
        with Session(self.engine) as session, session.begin():
            wanted = {request_id for request_id, _ in pairs}
            known = set(
                session.scalars(
                    select(_Prediction.request_id).where(
                        _Prediction.model_name == model_name, _Prediction.request_id.in_(wanted)
                    )
                )
            )
            unknown = sorted(wanted - known)
            if unknown:
                raise DataError(
                    f"No logged prediction of model '{model_name}' has request id(s) "
                    f"{', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}; "
                    "send feedback with the request_id a prediction returned."
                )
            for request_id, label in pairs:
                session.merge(
                    _Feedback(request_id=request_id, model_name=model_name, label=label, at=_now())
                )
        return len(pairs)

    def count(self, model_name: str) -> dict[str, int]:
        """Count the logged and the labelled predictions of a model."""
        with Session(self.engine) as session:
            predictions = (
                session.scalar(
                    select(func.count())
                    .select_from(_Prediction)
                    .where(_Prediction.model_name == model_name)
                )
                or 0
            )
            labelled = (
                session.scalar(
                    select(func.count())
                    .select_from(_Feedback)
                    .where(_Feedback.model_name == model_name)
                )
                or 0
            )
        return {"predictions": int(predictions), "labelled": int(labelled)}

    def predictions(
        self,
        model_name: str,
        after_id: int = 0,
        limit: int = 10_000,
        session: Session | None = None,
        version: int | None = None,
    ) -> list[dict[str, Any]]:
        """Return predictions with an id above ``after_id``, oldest first.

        Pass ``session`` to read inside a caller's transaction (required for in-memory SQLite,
        where every connection is a different database); ``version`` keeps one version's.
        """
        query = (
            select(
                _Prediction.id,
                _Prediction.request_id,
                _Prediction.version,
                _Prediction.at,
                _Prediction.latency_ms,
            )
            .where(_Prediction.model_name == model_name, _Prediction.id > after_id)
            .order_by(_Prediction.id)
            .limit(limit)
        )
        if version is not None:
            query = query.where(_Prediction.version == version)
        if session is None:
            with Session(self.engine) as own:
                return self.predictions(model_name, after_id, limit, own, version)
        rows = session.execute(query).all()
        documents = self.layout.documents(
            session.connection(), model_name, _by_version((row[0], row[2]) for row in rows)
        )
        return [
            {
                "id": log_id,
                "request_id": request_id,
                "version": logged_version,
                "at": at,
                "inputs": documents.get(log_id, _NOTHING)[0],
                "output": documents.get(log_id, _NOTHING)[1],
                "latency_ms": latency_ms,
            }
            for log_id, request_id, logged_version, at, latency_ms in rows
        ]

    def prediction_batch(
        self,
        model_name: str,
        after_id: int = 0,
        limit: int = 10_000,
        session: Session | None = None,
    ) -> LoggedBatch:
        """Return the predictions :meth:`predictions` would, as columns, and faster.

        Only what drift windows read is fetched (id, version, time, request record, answer);
        the times are converted only when asked for.
        """
        if session is None:
            with Session(self.engine) as own:
                return self.prediction_batch(model_name, after_id, limit, own)
        query = (
            select(
                _Prediction.id,
                _Prediction.version,
                type_coerce(_Prediction.at, String),
            )
            .where(_Prediction.model_name == model_name, _Prediction.id > after_id)
            .order_by(_Prediction.id)
            .limit(limit)
        )
        result = session.connection().execute(query)
        try:
            # The driver's rows as they are: no column here needs a result processor (the
            # time is converted when asked for), and building Row objects costs more
            # than reading them.
            rows = result.cursor.fetchall() if result.cursor is not None else []
        finally:
            result.close()
        columns = [list(column) for column in zip(*rows, strict=True)] or [[] for _ in range(3)]
        ids, versions, times = columns
        documents = self.layout.documents(
            session.connection(), model_name, _by_version(zip(ids, versions, strict=True))
        )
        found = [documents.get(log_id, _NOTHING) for log_id in ids]
        dialect = self.engine.dialect
        convert = _Prediction.__table__.c.at.type.dialect_impl(dialect).result_processor(
            dialect, None
        )
        return LoggedBatch(
            ids=ids,
            versions=versions,
            inputs=[inputs for inputs, _ in found],
            outputs=[output for _, output in found],
            times=times,
            convert_time=convert,
        )

    def labelled(
        self,
        model_name: str,
        since: datetime | None = None,
        limit: int | None = None,
        log_ids: tuple[int, int] | None = None,
        version: int | None = None,
        until: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Return predictions joined with their feedback, newest last.

        ``log_ids`` keeps the predictions whose log id lies in ``[first, last]`` (a window);
        ``version`` keeps one model version's predictions; ``since`` and ``until`` keep those
        logged in ``[since, until)``.
        """
        query = (
            select(
                _Prediction.id,
                _Prediction.request_id,
                _Prediction.version,
                _Prediction.at,
                _Feedback.label,
            )
            .join(_Feedback, _Feedback.request_id == _Prediction.request_id)
            .where(_Prediction.model_name == model_name)
            .order_by(_Prediction.id)
        )
        if since is not None:
            query = query.where(_Prediction.at >= since)
        if log_ids is not None:
            query = query.where(_Prediction.id.between(*log_ids))
        if version is not None:
            query = query.where(_Prediction.version == version)
        if until is not None:
            query = query.where(_Prediction.at < until)
        with Session(self.engine) as session:
            rows = session.execute(query).all()
            selected = rows[-limit:] if limit else rows
            documents = self.layout.documents(
                session.connection(), model_name, _by_version((row[0], row[2]) for row in selected)
            )
        return [
            {
                "request_id": request_id,
                "version": logged_version,
                "at": at,
                "inputs": documents.get(log_id, _NOTHING)[0],
                "output": documents.get(log_id, _NOTHING)[1],
                "label": label,
            }
            for log_id, request_id, logged_version, at, label in selected
        ]

    def erase(self, model_name: str, request_ids: Iterable[str]) -> dict[str, int]:
        """Delete a model's predictions and their feedback by request id, in one transaction.

        Returns how many predictions and feedback labels were removed (ids not found count
        for nothing).
        """
        wanted = sorted({str(request_id) for request_id in request_ids})
        removed = {"predictions": 0, "feedback": 0}
        with self.engine.begin() as connection:
            for start in range(0, len(wanted), 500):  # within every driver's parameter limit
                chunk = wanted[start : start + 500]
                found = connection.execute(
                    select(_Prediction.id, _Prediction.version).where(
                        _Prediction.model_name == model_name, _Prediction.request_id.in_(chunk)
                    )
                )
                self.layout.delete(connection, model_name, _by_version(found.all()))
                for key, table in (("feedback", _Feedback), ("predictions", _Prediction)):
                    result = connection.execute(
                        delete(table).where(
                            table.model_name == model_name, table.request_id.in_(chunk)
                        )
                    )
                    removed[key] += int(result.rowcount or 0)
        return removed

    def purge(self, older_than: timedelta) -> int:
        """Delete predictions and feedback older than the retention period; return rows removed."""
        from shipyard.monitoring.buckets import _SketchBucket

        cutoff = _now() - older_than
        old = select(_Prediction.request_id).where(_Prediction.at < cutoff)
        with self.engine.begin() as connection:
            removed = connection.execute(delete(_Feedback).where(_Feedback.request_id.in_(old)))
            self.layout.purge(connection, cutoff)
            removed_feedback = removed.rowcount
            removed = connection.execute(delete(_Prediction).where(_Prediction.at < cutoff))
            removed_predictions = removed.rowcount
            removed_failures = connection.execute(delete(_Failure).where(_Failure.at < cutoff))
            # Sketch buckets that started before the cutoff go too (their counts are not rows).
            connection.execute(delete(_SketchBucket).where(_SketchBucket.started_at < cutoff))
            return (
                int(removed_feedback or 0)
                + int(removed_predictions or 0)
                + int(removed_failures.rowcount or 0)
            )


def _sqlite_durability(connection: Any, record: Any) -> None:
    """WAL with ``synchronous=NORMAL``: a commit is in the WAL file before it returns.

    That survives the process being killed (kill -9, the OOM killer, a crash): the operating
    system still writes the file. It does not survive an operating-system crash or a power
    loss, which may take the last commits (the database stays consistent). ``FULL`` would
    fsync every commit (about 5 ms each on a virtual disk) and hold every request of a
    durable batch for it; PostgreSQL, whose commits are fsynced by default, is the store for
    that guarantee.
    """
    cursor = connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    for attempt in range(300):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as error:
            # Switching a database to WAL while another connection holds its write lock
            # (a schema upgrade, in a database still in rollback mode) is refused at once,
            # without the busy timeout: SQLite avoids a deadlock. Wait for that lock.
            if "locked" not in str(error) or attempt == 299:
                raise
            time.sleep(0.1)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@dataclass(frozen=True)
class _Entry:
    """Rows queued together; ``waiter`` (on its event loop) learns when they are committed."""

    rows: Sequence[PredictionRecord | PredictionFailure]
    waiter: asyncio.Future[None] | None = None


class PredictionLogger:
    """Write predictions from a background thread, in batches, with or without waiting.

    Two ways in. :meth:`log` queues a row and returns at once (failed requests go this way, and
    every prediction in ``async`` mode). :meth:`record` is what a request handler awaits: in
    durable mode it returns only once the transaction holding the rows has committed (group
    commit: the thread writes everything queued in one transaction, then wakes every handler
    of that batch), and raises :class:`~shipyard.errors.PredictionLogError` when the commit
    fails, the queue is full or the commit takes longer than ``commit_timeout``.

    Parameters
    ----------
    store
        Where predictions go.
    max_queue
        Entries (requests) waiting at most; beyond it :meth:`log` counts new rows in
        ``dropped`` and durable :meth:`record` refuses them, rather than slowing requests down.
    batch_size
        Rows written per transaction, at most.
    durable
        Whether :meth:`record` waits for the commit (``monitoring.log_durability: durable``)
        or only queues the rows (``async``).
    commit_timeout
        Seconds a durable :meth:`record` waits for its commit.
    sketches
        Adds each committed batch to its time buckets' sketches, in the same transaction
        (``None``: the log alone).
    """

    def __init__(
        self,
        store: MonitoringStore,
        max_queue: int = 100_000,
        batch_size: int = 1000,
        durable: bool = True,
        commit_timeout: float = 5.0,
        sketches: SketchBook | None = None,
    ) -> None:
        self.store = store
        self.sketches = sketches
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.durable = durable
        self.commit_timeout = commit_timeout
        self.dropped = 0
        self.written = 0
        self._queue: queue.Queue[_Entry | None] = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(
            target=self._run, name="shipyard-prediction-log", daemon=True
        )
        self._thread.start()

    def log(self, record: PredictionRecord | PredictionFailure) -> None:
        """Queue one prediction (or failed request); never blocks."""
        try:
            self._queue.put_nowait(_Entry((record,)))
        except queue.Full:
            self.dropped += 1

    async def record(self, rows: Sequence[PredictionRecord]) -> None:
        """Log ``rows``; when durable, return only after the transaction holding them commits.

        Raises
        ------
        PredictionLogError
            When durable and the rows are not committed: the queue is full, the commit
            failed, or it took longer than ``commit_timeout`` (the rows may still be
            written later, but they were not acknowledged).
        """
        if not self.durable:
            for row in rows:
                self.log(row)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Entry(rows, waiter))
        except queue.Full:
            raise PredictionLogError(
                f"The prediction log has {self.max_queue} requests waiting to be written; "
                "retry later (the database is slower than the traffic)."
            ) from None
        try:
            async with asyncio.timeout(self.commit_timeout):
                await waiter
        except TimeoutError:
            raise PredictionLogError(
                f"The prediction log did not commit within {self.commit_timeout:g} s "
                "(monitoring.log_commit_timeout); retry later."
            ) from None

    def flush(self) -> None:
        """Wait until everything queued so far is written."""
        self._queue.join()

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout=60)

    def _run(self) -> None:
        while True:
            entries, stopping = self._take()
            try:
                self._write(entries)
            finally:
                for _ in entries:
                    self._queue.task_done()
            if stopping:
                self._queue.task_done()
                return

    def _take(self) -> tuple[list[_Entry], bool]:
        """Wait for one entry, then take what else is queued, up to ``batch_size`` rows."""
        first = self._queue.get()
        if first is None:
            return [], True
        entries, rows = [first], len(first.rows)
        while rows < self.batch_size:
            try:
                following = self._queue.get_nowait()
            except queue.Empty:
                break
            if following is None:
                return entries, True
            entries.append(following)
            rows += len(following.rows)
        return entries, False

    def _write(self, entries: list[_Entry]) -> None:
        """Commit the entries' rows in one transaction, then settle their waiters."""
        if not entries:
            return
        rows = [row for entry in entries for row in entry.rows]
        answered = [row for row in rows if isinstance(row, PredictionRecord)]
        failed = [row for row in rows if isinstance(row, PredictionFailure)]
        failed_commit = False
        try:
            self.store.add_batch(answered, failed, self.sketches)
            self.written += len(answered)
        except Exception:  # the log must never take the server down
            logger.exception("could not write %d predictions to the log", len(rows))
            failed_commit = True
        waiters: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for entry in entries:
            if entry.waiter is not None:
                waiters.setdefault(entry.waiter.get_loop(), []).append(entry.waiter)
        for loop, futures in waiters.items():
            # One wake-up per event loop and batch, not one per request; a closed loop has
            # nobody waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, futures, failed_commit)


def _settle(futures: list[asyncio.Future[None]], failed_commit: bool) -> None:
    """Resolve the waiters of a batch on their event loop (skipping those that gave up)."""
    for future in futures:
        if future.done():
            continue
        if not failed_commit:
            future.set_result(None)
        else:
            # The database's own message stays in the server's log: it may name hosts or tables.
            future.set_exception(
                PredictionLogError(
                    "The prediction log could not commit this prediction (the server logged "
                    "why); retry later."
                )
            )
