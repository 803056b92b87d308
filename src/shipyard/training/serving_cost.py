"""Serving cost: predictions per second through the served path, one record and a batch."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from shipyard.runtime.predictor import Predictor

__all__ = ["ServingCost", "measure_serving_cost"]


@dataclass(frozen=True)
class ServingCost:
    """Median single-record latency and throughput of one exported model."""

    single_ms: float
    single_per_second: float
    batch_per_second: float
    batch_size: int


def measure_serving_cost(
    predictor: Predictor,
    records: Sequence[Mapping[str, Any]],
    *,
    single_calls: int = 30,
    batch_size: int = 1000,
) -> ServingCost:
    """Time ``score_records`` on one record at a time and on a batch of records.

    The single-record figure is the median of ``single_calls`` calls (after one warm-up call);
    the batch figure is the best of two runs over ``batch_size`` records (repeated from
    ``records`` when fewer are given).
    """
    rows = list(records)
    predictor.score_records(rows[:1])
    timings = []
    for index in range(single_calls):
        record = rows[index % len(rows)]
        tick = time.perf_counter()
        predictor.score_records([record])
        timings.append(time.perf_counter() - tick)
    single = float(np.median(timings))
    batch = (rows * (batch_size // len(rows) + 1))[:batch_size]
    best = float("inf")
    for _ in range(2):
        tick = time.perf_counter()
        predictor.score_records(batch)
        best = min(best, time.perf_counter() - tick)
    return ServingCost(single * 1000.0, 1.0 / single, batch_size / best, batch_size)
