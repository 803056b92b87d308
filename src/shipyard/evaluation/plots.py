"""Evaluation plots as PNG bytes, drawn with matplotlib's Agg backend (no display needed).

Classification: ROC, precision-recall, calibration, confusion matrix. Regression: residuals and
predicted against actual. Both: feature importance and explanation summary.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from shipyard.errors import require

__all__ = ["evaluation_plots"]


def _pyplot() -> Any:
    matplotlib = require("matplotlib", "report")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as pyplot

    return pyplot


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=90)
    figure.clear()
    _pyplot().close(figure)
    return buffer.getvalue()


def _bars(pyplot: Any, values: Mapping[str, float], title: str, xlabel: str) -> bytes:
    top = list(values.items())[:15][::-1]
    figure, axes = pyplot.subplots(figsize=(6, 0.3 * len(top) + 1.2))
    axes.barh([name for name, _ in top], [value for _, value in top], color="#3b6ea5")
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    return _png(figure)


def _classification(
    pyplot: Any, y: npt.NDArray[Any], probabilities: npt.NDArray[Any], classes: Sequence[Any]
) -> dict[str, bytes]:
    from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

    plots = {}
    positive = len(classes) - 1 if len(classes) == 2 else None
    if positive is not None and len(np.unique(y)) == 2:
        scores, truth = probabilities[:, positive], (y == positive).astype(int)
        false_positive, true_positive, _ = roc_curve(truth, scores)
        figure, axes = pyplot.subplots(figsize=(5, 4.5))
        axes.plot(false_positive, true_positive, color="#3b6ea5")
        axes.plot([0, 1], [0, 1], linestyle="--", color="grey")
        axes.set(title="ROC curve", xlabel="False positive rate", ylabel="True positive rate")
        plots["roc"] = _png(figure)

        precision, recall, _ = precision_recall_curve(truth, scores)
        figure, axes = pyplot.subplots(figsize=(5, 4.5))
        axes.plot(recall, precision, color="#3b6ea5")
        axes.axhline(truth.mean(), linestyle="--", color="grey")
        axes.set(title="Precision-recall curve", xlabel="Recall", ylabel="Precision")
        plots["precision_recall"] = _png(figure)

        edges = np.linspace(0.0, 1.0, 11)
        bins = np.clip(np.digitize(scores, edges) - 1, 0, 9)
        mean_score = [scores[bins == b].mean() for b in range(10) if np.any(bins == b)]
        observed = [truth[bins == b].mean() for b in range(10) if np.any(bins == b)]
        figure, axes = pyplot.subplots(figsize=(5, 4.5))
        axes.plot(mean_score, observed, marker="o", color="#3b6ea5")
        axes.plot([0, 1], [0, 1], linestyle="--", color="grey")
        axes.set(
            title="Calibration",
            xlabel=f"Predicted probability of '{classes[-1]}'",
            ylabel="Observed share",
        )
        plots["calibration"] = _png(figure)

    predicted = np.argmax(probabilities, axis=1)
    matrix = confusion_matrix(y, predicted, labels=list(range(len(classes))))
    figure, axes = pyplot.subplots(figsize=(4.5, 4))
    axes.imshow(matrix, cmap="Blues")
    for (row, column), count in np.ndenumerate(matrix):
        color = "white" if count > matrix.max() / 2 else "black"
        axes.text(column, row, str(count), ha="center", va="center", color=color)
    labels = [str(label) for label in classes]
    axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    axes.set(title="Confusion matrix", xlabel="Predicted", ylabel="Actual")
    plots["confusion_matrix"] = _png(figure)
    return plots


def _regression(pyplot: Any, y: npt.NDArray[Any], predicted: npt.NDArray[Any]) -> dict[str, bytes]:
    residuals = y - predicted
    figure, axes = pyplot.subplots(figsize=(5, 4.5))
    axes.scatter(predicted, residuals, s=6, alpha=0.5, color="#3b6ea5")
    axes.axhline(0.0, color="grey", linestyle="--")
    axes.set(title="Residuals", xlabel="Predicted", ylabel="Actual - predicted")
    plots = {"residuals": _png(figure)}
    figure, axes = pyplot.subplots(figsize=(5, 4.5))
    axes.scatter(y, predicted, s=6, alpha=0.5, color="#3b6ea5")
    low, high = float(min(y.min(), predicted.min())), float(max(y.max(), predicted.max()))
    axes.plot([low, high], [low, high], color="grey", linestyle="--")
    axes.set(title="Predicted against actual", xlabel="Actual", ylabel="Predicted")
    plots["predicted_vs_actual"] = _png(figure)
    return plots


def evaluation_plots(
    task: str,
    y: npt.NDArray[Any],
    outputs: npt.NDArray[Any],
    classes: Sequence[Any],
    *,
    importance: Mapping[str, float] | None = None,
    contributions: Mapping[str, float] | None = None,
    output_name: str = "raw output",
) -> dict[str, bytes]:
    """Draw every plot that fits the task; return ``{name: PNG bytes}``."""
    pyplot = _pyplot()
    y, outputs = np.asarray(y), np.asarray(outputs)
    if task == "regression":
        plots = _regression(pyplot, y.astype(np.float64), outputs.astype(np.float64))
    else:
        plots = _classification(pyplot, y, outputs, classes)
    if importance:
        plots["feature_importance"] = _bars(
            pyplot, importance, "Permutation importance", "Metric drop when shuffled"
        )
    if contributions:
        plots["explanation_summary"] = _bars(
            pyplot, contributions, "Explanation summary", f"Mean |contribution| to {output_name}"
        )
    return plots
