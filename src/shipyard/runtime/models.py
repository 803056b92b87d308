"""Model scorers that load from formats which execute no code: LightGBM text and linear JSON.

Each scorer maps a float matrix (rows x encoded features) to model outputs: for classification
a probability matrix with one column per class (in the bundle's class order), for regression a
vector of predictions.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from shipyard.errors import ExportError

if TYPE_CHECKING:
    from shipyard.runtime.compiled import CompiledTrees

__all__ = ["LightGBMScorer", "LinearScorer", "Scorer", "load_scorer"]

FloatArray = npt.NDArray[np.float64]


class Scorer(Protocol):
    """What the predictor needs from a model: a batch in, outputs out."""

    def score(self, features: FloatArray) -> FloatArray:
        """Return probabilities (n, classes) for classifiers, predictions (n,) for regressors."""
        ...


class LightGBMScorer:
    """Score with a LightGBM booster loaded from its text model format.

    Parameters
    ----------
    model_text
        The output of ``Booster.model_to_string()``.
    task
        ``binary``, ``multiclass`` or ``regression``.
    """

    def __init__(self, model_text: str, task: str) -> None:
        import lightgbm

        self.task = task
        self.model_text = model_text
        self.booster = lightgbm.Booster(model_str=model_text)
        self.compiled: CompiledTrees | None = None
        """The exact compiled evaluator, once :meth:`compile` succeeded; else ``None``."""
        self._compile_lock = threading.Lock()
        self._compile_tried = False

    def compile(self, cache_dir: Path | None = None) -> bool:
        """Score batches with the trees compiled to C from now on; return whether it worked.

        The compiled evaluator gives LightGBM's answers to the last bit (see
        :mod:`shipyard.runtime.compiled`). When it cannot be had (no C compiler, a model it does
        not support, a failed build) a log line says why and LightGBM's predict stays; this
        never raises. Tried once per scorer.
        """
        with self._compile_lock:
            if not self._compile_tried:
                self._compile_tried = True
                from shipyard.runtime.compiled import load_compiled

                self.compiled = load_compiled(self.model_text, cache_dir)
        return self.compiled is not None

    def score(self, features: FloatArray) -> FloatArray:
        """Score a batch with the compiled trees when there are some, else the booster's."""
        compiled = self.compiled
        if (
            compiled is not None
            and features.ndim == 2
            and features.shape[1] == compiled.n_features
        ):
            raw = compiled.predict(features)
        else:
            raw = np.asarray(self.booster.predict(features), dtype=np.float64)
        if self.task == "binary":
            return np.column_stack([1.0 - raw, raw])
        return raw


class LinearScorer:
    """Score a linear or logistic model from its coefficients.

    Parameters
    ----------
    coefficients
        Shape (outputs, features): one row for regression and binary, one per class otherwise.
    intercepts
        Shape (outputs,).
    task
        ``binary``, ``multiclass`` or ``regression``.
    """

    def __init__(self, coefficients: FloatArray, intercepts: FloatArray, task: str) -> None:
        self.coefficients = np.asarray(coefficients, dtype=np.float64)
        self.intercepts = np.asarray(intercepts, dtype=np.float64)
        self.task = task

    def score(self, features: FloatArray) -> FloatArray:
        """Apply the linear map and the task's link function."""
        decision = features @ self.coefficients.T + self.intercepts
        if self.task == "regression":
            return np.asarray(decision[:, 0], dtype=np.float64)
        if self.task == "binary":
            positive = 1.0 / (1.0 + np.exp(-decision[:, 0]))
            return np.column_stack([1.0 - positive, positive])
        shifted = np.exp(decision - decision.max(axis=1, keepdims=True))
        return np.asarray(shifted / shifted.sum(axis=1, keepdims=True), dtype=np.float64)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form that :func:`load_scorer` reads."""
        return {"coefficients": self.coefficients.tolist(), "intercepts": self.intercepts.tolist()}


def load_scorer(model: Mapping[str, Any], bundle_dir: Path, task: str) -> Scorer:
    """Load the scorer that a bundle manifest's ``model`` entry describes."""
    from shipyard.runtime.bundle_files import bundle_file

    kind, path = model["format"], bundle_file(bundle_dir, model["path"])
    if kind == "onnx-features":  # an imported ONNX model, read as bytes
        from shipyard.runtime.onnx_graph import OnnxFeatureScorer

        return OnnxFeatureScorer(path.read_bytes(), task)
    if kind not in ("lightgbm-text", "linear-json"):
        from shipyard.runtime.scorers import build_scorer

        def read(name: str) -> str:
            return bundle_file(bundle_dir, name).read_text(encoding="utf-8")

        return build_scorer(kind, path.read_text(encoding="utf-8"), read, task)
    if kind == "lightgbm-text":
        return LightGBMScorer(path.read_text(encoding="utf-8"), task)
    if kind == "linear-json":
        import json

        data = json.loads(path.read_text(encoding="utf-8"))
        return LinearScorer(np.array(data["coefficients"]), np.array(data["intercepts"]), task)
    raise ExportError(
        f"Model format '{kind}' is not known to this shipyard; upgrade shipyard "
        "to serve this bundle."
    )
