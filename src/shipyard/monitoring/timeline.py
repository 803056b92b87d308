"""Drift over any time range, from the sketches written with the log (never from its rows).

The server's log thread keeps one sketch per time bucket (:mod:`shipyard.monitoring.buckets`).
:class:`SketchTimeline` adds up the buckets of a range and computes the same statistics as the
count windows (PSI, Jensen-Shannon distance, KS or chi-square, the same verdict rule), so a
day of traffic or a month costs a read of its bucket rows, whatever the number of
predictions. :meth:`SketchTimeline.every` gives the drift of consecutive periods (an hour each,
say) in one pass, with the statistics computed as arrays
(:mod:`shipyard.monitoring.many_windows`).

A range is made of whole buckets: a bucket belongs to the range its start lies in, so the
resolution is ``monitoring.sketch_seconds`` (60 s by default).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from shipyard.monitoring.buckets import BucketCounts, SketchLayout, read_buckets
from shipyard.monitoring.drift import ColumnDrift, DriftThresholds, drift_report, ks_binned_bounds
from shipyard.monitoring.log import MonitoringStore
from shipyard.monitoring.many_windows import columns_drift, ks_bounds_many
from shipyard.monitoring.sketch import NumericSketch, Sketch

__all__ = ["RangeDrift", "SketchTimeline"]


@dataclass(frozen=True)
class RangeDrift:
    """Drift of the predictions of one time range, from its stored sketches.

    ``first_bucket`` and ``last_bucket`` are the starts of the first and the last bucket
    read (None when the range holds none); ``ks_bounds`` gives, per numeric column, the
    bounds within which the exact KS statistic of the logged values lies
    (:func:`~shipyard.monitoring.drift.ks_binned_bounds`).
    """

    first_bucket: datetime | None
    last_bucket: datetime | None
    buckets: int
    count: int
    report: list[ColumnDrift]
    ks_bounds: dict[str, tuple[float, float]]

    @property
    def drifted(self) -> list[str]:
        """Columns with a drift verdict in this range."""
        return [row.column for row in self.report if row.drifted]

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return {
            "first_bucket": self.first_bucket.isoformat() if self.first_bucket else None,
            "last_bucket": self.last_bucket.isoformat() if self.last_bucket else None,
            "buckets": self.buckets,
            "count": self.count,
            "drifted": self.drifted,
            "report": [row.as_dict() for row in self.report],
            "ks_bounds": {name: list(bounds) for name, bounds in self.ks_bounds.items()},
        }


class SketchTimeline:
    """The stored sketches of one model version, read by time range.

    Parameters
    ----------
    store
        The prediction log's database (the buckets live beside the log).
    model_name, version
        Whose sketches.
    reference
        Name -> reference sketch of the version (its bundle's ``drift_reference.json``).
    thresholds
        When a column counts as drifted.
    """

    def __init__(
        self,
        store: MonitoringStore,
        model_name: str,
        version: int,
        reference: Mapping[str, Sketch],
        thresholds: DriftThresholds | None = None,
    ) -> None:
        self.store = store
        self.model_name = model_name
        self.version = version
        self.reference = dict(reference)
        self.thresholds = thresholds or DriftThresholds()
        self.layout = SketchLayout(self.reference)

    def buckets(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> BucketCounts:
        """Return the buckets that start in ``[since, until)`` (every writer's rows added)."""
        return read_buckets(self.store, self.model_name, self.version, self.layout, since, until)

    def between(self, since: datetime | None = None, until: datetime | None = None) -> RangeDrift:
        """Return the drift of the predictions logged in ``[since, until)`` (all when unset)."""
        found = self.buckets(since, until)
        total = found.counts.sum(axis=0) if len(found.starts) else np.zeros(self.layout.size)
        sketches = self.layout.unflatten(total.astype(np.int64))
        bounds = {
            name: ks_binned_bounds(self.reference[name].counts, sketch.counts)
            for name, sketch in sketches.items()
            if isinstance(sketch, NumericSketch)
        }
        return RangeDrift(
            first_bucket=found.starts[0] if found.starts else None,
            last_bucket=found.starts[-1] if found.starts else None,
            buckets=len(found.starts),
            count=int(found.predictions.sum()),
            report=drift_report(self.reference, sketches, self.thresholds),
            ks_bounds=bounds,
        )

    def every(
        self,
        period: timedelta,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[RangeDrift]:
        """Return the drift of each ``period`` from ``since`` (or the first bucket) on.

        Periods without predictions are left out. Each period's report equals
        :meth:`between` over that period.

        Raises
        ------
        ValueError
            When ``period`` is not positive.
        """
        if period.total_seconds() <= 0:
            raise ValueError(f"The period must be positive; got {period}.")
        found = self.buckets(since, until)
        if not found.starts:
            return []
        origin = since or found.starts[0]
        seconds = period.total_seconds()
        index = np.array(
            [math.floor((start - origin).total_seconds() / seconds) for start in found.starts]
        )
        firsts = np.concatenate([[0], np.flatnonzero(np.diff(index)) + 1])
        lasts = np.concatenate([firsts[1:] - 1, [len(index) - 1]])
        counts = np.add.reduceat(found.counts, firsts, axis=0)
        predictions = np.add.reduceat(found.predictions, firsts)
        alpha = self.thresholds.alpha / max(len(self.reference), 1)  # as drift_report
        columns: dict[str, list[ColumnDrift]] = {}
        bounds: dict[str, np.ndarray] = {}
        for name, part in self.layout.slices.items():
            reference = self.reference[name]
            bins, missing = counts[:, part][:, :-1], counts[:, part][:, -1]
            columns[name] = columns_drift(name, reference, bins, missing, self.thresholds, alpha)
            if isinstance(reference, NumericSketch):
                bounds[name] = ks_bounds_many(np.asarray(reference.counts, float), bins)
        return [
            RangeDrift(
                first_bucket=found.starts[first],
                last_bucket=found.starts[last],
                buckets=int(last - first + 1),
                count=int(predictions[window]),
                report=[columns[name][window] for name in self.reference],
                ks_bounds={
                    name: (float(pair[window, 0]), float(pair[window, 1]))
                    for name, pair in bounds.items()
                },
            )
            for window, (first, last) in enumerate(zip(firsts, lasts, strict=True))
        ]
