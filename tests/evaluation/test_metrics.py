from __future__ import annotations

import numpy as np
import pytest
from sklearn import datasets as sk_datasets
from sklearn import metrics as sk
from sklearn.linear_model import LogisticRegression, Ridge

from shipyard.evaluation.metrics import (
    DEFAULT_METRICS,
    GREATER_IS_BETTER,
    bootstrap_metrics,
    default_metric,
    score,
)

TOLERANCE = 1e-9


def reference(metric: str, y: np.ndarray, outputs: np.ndarray) -> float:
    """scikit-learn's value of each metric, in shipyard's conventions."""
    labels = list(range(outputs.shape[1])) if outputs.ndim == 2 else None
    if metric == "roc_auc":
        if outputs.shape[1] == 2:
            return float(sk.roc_auc_score(y, outputs[:, 1]))
        return float(sk.roc_auc_score(y, outputs, multi_class="ovr", average="macro"))
    if metric == "accuracy":
        return float(sk.accuracy_score(y, outputs.argmax(axis=1)))
    if metric == "f1":
        average = "binary" if outputs.shape[1] == 2 else "macro"
        return float(
            sk.f1_score(y, outputs.argmax(axis=1), average=average, labels=labels, zero_division=0)
        )
    if metric == "log_loss":
        return float(sk.log_loss(y, outputs, labels=labels))
    if metric == "rmse":
        return float(sk.root_mean_squared_error(y, outputs))
    if metric == "mae":
        return float(sk.mean_absolute_error(y, outputs))
    return float(sk.r2_score(y, outputs))


def random_probabilities(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return rng.dirichlet(np.ones(k), size=n)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_classification_metrics_match_sklearn_on_random_data(seed: int, n_classes: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 300))
    y = np.r_[np.arange(n_classes), rng.integers(0, n_classes, n - n_classes)]
    probabilities = random_probabilities(rng, n, n_classes)
    for metric in DEFAULT_METRICS["binary"]:
        assert score(metric, y, probabilities) == pytest.approx(
            reference(metric, y, probabilities), abs=TOLERANCE
        ), metric


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n_classes", [2, 4])
def test_roc_auc_averages_ties_like_sklearn(seed: int, n_classes: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    y = np.r_[np.arange(n_classes), rng.integers(0, n_classes, n - n_classes)]
    # Scores from a handful of levels: most rows tie with many others.
    levels = rng.integers(0, 4, size=(n, n_classes)).astype(float) + 0.1
    probabilities = levels / levels.sum(axis=1, keepdims=True)
    assert score("roc_auc", y, probabilities) == pytest.approx(
        reference("roc_auc", y, probabilities), abs=TOLERANCE
    )


def test_all_tied_scores_give_half() -> None:
    y = np.array([0, 1, 0, 1, 1])
    assert score("roc_auc", y, np.full((5, 2), 0.5)) == 0.5


def test_module_example_value() -> None:
    y = np.array([0, 0, 1, 1])
    probabilities = np.array([[0.9, 0.1], [0.6, 0.4], [0.65, 0.35], [0.2, 0.8]])
    assert score("roc_auc", y, probabilities) == 0.75


def test_f1_with_no_predicted_positive_is_zero() -> None:
    y = np.array([0, 1, 1])
    probabilities = np.array([[0.9, 0.1]] * 3)
    assert score("f1", y, probabilities) == 0.0
    assert reference("f1", y, probabilities) == 0.0


def test_single_class_auc_is_nan() -> None:
    assert np.isnan(score("roc_auc", np.zeros(4, dtype=int), np.full((4, 2), 0.5)))


@pytest.mark.parametrize("seed", range(5))
def test_regression_metrics_match_sklearn_on_random_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.normal(10, 5, 200)
    predicted = y + rng.normal(0, 2, 200)
    for metric in DEFAULT_METRICS["regression"]:
        assert score(metric, y, predicted) == pytest.approx(
            reference(metric, y, predicted), abs=TOLERANCE
        ), metric


def test_classification_metrics_match_sklearn_on_wine() -> None:
    x, y = sk_datasets.load_wine(return_X_y=True)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    probabilities = (
        LogisticRegression(C=0.05, max_iter=1000).fit(x[::2], y[::2]).predict_proba(x[1::2])
    )
    for metric in DEFAULT_METRICS["multiclass"]:
        assert score(metric, y[1::2], probabilities) == pytest.approx(
            reference(metric, y[1::2], probabilities), abs=TOLERANCE
        ), metric


def test_classification_metrics_match_sklearn_on_breast_cancer() -> None:
    x, y = sk_datasets.load_breast_cancer(return_X_y=True)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    probabilities = (
        LogisticRegression(C=0.01, max_iter=1000).fit(x[::2], y[::2]).predict_proba(x[1::2])
    )
    for metric in DEFAULT_METRICS["binary"]:
        assert score(metric, y[1::2], probabilities) == pytest.approx(
            reference(metric, y[1::2], probabilities), abs=TOLERANCE
        ), metric


def test_regression_metrics_match_sklearn_on_diabetes() -> None:
    x, y = sk_datasets.load_diabetes(return_X_y=True)
    predicted = Ridge(alpha=1.0).fit(x[::2], y[::2]).predict(x[1::2])
    for metric in DEFAULT_METRICS["regression"]:
        assert score(metric, y[1::2], predicted) == pytest.approx(
            reference(metric, y[1::2], predicted), abs=TOLERANCE
        ), metric


def test_default_metrics_and_directions() -> None:
    assert default_metric("binary") == "roc_auc"
    assert default_metric("regression") == "rmse"
    # Every metric a label kind reports has a direction, and so do the forecast errors that
    # monitoring compares (lower is better).
    label_metrics = {m for ms in DEFAULT_METRICS.values() for m in ms}
    assert set(GREATER_IS_BETTER) == label_metrics | {"mase", "smape"}
    assert GREATER_IS_BETTER["mase"] is False
    assert GREATER_IS_BETTER["smape"] is False


def classifier_outputs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    positive = np.clip(0.5 + 0.35 * (2 * y - 1) + rng.normal(0, 0.25, n), 0.01, 0.99)
    return y, np.column_stack([1 - positive, positive])


def test_bootstrap_interval_contains_the_point_estimate() -> None:
    y, probabilities = classifier_outputs(500, seed=0)
    results = bootstrap_metrics(
        y, probabilities, DEFAULT_METRICS["binary"], n_samples=300, confidence=0.9, seed=1
    )
    for metric, value in results.items():
        assert value.value == pytest.approx(score(metric, y, probabilities), abs=0)
        assert value.low <= value.value <= value.high, metric
        assert value.low < value.high
        assert value.confidence == 0.9
        assert set(value.as_dict()) == {"value", "low", "high", "confidence"}


def test_bootstrap_interval_narrows_with_more_data() -> None:
    widths = []
    for n in (100, 1000, 10000):
        y, probabilities = classifier_outputs(n, seed=n)
        interval = bootstrap_metrics(y, probabilities, ["roc_auc"], n_samples=200)["roc_auc"]
        widths.append(interval.high - interval.low)
    assert widths[0] > widths[1] > widths[2]
    assert widths[0] > 2.5 * widths[2]


def test_bootstrap_is_seeded() -> None:
    y, probabilities = classifier_outputs(200, seed=3)
    first = bootstrap_metrics(y, probabilities, ["accuracy"], n_samples=100, seed=5)
    again = bootstrap_metrics(y, probabilities, ["accuracy"], n_samples=100, seed=5)
    other = bootstrap_metrics(y, probabilities, ["accuracy"], n_samples=100, seed=6)
    assert first == again
    assert first != other


def test_wider_confidence_gives_a_wider_interval() -> None:
    y, probabilities = classifier_outputs(300, seed=4)
    narrow = bootstrap_metrics(y, probabilities, ["log_loss"], n_samples=300, confidence=0.8)[
        "log_loss"
    ]
    wide = bootstrap_metrics(y, probabilities, ["log_loss"], n_samples=300, confidence=0.99)[
        "log_loss"
    ]
    assert wide.low < narrow.low <= narrow.high < wide.high
