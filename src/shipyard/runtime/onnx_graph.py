"""ONNX Runtime as an alternative serving runtime for tabular bundles.

An :class:`OnnxPredictor` answers like a :class:`~shipyard.runtime.Predictor` of the same
bundle: records are cleaned, validated and their unknown categories settled exactly as there,
then the bundle's ONNX graph (written by ``shipyard export onnx``: the preprocessing and the
model in one graph) scores them in ONNX Runtime. A bundle whose manifest model entry has the
format :data:`ONNX_GRAPH_FORMAT` is loaded this way.

:class:`OnnxFeatureScorer` scores an imported ONNX model (``shipyard import --kind onnx``)
whose input is the feature matrix, as any other scorer (format :data:`ONNX_FEATURES_FORMAT`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.errors import require
from shipyard.runtime.models import FloatArray
from shipyard.runtime.predictor import Predictor
from shipyard.runtime.preprocess import MISSING_CATEGORY, CompiledPreprocessor

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ONNX_FEATURES_FORMAT",
    "ONNX_GRAPH_FORMAT",
    "OnnxFeatureScorer",
    "OnnxGraph",
    "OnnxPredictor",
]

ONNX_GRAPH_FORMAT = "onnx-graph"


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


class OnnxGraph:
    """An ONNX Runtime session over a graph whose inputs are the preprocessing's columns.

    Parameters
    ----------
    model_bytes
        The serialized ONNX model.
    preprocessor
        The bundle's compiled preprocessing: which inputs are numbers and which are text.
    """

    def __init__(self, model_bytes: bytes, preprocessor: CompiledPreprocessor) -> None:
        onnxruntime = require("onnxruntime", "onnx")
        options = onnxruntime.SessionOptions()
        # One thread per session: the server runs one process per core.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            model_bytes, options, providers=["CPUExecutionProvider"]
        )
        self.numeric = {
            encoder["column"]: encoder["kind"] == "numeric" for encoder in preprocessor.encoders
        }

    def run_columns(self, columns: Mapping[str, Sequence[Any]]) -> FloatArray:
        """Score a batch given as ``{column: values}``; return the scorer's outputs."""
        feed: dict[str, Any] = {}
        for column, numeric in self.numeric.items():
            values = columns[column]
            if numeric and isinstance(values, np.ndarray) and values.dtype.kind in "fiub":
                array = values.astype(np.float64)
            elif numeric:
                array = np.array(
                    [np.nan if _is_missing(value) else float(value) for value in values],
                    dtype=np.float64,
                )
            else:
                array = np.array(
                    [MISSING_CATEGORY if _is_missing(value) else str(value) for value in values],
                    dtype=object,
                )
            feed[column] = array.reshape(-1, 1)
        return self.run_feed(feed)

    def run_feed(self, feed: Mapping[str, Any]) -> FloatArray:
        """Run the session on prepared inputs (``[N, 1]`` float64 or str arrays per column)."""
        (outputs,) = self.session.run(None, dict(feed))
        return np.asarray(outputs, dtype=np.float64)

    def run_records(self, records: Sequence[Mapping[str, Any]]) -> FloatArray:
        """Score records (mappings of column to value)."""
        return self.run_columns(
            {column: [record.get(column) for record in records] for column in self.numeric}
        )


class OnnxPredictor(Predictor):
    """A :class:`Predictor` whose preprocessing and model run as one ONNX graph.

    Parameters
    ----------
    graph
        The graph's session; it scores every request and batch.
    predictor
        The same bundle's native predictor: its cleaning, contract, unknown-category policy
        and thresholds apply unchanged, and its preprocessing and scorer remain for what reads
        the model itself (explanations).
    """

    encodes_in_graph = True
    """The serving fast path scores through :meth:`score_records` (no compiled encoder)."""

    def __init__(self, graph: OnnxGraph, predictor: Predictor) -> None:
        super().__init__(
            predictor.contract,
            predictor.preprocessor,
            predictor.scorer,
            predictor.task,
            predictor.classes,
            predictor.validator.unknown_fields,
            cleaner=predictor.cleaner,
            threshold=predictor.threshold,
            unknown_categories=predictor.unknown.policy,
            group_thresholds=predictor.group_thresholds,
        )
        self.graph = graph

    def score_records(self, records: Sequence[Mapping[str, Any]]) -> FloatArray:
        """Clean, validate and settle records as the bundle says; score them in the graph."""
        if self.cleaner is not None:
            records = self.cleaner.clean_records(records)
        self.validator.check_records(list(records))
        return self.graph.run_records(self.settle_records(records))

    def score_frame(self, frame: pd.DataFrame) -> FloatArray:
        """Score a clean, checked frame (see :meth:`Predictor.score_frame`), column-wise."""
        import pandas as pd

        feed: dict[str, Any] = {}
        for column, numeric in self.graph.numeric.items():
            series = frame[column]
            if numeric and pd.api.types.is_numeric_dtype(series):
                values = series.to_numpy(dtype=np.float64, na_value=np.nan)
            elif numeric:
                values = np.array(
                    [np.nan if _is_missing(v) else float(v) for v in series.tolist()], np.float64
                )
            else:
                # The graph's text inputs: each value's str, missing as the missing category.
                text = series.astype(object).where(series.notna(), MISSING_CATEGORY)
                values = np.asarray(text.astype(str).to_numpy(), dtype=object)
            feed[column] = values.reshape(-1, 1)
        return self.graph.run_feed(feed)


ONNX_FEATURES_FORMAT = "onnx-features"


class OnnxFeatureScorer:
    """Score an imported ONNX model whose one input is the feature matrix ``[N, features]``.

    Classifiers (two outputs: labels, then probabilities as a tensor or skl2onnx's ZipMap
    list of mappings) give their probabilities; regressors their first output, flattened.

    Parameters
    ----------
    model_bytes
        The serialized ONNX model.
    task
        ``binary``, ``multiclass`` or ``regression``.
    """

    def __init__(self, model_bytes: bytes, task: str) -> None:
        onnxruntime = require("onnxruntime", "onnx")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            model_bytes, options, providers=["CPUExecutionProvider"]
        )
        self.task = task
        (graph_input,) = self.session.get_inputs()
        self.input_name = graph_input.name
        self.input_type = np.float64 if graph_input.type == "tensor(double)" else np.float32
        self.classifier = len(self.session.get_outputs()) >= 2

    def score(self, features: FloatArray) -> FloatArray:
        """Return probabilities ``(n, classes)`` or values ``(n,)``, as float64."""
        feed = {self.input_name: np.asarray(features, dtype=self.input_type)}
        if not self.classifier:
            (values, *_) = self.session.run(None, feed)
            return np.asarray(values, dtype=np.float64).reshape(-1)
        probabilities = self.session.run(None, feed)[1]
        if isinstance(probabilities, list):  # ZipMap: one mapping per row, in class order
            return np.array([list(row.values()) for row in probabilities], dtype=np.float64)
        return np.asarray(probabilities, dtype=np.float64)
