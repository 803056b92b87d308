"""Sketches written as traffic arrives: per-column counts in time buckets, beside the log.

The server's log thread adds each batch it commits to the sketches of the batch's time
buckets (``monitoring.sketch_seconds`` long, 60 s by default), and writes those sketches in
the same transaction as the batch's log rows: a bucket holds exactly the committed rows, and a
failed commit changes neither the log nor the sketches. Monitoring then reads counts, never
rows (:mod:`shipyard.monitoring.timeline`).

Every sketch is a vector of counts on the reference's bins (:class:`SketchLayout`), so
sketches merge by adding them, exactly, in any order. Each writer (a server process) keeps
its own row per bucket, keyed by a random writer id: no two processes ever update the same
row, and a range's sketch is the sum of every writer's rows in it. A row holds the counts as
little-endian int64 (``counts``), the number of predictions (``count``) and a fingerprint of
the bins (``layout``), which readers check against the version's reference.

Examples
--------
>>> from shipyard.monitoring.sketch import CategoricalSketch, NumericSketch
>>> layout = SketchLayout({"age": NumericSketch([40.0], [0, 0]),
...                        "sex": CategoricalSketch(["F", "M"], [0, 0, 0])})
>>> layout.size
7
>>> sketches = layout.empty()
>>> sketches["age"].update([30, None]); sketches["sex"].update(["M", "X"])
>>> vector = layout.flatten(sketches)
>>> vector.tolist()
[1, 0, 1, 0, 1, 1, 0]
>>> merged = layout.unflatten(vector + vector)
>>> merged["sex"].counts, merged["age"].missing
([0, 2, 2], 2)
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import (
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    select,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, mapped_column

from shipyard.errors import DataError
from shipyard.monitoring.log import _Base
from shipyard.monitoring.reference import PREDICTION_COLUMN
from shipyard.monitoring.sketch import (
    CategoricalSketch,
    NumericSketch,
    Sketch,
    _as_floats,
    _is_missing,
    category_of,
)
from shipyard.monitoring.sketching import output_value

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from shipyard.monitoring.columns import ColumnCleaner
    from shipyard.monitoring.log import MonitoringStore, PredictionRecord
    from shipyard.monitoring.sketching import RowSketcher

__all__ = ["BucketCounts", "SketchBook", "SketchLayout", "read_buckets"]

logger = logging.getLogger("shipyard.monitoring")

_COUNTS = np.dtype("<i8")  # little-endian int64 on every machine


class _SketchBucket(_Base):
    __tablename__ = "shipyard_sketch_buckets"
    __table_args__ = (
        UniqueConstraint(
            "model_name", "version", "started_at", "writer", name="uq_shipyard_sketch_buckets"
        ),
        Index("ix_shipyard_sketch_buckets_range", "model_name", "version", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    writer: Mapped[str] = mapped_column(String(32))
    layout: Mapped[str] = mapped_column(String(16))
    count: Mapped[int] = mapped_column(Integer)
    counts: Mapped[bytes] = mapped_column(LargeBinary)


class SketchLayout:
    """Where each sketch's counts sit in one flat vector: its bins, then its missing count.

    Parameters
    ----------
    reference
        Name -> reference sketch; its bins (edges or categories) fix the layout.
    """

    def __init__(self, reference: Mapping[str, Sketch]) -> None:
        self.reference = dict(reference)
        self.slices: dict[str, slice] = {}
        start = 0
        for name, sketch in self.reference.items():
            self.slices[name] = slice(start, start + len(sketch.counts) + 1)
            start += len(sketch.counts) + 1
        self.size = start
        bins = [
            [
                name,
                sketch.kind,
                sketch.edges if isinstance(sketch, NumericSketch) else sketch.categories,
            ]
            for name, sketch in self.reference.items()
        ]
        self.fingerprint = hashlib.sha256(json.dumps(bins).encode()).hexdigest()[:16]

    def empty(self) -> dict[str, Sketch]:
        """Return sketches with the reference's bins and no counts."""
        return {name: sketch.empty() for name, sketch in self.reference.items()}

    def flatten(self, sketches: Mapping[str, Sketch]) -> np.ndarray:
        """Return the sketches' counts as one int64 vector."""
        vector = np.zeros(self.size, dtype=np.int64)
        for name, part in self.slices.items():
            sketch = sketches[name]
            vector[part] = [*sketch.counts, sketch.missing]
        return vector

    def unflatten(self, vector: np.ndarray) -> dict[str, Sketch]:
        """Return the sketches a vector holds, with the reference's bins."""
        sketches: dict[str, Sketch] = {}
        for name, part in self.slices.items():
            values = [int(value) for value in vector[part]]
            reference = self.reference[name]
            if isinstance(reference, NumericSketch):
                sketches[name] = NumericSketch(list(reference.edges), values[:-1], values[-1])
            else:
                sketches[name] = CategoricalSketch(
                    list(reference.categories), values[:-1], values[-1]
                )
        return sketches

    def encode(self, vector: np.ndarray) -> bytes:
        """Return the stored form of a vector."""
        return np.asarray(vector, dtype=_COUNTS).tobytes()

    def decode(self, data: bytes) -> np.ndarray:
        """Read a stored vector back (a copy: the buffer is the driver's)."""
        vector = np.frombuffer(data, dtype=_COUNTS).astype(np.int64)
        if len(vector) != self.size:
            raise DataError(
                f"A stored sketch has {len(vector)} counts where the reference has "
                f"{self.size}; the sketch buckets do not belong to this model version."
            )
        return vector


def bucket_start(moment: datetime, seconds: float) -> datetime:
    """Start of the bucket of ``seconds`` (counted from the Unix epoch) that holds ``moment``."""
    stamp = moment.timestamp() if moment.tzinfo else moment.replace(tzinfo=UTC).timestamp()
    return datetime.fromtimestamp(math.floor(stamp / seconds) * seconds, UTC)


@functools.lru_cache(maxsize=4)
def _upsert(dialect: str) -> Any:
    """Return the bucket upsert, built once (building it costs more than writing a row)."""
    statement = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(_SketchBucket)
    return statement.on_conflict_do_update(
        index_elements=["model_name", "version", "started_at", "writer"],
        set_={"count": statement.excluded.count, "counts": statement.excluded.counts},
    )


@dataclass(frozen=True)
class _Key:
    model_name: str
    version: int
    started_at: datetime


@dataclass
class _Opened:
    sketcher: RowSketcher
    layout: SketchLayout

    def __post_init__(self) -> None:
        self.edges = {
            name: np.asarray(sketch.edges, dtype=float)
            for name, sketch in self.layout.reference.items()
            if isinstance(sketch, NumericSketch)
        }
        self.categories = {
            name: dict(sketch.index)
            for name, sketch in self.layout.reference.items()
            if isinstance(sketch, CategoricalSketch)
        }
        self.slots: dict[str, dict[str, int]] = {}  # raw text -> slot, per categorical column

    def vector(self, records: Sequence[PredictionRecord]) -> np.ndarray:
        """Return the flat sketch of ``records``: each value's slot, counted in one pass.

        The same counts as filling :class:`~shipyard.monitoring.sketch.Sketch` objects and
        flattening them (the tests compare the two), without building them: at a few dozen
        rows a batch the per-sketch overhead is most of the cost.
        """
        sketcher = self.sketcher
        if sketcher.values is not None or (
            sketcher.prepare is not None and sketcher.clean_column is None
        ):
            return self.layout.flatten(self._sketches(records))
        inputs = [record.inputs for record in records]
        clean = sketcher.clean_column
        slots: list[np.ndarray] = []
        for name, part in self.layout.slices.items():
            if name == PREDICTION_COLUMN:
                task, classes = sketcher.task, sketcher.classes
                values: Any = [output_value(record.output, task, classes) for record in records]
            else:
                values = [record.get(name) for record in inputs]
                if clean is not None and name in self.edges:
                    values = clean(name, values)
            missing_slot = part.stop - 1
            if name in self.edges:
                numbers = _as_floats(values)
                absent = np.isnan(numbers)
                bins = np.searchsorted(self.edges[name], numbers, side="left")
                slots.append(np.where(absent, missing_slot, part.start + bins))
            else:
                slots.append(self._category_slots(name, part, values, clean))
        return np.bincount(np.concatenate(slots), minlength=self.layout.size).astype(np.int64)

    def _category_slots(
        self, name: str, part: slice, values: list[Any], clean: ColumnCleaner | None
    ) -> np.ndarray:
        """Each value's slot in a categorical column, remembering the slot of each raw text.

        Cleaning a text is a function of the text alone (:mod:`~shipyard.monitoring.columns`),
        so a text seen before needs no cleaning again: traffic repeats a few categories.
        """
        known = self.slots.setdefault(name, {})
        if name == PREDICTION_COLUMN:
            clean = None  # the prediction is sketched as the reference reduced it, uncleaned
        texts = all(type(value) is str for value in values)
        new = [value for value in set(values) if value not in known] if texts else values
        if new:
            cleaned = clean(name, list(new)) if clean is not None else new
            index = self.categories[name]
            other = part.start + len(index)  # categories the reference never had
            found = []
            for value in cleaned:
                if _is_missing(value):
                    found.append(part.stop - 1)
                else:
                    text = value if type(value) is str else category_of(value)
                    found.append(part.start + index[text] if text in index else other)
            if not texts:
                return np.asarray(found, dtype=np.int64)
            if len(known) > 100_000:  # texts without end (ids in a category column): start over
                known.clear()
            known.update(zip(new, found, strict=True))
        return np.fromiter((known[value] for value in values), dtype=np.int64, count=len(values))

    def _sketches(self, records: Sequence[PredictionRecord]) -> dict[str, Sketch]:
        def rows() -> list[dict[str, Any]]:
            return [
                {
                    "id": None,
                    "version": record.version,
                    "at": record.at,
                    "inputs": record.inputs,
                    "output": record.output,
                }
                for record in records
            ]

        sketches = self.layout.empty()
        self.sketcher.add(
            sketches,
            [record.inputs for record in records],
            [record.output for record in records],
            rows,
        )
        return sketches


class SketchBook:
    """One writer's sketches of the current buckets, written with each log batch.

    The prediction log calls :meth:`stage` inside the transaction that inserts a batch, with
    the rows it actually inserted, and calls the function it returns once that transaction
    has committed: only then do the in-memory sketches move on, so memory and database never
    disagree. A bucket not in memory (an old one, after a restart of this writer) is read
    back from the database first.

    Parameters
    ----------
    open_sketcher
        ``(model name, version) -> RowSketcher``, or None for a version that cannot be
        sketched (its bundle has no drift reference); asked once per version.
    bucket_seconds
        Length of a bucket (``monitoring.sketch_seconds``).
    writer
        This writer's id; a fresh random one by default (one per server process). A writer
        given an id reads each bucket back before its first write to it, so a restarted
        writer with the same id goes on adding to its own rows.
    keep
        Buckets per version kept in memory (the most recent ones).

    Attributes
    ----------
    unsketched
        Logged predictions that could not be sketched (the server logged why).
    """

    def __init__(
        self,
        open_sketcher: Callable[[str, int], RowSketcher | None],
        bucket_seconds: float = 60.0,
        writer: str | None = None,
        keep: int = 4,
    ) -> None:
        if bucket_seconds <= 0:
            raise ValueError(f"bucket_seconds must be positive; got {bucket_seconds}.")
        self.open_sketcher = open_sketcher
        self.bucket_seconds = bucket_seconds
        self.writer = writer or uuid.uuid4().hex
        self._fresh = writer is None
        self._seen: set[_Key] = set()  # buckets this writer has written
        self.keep = keep
        self.unsketched = 0
        self._opened: dict[tuple[str, int], _Opened | None] = {}
        self._buckets: dict[_Key, tuple[int, np.ndarray]] = {}
        self._lock = threading.Lock()  # one log thread writes; the lock guards tests' threads

    def stage(
        self, connection: Connection, records: Sequence[PredictionRecord]
    ) -> Callable[[], None]:
        """Write the sketches of the buckets ``records`` fall in; return what commits them.

        Call inside the transaction that inserted ``records``; call the returned function
        after it committed.
        """
        groups: dict[_Key, list[PredictionRecord]] = {}
        for record in records:
            key = _Key(
                record.model_name, record.version, bucket_start(record.at, self.bucket_seconds)
            )
            groups.setdefault(key, []).append(record)
        staged: dict[_Key, tuple[int, np.ndarray]] = {}
        rows: list[dict[str, Any]] = []
        for key, group in groups.items():
            opened = self._open(key.model_name, key.version)
            if opened is None:
                continue
            try:
                delta = opened.vector(group)
            except Exception:  # the log must never fail because a row could not be sketched
                logger.exception(
                    "could not sketch %d predictions of %s:%d; they are logged but not in the "
                    "sketches",
                    len(group),
                    key.model_name,
                    key.version,
                )
                self.unsketched += len(group)
                continue
            count, vector = self._current(connection, key, opened.layout)
            staged[key] = (count + len(group), vector + delta)
            rows.append(
                {
                    "model_name": key.model_name,
                    "version": key.version,
                    "started_at": key.started_at,
                    "writer": self.writer,
                    "layout": opened.layout.fingerprint,
                    "count": staged[key][0],
                    "counts": opened.layout.encode(staged[key][1]),
                }
            )
        if rows:
            connection.execute(_upsert(connection.dialect.name), rows)

        def commit() -> None:
            with self._lock:
                self._buckets.update(staged)
                self._seen.update(staged)
                self._forget_old()

        return commit

    def prepare(self, model_name: str, version: int) -> bool:
        """Open a version's sketcher now (a server does it at start, not on its first batch).

        Returns whether the version's predictions can be sketched.
        """
        return self._open(model_name, version) is not None

    def _open(self, model_name: str, version: int) -> _Opened | None:
        if (model_name, version) not in self._opened:
            try:
                sketcher = self.open_sketcher(model_name, version)
            except Exception:  # a version that cannot be sketched must not stop the log
                logger.exception(
                    "cannot sketch the predictions of %s:%d at log time", model_name, version
                )
                sketcher = None
            self._opened[(model_name, version)] = (
                None if sketcher is None else _Opened(sketcher, SketchLayout(sketcher.reference))
            )
        return self._opened[(model_name, version)]

    def _current(
        self, connection: Connection, key: _Key, layout: SketchLayout
    ) -> tuple[int, np.ndarray]:
        with self._lock:
            known = self._buckets.get(key)
            if known is None and self._fresh and key not in self._seen:
                # A writer id made here is new to the database: nothing to read back.
                known = 0, np.zeros(layout.size, dtype=np.int64)
        if known is not None:
            return known
        stored = connection.execute(
            select(_SketchBucket.count, _SketchBucket.counts).where(
                _SketchBucket.model_name == key.model_name,
                _SketchBucket.version == key.version,
                _SketchBucket.started_at == key.started_at,
                _SketchBucket.writer == self.writer,
            )
        ).first()
        if stored is None:
            return 0, np.zeros(layout.size, dtype=np.int64)
        count, data = stored  # by position: a Row's ``count`` is the tuple method
        return int(count), layout.decode(data)

    def _forget_old(self) -> None:
        by_version: dict[tuple[str, int], list[_Key]] = {}
        for key in self._buckets:
            by_version.setdefault((key.model_name, key.version), []).append(key)
        for keys in by_version.values():
            for key in sorted(keys, key=lambda item: item.started_at)[: -self.keep]:
                del self._buckets[key]


@dataclass(frozen=True)
class BucketCounts:
    """Stored buckets of one model version, every writer's rows added up.

    ``starts[i]`` is the start of bucket ``i``, ``predictions[i]`` its predictions and
    ``counts[i]`` its flat sketch vector (:class:`SketchLayout`).
    """

    starts: list[datetime]
    predictions: np.ndarray
    counts: np.ndarray


def read_buckets(
    store: MonitoringStore,
    model_name: str,
    version: int,
    layout: SketchLayout,
    since: datetime | None = None,
    until: datetime | None = None,
) -> BucketCounts:
    """Read the buckets that start in ``[since, until)``, oldest first.

    Raises
    ------
    DataError
        When stored buckets were written with other bins than ``layout``'s.
    """
    query = (
        select(
            _SketchBucket.started_at,
            _SketchBucket.layout,
            _SketchBucket.count,
            _SketchBucket.counts,
        )
        .where(_SketchBucket.model_name == model_name, _SketchBucket.version == version)
        .order_by(_SketchBucket.started_at)
    )
    if since is not None:
        query = query.where(_SketchBucket.started_at >= since)
    if until is not None:
        query = query.where(_SketchBucket.started_at < until)
    with store.engine.connect() as connection:
        rows = connection.execute(query).all()
    starts: list[datetime] = []
    position: dict[datetime, int] = {}
    predictions: list[int] = []
    vectors: list[np.ndarray] = []
    for started_at, fingerprint, count, data in rows:
        if fingerprint != layout.fingerprint:
            raise DataError(
                f"The stored sketches of {model_name}:{version} were written with other bins "
                "than its bundle's drift reference; they cannot be compared."
            )
        moment = started_at if started_at.tzinfo else started_at.replace(tzinfo=UTC)
        vector = layout.decode(data)
        if moment in position:  # another writer's row of the same bucket: add it
            predictions[position[moment]] += int(count)
            vectors[position[moment]] += vector
            continue
        position[moment] = len(starts)
        starts.append(moment)
        predictions.append(int(count))
        vectors.append(vector)
    matrix = np.vstack(vectors) if vectors else np.zeros((0, layout.size), dtype=np.int64)
    return BucketCounts(starts, np.asarray(predictions, dtype=np.int64), matrix)
