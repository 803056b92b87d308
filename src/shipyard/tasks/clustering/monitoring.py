"""How a served clustering model is monitored: input drift, and cluster proportions per window.

The drift reference sketches each numeric column of the training rows and their clusters (as
categories), so every drift window tests the logged clusters against the training proportions
like any categorical column. Each window's signals add the proportions themselves, beside the
reference ones, and their total variation distance (half the sum of absolute differences: the
share of answers that would have to change cluster to restore the training mix).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from shipyard.monitoring.reference import PREDICTION_COLUMN, build_reference
from shipyard.monitoring.sketch import CategoricalSketch, Sketch

__all__ = ["cluster_reference", "cluster_signals", "cluster_values", "proportions"]


def proportions(clusters: Sequence[Any]) -> dict[str, float]:
    """Return the share of each cluster id (as text), largest cluster first."""
    counts = Counter(str(int(cluster)) for cluster in clusters)
    total = max(sum(counts.values()), 1)
    return {cluster: count / total for cluster, count in counts.most_common()}


def cluster_reference(frame: Any, contract: Any, clusters: Sequence[Any]) -> dict[str, Sketch]:
    """Sketch the training rows' columns and their clusters."""
    labels = np.asarray([str(int(cluster)) for cluster in clusters], dtype=object)
    sketches = build_reference(frame, contract, np.zeros(len(frame)), "clustering")
    sketches[PREDICTION_COLUMN] = CategoricalSketch.from_values(labels)
    return sketches


def cluster_values(columns: Sequence[str]) -> Any:
    """Return how logged rows become sketched values: the inputs and the served cluster."""

    def values(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
        found: dict[str, list[Any]] = {
            name: [row["inputs"].get(name) for row in rows] for name in columns
        }
        found[PREDICTION_COLUMN] = [str(row["output"]["cluster"]) for row in rows]
        return found

    return values


def cluster_signals(reference: Mapping[str, float]) -> Any:
    """Return how a window's logged rows become cluster proportions beside the training ones."""

    def signals(logged: list[dict[str, Any]], labelled: list[dict[str, Any]]) -> dict[str, Any]:
        window = proportions([row["output"]["cluster"] for row in logged])
        names = sorted(set(window) | set(reference), key=int)
        distance = 0.5 * sum(
            abs(window.get(name, 0.0) - reference.get(name, 0.0)) for name in names
        )
        return {
            "cluster_proportions": window,
            "reference_proportions": dict(reference),
            "proportion_distance": round(distance, 6),
        }

    return signals
