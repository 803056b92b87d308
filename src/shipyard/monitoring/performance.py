"""Live performance: realised metrics once labels arrive, estimated metrics before they do.

Realised metrics use the same numpy metrics and bootstrap intervals as evaluation. Before any
label arrives, a calibrated classifier's own probabilities estimate its performance
(confidence-based performance estimation, as NannyML's CBPE): if a row is predicted positive
with probability 0.8, it is a true positive with probability 0.8. The estimate is only as good
as the calibration, so it is reported next to the realised value whenever both exist.

Examples
--------
>>> import numpy as np
>>> outputs = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
>>> round(estimated_metrics(outputs, "binary")["accuracy"], 4)
0.8
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from shipyard.evaluation.metrics import DEFAULT_METRICS, MetricValue, bootstrap_metrics

__all__ = ["estimated_metrics", "outputs_from_log", "realised_metrics"]


def outputs_from_log(
    rows: Sequence[Mapping[str, Any]], task: str, classes: Sequence[Any]
) -> tuple[np.ndarray, np.ndarray]:
    """Turn labelled log rows into ``(y, outputs)`` arrays for the metrics.

    Raises
    ------
    ValueError
        When a label is not one of the model's classes.
    """
    if task == "regression":
        y = np.array([float(row["label"]) for row in rows])
        return y, np.array([float(row["output"]["prediction"]) for row in rows])
    labels = [str(label) for label in classes]
    index = {label: position for position, label in enumerate(labels)}
    try:
        y = np.array([index[str(row["label"])] for row in rows], dtype=np.int64)
    except KeyError as error:
        raise ValueError(
            f"Feedback label {error.args[0]!r} is not a class of the model ({labels})."
        ) from None
    outputs = np.array(
        [[row["output"]["probabilities"][label] for label in labels] for row in rows]
    )
    return y, outputs


def realised_metrics(
    rows: Sequence[Mapping[str, Any]],
    task: str,
    classes: Sequence[Any],
    *,
    n_samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, MetricValue]:
    """Metrics with bootstrap CIs over labelled log rows.

    Label metrics use the threshold each answer says decided it (a fairness-mitigated
    model's group threshold), when every answer says one.
    """
    y, outputs = outputs_from_log(rows, task, classes)
    cuts = [(row["output"].get("threshold") or {}).get("value") for row in rows]
    threshold = np.array(cuts, dtype=np.float64) if cuts and None not in cuts else None
    return bootstrap_metrics(
        y,
        outputs,
        DEFAULT_METRICS[task],
        n_samples=n_samples,
        confidence=confidence,
        seed=seed,
        threshold=threshold,
    )


def _expected_auc(positive: np.ndarray) -> float:
    order = np.argsort(-positive, kind="mergesort")
    scores = positive[order]
    # Expected true and false positives as the threshold sweeps down the scores.
    true_positive = np.cumsum(scores)
    false_positive = np.cumsum(1.0 - scores)
    total_positive, total_negative = true_positive[-1], false_positive[-1]
    if total_positive <= 0 or total_negative <= 0:
        return float("nan")
    # Only the last row of each group of tied scores is a reachable threshold.
    last_of_group = np.r_[scores[1:] != scores[:-1], True]
    tpr = np.r_[0.0, true_positive[last_of_group] / total_positive]
    fpr = np.r_[0.0, false_positive[last_of_group] / total_negative]
    return float(np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2.0))


def estimated_metrics(outputs: np.ndarray, task: str) -> dict[str, float]:
    """Estimate accuracy (and, for binary tasks, ROC AUC and F1) from probabilities alone."""
    outputs = np.asarray(outputs, dtype=float)
    if task == "regression":
        return {}
    confidence = outputs.max(axis=1)
    estimates = {"accuracy": float(confidence.mean())}
    if task == "binary":
        positive = outputs[:, 1]
        predicted = positive > 0.5
        true_positive = float(positive[predicted].sum())
        false_positive = float((1.0 - positive[predicted]).sum())
        false_negative = float(positive[~predicted].sum())
        denominator = 2 * true_positive + false_positive + false_negative
        estimates["f1"] = 2 * true_positive / denominator if denominator else 0.0
        estimates["roc_auc"] = _expected_auc(positive)
    return estimates
