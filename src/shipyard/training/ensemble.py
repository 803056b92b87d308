"""Greedy ensemble selection, calibration and decision thresholds on out-of-fold predictions.

Ensemble selection follows Caruana et al. (2004, "Ensemble Selection from Libraries of
Models"): start from the best single model, then repeatedly add (with replacement) the member
whose addition most improves the metric of the averaged out-of-fold predictions. The weights are
the counts divided by the number of rounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.evaluation.metrics import GREATER_IS_BETTER, score
from shipyard.runtime.scorers import Calibration

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.training.export import ExportedModel

__all__ = [
    "CompositeModel",
    "fit_calibration",
    "greedy_ensemble",
    "tune_threshold",
]


def greedy_ensemble(
    predictions: Sequence[Any], y: Any, metric: str, rounds: int = 25
) -> list[float]:
    """Return one weight per model (summing to one) chosen by greedy selection.

    Parameters
    ----------
    predictions
        Out-of-fold outputs of each model on the same rows.
    y
        The true targets of those rows.
    metric
        The metric to optimise.
    rounds
        How many members are picked (with replacement).
    """
    sign = 1.0 if GREATER_IS_BETTER[metric] else -1.0
    outputs = [np.asarray(prediction, dtype=np.float64) for prediction in predictions]
    counts = np.zeros(len(outputs))
    total: Any = None
    for _ in range(rounds):
        best_index, best_value = 0, -np.inf
        for index, output in enumerate(outputs):
            candidate = output if total is None else total + output
            size = counts.sum() + 1
            value = sign * score(metric, y, candidate / size)
            # Ties go to the earlier (better-ranked) model, so the choice is deterministic.
            if value > best_value + 1e-12:
                best_index, best_value = index, value
        counts[best_index] += 1
        total = outputs[best_index] if total is None else total + outputs[best_index]
    return [float(count) for count in counts / counts.sum()]


def fit_calibration(method: str, positive: Any, y: Any) -> dict[str, Any]:
    """Fit a Platt or isotonic map from out-of-fold positive-class probabilities to labels."""
    values = np.asarray(positive, dtype=np.float64)
    labels = np.asarray(y, dtype=np.float64)
    if method == "platt":
        from sklearn.linear_model import LogisticRegression

        clipped = np.clip(values, 1e-12, 1 - 1e-12)
        logit = (np.log(clipped) - np.log1p(-clipped)).reshape(-1, 1)
        model = LogisticRegression(C=1e6, max_iter=1000).fit(logit, labels)
        return {"method": "platt", "a": float(model.coef_[0, 0]), "b": float(model.intercept_[0])}
    from sklearn.isotonic import IsotonicRegression

    isotonic = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(values, labels)
    return {
        "method": "isotonic",
        "x": [float(value) for value in isotonic.X_thresholds_],
        "y": [float(value) for value in isotonic.y_thresholds_],
    }


def tune_threshold(metric: str, positive: Any, y: Any) -> tuple[float, float]:
    """Return the decision threshold on P(positive) that maximises ``metric``, and its value.

    ``metric`` is ``f1``, ``accuracy`` or ``balanced_accuracy``.
    """
    values = np.asarray(positive, dtype=np.float64)
    labels = np.asarray(y).astype(bool)
    candidates = np.unique(np.quantile(values, np.linspace(0.01, 0.99, 197)))
    best_threshold, best_value = 0.5, -np.inf
    for threshold in candidates:
        predicted = values >= threshold
        true_positive = float(np.sum(predicted & labels))
        if metric == "f1":
            denominator = float(np.sum(predicted) + np.sum(labels))
            value = 2 * true_positive / denominator if denominator else 0.0
        elif metric == "accuracy":
            value = float(np.mean(predicted == labels))
        else:
            true_negative = float(np.sum(~predicted & ~labels))
            value = 0.5 * (
                true_positive / max(float(labels.sum()), 1.0)
                + true_negative / max(float((~labels).sum()), 1.0)
            )
        if value > best_value:
            best_threshold, best_value = float(threshold), value
    return best_threshold, best_value


class CompositeModel:
    """The training-time model: fitted pipelines averaged with weights, then calibrated.

    It answers ``predict_proba`` / ``predict`` like a pipeline, so the parity check compares
    it with the exported one; :meth:`export` writes the serving form.
    """

    def __init__(
        self,
        members: Sequence[tuple[Any, float]],
        task: str,
        calibration: dict[str, Any] | None = None,
    ) -> None:
        self.members = list(members)
        self.task = task
        self.calibration = calibration

    @property
    def single(self) -> bool:
        """Whether this is one plain pipeline (exported in its own format)."""
        return len(self.members) == 1 and self.calibration is None

    def _average(self, frame: pd.DataFrame) -> Any:
        total: Any = None
        for pipeline, weight in self.members:
            output = (
                pipeline.predict(frame)
                if self.task == "regression"
                else pipeline.predict_proba(frame)
            )
            if self.single:
                return np.asarray(output, dtype=np.float64)
            part = weight * np.asarray(output, dtype=np.float64)
            total = part if total is None else total + part
        return total

    def predict_proba(self, frame: pd.DataFrame) -> Any:
        """Class probabilities, averaged and calibrated as the served model computes them."""
        result = self._average(frame)
        if self.calibration is not None and self.task == "binary":
            positive = Calibration(self.calibration).apply(result[:, 1])
            return np.column_stack([1.0 - positive, positive])
        return result

    def predict(self, frame: pd.DataFrame) -> Any:
        """Regression predictions (averaged)."""
        return self._average(frame)

    def export(self) -> ExportedModel:
        """Return the serving form."""
        from shipyard.training.export import export_composite, export_pipeline

        if self.single:
            return export_pipeline(self.members[0][0], self.task)
        return export_composite(self.members, self.task, self.calibration)
