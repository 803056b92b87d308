"""The bootstrap module on cases whose answer is known."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats as scipy_stats

from shipyard import stats
from shipyard.errors import ConfigError, ShipyardError


def _normal_sample(rows: int = 2000, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(5.0, 2.0, rows)


def _analytic_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    z = scipy_stats.norm.ppf(0.5 + confidence / 2.0)
    half = z * values.std(ddof=1) / math.sqrt(len(values))
    return values.mean() - half, values.mean() + half


@pytest.mark.parametrize("confidence", [0.8, 0.95, 0.99])
def test_percentile_interval_of_a_normal_mean_matches_the_analytic_one(confidence: float) -> None:
    values = _normal_sample()
    estimate = stats.bootstrap(
        lambda rows: values[rows].mean(), len(values), n_samples=2000, confidence=confidence
    )
    low, high = _analytic_interval(values, confidence)
    assert estimate.value == pytest.approx(values.mean())
    assert estimate.low == pytest.approx(low, abs=0.1 * (high - low))
    assert estimate.high == pytest.approx(high, abs=0.1 * (high - low))
    assert estimate.confidence == confidence
    assert estimate.method == "percentile"


def test_confidence_is_honoured() -> None:
    values = _normal_sample()
    widths = {}
    for confidence in (0.8, 0.99):
        estimate = stats.bootstrap(
            lambda rows: values[rows].mean(), len(values), confidence=confidence
        )
        widths[confidence] = estimate.high - estimate.low
    # Normal quantiles: the 99% interval is 2.576 / 1.282 = 2.01 times as wide as the 80% one.
    assert widths[0.99] / widths[0.8] == pytest.approx(2.01, rel=0.15)


def test_a_seed_reproduces_the_interval_and_another_seed_changes_it() -> None:
    values = _normal_sample(300)

    def mean(rows: np.ndarray) -> float:
        return float(values[rows].mean())

    first = stats.bootstrap(mean, len(values), n_samples=200, seed=7)
    again = stats.bootstrap(mean, len(values), n_samples=200, seed=7)
    other = stats.bootstrap(mean, len(values), n_samples=200, seed=8)
    assert first == again
    assert (first.low, first.high) != (other.low, other.high)
    assert first.value == other.value


def test_resamples_are_the_seeded_integer_draws() -> None:
    # Every percentile interval in shipyard draws rows this way; changing it changes results.
    seen: list[np.ndarray] = []

    def record(rows: np.ndarray) -> float:
        seen.append(rows.copy())
        return 0.0

    stats.bootstrap(record, 10, n_samples=3, seed=4)
    expected_generator = np.random.default_rng(4)
    for rows in seen[:3]:
        np.testing.assert_array_equal(rows, expected_generator.integers(0, 10, 10))
    np.testing.assert_array_equal(seen[3], np.arange(10))  # the point estimate, on all rows


def test_a_generator_seed_advances() -> None:
    values = _normal_sample(200)
    generator = np.random.default_rng(0)
    first = stats.bootstrap(lambda rows: values[rows].mean(), 200, n_samples=100, seed=generator)
    second = stats.bootstrap(lambda rows: values[rows].mean(), 200, n_samples=100, seed=generator)
    assert (first.low, first.high) != (second.low, second.high)


def test_statistics_share_resamples() -> None:
    values = _normal_sample(500)
    estimates = stats.bootstrap_statistics(
        lambda rows: {"mean": values[rows].mean(), "shifted": values[rows].mean() + 1.0},
        len(values),
        n_samples=300,
    )
    assert estimates["shifted"].low == pytest.approx(estimates["mean"].low + 1.0)
    assert estimates["shifted"].high == pytest.approx(estimates["mean"].high + 1.0)


def test_resamples_where_the_statistic_fails_are_dropped() -> None:
    # ROC AUC-like: undefined on a resample holding one class.
    labels = np.array([0] + [1] * 9)

    def positive_share_when_both_classes(rows: np.ndarray) -> float:
        drawn = labels[rows]
        return float(drawn.mean()) if 0 < drawn.sum() < len(drawn) else float("nan")

    estimate = stats.bootstrap(positive_share_when_both_classes, len(labels), n_samples=500)
    assert math.isfinite(estimate.low)
    assert math.isfinite(estimate.high)
    assert estimate.high < 1.0  # the all-positive resamples (share 1.0) were left out


def test_a_statistic_that_always_fails_gives_nan_bounds() -> None:
    estimate = stats.bootstrap(lambda rows: float("nan"), 20, n_samples=50)
    assert math.isnan(estimate.low)
    assert math.isnan(estimate.high)


def test_percentile_interval_known_answer() -> None:
    assert stats.percentile_interval([1.0, 2.0, 3.0, 4.0, 5.0], 0.5) == (2.0, 4.0)
    assert stats.percentile_interval([np.inf, 1.0, 3.0, np.nan], 0.5) == (1.5, 2.5)
    low, high = stats.percentile_interval([np.nan], 0.9)
    assert math.isnan(low)
    assert math.isnan(high)


def test_resample_counts_are_whole_resamples() -> None:
    counts = stats.resample_counts(50, 200, seed=1)
    assert counts.shape == (200, 50)
    np.testing.assert_array_equal(counts.sum(axis=1), np.full(200, 50.0))
    np.testing.assert_array_equal(counts, stats.resample_counts(50, 200, seed=1))
    # Each row is drawn about once per resample on average.
    assert counts.mean() == pytest.approx(1.0)


def _correlated_pair(rows: int = 400) -> tuple[np.ndarray, np.ndarray]:
    generator = np.random.default_rng(11)
    hardness = generator.normal(0.0, 1.0, rows)  # shared by both models: the pairing matters
    old = hardness + generator.normal(0.0, 0.2, rows)
    new = hardness + 0.1 + generator.normal(0.0, 0.2, rows)
    return new, old


def test_paired_interval_of_a_known_positive_difference_excludes_zero() -> None:
    new, old = _correlated_pair()
    estimate = stats.paired_difference(
        lambda rows: new[rows].mean(), lambda rows: old[rows].mean(), len(new)
    )
    assert estimate.method == "BCa"
    assert estimate.note == ""
    assert estimate.value == pytest.approx(new.mean() - old.mean())
    assert 0.0 < estimate.low < estimate.value < estimate.high
    # The analytic interval of a mean of paired differences.
    low, high = _analytic_interval(new - old, 0.95)
    assert estimate.low == pytest.approx(low, abs=0.15 * (high - low))
    assert estimate.high == pytest.approx(high, abs=0.15 * (high - low))


def test_pairing_narrows_the_interval_of_correlated_scores() -> None:
    new, old = _correlated_pair()
    paired = stats.paired_difference(
        lambda rows: new[rows].mean(), lambda rows: old[rows].mean(), len(new), n_samples=500
    )
    independent = stats.independent_difference(
        lambda rows: new[rows].mean(),
        len(new),
        lambda rows: old[rows].mean(),
        len(old),
        n_samples=500,
    )
    assert paired.value == pytest.approx(independent.value)
    assert independent.low < 0.0 < independent.high  # the rows' hardness hides the gain
    assert (paired.high - paired.low) * 3 < independent.high - independent.low


def test_independent_interval_matches_the_welch_interval() -> None:
    generator = np.random.default_rng(12)
    canary, champion = generator.normal(1.0, 1.0, 600), generator.normal(0.7, 1.5, 400)
    estimate = stats.independent_difference(
        lambda rows: canary[rows].mean(), 600, lambda rows: champion[rows].mean(), 400
    )
    half = 1.96 * math.sqrt(canary.var(ddof=1) / 600 + champion.var(ddof=1) / 400)
    difference = canary.mean() - champion.mean()
    assert estimate.method == "BCa"
    assert estimate.low == pytest.approx(difference - half, abs=0.15 * half)
    assert estimate.high == pytest.approx(difference + half, abs=0.15 * half)


def test_paired_seed_reproduces() -> None:
    new, old = _correlated_pair(200)
    runs = [
        stats.paired_difference(
            lambda rows: new[rows].mean(), lambda rows: old[rows].mean(), 200, seed=3
        )
        for _ in range(2)
    ]
    assert runs[0] == runs[1]


def test_degenerate_paired_difference_falls_back_to_percentile_with_a_note() -> None:
    scores = _normal_sample(300)
    estimate = stats.paired_difference(
        lambda rows: scores[rows].mean(), lambda rows: scores[rows].mean(), len(scores)
    )
    assert (estimate.value, estimate.low, estimate.high) == (0.0, 0.0, 0.0)
    assert estimate.method == "percentile"
    assert "BCa is undefined" in estimate.note


def test_paired_difference_with_failing_resamples_falls_back_to_percentile() -> None:
    labels = np.array([0] + [1] * 29)
    scores = np.linspace(0.0, 1.0, 30)

    def share_above_half(rows: np.ndarray) -> float:
        drawn = labels[rows]
        if drawn.min() == drawn.max():
            return float("nan")  # one class only, as ROC AUC
        return float((scores[rows] > 0.5).mean())

    estimate = stats.paired_difference(share_above_half, lambda rows: 0.0, len(labels))
    assert estimate.method == "percentile"
    assert estimate.note
    assert math.isfinite(estimate.low)
    assert math.isfinite(estimate.high)


def test_large_windows_use_the_percentile_interval_with_a_note() -> None:
    rows = stats.BCA_MAX_ROWS + 1
    new, old = _correlated_pair(rows)
    estimate = stats.paired_difference(
        lambda drawn: new[drawn].mean(), lambda drawn: old[drawn].mean(), rows, n_samples=200
    )
    assert estimate.method == "percentile"
    assert str(stats.BCA_MAX_ROWS) in estimate.note
    assert estimate.low > 0.0


def test_fewer_than_two_rows_give_no_interval() -> None:
    estimate = stats.paired_difference(lambda rows: 1.0, lambda rows: 0.0, 1)
    assert estimate.value == 1.0
    assert math.isnan(estimate.low)
    assert math.isnan(estimate.high)
    assert "fewer than two rows" in estimate.note


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"confidence": 95}, "'confidence' parameter of shipyard.stats.bootstrap"),
        ({"confidence": 0.0}, "strictly between 0 and 1"),
        ({"n_samples": 0}, "'n_samples' parameter of shipyard.stats.bootstrap"),
    ],
)
def test_bad_parameters_are_refused_with_a_fix(arguments: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        stats.bootstrap(lambda rows: 0.0, 10, **arguments)  # type: ignore[arg-type]
    assert isinstance(raised.value, ShipyardError)
    assert isinstance(raised.value, ValueError)


def test_estimate_as_dict_is_plain() -> None:
    estimate = stats.Estimate(1.0, 0.5, 1.5, 0.9)
    assert estimate.as_dict() == {
        "value": 1.0,
        "low": 0.5,
        "high": 1.5,
        "confidence": 0.9,
        "method": "percentile",
        "note": "",
    }


def test_the_module_is_a_foundation_layer() -> None:
    code = (
        "import json, sys, shipyard.stats; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('shipyard'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert set(json.loads(result.stdout)) <= {
        "shipyard",
        "shipyard._version",
        "shipyard.errors",
        "shipyard.stats",
    }
