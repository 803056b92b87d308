from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from shipyard import datasets
from shipyard.data.contract import infer_contract
from shipyard.monitoring import (
    CategoricalSketch,
    DriftThresholds,
    NumericSketch,
    chi_square,
    column_drift,
    drift_report,
    js_distance,
    ks_binned,
    psi,
    sketch_from_json,
)
from shipyard.monitoring.reference import (
    PREDICTION_COLUMN,
    build_reference,
    reference_from_json,
    reference_to_json,
)


def per_value_counts(reference, current):
    """Counts with one bin per distinct value: binned KS then equals the exact KS."""
    values = np.union1d(reference, current)
    return (
        [int(np.sum(reference == v)) for v in values],
        [int(np.sum(current == v)) for v in values],
    )


@pytest.mark.parametrize("shift", [0, 1, 3])
def test_binned_ks_equals_scipy_when_each_value_has_its_bin(shift):
    rng = np.random.default_rng(7)
    reference = rng.integers(0, 40, 3000)
    current = rng.integers(0 + shift, 40 + shift, 2000)
    expected = stats.ks_2samp(reference, current, method="asymp")
    statistic, p_value = ks_binned(*per_value_counts(reference, current))
    assert statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert p_value == pytest.approx(expected.pvalue, rel=1e-6, abs=1e-12)


def test_binned_ks_is_a_lower_bound_with_coarse_bins():
    rng = np.random.default_rng(3)
    reference, current = rng.normal(0, 1, 5000), rng.normal(0.3, 1, 5000)
    sketch = NumericSketch.from_values(reference, bins=20)
    window = sketch.empty()
    window.update(current)
    statistic, _ = ks_binned(sketch.counts, window.counts)
    exact = stats.ks_2samp(reference, current).statistic
    assert statistic <= exact + 1e-12
    assert statistic > 0.8 * exact


def test_chi_square_equals_scipy_contingency():
    expected, actual = [120, 80, 40, 0], [60, 70, 50, 0]
    statistic, p_value = chi_square(expected, actual)
    reference = stats.chi2_contingency(np.array([expected[:3], actual[:3]]), correction=False)
    assert statistic == pytest.approx(reference.statistic)
    assert p_value == pytest.approx(reference.pvalue)


def test_js_distance_equals_scipy():
    p, q = [5, 10, 20, 0], [10, 10, 5, 5]
    assert js_distance(p, q) == pytest.approx(jensenshannon(p, q, base=2))
    assert js_distance(p, p) == pytest.approx(0.0, abs=1e-12)


def test_psi_matches_its_formula_and_is_zero_without_shift():
    expected, actual = np.array([40, 30, 30]), np.array([20, 30, 50])
    e, a = expected / expected.sum(), actual / actual.sum()
    assert psi(expected, actual) == pytest.approx(float(np.sum((a - e) * np.log(a / e))))
    assert psi(expected, expected) == 0.0


def test_sketches_merge_and_round_trip():
    rng = np.random.default_rng(0)
    reference = NumericSketch.from_values(rng.normal(size=1000), bins=10)
    first, second, both = reference.empty(), reference.empty(), reference.empty()
    a, b = rng.normal(size=300), rng.normal(size=200)
    first.update(a)
    second.update([*b, None, float("nan")])
    both.update([*a, *b, None, float("nan")])
    assert first.merge(second) == both
    assert both.missing == 2
    assert sketch_from_json(both.to_json()) == both
    categories = CategoricalSketch.from_values(["a", "b", "b", None])
    window = categories.empty()
    window.update(["b", "z", None])
    assert window.counts == [0, 1, 1]
    assert window.missing == 1
    assert sketch_from_json(window.to_json()) == window
    with pytest.raises(ValueError, match="different bins"):
        reference.merge(NumericSketch.from_values([1.0, 2.0, 3.0], bins=2))


def test_verdict_needs_significance_effect_and_enough_samples():
    rng = np.random.default_rng(11)
    reference = NumericSketch.from_values(rng.normal(0, 1, 20_000))
    thresholds = DriftThresholds(alpha=0.01, psi=0.1, min_samples=100)

    def window_of(values):
        window = reference.empty()
        window.update(values)
        return window

    same = column_drift("x", reference, window_of(rng.normal(0, 1, 5000)), thresholds)
    shifted = column_drift("x", reference, window_of(rng.normal(1, 1, 5000)), thresholds)
    tiny = column_drift("x", reference, window_of(rng.normal(1, 1, 50)), thresholds)
    assert same.drifted is False
    assert shifted.drifted is True
    assert shifted.p_value < 1e-10
    assert tiny.drifted is None


def test_reference_from_adult_flags_a_real_shift():
    adult = datasets.load("adult")
    contract = infer_contract(adult.train, "income")
    outputs = np.column_stack([np.full(len(adult.train), 0.7), np.full(len(adult.train), 0.3)])
    reference = build_reference(adult.train, contract, outputs, "binary")
    assert set(reference) == {*contract.feature_names, PREDICTION_COLUMN}
    assert reference_from_json(reference_to_json(reference)) == reference
    # A window of older people with longer hours: age and hours drift, sex does not.
    older = adult.test[(adult.test["age"] > 45) & (adult.test["hours-per-week"] >= 45)]
    window = {name: sketch.empty() for name, sketch in reference.items()}
    for name in contract.feature_names:
        window[name].update(older[name].to_numpy(dtype=object))
    window[PREDICTION_COLUMN].update(np.full(len(older), 0.3))
    report = {row.column: row for row in drift_report(reference, window)}
    assert report["age"].drifted is True
    assert report["hours-per-week"].drifted is True
    assert report["race"].drifted is False
