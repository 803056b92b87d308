"""Metrics on raw model outputs, and bootstrap confidence intervals for them.

Classification metrics take integer class indices and a probability matrix (one column per
class, in the model's class order; for binary tasks the positive class is last). Regression
metrics take true and predicted values. The implementations are plain numpy so that a thousand
bootstrap resamples take a second, and tests check them against scikit-learn.

Examples
--------
>>> import numpy as np
>>> y = np.array([0, 0, 1, 1])
>>> probabilities = np.array([[0.9, 0.1], [0.6, 0.4], [0.65, 0.35], [0.2, 0.8]])
>>> float(score("roc_auc", y, probabilities))
0.75
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from shipyard import stats

__all__ = [
    "DEFAULT_METRICS",
    "GREATER_IS_BETTER",
    "LABEL_METRICS",
    "MetricValue",
    "bootstrap_metrics",
    "default_metric",
    "predicted_classes",
    "score",
]

Array = npt.NDArray[Any]
Threshold = float | Array | None
"""A binary decision threshold: one for every row, one per row, or none (the most probable)."""

GREATER_IS_BETTER = {
    "roc_auc": True,
    "accuracy": True,
    "f1": True,
    "log_loss": False,
    "rmse": False,
    "mae": False,
    # Forecast errors (scaled by the seasonal naive's, and symmetric percentage).
    "mase": False,
    "smape": False,
    "r2": True,
}
DEFAULT_METRICS = {
    "binary": ("roc_auc", "accuracy", "f1", "log_loss"),
    "multiclass": ("roc_auc", "accuracy", "f1", "log_loss"),
    "regression": ("rmse", "mae", "r2"),
}


def default_metric(task: str) -> str:
    """Return the metric used to pick models when the config says ``auto``."""
    return {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}[task]


@dataclass(frozen=True)
class MetricValue:
    """A metric's point estimate and its confidence interval."""

    value: float
    low: float
    high: float
    confidence: float

    def as_dict(self) -> dict[str, float]:
        """Plain dict for JSON and the registry."""
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.value:.4f} [{self.low:.4f}, {self.high:.4f}]"


def _binary_auc(positive: Array, scores: Array) -> float:
    n_positive = int(positive.sum())
    n_negative = len(positive) - n_positive
    if n_positive == 0 or n_negative == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores, sorted_positive = scores[order], positive[order]
    # Average ranks over ties, as the Mann-Whitney statistic requires.
    starts_group = np.r_[True, sorted_scores[1:] != sorted_scores[:-1]]
    group = np.cumsum(starts_group) - 1
    ends = np.cumsum(np.bincount(group))
    starts = ends - np.bincount(group)
    ranks = ((starts + 1 + ends) / 2.0)[group]
    rank_sum = float(ranks[sorted_positive].sum())
    return (rank_sum - n_positive * (n_positive + 1) / 2.0) / (n_positive * n_negative)


def _roc_auc(y: Array, probabilities: Array) -> float:
    if probabilities.shape[1] == 2:
        return _binary_auc(y == 1, probabilities[:, 1])
    # Multiclass: unweighted mean of one-vs-rest AUCs over the classes present.
    aucs = [_binary_auc(y == k, probabilities[:, k]) for k in range(probabilities.shape[1])]
    return float(np.nanmean(aucs)) if not np.all(np.isnan(aucs)) else float("nan")


def predicted_classes(probabilities: Array, threshold: Threshold = None) -> Array:
    """Return the predicted class index of each row.

    The most probable class, or for a binary task with a tuned ``threshold``, the positive
    class when its probability reaches the threshold (one number, or one per row: a
    fairness-mitigated model's group thresholds).
    """
    probabilities = np.asarray(probabilities)
    if threshold is not None and probabilities.shape[1] == 2:
        return (probabilities[:, 1] >= threshold).astype(np.int64)
    return np.asarray(np.argmax(probabilities, axis=1), dtype=np.int64)


def _accuracy(y: Array, probabilities: Array, threshold: Threshold = None) -> float:
    return float(np.mean(predicted_classes(probabilities, threshold) == y))


def _f1(y: Array, probabilities: Array, threshold: Threshold = None) -> float:
    predicted = predicted_classes(probabilities, threshold)
    classes = [1] if probabilities.shape[1] == 2 else range(probabilities.shape[1])
    scores = []
    for k in classes:
        true_positive = np.sum((predicted == k) & (y == k))
        denominator = np.sum(predicted == k) + np.sum(y == k)
        scores.append(2.0 * true_positive / denominator if denominator else 0.0)
    return float(np.mean(scores))


def _log_loss(y: Array, probabilities: Array) -> float:
    clipped = np.clip(probabilities[np.arange(len(y)), y], 1e-15, 1.0)
    return float(-np.mean(np.log(clipped)))


def _rmse(y: Array, predicted: Array) -> float:
    return float(np.sqrt(np.mean((y - predicted) ** 2)))


def _mae(y: Array, predicted: Array) -> float:
    return float(np.mean(np.abs(y - predicted)))


def _r2(y: Array, predicted: Array) -> float:
    total = np.sum((y - y.mean()) ** 2)
    return float(1.0 - np.sum((y - predicted) ** 2) / total) if total > 0 else float("nan")


LABEL_METRICS = frozenset({"accuracy", "f1"})
"""Metrics of the predicted label, which a tuned decision threshold changes."""

_METRICS: dict[str, Callable[[Array, Array], float]] = {
    "roc_auc": _roc_auc,
    "accuracy": _accuracy,
    "f1": _f1,
    "log_loss": _log_loss,
    "rmse": _rmse,
    "mae": _mae,
    "r2": _r2,
}


def _metric(metric: str, threshold: Threshold) -> Callable[[Array, Array], float]:
    if threshold is None or metric not in LABEL_METRICS:
        return _METRICS[metric]
    label_metric = _accuracy if metric == "accuracy" else _f1
    return lambda y, outputs: label_metric(y, outputs, threshold)


def score(metric: str, y: Array, outputs: Array, threshold: Threshold = None) -> float:
    """Compute one metric.

    Parameters
    ----------
    metric
        One of ``roc_auc``, ``accuracy``, ``f1``, ``log_loss``, ``rmse``, ``mae``, ``r2``.
    y
        Class indices (classification) or true values (regression).
    outputs
        Probability matrix (classification) or predicted values (regression).
    threshold
        A binary classifier's decision threshold (or one per row); label metrics (accuracy,
        F1) use it.
    """
    return _metric(metric, threshold)(np.asarray(y), np.asarray(outputs))


def bootstrap_metrics(
    y: Array,
    outputs: Array,
    metrics: Sequence[str],
    *,
    n_samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    threshold: Threshold = None,
) -> dict[str, MetricValue]:
    """Point estimates with percentile-bootstrap confidence intervals.

    All metrics share the same resamples (:func:`shipyard.stats.bootstrap_statistics`), so
    their intervals are comparable; a resample where a metric is undefined (ROC AUC of one
    class) is left out of that metric's interval. ``threshold``
    (a binary classifier's tuned decision threshold, or one per row for a model with group
    thresholds) applies to the label metrics.
    """
    y, outputs = np.asarray(y), np.asarray(outputs)
    if threshold is not None and np.ndim(threshold) > 0:
        per_row = np.asarray(threshold, dtype=np.float64)

        def resampled(rows: stats.Indices) -> dict[str, float]:
            return {
                metric: score(metric, y[rows], outputs[rows], per_row[rows]) for metric in metrics
            }

    else:
        functions = {metric: _metric(metric, threshold) for metric in metrics}

        def resampled(rows: stats.Indices) -> dict[str, float]:
            return {metric: functions[metric](y[rows], outputs[rows]) for metric in metrics}

    estimates = stats.bootstrap_statistics(
        resampled, len(y), n_samples=n_samples, confidence=confidence, seed=seed
    )
    return {
        metric: MetricValue(estimate.value, estimate.low, estimate.high, confidence)
        for metric, estimate in estimates.items()
    }
