"""Monitoring a recommender: popularity drift and click/purchase feedback on served lists.

- :func:`popularity_drift` compares which items users interact with in a window against the
  training period (the most popular ``top`` items, plus one bin for all others), with the
  shared chi-square test and PSI (:mod:`shipyard.monitoring.drift`). A large shift means the
  popularity baseline, the cold-start fallback and the factors were learnt on a different taste.
- :func:`feedback_metrics` scores served lists against later clicks or purchases: the hit rate
  (share of lists with at least one item the user then took) and precision, each with a
  bootstrap interval over lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from shipyard.evaluation.metrics import MetricValue
from shipyard.monitoring.drift import ColumnDrift, DriftThresholds, column_drift
from shipyard.monitoring.sketch import CategoricalSketch
from shipyard.tasks.recommendation.evaluation import bootstrap_over_users

__all__ = ["feedback_metrics", "popularity_drift"]


def popularity_drift(
    reference_items: Iterable[Any],
    window_items: Iterable[Any],
    *,
    top: int = 100,
    thresholds: DriftThresholds | None = None,
) -> ColumnDrift:
    """Drift of the item distribution of a window of interactions against the reference."""
    reference = CategoricalSketch.from_values(reference_items, max_categories=top)
    window = reference.empty()
    window.update(window_items)
    return column_drift("item_popularity", reference, window, thresholds or DriftThresholds())


def feedback_metrics(
    served: Sequence[tuple[Any, Sequence[Any]]],
    events: Iterable[tuple[Any, Any]],
    *,
    n_samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, MetricValue]:
    """Hit rate and precision of served lists, judged by later (user, item) events.

    Parameters
    ----------
    served
        ``(user, recommended items)`` for each served list.
    events
        ``(user, item)`` clicks or purchases that followed.
    """
    taken: dict[str, set[str]] = {}
    for user, item in events:
        taken.setdefault(str(user), set()).add(str(item))
    hits = np.zeros(len(served))
    precision = np.zeros(len(served))
    for row, (user, items) in enumerate(served):
        chosen = taken.get(str(user), set())
        matched = sum(str(item) in chosen for item in items)
        hits[row] = float(matched > 0)
        precision[row] = matched / len(items) if items else 0.0
    per_list: Mapping[str, Any] = {"hit_rate": hits, "precision": precision}
    return bootstrap_over_users(
        dict(per_list), n_samples=n_samples, confidence=confidence, seed=seed
    )
