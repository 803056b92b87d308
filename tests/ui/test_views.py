"""What the monitoring page's traffic charts are built from: the log, cut into time buckets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shipyard.monitoring.log import MonitoringStore, PredictionFailure, PredictionRecord
from shipyard.ui.views import _traffic_series


def test_traffic_counts_each_version_and_the_failures_per_bucket(tmp_path: Path):
    store = MonitoringStore(f"sqlite:///{tmp_path / 'log.db'}")
    start = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    minute = timedelta(minutes=1)
    try:
        rows = [
            PredictionRecord(f"r{index}", "adult", version, {}, {}, 1.0, at=start + minute * at)
            for index, (version, at) in enumerate([(1, 0), (1, 1), (1, 7), (2, 7), (1, 30)])
        ]
        store.add_predictions(rows)
        store.add_failures([PredictionFailure("adult", 2, "internal", at=start + minute * 8)])
        store.add_predictions([PredictionRecord("other", "spam", 1, {}, {}, 1.0, at=start)])
        traffic = store.traffic("adult", start, start + 20 * minute, buckets=4)
    finally:
        store.close()
    assert traffic["bucket_seconds"] == 300
    # The row at minute 30 is after the span; the other model's row is not counted.
    assert traffic["answered"] == {"1": [2, 1, 0, 0], "2": [0, 1, 0, 0]}
    assert traffic["failed"] == [0, 1, 0, 0]
    series = _traffic_series(traffic)
    assert series["rate"]["v1"][0] == pytest.approx(2 / 5)  # per minute
    assert series["share"]["v2"][1] == pytest.approx(0.5)  # the canary's share
    assert series["error_share"][1] == pytest.approx(1 / 3)
    assert series["share"]["v1"][2] is None  # no traffic: no share, not zero
