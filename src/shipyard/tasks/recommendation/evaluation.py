"""Ranking metrics per user, bootstrap confidence intervals over users, catalogue coverage.

For each evaluated user the relevant items are the user's positive interactions in the test
period; items the user already had in the training period are never recommended.

- precision@k: hits in the top k, divided by k.
- recall@k: hits divided by the number of relevant items.
- ndcg@k: discounted cumulative gain of the hits (1 / log2(rank + 1)), divided by the gain of
  an ideal list.
- map@k: mean over users of average precision at k (precision at each hit, summed, divided by
  min(relevant, k)).

Examples
--------
>>> import numpy as np
>>> per_user = ranking_metrics_per_user(np.array([[3, 1, 2]]), [{1, 4}], k=3)
>>> [round(float(per_user[name][0]), 4) for name in ("precision", "recall", "ndcg", "map")]
[0.3333, 0.5, 0.3869, 0.25]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from shipyard import stats
from shipyard.evaluation.metrics import MetricValue

__all__ = [
    "RANKING_METRICS",
    "bootstrap_over_users",
    "catalogue_coverage",
    "paired_difference",
    "ranking_metrics_per_user",
    "top_k",
]

RANKING_METRICS = ("precision", "recall", "ndcg", "map")
Array = npt.NDArray[Any]


def top_k(scores: npt.NDArray[np.float64], seen: Sequence[Array], k: int) -> Array:
    """Return the ``k`` best item indices per row, best first, skipping each row's ``seen``."""
    scores = np.array(scores, dtype=np.float64)
    for row, items in enumerate(seen):
        scores[row, items] = -np.inf
    k = min(k, scores.shape[1])
    # argpartition finds the k best in linear time; only those k are then sorted.
    best = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, best, axis=1), axis=1, kind="stable")
    return np.take_along_axis(best, order, axis=1)


def ranking_metrics_per_user(
    recommended: Array, relevant: Sequence[set[int]], k: int
) -> dict[str, npt.NDArray[np.float64]]:
    """Precision, recall, NDCG and average precision at ``k`` for each user (row)."""
    n = len(relevant)
    results = {name: np.zeros(n) for name in RANKING_METRICS}
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    for row in range(n):
        wanted = relevant[row]
        if not wanted:
            continue
        hits = np.array([item in wanted for item in recommended[row, :k].tolist()], dtype=bool)
        n_hits = int(hits.sum())
        ideal = discounts[: min(len(wanted), k)].sum()
        results["precision"][row] = n_hits / k
        results["recall"][row] = n_hits / len(wanted)
        results["ndcg"][row] = float(discounts[: len(hits)][hits].sum() / ideal)
        precision_at = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        results["map"][row] = float(precision_at[hits].sum() / min(len(wanted), k))
    return results


def _interval(
    statistic: Callable[[npt.NDArray[np.int64]], float],
    n: int,
    n_samples: int,
    confidence: float,
    seed: int,
) -> MetricValue:
    estimate = stats.bootstrap(statistic, n, n_samples=n_samples, confidence=confidence, seed=seed)
    return MetricValue(estimate.value, estimate.low, estimate.high, confidence)


def bootstrap_over_users(
    per_user: dict[str, npt.NDArray[np.float64]],
    *,
    n_samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, MetricValue]:
    """Mean of each per-user metric with a percentile-bootstrap interval (users resampled)."""
    results = {}
    for name, values in per_user.items():

        def mean(rows: npt.NDArray[np.int64], values: npt.NDArray[np.float64] = values) -> float:
            return float(values[rows].mean())

        results[name] = _interval(mean, len(values), n_samples, confidence, seed)
    return results


def paired_difference(
    model: npt.NDArray[np.float64],
    baseline: npt.NDArray[np.float64],
    *,
    n_samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> MetricValue:
    """Mean per-user difference ``model - baseline`` with a paired bootstrap over users.

    Both arrays hold one value per user in the same order; each resample draws users, so the
    interval accounts for the correlation between the two models' scores on the same user.
    """
    difference = np.asarray(model, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    return _interval(
        lambda rows: float(difference[rows].mean()), len(difference), n_samples, confidence, seed
    )


def catalogue_coverage(recommended: Array, n_items: int) -> float:
    """Share of the catalogue that appears in at least one user's list."""
    return float(len(np.unique(recommended)) / n_items) if n_items else 0.0
