"""Known labels, precision at k and the test metrics of an anomaly model.

Anomaly models learn without labels. When ``data.target`` names a column of known labels
(some rows may have none), it is kept out of the features and used only to evaluate: the
labelled rows whose value is ``positive_class`` (default: ``1`` or ``true`` when the labels
are 0/1 or booleans) are the known anomalies. Precision at k is the share of known anomalies
among the k labelled test rows with the highest scores; average precision summarises the
whole ranking.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from shipyard.errors import ConfigError, DataError

__all__ = ["average_precision", "known_anomalies", "precision_at_k", "test_metrics"]

Vector = npt.NDArray[np.float64]


def _positive_value(labels: Any, positive_class: str | int | None) -> Any:
    present = set(labels.dropna().tolist())
    if positive_class is not None:
        matching = [value for value in present if str(value) == str(positive_class)]
        if not matching:
            raise ConfigError(
                f"positive_class {positive_class!r} is not a value of the label column; its "
                f"values are {', '.join(sorted(map(str, present)))}."
            )
        return matching[0]
    if present <= {0, 1}:  # 0/1 or booleans (True == 1)
        return next((value for value in present if value == 1), 1)
    raise ConfigError(
        "Set positive_class to the label value that marks an anomaly; the label column holds "
        f"{', '.join(sorted(map(str, present))[:10])}."
    )


def known_anomalies(
    frame: Any, target: str | None, positive_class: str | int | None
) -> tuple[Vector, npt.NDArray[np.bool_]] | None:
    """Return ``(is_anomaly, labelled)`` per row, or None without a label column.

    Raises
    ------
    DataError
        When the label column is missing or holds no label at all.
    """
    if target is None:
        return None
    if target not in frame.columns:
        raise DataError(
            f"data.target '{target}' (the known anomaly labels) is not in the data; columns "
            f"are {', '.join(map(str, frame.columns))}."
        )
    labels = frame[target]
    labelled = labels.notna().to_numpy()
    if not labelled.any():
        raise DataError(f"The label column '{target}' has no value; unset data.target.")
    positive = _positive_value(labels, positive_class)
    is_anomaly = np.asarray([value == positive for value in labels.tolist()], dtype=np.float64)
    return is_anomaly, labelled


def precision_at_k(scores: Vector, is_anomaly: Vector, k: int) -> float:
    """Return the share of known anomalies among the ``k`` highest scores (ties: first rows)."""
    if len(scores) == 0:
        return float("nan")
    top = np.argsort(-scores, kind="stable")[: min(k, len(scores))]
    return float(is_anomaly[top].mean())


def average_precision(scores: Vector, is_anomaly: Vector) -> float:
    """Average precision of the ranking by score (NaN without both kinds of rows)."""
    from sklearn.metrics import average_precision_score

    if is_anomaly.min() == is_anomaly.max():
        return float("nan")
    return float(average_precision_score(is_anomaly, scores))


def test_metrics(
    scores: Vector,
    flags: Vector,
    labels: tuple[Vector, npt.NDArray[np.bool_]] | None,
    k: int,
    n_samples: int,
    confidence: float,
    seed: int,
) -> dict[str, Any]:
    """Anomaly rate, and with labels precision at k and average precision, bootstrapped."""
    from shipyard.evaluation.metrics import MetricValue
    from shipyard.stats import bootstrap

    def estimate(statistic: Any, rows: int) -> MetricValue:
        found = bootstrap(statistic, rows, n_samples=n_samples, confidence=confidence, seed=seed)
        return MetricValue(found.value, found.low, found.high, found.confidence)

    metrics: dict[str, Any] = {}
    if labels is not None:
        is_anomaly, labelled = labels
        known_scores, known = scores[labelled], is_anomaly[labelled]
        top = min(k, len(known_scores))
        metrics["precision_at_k"] = estimate(
            lambda rows: precision_at_k(known_scores[rows], known[rows], top), len(known)
        )
        metrics["average_precision"] = estimate(
            lambda rows: average_precision(known_scores[rows], known[rows]), len(known)
        )
    metrics["anomaly_rate"] = estimate(lambda rows: float(flags[rows].mean()), len(flags))
    return metrics
