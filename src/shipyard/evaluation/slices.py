"""Per-slice metrics: where on the test set the model does worse.

Slices are each value of each categorical feature, quantile bins of each numeric feature, and
every intersection of the sensitive columns. Each slice with enough rows gets the task's metrics
with bootstrap intervals; the slices with the worst selection metric are marked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from shipyard import stats
from shipyard.evaluation.metrics import GREATER_IS_BETTER, MetricValue, score

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.data.contract import Contract

__all__ = ["SliceResult", "resampled_metrics", "slice_metrics", "weighted_auc"]

SLICE_METRICS = {
    "binary": ("roc_auc", "accuracy"),
    "multiclass": ("accuracy", "log_loss"),
    "regression": ("rmse", "mae"),
}


@dataclass
class SliceResult:
    """Metrics on one slice of the test set."""

    feature: str
    value: str
    rows: int
    metrics: dict[str, MetricValue]
    worst: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "feature": self.feature,
            "value": self.value,
            "rows": self.rows,
            "metrics": {name: value.as_dict() for name, value in self.metrics.items()},
            "worst": self.worst,
        }


def weighted_auc(
    counts: npt.NDArray[Any], scores: npt.NDArray[Any], positive: npt.NDArray[np.bool_]
) -> npt.NDArray[np.float64]:
    """ROC AUC of each row of ``counts`` (how often each sample is drawn), sorting only once.

    Ties count one half, as in the Mann-Whitney statistic, so ``counts`` of all ones gives the
    ordinary AUC.
    """
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    weights = np.asarray(counts, dtype=np.float64)[:, order]
    is_positive = positive[order]
    positives = np.add.reduceat(weights * is_positive, starts, axis=1)
    negatives = np.add.reduceat(weights * ~is_positive, starts, axis=1)
    below = np.cumsum(negatives, axis=1) - negatives
    numerator = (positives * (below + 0.5 * negatives)).sum(axis=1)
    denominator = positives.sum(axis=1) * negatives.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(denominator > 0, numerator / denominator, np.nan))


def resampled_metrics(
    y: npt.NDArray[Any],
    outputs: npt.NDArray[Any],
    metrics: Sequence[str],
    *,
    n_samples: int,
    confidence: float,
    seed: int,
) -> dict[str, MetricValue]:
    """Bootstrap intervals for the slice metrics, all resamples at once.

    Each resample is a row of multinomial draw counts, so every metric is a weighted sum over
    the slice (and AUC sorts the scores once, not once per resample). Same percentile method
    (:func:`shipyard.stats.percentile_interval`) as
    :func:`shipyard.evaluation.metrics.bootstrap_metrics`, much less Python per resample.
    """
    n = len(y)
    counts = stats.resample_counts(n, n_samples, seed)
    y = np.asarray(y)
    samples: dict[str, npt.NDArray[np.float64]] = {}
    for metric in metrics:
        if metric == "roc_auc":
            samples[metric] = weighted_auc(counts, outputs[:, 1], y == 1)
        elif metric == "accuracy":
            samples[metric] = counts @ (np.argmax(outputs, axis=1) == y) / n
        elif metric == "log_loss":
            picked = np.clip(outputs[np.arange(n), y.astype(np.int64)], 1e-15, 1.0)
            samples[metric] = counts @ -np.log(picked) / n
        elif metric == "rmse":
            samples[metric] = np.sqrt(counts @ (y - outputs) ** 2 / n)
        else:  # mae
            samples[metric] = counts @ np.abs(y - outputs) / n
    results = {}
    for metric, drawn in samples.items():
        value = score(metric, y, outputs)
        low, high = stats.percentile_interval(drawn, confidence)
        if not np.isfinite(low):  # no resample gave a number: the interval is the point
            low = high = value
        results[metric] = MetricValue(value, low, high, confidence)
    return results


def _slice_masks(
    frame: pd.DataFrame, contract: Contract, sensitive: Sequence[str], bins: int
) -> list[tuple[str, str, npt.NDArray[np.bool_]]]:
    import pandas as pd

    masks = []
    for column in contract.columns:
        if column.name not in frame.columns:
            continue
        values = frame[column.name]
        if column.is_categorical or column.type == "boolean":
            labels = values.astype(str).where(values.notna(), "(missing)")
            for label in sorted(labels.unique()):
                masks.append((column.name, str(label), (labels == label).to_numpy()))
            continue
        numbers = pd.to_numeric(values, errors="coerce")
        if numbers.nunique() <= bins:
            for label in sorted(numbers.dropna().unique()):
                masks.append((column.name, f"= {label:g}", (numbers == label).to_numpy()))
        else:
            binned = pd.qcut(numbers, q=bins, duplicates="drop")
            for interval in binned.cat.categories:
                masks.append((column.name, f"{interval}", (binned == interval).to_numpy()))
        if numbers.isna().any():
            masks.append((column.name, "(missing)", numbers.isna().to_numpy()))
    present = [name for name in sensitive if name in frame.columns]
    if len(present) > 1:
        # Vectorised concatenation: a row-wise join is a Python call per row.
        joined = frame[present[0]].astype(str)
        for name in present[1:]:
            joined = joined + " & " + frame[name].astype(str)
        feature = " & ".join(present)
        for label in sorted(joined.unique()):
            masks.append((feature, str(label), (joined == label).to_numpy()))
    return masks


def slice_metrics(
    frame: pd.DataFrame,
    y: npt.NDArray[Any],
    outputs: npt.NDArray[Any],
    *,
    task: str,
    contract: Contract,
    sensitive: Sequence[str] = (),
    metric: str | None = None,
    bins: int = 4,
    min_rows: int = 30,
    worst: int = 5,
    n_samples: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[SliceResult]:
    """Compute metrics with intervals on every slice of ``frame``.

    Slices with fewer than ``min_rows`` rows are listed with no metrics; of the rest, the
    ``worst`` slices by ``metric`` (default: the task's first slice metric) are marked.
    """
    names = SLICE_METRICS[task]
    metric = metric if metric in names else names[0]
    results = []
    for feature, value, mask in _slice_masks(
        frame.reset_index(drop=True), contract, sensitive, bins
    ):
        rows = int(mask.sum())
        if rows == 0:
            continue
        metrics: dict[str, MetricValue] = {}
        if rows >= min_rows:
            wanted = list(names)
            if task != "regression" and len(np.unique(y[mask])) < 2:
                wanted = [name for name in wanted if name != "roc_auc"]
            metrics = resampled_metrics(
                y[mask],
                outputs[mask],
                wanted,
                n_samples=n_samples,
                confidence=confidence,
                seed=seed,
            )
        results.append(SliceResult(feature, value, rows, metrics))
    ranked = [item for item in results if metric in item.metrics]
    ranked.sort(
        key=lambda item: item.metrics[metric].value * (1 if GREATER_IS_BETTER[metric] else -1)
    )
    for item in ranked[:worst]:
        item.worst = True
    return results
