"""The served clustering model: export to plain arrays, the predictor, the parity check.

k-means is exported as its centroids. scikit-learn's HDBSCAN has no ``predict``, so its
export keeps exemplars (clustered training rows), each cluster's reach and centroid; see
:mod:`shipyard.runtime.clusters` for the assignment rule. The parity check compares the
exported assigner with scikit-learn on held-out rows: k-means against ``predict`` and
``transform``; HDBSCAN against a ``NearestNeighbors`` search over the same exemplars, and
each exemplar's served cluster against the label HDBSCAN gave that training row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from shipyard.errors import ExportError
from shipyard.runtime.clusters import NOISE, ClusterAssigner
from shipyard.runtime.numeric import NumericPredictor, NumericView

__all__ = ["ClusterPredictor", "export_document", "parity_gaps"]

Matrix = npt.NDArray[np.float64]
TOLERANCE = 1e-6


class ClusterPredictor(NumericPredictor):
    """Answer each record with its cluster and its distance to the cluster's centroid."""

    task = "clustering"

    def __init__(
        self,
        contract: Any,
        view: NumericView,
        model: dict[str, Any],
        unknown_fields: str = "reject",
    ) -> None:
        super().__init__(contract, view, unknown_fields)
        self.model = model
        self.assigner = ClusterAssigner(model)

    def outputs(self, rows: Matrix) -> Matrix:
        """``[cluster, distance]`` per row of the view."""
        return self.assigner.assign(rows)

    answer_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["cluster", "distance"],
        "properties": {
            "cluster": {"type": "integer", "description": "-1: noise (HDBSCAN only)"},
            "distance": {"type": "number", "description": "To the cluster's centroid"},
            "request_id": {"type": "string"},
        },
    }

    def output_columns(self, outputs: Matrix) -> dict[str, Any]:
        """Return the columns batch scoring adds: ``cluster`` and ``distance``."""
        return {"cluster": outputs[:, 0].astype(np.int64), "distance": outputs[:, 1]}

    def format_row(self, row: Sequence[float]) -> dict[str, Any]:
        """``{"cluster": id, "distance": d}``; cluster -1 is HDBSCAN's noise."""
        return {"cluster": int(row[0]), "distance": float(row[1])}


def _kmeans_document(model: Any) -> dict[str, Any]:
    centroids = np.asarray(model.cluster_centers_, dtype=np.float64)
    return {
        "kind": "kmeans",
        "centroids": centroids.tolist(),
        "labels": list(range(len(centroids))),
    }


def _exemplar_rows(labels: npt.NDArray[np.int64], cap: int, seed: int) -> npt.NDArray[np.int64]:
    """Clustered rows to keep: all when few, else a seeded share of each cluster (2 at least)."""
    clustered = np.flatnonzero(labels != NOISE)
    if len(clustered) <= cap:
        return clustered
    generator = np.random.default_rng(seed)
    kept = []
    for label in np.unique(labels[clustered]):
        members = np.flatnonzero(labels == label)
        count = max(2, round(cap * len(members) / len(clustered)))
        kept.append(generator.choice(members, min(count, len(members)), replace=False))
    return np.sort(np.concatenate(kept))


def _reach(exemplars: Matrix, labels: npt.NDArray[np.int64], cluster: int) -> float:
    """Return the largest distance from an exemplar of ``cluster`` to its nearest fellow."""
    members = exemplars[labels == cluster]
    if len(members) < 2:
        return 0.0
    distances = np.sqrt(((members[:, None, :] - members[None, :, :]) ** 2).sum(axis=2))
    np.fill_diagonal(distances, np.inf)
    return float(distances.min(axis=1).max())


def _hdbscan_document(labels: Any, rows: Matrix, cap: int, seed: int) -> dict[str, Any]:
    labels = np.asarray(labels, dtype=np.int64)
    clusters = sorted(set(labels[labels != NOISE].tolist()))
    kept = _exemplar_rows(labels, cap, seed)
    exemplars, exemplar_labels = rows[kept], labels[kept]
    return {
        "kind": "hdbscan",
        "labels": clusters,
        "centroids": [rows[labels == label].mean(axis=0).tolist() for label in clusters],
        "exemplars": exemplars.tolist(),
        "exemplar_labels": exemplar_labels.tolist(),
        # Where the exemplars are among the rows HDBSCAN labelled: the parity check's key.
        "exemplar_rows": kept.tolist(),
        "reach": [_reach(exemplars, exemplar_labels, label) for label in clusters],
    }


def export_document(family: str, model: Any, rows: Matrix, cap: int, seed: int) -> dict[str, Any]:
    """Export k-means as its centroids, or HDBSCAN as its exemplars among ``rows``."""
    if family == "kmeans":
        return _kmeans_document(model)
    return _hdbscan_document(model.labels_, rows, cap, seed)


def _reference(document: dict[str, Any], model: Any, rows: Matrix) -> Matrix:
    """Return what scikit-learn answers for ``rows``: ``[cluster, distance]``."""
    from sklearn.metrics import euclidean_distances
    from sklearn.neighbors import NearestNeighbors

    centroids = np.asarray(document["centroids"], dtype=np.float64)
    if document["kind"] == "kmeans":
        labels = model.predict(rows)
        distances = model.transform(rows)[np.arange(len(rows)), labels]
        return np.column_stack([labels, distances]).astype(np.float64)
    exemplars = np.asarray(document["exemplars"], dtype=np.float64)
    search = NearestNeighbors(n_neighbors=1).fit(exemplars)
    nearest_distance, nearest = search.kneighbors(rows)
    cluster = np.asarray(document["exemplar_labels"])[nearest[:, 0]]
    position = np.searchsorted(np.asarray(document["labels"]), cluster)
    far = nearest_distance[:, 0] > np.asarray(document["reach"])[position]
    distances = euclidean_distances(rows, centroids)[np.arange(len(rows)), position]
    return np.column_stack([np.where(far, NOISE, cluster), distances]).astype(np.float64)


def parity_gaps(predictor: ClusterPredictor, model: Any, rows: Matrix) -> dict[str, float]:
    """Compare the exported assigner with scikit-learn on ``rows`` (already in the view).

    Raises
    ------
    ExportError
        When a cluster differs, or a distance differs by more than 1e-6.
    """
    served = predictor.outputs(rows)
    expected = _reference(predictor.model, model, rows)
    gaps = {
        "cluster": float(np.mean(served[:, 0] != expected[:, 0])),
        "distance": float(np.max(np.abs(served[:, 1] - expected[:, 1]), initial=0.0)),
    }
    if predictor.model["kind"] == "hdbscan":
        exemplars = np.asarray(predictor.model["exemplars"], dtype=np.float64)
        own = predictor.assigner.assign(exemplars)[:, 0]
        labelled = np.asarray(model.labels_)[predictor.model["exemplar_rows"]]
        gaps["exemplar_cluster"] = float(np.mean(own != labelled))
    worst = max(gaps.values())
    if worst > TOLERANCE:
        raise ExportError(
            f"The exported clustering model disagrees with scikit-learn on held-out rows "
            f"({', '.join(f'{key} {value:.2e}' for key, value in gaps.items())}); it was "
            "not registered."
        )
    return gaps
