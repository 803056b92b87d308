"""The served anomaly model: export to plain arrays, the predictor, the parity check.

An ``IsolationForest`` is exported tree by tree as arrays, and a ``LocalOutlierFactor``
(``novelty=True``) as its reference points, their k-distances and local reachability
densities (:mod:`shipyard.runtime.outliers` scores from them). The parity check compares the
exported scorer's ``score_samples`` with scikit-learn's on held-out rows (1e-6), and the
decisions with ``predict``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from shipyard.errors import ExportError
from shipyard.runtime.numeric import NumericPredictor, NumericView
from shipyard.runtime.outliers import average_path_length, scorer_from_json

__all__ = ["AnomalyPredictor", "export_document", "parity_gaps"]

Matrix = npt.NDArray[np.float64]
TOLERANCE = 1e-6


class AnomalyPredictor(NumericPredictor):
    """Answer each record with its anomaly score and whether it passes the threshold.

    The score is the paper's anomaly score (IsolationForest) or the local outlier factor
    (LOF): higher is more abnormal. A record is an anomaly when its score is above the
    threshold, which the contamination setting fixed at training time.
    """

    task = "anomaly_detection"

    def __init__(
        self,
        contract: Any,
        view: NumericView,
        model: dict[str, Any],
        unknown_fields: str = "reject",
    ) -> None:
        super().__init__(contract, view, unknown_fields)
        self.model = model
        self.scorer = scorer_from_json(model)
        self.threshold = -self.scorer.offset

    def outputs(self, rows: Matrix) -> Matrix:
        """``[score, anomaly]`` per row of the view (anomaly: 1.0 or 0.0)."""
        scores = -self.scorer.score_samples(rows)
        return np.column_stack([scores, (scores > self.threshold).astype(np.float64)])

    answer_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["score", "anomaly", "threshold"],
        "properties": {
            "score": {"type": "number", "description": "Higher is more abnormal"},
            "anomaly": {"type": "boolean", "description": "score > threshold"},
            "threshold": {"type": "number"},
            "request_id": {"type": "string"},
        },
    }

    def output_columns(self, outputs: Matrix) -> dict[str, Any]:
        """Return the columns batch scoring adds: ``score`` and ``anomaly``."""
        return {"score": outputs[:, 0], "anomaly": outputs[:, 1] == 1.0}

    def format_row(self, row: Sequence[float]) -> dict[str, Any]:
        """``{"score": s, "anomaly": bool, "threshold": t}``."""
        return {"score": float(row[0]), "anomaly": bool(row[1]), "threshold": self.threshold}


def _forest_document(model: Any, features: int) -> dict[str, Any]:
    # scikit-learn indexes a tree's features through estimators_features_ only when each tree
    # saw a subset of the columns.
    subsampled = model._max_features != features
    trees = []
    for tree, used in zip(model.estimators_, model.estimators_features_, strict=True):
        arrays = tree.tree_
        feature = np.asarray(arrays.feature, dtype=np.int64)
        if subsampled:
            feature = np.where(feature >= 0, np.asarray(used)[np.maximum(feature, 0)], feature)
        leaf_length = (
            arrays.compute_node_depths() + average_path_length(arrays.n_node_samples) - 1.0
        )
        trees.append(
            {
                "left": arrays.children_left.tolist(),
                "right": arrays.children_right.tolist(),
                "feature": feature.tolist(),
                "threshold": arrays.threshold.tolist(),
                "leaf_length": leaf_length.tolist(),
            }
        )
    return {
        "kind": "isolation_forest",
        "offset": float(model.offset_),
        "max_samples": int(model.max_samples_),
        "trees": trees,
    }


def _lof_document(model: Any) -> dict[str, Any]:
    k = int(model.n_neighbors_)
    return {
        "kind": "lof",
        "offset": float(model.offset_),
        "neighbors": k,
        "points": np.asarray(model._fit_X, dtype=np.float64).tolist(),
        "k_distance": np.asarray(model._distances_fit_X_[:, k - 1], dtype=np.float64).tolist(),
        "density": np.asarray(model._lrd, dtype=np.float64).tolist(),
    }


def export_document(family: str, model: Any, features: int) -> dict[str, Any]:
    """Export a fitted IsolationForest or LocalOutlierFactor to plain arrays."""
    if family == "isolation_forest":
        return _forest_document(model, features)
    return _lof_document(model)


def parity_gaps(predictor: AnomalyPredictor, model: Any, rows: Matrix) -> dict[str, float]:
    """Compare the exported scorer with scikit-learn on ``rows`` (already in the view).

    Raises
    ------
    ExportError
        When a score differs by more than 1e-6, or a decision differs.
    """
    served = predictor.outputs(rows)
    expected = -model.score_samples(rows)
    gaps = {
        "score": float(np.max(np.abs(served[:, 0] - expected), initial=0.0)),
        "decision": float(np.mean((served[:, 1] == 1.0) != (model.predict(rows) == -1))),
    }
    if max(gaps.values()) > TOLERANCE:
        raise ExportError(
            "The exported anomaly model disagrees with scikit-learn on held-out rows "
            f"(score {gaps['score']:.2e}, decisions {gaps['decision']:.2%}); it was not "
            "registered."
        )
    return gaps
