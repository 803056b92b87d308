from __future__ import annotations

import math

import numpy as np
import pytest

from shipyard.monitoring.gate import compare_models


def probabilities(logits):
    positive = 1 / (1 + np.exp(-logits))
    return np.column_stack([1 - positive, positive])


@pytest.fixture
def window():
    rng = np.random.default_rng(42)
    y = rng.integers(0, 2, 3000)
    return y, rng.normal(0, 1, 3000)


def test_clearly_better_challenger_passes(window):
    y, noise = window
    result = compare_models(
        y, probabilities(3 * y - 1.5 + noise), probabilities(1 * y - 0.5 + noise), "roc_auc"
    )
    assert result.passed
    assert result.low > 0
    assert result.low <= result.improvement <= result.high
    assert "improves" in result.reason


def test_identical_models_do_not_pass(window):
    y, noise = window
    outputs = probabilities(2 * y - 1 + noise)
    result = compare_models(y, outputs, outputs.copy(), "roc_auc")
    assert not result.passed
    assert result.improvement == 0.0


def test_worse_challenger_fails_with_negative_interval(window):
    y, noise = window
    result = compare_models(
        y, probabilities(0.5 * y + noise), probabilities(3 * y + noise), "log_loss"
    )
    assert not result.passed
    assert result.high < 0  # oriented: positive is better, so a worse log loss is negative


def test_too_few_samples_never_pass():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 50)
    result = compare_models(
        y,
        probabilities(5 * y - 2.5),
        probabilities(rng.normal(size=50)),
        "roc_auc",
        min_samples=200,
    )
    assert not result.passed
    assert math.isnan(result.low)
    assert "at least 200" in result.reason


def test_regression_metric_orientation():
    rng = np.random.default_rng(5)
    y = rng.normal(size=1000)
    close, far = y + rng.normal(0, 0.1, 1000), y + rng.normal(0, 1.0, 1000)
    assert compare_models(y, close, far, "rmse").passed
    assert not compare_models(y, far, close, "rmse").passed


def test_small_true_improvement_needs_enough_data():
    """A real but small gain is detected on a large window and not claimed on a small one."""
    rng = np.random.default_rng(9)
    y = rng.integers(0, 2, 20_000)
    # Independent noise: the models disagree row by row, as real models do.
    better = probabilities(1.3 * y + rng.normal(0, 1, 20_000))
    baseline = probabilities(1.0 * y + rng.normal(0, 1, 20_000))
    assert compare_models(y, better, baseline, "roc_auc", n_samples=300).passed
    small = slice(0, 300)
    assert not compare_models(
        y[small], better[small], baseline[small], "roc_auc", n_samples=300
    ).passed
