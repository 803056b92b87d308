"""Drift over time ranges from stored sketches: the same statistics, and KS with its bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from shipyard.monitoring.buckets import SketchBook
from shipyard.monitoring.drift import (
    DriftThresholds,
    chi_square,
    drift_report,
    js_distance,
    ks_binned,
    ks_binned_bounds,
    psi,
)
from shipyard.monitoring.log import MonitoringStore, PredictionRecord
from shipyard.monitoring.many_windows import (
    chi_square_many,
    js_many,
    ks_bounds_many,
    ks_many,
    psi_many,
)
from shipyard.monitoring.reference import PREDICTION_COLUMN
from shipyard.monitoring.sketch import CategoricalSketch, NumericSketch
from shipyard.monitoring.sketching import RowSketcher
from shipyard.monitoring.timeline import SketchTimeline

START = datetime(2026, 5, 4, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize("seed", range(6))
def test_the_exact_ks_statistic_lies_within_the_sketch_bounds(seed):
    rng = np.random.default_rng(seed)
    reference = rng.normal(0, 1, 4000)
    current = rng.normal(rng.uniform(-0.5, 0.5), rng.uniform(0.7, 1.5), 3000)
    sketch = NumericSketch.from_values(reference, bins=20)
    window = sketch.empty()
    window.update(current)
    exact = stats.ks_2samp(reference, current).statistic
    lower, upper = ks_binned_bounds(sketch.counts, window.counts)
    assert lower == ks_binned(sketch.counts, window.counts)[0]
    assert lower - 1e-12 <= exact <= upper + 1e-12
    # The stated width: at most the largest share of one bin, on either side.
    largest = max(max(sketch.counts) / sum(sketch.counts), max(window.counts) / len(current))
    assert upper - lower <= largest + 1e-12
    assert ks_bounds_many(sketch.counts, np.array([window.counts])).tolist() == [[lower, upper]]


def test_the_bounds_close_when_every_value_has_its_bin():
    rng = np.random.default_rng(11)
    reference, current = rng.integers(0, 12, 3000), rng.integers(1, 13, 2000)
    edges = [float(value) for value in range(12)]  # one bin per integer
    sketch = NumericSketch(edges, [0] * 13)
    sketch.update(reference)
    window = sketch.empty()
    window.update(current)
    lower, _ = ks_binned_bounds(sketch.counts, window.counts)
    assert lower == pytest.approx(stats.ks_2samp(reference, current).statistic, abs=1e-12)


def test_array_statistics_equal_scipy_and_the_one_window_functions():
    rng = np.random.default_rng(5)
    expected = rng.integers(0, 200, 12)
    expected[3] = 0  # a category the reference never had
    windows = rng.integers(0, 80, (25, 12))
    windows[4] = 0  # an empty window
    windows[7, :11] = 0  # a window with one category only
    windows[9, 3] = 0
    psis, distances = psi_many(expected, windows), js_many(expected, windows)
    ks_statistics, ks_p_values = ks_many(expected, windows)
    chi_statistics, chi_p_values = chi_square_many(expected, windows)
    for index, counts in enumerate(windows):
        assert psis[index] == pytest.approx(psi(expected, counts), rel=1e-9, abs=1e-12)
        assert distances[index] == pytest.approx(js_distance(expected, counts), abs=1e-9)
        assert (ks_statistics[index], ks_p_values[index]) == pytest.approx(
            ks_binned(expected, counts), rel=1e-9, abs=1e-12
        )
        assert (chi_statistics[index], chi_p_values[index]) == pytest.approx(
            chi_square(expected, counts), rel=1e-9, abs=1e-12
        )
        if counts.sum():
            assert distances[index] == pytest.approx(
                jensenshannon(expected, counts, base=2), abs=1e-9
            )
    # Window 9 has no count where the reference has none: scipy's table leaves it out.
    table = np.array([np.delete(expected, 3), np.delete(windows[9], 3)])
    assert chi_statistics[9] == pytest.approx(
        stats.chi2_contingency(table, correction=False).statistic
    )


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """Six hours of synthetic traffic, one prediction every 20 s; the last two hours shift."""
    rng = np.random.default_rng(2)
    reference_values = rng.normal(40, 10, 5000)
    reference = {
        "age": NumericSketch.from_values(reference_values),
        "sex": CategoricalSketch.from_values(rng.choice(["F", "M"], 5000)),
        PREDICTION_COLUMN: NumericSketch.from_values(rng.uniform(0, 1, 5000)),
    }
    sketcher = RowSketcher(reference, "binary", ["no", "yes"])
    path = tmp_path_factory.mktemp("timeline") / "log.db"
    store = MonitoringStore(f"sqlite:///{path}")
    book = SketchBook(lambda *_: sketcher, bucket_seconds=60)
    rows = []
    for index in range(6 * 180):
        shifted = index >= 4 * 180
        age = rng.normal(55 if shifted else 40, 10)
        rows.append(
            PredictionRecord(
                f"r{index}",
                "m",
                1,
                {
                    "age": None if index % 50 == 0 else float(age),
                    "sex": str(rng.choice(["F", "M", "X"] if shifted else ["F", "M"])),
                },
                {"probabilities": {"no": 0.5, "yes": float(rng.uniform())}},
                1.0,
                at=START + timedelta(seconds=20 * index),
            )
        )
    for start in range(0, len(rows), 64):
        store.add_batch(rows[start : start + 64], (), book)
    yield store, sketcher, rows
    store.close()


def test_a_range_reports_what_a_sketch_of_its_rows_reports(logged):
    store, sketcher, rows = logged
    timeline = SketchTimeline(store, "m", 1, sketcher.reference)
    since, until = START + timedelta(hours=4), START + timedelta(hours=5)
    found = timeline.between(since, until)
    inside = [row for row in rows if since <= row.at < until]
    direct = sketcher.empty()
    sketcher.add(direct, [row.inputs for row in inside], [row.output for row in inside])
    assert found.count == len(inside) == 180
    assert (found.first_bucket, found.last_bucket) == (since, until - timedelta(minutes=1))
    assert found.buckets == 60
    assert [row.as_dict() for row in found.report] == [
        row.as_dict() for row in drift_report(sketcher.reference, direct)
    ]
    assert found.drifted == ["age", "sex"]
    assert timeline.between(START, START + timedelta(hours=1)).drifted == []
    lower, upper = found.ks_bounds["age"]
    assert lower == found.report[0].statistic <= upper
    assert set(found.ks_bounds) == {"age", PREDICTION_COLUMN}


def test_every_period_equals_its_own_range(logged):
    store, sketcher, _ = logged
    thresholds = DriftThresholds(min_samples=50)
    timeline = SketchTimeline(store, "m", 1, sketcher.reference, thresholds)
    hours = timeline.every(timedelta(hours=1))
    assert [period.count for period in hours] == [180] * 6
    assert [period.drifted for period in hours] == [[], [], [], [], ["age", "sex"], ["age", "sex"]]
    for hour, period in enumerate(hours):
        single = timeline.between(START + timedelta(hours=hour), START + timedelta(hours=hour + 1))
        assert period.first_bucket == single.first_bucket
        assert period.last_bucket == single.last_bucket
        for mine, theirs in zip(period.report, single.report, strict=True):
            assert mine.drifted == theirs.drifted
            assert (mine.samples, mine.missing_share) == (theirs.samples, theirs.missing_share)
            for field in ("statistic", "p_value", "psi", "js_distance"):
                assert getattr(mine, field) == pytest.approx(
                    getattr(theirs, field), rel=1e-9, abs=1e-12
                )
        assert set(period.ks_bounds) == set(single.ks_bounds)
        for name, bounds in period.ks_bounds.items():
            assert bounds == pytest.approx(single.ks_bounds[name], abs=1e-12)
    # Periods start at `since`; minutes without predictions would be left out.
    minutes = timeline.every(timedelta(minutes=30), since=START + timedelta(hours=5))
    assert [period.count for period in minutes] == [90, 90]
    assert timeline.every(timedelta(hours=1), since=START + timedelta(days=1)) == []
    with pytest.raises(ValueError, match="positive"):
        timeline.every(timedelta(0))
