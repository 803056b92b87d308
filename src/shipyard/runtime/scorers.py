"""More scorers: XGBoost, forests and networks as JSON arrays, ensembles and calibration.

None of the formats loads a pickle. Forests are arrays of tree nodes evaluated with numpy,
networks are weight matrices, XGBoost models are XGBoost's own JSON read by its ``Booster``,
CatBoost models are CatBoost's own JSON read by CatBoost,
and an ensemble (optionally calibrated) is a JSON document over member model files. Each member
of an ensemble reads its own slice of the encoded feature row, because the bundle's
preprocessing is the members' preprocessing specs side by side.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from shipyard.errors import ExportError
from shipyard.runtime.models import FloatArray, LightGBMScorer, LinearScorer, Scorer

__all__ = [
    "COMPOSITE_FORMAT",
    "Calibration",
    "CatBoostScorer",
    "CompositeScorer",
    "ForestScorer",
    "MLPScorer",
    "XGBoostScorer",
    "build_scorer",
]

COMPOSITE_FORMAT = "composite-json"
FOREST_FORMAT = "forest-json"
MLP_FORMAT = "mlp-json"
XGBOOST_FORMAT = "xgboost-json"
CATBOOST_FORMAT = "catboost-json"


def _sigmoid(values: Any) -> Any:
    return 1.0 / (1.0 + np.exp(-values))


def _two_columns(positive: Any) -> FloatArray:
    return np.column_stack([1.0 - positive, positive]).astype(np.float64)


class XGBoostScorer:
    """Score with an XGBoost booster loaded from its JSON model format."""

    def __init__(self, model_json: str, task: str) -> None:
        import xgboost

        self.task = task
        self.booster = xgboost.Booster()
        self.booster.load_model(bytearray(model_json.encode("utf-8")))
        # One thread: starting a thread pool per call costs more than scoring a few rows.
        self.booster.set_param({"nthread": 1})

    def score(self, features: FloatArray) -> FloatArray:
        """Score a batch with the booster's in-place prediction."""
        raw = np.asarray(self.booster.inplace_predict(features))
        if self.task == "binary":
            # XGBoost's scikit-learn wrapper takes 1 - p in float32; do the same.
            return np.column_stack([1.0 - raw, raw]).astype(np.float64)
        return np.asarray(raw, dtype=np.float64)


class CatBoostScorer:
    """Score with a CatBoost model loaded from its JSON model format."""

    def __init__(self, model_json: str, task: str) -> None:
        import tempfile
        from pathlib import Path

        import catboost

        self.task = task
        self.model = catboost.CatBoost()
        # CatBoost reads JSON models from a file only.
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.json"
            path.write_text(model_json, encoding="utf-8")
            self.model.load_model(str(path), format="json")

    def score(self, features: FloatArray) -> FloatArray:
        """Probabilities (classification) or values (regression), on one thread."""
        kind = "RawFormulaVal" if self.task == "regression" else "Probability"
        raw = self.model.predict(features, prediction_type=kind, thread_count=1)
        return np.asarray(raw, dtype=np.float64)


class ForestScorer:
    """Average the leaves of axis-aligned trees stored as flat node arrays.

    The trees compare features as 32-bit floats against 64-bit thresholds, as scikit-learn
    does, and send missing values where training decided (``missing_left``). All trees of a
    forest advance one level per step, so a batch costs ``depth`` vectorised steps.
    """

    def __init__(self, document: Mapping[str, Any], task: str) -> None:
        self.task = task
        self.document = document
        """The forest document as loaded; explanations walk its trees."""
        features, thresholds, lefts, rights, missing, values, roots = [], [], [], [], [], [], []
        offset = 0
        for tree in document["trees"]:
            left = np.asarray(tree["left"], dtype=np.int64)
            right = np.asarray(tree["right"], dtype=np.int64)
            leaf = left < 0
            own = np.arange(len(left), dtype=np.int64)
            lefts.append(np.where(leaf, own, left) + offset)
            rights.append(np.where(leaf, own, right) + offset)
            features.append(np.where(leaf, 0, np.asarray(tree["feature"], dtype=np.int64)))
            thresholds.append(np.asarray(tree["threshold"], dtype=np.float64))
            missing.append(np.asarray(tree["missing_left"], dtype=bool))
            values.append(np.asarray(tree["value"], dtype=np.float64).reshape(len(left), -1))
            roots.append(offset)
            offset += len(left)
        self.feature = np.concatenate(features)
        self.threshold = np.concatenate(thresholds)
        self.left = np.concatenate(lefts)
        self.right = np.concatenate(rights)
        self.missing_left = np.concatenate(missing)
        self.value = np.concatenate(values)
        self.roots = np.asarray(roots, dtype=np.int64)
        self.depth = int(document["max_depth"])

    def score(self, features: FloatArray) -> FloatArray:
        """Walk every tree for every row, then average the leaf values."""
        rows = np.asarray(features, dtype=np.float32).astype(np.float64)
        nodes = np.broadcast_to(self.roots, (len(rows), len(self.roots))).copy()
        row_index = np.arange(len(rows))[:, None]
        for _ in range(self.depth):
            values = rows[row_index, self.feature[nodes]]
            go_left = np.where(
                np.isnan(values), self.missing_left[nodes], values <= self.threshold[nodes]
            )
            nodes = np.where(go_left, self.left[nodes], self.right[nodes])
        leaves = self.value[nodes]  # rows x trees x outputs
        total = leaves[:, 0, :].copy()
        for tree in range(1, leaves.shape[1]):
            total += leaves[:, tree, :]
        mean = total / leaves.shape[1]
        if self.task == "regression":
            return np.asarray(mean[:, 0], dtype=np.float64)
        return np.asarray(mean, dtype=np.float64)


class MLPScorer:
    """A fully connected ReLU network from its weight matrices."""

    def __init__(self, document: Mapping[str, Any], task: str) -> None:
        self.task = task
        self.weights = [np.asarray(matrix, dtype=np.float64) for matrix in document["weights"]]
        self.biases = [np.asarray(vector, dtype=np.float64) for vector in document["biases"]]

    def score(self, features: FloatArray) -> FloatArray:
        """Run the forward pass and the task's output function."""
        activation = np.asarray(features, dtype=np.float64)
        last = len(self.weights) - 1
        for layer, (weights, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            activation = activation @ weights + bias
            if layer < last:
                activation = np.maximum(activation, 0.0)
        if self.task == "regression":
            return np.asarray(activation[:, 0], dtype=np.float64)
        if self.task == "binary":
            return _two_columns(_sigmoid(activation[:, 0]))
        shifted = np.exp(activation - activation.max(axis=1, keepdims=True))
        return np.asarray(shifted / shifted.sum(axis=1, keepdims=True), dtype=np.float64)


class Calibration:
    """Map a binary classifier's positive-class probability to a calibrated one.

    ``platt`` applies ``sigmoid(a * logit(p) + b)``; ``isotonic`` interpolates a monotone step
    function (clipped at both ends).
    """

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.method = str(document["method"])
        self.document = dict(document)
        if self.method not in ("platt", "isotonic"):
            raise ExportError(f"Unknown calibration method '{self.method}'.")

    def apply(self, positive: Any) -> Any:
        """Return calibrated probabilities of the positive class."""
        values = np.asarray(positive, dtype=np.float64)
        if self.method == "platt":
            clipped = np.clip(values, 1e-12, 1 - 1e-12)
            logit = np.log(clipped) - np.log1p(-clipped)
            return _sigmoid(self.document["a"] * logit + self.document["b"])
        return np.interp(values, self.document["x"], self.document["y"])


class CompositeScorer:
    """A weighted average of member scorers, each on its slice of the features.

    Parameters
    ----------
    members
        ``(scorer, start, stop, weight)`` per member; weights sum to one.
    task
        ``binary``, ``multiclass`` or ``regression``.
    calibration
        Applied to the positive class of a binary task after averaging.
    """

    def __init__(
        self,
        members: Sequence[tuple[Scorer, int, int, float]],
        task: str,
        calibration: Calibration | None = None,
    ) -> None:
        self.members = list(members)
        self.task = task
        self.calibration = calibration

    def score(self, features: FloatArray) -> FloatArray:
        """Average the members' outputs, then calibrate."""
        total: Any = None
        for scorer, start, stop, weight in self.members:
            part = weight * scorer.score(features[:, start:stop])
            total = part if total is None else total + part
        result = np.asarray(total, dtype=np.float64)
        if self.calibration is not None and self.task == "binary":
            return _two_columns(self.calibration.apply(result[:, 1]))
        return result


def build_scorer(kind: str, payload: str, read: Callable[[str], str], task: str) -> Scorer:
    """Build a scorer from a model file's format and text; ``read`` opens sibling files.

    Raises
    ------
    ExportError
        When the format is not known.
    """
    if kind == "lightgbm-text":
        return LightGBMScorer(payload, task)
    if kind == "linear-json":
        data = json.loads(payload)
        return LinearScorer(np.array(data["coefficients"]), np.array(data["intercepts"]), task)
    if kind == XGBOOST_FORMAT:
        return XGBoostScorer(payload, task)
    if kind == CATBOOST_FORMAT:
        return CatBoostScorer(payload, task)
    if kind == FOREST_FORMAT:
        return ForestScorer(json.loads(payload), task)
    if kind == MLP_FORMAT:
        return MLPScorer(json.loads(payload), task)
    if kind == COMPOSITE_FORMAT:
        document = json.loads(payload)
        members = [
            (
                build_scorer(member["format"], read(member["path"]), read, task),
                int(member["start"]),
                int(member["stop"]),
                float(member["weight"]),
            )
            for member in document["members"]
        ]
        calibration = document.get("calibration")
        return CompositeScorer(members, task, Calibration(calibration) if calibration else None)
    raise ExportError(
        f"Model format '{kind}' is not known to this shipyard; upgrade shipyard "
        "to serve this bundle."
    )
