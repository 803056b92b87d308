"""Anomaly scorers that run from plain arrays: an isolation forest and local outlier factors.

Both reproduce scikit-learn's ``score_samples`` (to 1e-6, checked when a model is exported)
without scikit-learn or pickle at serving time:

- :class:`IsolationForestScorer` holds each tree as arrays (children, split feature,
  threshold) and, per leaf, the path length scikit-learn credits: the leaf's depth plus the
  average path length of an unbuilt subtree over the training rows that reached it, minus one.
  Rows are compared in float32, as scikit-learn's trees compare them.
- :class:`LocalOutlierScorer` holds the reference points, their k-distances and their local
  reachability densities; a new row's score is minus the mean ratio of its neighbours'
  densities to its own (LOF with ``novelty=True``).

Scores are returned as scikit-learn's ``score_samples`` (lower is more abnormal); the served
anomaly score is its negative, and a row is an anomaly when ``score_samples < offset``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "IsolationForestScorer",
    "LocalOutlierScorer",
    "average_path_length",
    "scorer_from_json",
]

Matrix = npt.NDArray[np.float64]


def average_path_length(samples: npt.ArrayLike) -> Matrix:
    """Return the average path length of an unsuccessful search in a tree of ``samples`` rows."""
    counts = np.asarray(samples, dtype=np.float64)
    lengths = np.zeros_like(counts)
    lengths[counts == 2] = 1.0
    many = counts > 2
    lengths[many] = (
        2.0 * (np.log(counts[many] - 1.0) + np.euler_gamma)
        - 2.0 * (counts[many] - 1.0) / counts[many]
    )
    return lengths


@dataclass(frozen=True)
class _Tree:
    left: npt.NDArray[np.int64]
    right: npt.NDArray[np.int64]
    feature: npt.NDArray[np.int64]
    threshold: Matrix
    leaf_length: Matrix

    def path_lengths(self, rows: Matrix) -> Matrix:
        """Return the credited path length of each row (float32 comparisons, as scikit-learn)."""
        node = np.zeros(len(rows), dtype=np.int64)
        active = self.left[node] != -1
        while active.any():
            at = node[active]
            goes_left = rows[active, self.feature[at]] <= self.threshold[at]
            node[active] = np.where(goes_left, self.left[at], self.right[at])
            active = self.left[node] != -1
        lengths: Matrix = self.leaf_length[node]
        return lengths


class IsolationForestScorer:
    """scikit-learn's ``IsolationForest.score_samples`` from the exported trees."""

    kind = "isolation_forest"

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = dict(document)
        self.offset = float(document["offset"])
        self.max_samples = int(document["max_samples"])
        self._trees = [
            _Tree(
                np.asarray(tree["left"], dtype=np.int64),
                np.asarray(tree["right"], dtype=np.int64),
                np.asarray(tree["feature"], dtype=np.int64),
                np.asarray(tree["threshold"], dtype=np.float64),
                np.asarray(tree["leaf_length"], dtype=np.float64),
            )
            for tree in document["trees"]
        ]

    def score_samples(self, rows: Matrix) -> Matrix:
        """Minus the paper's anomaly score of each row: lower is more abnormal."""
        rows = np.asarray(rows, dtype=np.float32).astype(np.float64)
        depths = np.zeros(len(rows), dtype=np.float64)
        for tree in self._trees:  # summed in tree order, as scikit-learn does
            depths += tree.path_lengths(rows)
        denominator = len(self._trees) * float(average_path_length([self.max_samples])[0])
        if denominator == 0:
            return -np.ones(len(rows))
        scores: Matrix = -(2.0 ** (-depths / denominator))
        return scores


class LocalOutlierScorer:
    """scikit-learn's ``LocalOutlierFactor(novelty=True).score_samples`` from its reference."""

    kind = "lof"

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = dict(document)
        self.offset = float(document["offset"])
        self.neighbors = int(document["neighbors"])
        self._points = np.asarray(document["points"], dtype=np.float64)
        self._k_distance = np.asarray(document["k_distance"], dtype=np.float64)
        self._density = np.asarray(document["density"], dtype=np.float64)

    def score_samples(self, rows: Matrix, block: int = 256) -> Matrix:
        """Minus the local outlier factor of each row: lower is more abnormal."""
        rows = np.asarray(rows, dtype=np.float64)
        scores = np.empty(len(rows), dtype=np.float64)
        for start in range(0, len(rows), block):
            part = rows[start : start + block]
            scores[start : start + block] = self._scores(part)
        return scores

    def _scores(self, rows: Matrix) -> Matrix:
        distances = np.sqrt(((rows[:, None, :] - self._points[None, :, :]) ** 2).sum(axis=2))
        neighbours = np.argsort(distances, axis=1, kind="stable")[:, : self.neighbors]
        nearest = np.take_along_axis(distances, neighbours, axis=1)
        reach = np.maximum(nearest, self._k_distance[neighbours])
        density = 1.0 / (reach.mean(axis=1) + 1e-10)
        scores: Matrix = -(self._density[neighbours] / density[:, None]).mean(axis=1)
        return scores


def scorer_from_json(document: Mapping[str, Any]) -> IsolationForestScorer | LocalOutlierScorer:
    """Build the scorer an exported document describes."""
    if document["kind"] == "isolation_forest":
        return IsolationForestScorer(document)
    return LocalOutlierScorer(document)
