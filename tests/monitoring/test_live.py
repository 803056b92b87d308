from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from shipyard.monitoring.live import (
    LiveNumbers,
    LiveSample,
    compare_paired,
    compare_unpaired,
    live_numbers,
    unpaired_difference,
)
from shipyard.monitoring.log import MonitoringStore, PredictionFailure, PredictionRecord


def sample(version, y, outputs, answered=None, failed=0, metric="rmse"):
    y, outputs = np.asarray(y, float), np.asarray(outputs, float)
    numbers = LiveNumbers(
        version, answered if answered is not None else len(y), failed, len(y), metric
    )
    return LiveSample(numbers, y, outputs, [{} for _ in y])


def test_unpaired_difference_is_oriented_and_covers_known_gaps():
    rng = np.random.default_rng(0)
    y = rng.normal(100, 20, 400)
    good = y + rng.normal(0, 5, 400)  # RMSE about 5
    bad = y + rng.normal(0, 15, 400)  # RMSE about 15
    difference, low, high = unpaired_difference(y, bad, y[::-1], good[::-1], "rmse", seed=1)
    assert difference == pytest.approx(-10, abs=1.5)  # the new one (bad) is worse: negative
    assert low < difference < high < 0
    _, low, high = unpaired_difference(y[:200], good[:200], y[200:], good[200:], "rmse")
    assert low < 0 < high  # no difference: the interval covers zero


def test_compare_unpaired_flags_a_confidently_worse_metric_only():
    rng = np.random.default_rng(2)
    y = rng.normal(100, 20, 300)
    close, far = y + rng.normal(0, 5, 300), y + rng.normal(0, 25, 300)
    worse = compare_unpaired(
        sample(2, y, far),
        sample(1, y, close),
        min_labels=30,
        error_rate_tolerance=0.01,
        metric_tolerance=0.0,
    )
    assert worse.metric_worse
    assert not worse.error_rate_worse
    assert worse.high < 0
    assert "rmse is confidently worse" in worse.reasons[0]
    # Within a tolerance wider than the gap, it is not worse.
    tolerated = compare_unpaired(
        sample(2, y, far),
        sample(1, y, close),
        min_labels=30,
        error_rate_tolerance=0.01,
        metric_tolerance=50.0,
    )
    assert not tolerated.worse
    # Too few labels: no metric verdict at all.
    few = compare_unpaired(
        sample(2, y[:20], far[:20]),
        sample(1, y[:20], close[:20]),
        min_labels=30,
        error_rate_tolerance=0.01,
        metric_tolerance=0.0,
    )
    assert few.difference is None
    assert not few.worse


def test_compare_unpaired_flags_a_higher_error_rate():
    y = np.arange(50.0)
    new = sample(2, y, y, answered=90, failed=10)
    old = sample(1, y, y, answered=200, failed=1)
    comparison = compare_unpaired(
        new, old, min_labels=30, error_rate_tolerance=0.01, metric_tolerance=0.0
    )
    assert comparison.error_rate_increase == pytest.approx(0.10 - 1 / 201)
    assert comparison.error_rate_worse
    assert not comparison.metric_worse
    lenient = compare_unpaired(
        new, old, min_labels=30, error_rate_tolerance=0.2, metric_tolerance=0.0
    )
    assert not lenient.worse


def test_compare_paired_scores_both_on_the_same_rows():
    rng = np.random.default_rng(3)
    y = rng.normal(50, 10, 300)
    new = sample(3, y, y + rng.normal(0, 2, 300))
    old_outputs = y + rng.normal(0, 8, 300)
    better = compare_paired(
        new,
        LiveNumbers(1, 500, 0, 0, "rmse"),
        old_outputs,
        min_labels=50,
        error_rate_tolerance=0.01,
        metric_tolerance=0.0,
    )
    assert better.paired
    assert better.low > 0  # the new one is confidently better: nothing to roll back
    assert not better.worse
    assert better.old.value == pytest.approx(np.sqrt(np.mean((old_outputs - y) ** 2)))
    assert better.old.labels == 300


def test_live_numbers_read_one_version_over_a_period(tmp_path):
    store = MonitoringStore(f"sqlite:///{tmp_path / 'log.db'}")
    start = datetime.now(UTC) - timedelta(hours=1)
    records = [
        PredictionRecord(
            f"r{index}",
            "bikes",
            1 if index % 4 else 2,
            {"hour": index % 24},
            {"prediction": float(index)},
            1.0,
            at=start + timedelta(minutes=index % 60),
        )
        for index in range(400)
    ]
    store.add_predictions(records)
    store.add_feedback("bikes", [(f"r{index}", index + 3.0) for index in range(0, 400, 2)])
    store.add_failures(
        [PredictionFailure("bikes", 2, "timeout", at=start + timedelta(minutes=5))] * 3
    )
    live = live_numbers(store, "bikes", 2, "regression", [], "rmse", start, min_labels=30)
    assert (live.numbers.answered, live.numbers.failed, live.numbers.labels) == (100, 3, 100)
    assert live.numbers.error_rate == pytest.approx(3 / 103)
    assert live.numbers.value == pytest.approx(3.0)  # every labelled answer is off by 3
    assert live.numbers.low <= 3.0 <= live.numbers.high
    assert len(live.records) == 100
    # [since, until) keeps the first half hour only.
    early = live_numbers(
        store, "bikes", 2, "regression", [], "rmse", start, start + timedelta(minutes=30)
    )
    assert early.numbers.answered == sum(1 for i in range(0, 400, 4) if i % 60 < 30)
    assert early.numbers.failed == 3
    store.close()


def test_live_numbers_interval_honours_the_confidence_asked(tmp_path):
    store = MonitoringStore(f"sqlite:///{tmp_path / 'log.db'}")
    start = datetime.now(UTC) - timedelta(hours=1)
    store.add_predictions(
        [
            PredictionRecord(
                f"r{index}",
                "bikes",
                1,
                {"hour": index % 24},
                {"prediction": float(index)},
                1.0,
                at=start + timedelta(seconds=index),
            )
            for index in range(200)
        ]
    )
    # Errors from 0 to 6, so the realised RMSE has a real interval.
    store.add_feedback("bikes", [(f"r{index}", index + index % 7.0) for index in range(200)])
    widths = {}
    for confidence in (0.8, 0.99):
        live = live_numbers(
            store, "bikes", 1, "regression", [], "rmse", start, confidence=confidence
        )
        widths[confidence] = live.numbers.high - live.numbers.low
        assert live.numbers.low < live.numbers.value < live.numbers.high
    store.close()
    # Normal quantiles: the 99% interval is about twice as wide as the 80% one (it was the
    # same 95% interval whatever was asked).
    assert widths[0.99] > 1.6 * widths[0.8]


def test_comparison_reason_names_the_confidence_used():
    rng = np.random.default_rng(2)
    y = rng.normal(100, 20, 300)
    close, far = y + rng.normal(0, 5, 300), y + rng.normal(0, 25, 300)
    worse = compare_unpaired(
        sample(2, y, far),
        sample(1, y, close),
        min_labels=30,
        error_rate_tolerance=0.01,
        metric_tolerance=0.0,
        confidence=0.9,
    )
    assert worse.metric_worse
    assert "the 90% interval of the difference" in worse.reasons[0]
