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
# Up to this many rows, every tree is walked at once; beyond, one tree after the other.
TOGETHER_ROWS = 64


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


class IsolationForestScorer:
    """scikit-learn's ``IsolationForest.score_samples`` from the exported trees.

    The trees are packed end to end into one set of arrays, and every row walks all of them
    at once, one level per step: a single record costs a few dozen small numpy operations,
    not one walk per tree.
    """

    kind = "isolation_forest"

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = dict(document)
        self.offset = float(document["offset"])
        self.max_samples = int(document["max_samples"])
        trees = document["trees"]
        sizes = [len(tree["left"]) for tree in trees]
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self._roots = starts
        self._left = self._children(trees, "left", starts)
        self._right = self._children(trees, "right", starts)
        self._feature = np.concatenate(
            [np.maximum(np.asarray(tree["feature"], dtype=np.int64), 0) for tree in trees]
        )
        self._threshold = np.concatenate([np.asarray(tree["threshold"]) for tree in trees])
        self._leaf_length = np.concatenate([np.asarray(tree["leaf_length"]) for tree in trees])
        self._depth = max(len(tree["left"]) for tree in trees)  # a bound: the walk stops early
        self._denominator = len(trees) * float(average_path_length([self.max_samples])[0])

    @staticmethod
    def _children(trees: Any, side: str, starts: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """One tree's child indices shifted to the packed arrays; leaves keep -1."""
        shifted = []
        for tree, start in zip(trees, starts, strict=True):
            children = np.asarray(tree[side], dtype=np.int64)
            shifted.append(np.where(children >= 0, children + start, -1))
        return np.concatenate(shifted)

    def _walk_together(self, rows: Matrix) -> Matrix:
        """Walk every tree at once, one level per step (few rows: few numpy calls)."""
        node = np.broadcast_to(self._roots, (len(rows), len(self._roots))).copy()
        index = np.arange(len(rows))[:, None]
        for _ in range(self._depth):
            inner = self._left[node] >= 0
            if not inner.any():
                break
            goes_left = rows[index, self._feature[node]] <= self._threshold[node]
            step = np.where(goes_left, self._left[node], self._right[node])
            node = np.where(inner, step, node)
        lengths = self._leaf_length[node]
        depths = np.zeros(len(rows), dtype=np.float64)
        for tree in range(lengths.shape[1]):  # summed in tree order, as scikit-learn does
            depths += lengths[:, tree]
        return depths

    def _walk_tree_by_tree(self, rows: Matrix) -> Matrix:
        """Walk one tree after the other (many rows: cheaper gathers); the same sums."""
        depths = np.zeros(len(rows), dtype=np.float64)
        for root in self._roots:
            node = np.full(len(rows), root, dtype=np.int64)
            for _ in range(self._depth):
                inner = np.flatnonzero(self._left[node] >= 0)
                if not len(inner):
                    break
                at = node[inner]
                goes_left = rows[inner, self._feature[at]] <= self._threshold[at]
                node[inner] = np.where(goes_left, self._left[at], self._right[at])
            depths += self._leaf_length[node]
        return depths

    def score_samples(self, rows: Matrix) -> Matrix:
        """Minus the paper's anomaly score of each row: lower is more abnormal."""
        # scikit-learn's trees compare float32 values with float64 thresholds.
        rows = np.asarray(rows, dtype=np.float32).astype(np.float64)
        if self._denominator == 0:
            return -np.ones(len(rows))
        walk = self._walk_together if len(rows) <= TOGETHER_ROWS else self._walk_tree_by_tree
        depths = walk(rows)
        scores: Matrix = -(2.0 ** (-depths / self._denominator))
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
        k = self.neighbors
        # The k nearest in linear time, then in order (nearest first, ties by position).
        if k < distances.shape[1]:
            candidates = np.argpartition(distances, k - 1, axis=1)[:, :k]
        else:
            candidates = np.broadcast_to(np.arange(distances.shape[1]), distances.shape)
        chosen = np.take_along_axis(distances, candidates, axis=1)
        order = np.lexsort((candidates, chosen), axis=1)
        neighbours = np.take_along_axis(candidates, order, axis=1)
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
