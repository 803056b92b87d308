"""Cluster assignment that runs from plain arrays: k-means centroids and HDBSCAN exemplars.

- k-means: a row belongs to the nearest centroid; its distance is the Euclidean distance to
  it (scikit-learn's ``KMeans.predict`` and ``transform``).
- HDBSCAN has no ``predict`` in scikit-learn. The bundle keeps *exemplars*: up to
  ``clustering.exemplars`` training rows HDBSCAN put in a cluster (a seeded sample, at least
  one per cluster), each cluster's *reach* (the largest distance from one of its exemplars to
  the nearest other exemplar of the same cluster) and each cluster's centroid. A new row takes
  the cluster of its nearest exemplar; it is noise (``-1``) when that exemplar is farther than
  the cluster's reach. Its distance is to the centroid of that cluster.

Outputs are rows of ``[cluster, distance]``; the served answer is
``{"cluster": id, "distance": d}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["NOISE", "ClusterAssigner"]

Matrix = npt.NDArray[np.float64]
NOISE = -1


def _distances(rows: Matrix, points: Matrix) -> Matrix:
    """Exact Euclidean distances, ``rows x points``."""
    found: Matrix = np.sqrt(((rows[:, None, :] - points[None, :, :]) ** 2).sum(axis=2))
    return found


class ClusterAssigner:
    """Assign rows of the numeric view to clusters, as the exported document says."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = dict(document)
        self.kind = str(document["kind"])
        self.centroids = np.asarray(document["centroids"], dtype=np.float64)
        self.labels = [int(label) for label in document["labels"]]
        if self.kind == "hdbscan":
            self._exemplars = np.asarray(document["exemplars"], dtype=np.float64)
            self._exemplar_labels = np.asarray(document["exemplar_labels"], dtype=np.int64)
            self._reach = np.asarray(document["reach"], dtype=np.float64)

    def assign(self, rows: Matrix, block: int = 256) -> Matrix:
        """Return ``[cluster, distance]`` for each row."""
        rows = np.asarray(rows, dtype=np.float64)
        out = np.empty((len(rows), 2), dtype=np.float64)
        for start in range(0, len(rows), block):
            out[start : start + block] = self._assign(rows[start : start + block])
        return out

    def _assign(self, rows: Matrix) -> Matrix:
        to_centroids = _distances(rows, self.centroids)
        if self.kind == "kmeans":
            position = np.argmin(to_centroids, axis=1)
            labels = np.asarray(self.labels, dtype=np.float64)[position]
        else:
            to_exemplars = _distances(rows, self._exemplars)
            nearest = np.argmin(to_exemplars, axis=1)
            cluster = self._exemplar_labels[nearest]
            position = np.searchsorted(np.asarray(self.labels), cluster)
            far = to_exemplars[np.arange(len(rows)), nearest] > self._reach[position]
            labels = np.where(far, NOISE, cluster).astype(np.float64)
        distance = to_centroids[np.arange(len(rows)), position]
        return np.column_stack([labels, distance])
