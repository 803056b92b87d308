"""Explanations: per-prediction contributions that add up to the raw output, and global importance.

Per prediction, contributions are computed on the served model itself:

- LightGBM: TreeSHAP, through the booster's ``pred_contrib=True``.
- Linear and logistic models: ``coefficient * encoded value`` (the encoded values are centred,
  so a contribution says how far this record's value moves the score from an average one).

Both are computed on the encoded features and then summed per input column (a one-hot encoded
column contributes the sum of its outputs), so ``base_value + sum(contributions) == raw_output``
holds exactly up to floating point. The raw output is the log-odds of the positive class for
binary tasks, the log-odds (softmax input) of the predicted class for multiclass tasks, and the
prediction itself for regression.

Globally, :func:`permutation_importance` shuffles one input column at a time and measures how
much the model's metric drops, which works for any model the predictor can score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from shipyard.errors import ShipyardError
from shipyard.evaluation.metrics import GREATER_IS_BETTER, score
from shipyard.runtime.models import LightGBMScorer, LinearScorer

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.registry.store import Registry
    from shipyard.runtime.predictor import Predictor
    from shipyard.runtime.preprocess import CompiledPreprocessor

__all__ = [
    "Explanation",
    "UnsupportedModelError",
    "column_spans",
    "contribution_summary",
    "explain_features",
    "explain_frame",
    "explain_records",
    "explain_reference",
    "permutation_importance",
]

FloatArray = npt.NDArray[np.float64]


class UnsupportedModelError(ShipyardError, ValueError):
    """The model family has no per-prediction explanation in this shipyard."""


@dataclass(frozen=True)
class Explanation:
    """Contributions of each input column to the raw output of each row.

    Attributes
    ----------
    columns
        Input column names, in the preprocessor's order.
    contributions
        Shape (rows, columns).
    base_value
        Shape (rows,): the raw output with every contribution at zero.
    raw_output
        Shape (rows,): the model's raw output; ``base_value + contributions.sum(1)``.
    output_name
        What the raw output is, in words.
    class_index
        For classification, the class each row's raw output belongs to.
    """

    columns: list[str]
    contributions: FloatArray
    base_value: FloatArray
    raw_output: FloatArray
    output_name: str
    class_index: npt.NDArray[np.int64]


def column_spans(preprocessor: CompiledPreprocessor) -> list[tuple[str, int, int]]:
    """Return ``(input column, first output, end output)`` for each encoder."""
    spans, offset = [], 0
    for encoder in preprocessor.encoders:
        if encoder["kind"] == "onehot":
            width = len(encoder["categories"]) + (1 if encoder.get("infrequent") else 0)
        else:
            width = 1
        spans.append((str(encoder["column"]), offset, offset + width))
        offset += width
    return spans


def _per_column(preprocessor: CompiledPreprocessor, encoded: FloatArray) -> FloatArray:
    spans = column_spans(preprocessor)
    out = np.empty((encoded.shape[0], len(spans)), dtype=np.float64)
    for index, (_, start, end) in enumerate(spans):
        out[:, index] = encoded[:, start:end].sum(axis=1)
    return out


def _output_name(task: str, classes: Sequence[Any]) -> str:
    if task == "regression":
        return "predicted value"
    if task == "binary":
        return f"log-odds of '{classes[-1]}'"
    return "log-odds (softmax input) of the predicted class"


def explain_features(predictor: Predictor, features: FloatArray) -> Explanation:
    """Explain rows that are already encoded by the predictor's preprocessor.

    Raises
    ------
    UnsupportedModelError
        When the scorer is neither LightGBM nor linear.
    """
    scorer, task = predictor.scorer, predictor.task
    # The server swaps in a fast one-row wrapper; explain with the model it wraps.
    scorer = getattr(scorer, "inner", scorer)
    features = np.asarray(features, dtype=np.float64)
    n_rows, n_features = features.shape
    rows = np.arange(n_rows)
    if isinstance(scorer, LightGBMScorer):
        contributions = np.asarray(
            scorer.booster.predict(features, pred_contrib=True), dtype=np.float64
        )
        if task == "multiclass":
            per_class = contributions.reshape(n_rows, -1, n_features + 1)
            chosen = np.argmax(per_class.sum(axis=2), axis=1)
            picked = per_class[rows, chosen]
        else:
            chosen = np.full(n_rows, 1 if task == "binary" else 0)
            picked = contributions
        encoded, base = picked[:, :n_features], picked[:, n_features]
    elif isinstance(scorer, LinearScorer):
        decision = features @ scorer.coefficients.T + scorer.intercepts
        if task == "multiclass":
            chosen = np.argmax(decision, axis=1)
        else:
            chosen = np.zeros(n_rows, dtype=np.int64)
        encoded = features * scorer.coefficients[chosen]
        base = scorer.intercepts[chosen].astype(np.float64)
        if task == "binary":
            chosen = np.ones(n_rows, dtype=np.int64)
    else:
        raise UnsupportedModelError(
            f"Per-prediction explanations cover LightGBM and linear models; this model is "
            f"scored by {type(scorer).__name__}. Use permutation importance "
            "(shipyard.evaluation.explain.permutation_importance) for a global view instead."
        )
    per_column = _per_column(predictor.preprocessor, np.nan_to_num(encoded))
    return Explanation(
        columns=[span[0] for span in column_spans(predictor.preprocessor)],
        contributions=per_column,
        base_value=np.asarray(base, dtype=np.float64),
        raw_output=np.asarray(base + np.nan_to_num(encoded).sum(axis=1), dtype=np.float64),
        output_name=_output_name(task, predictor.classes),
        class_index=np.asarray(chosen, dtype=np.int64),
    )


def explain_frame(predictor: Predictor, frame: pd.DataFrame) -> Explanation:
    """Explain every row of a frame (columns named as in the contract)."""
    from shipyard.runtime.predictor import _column_values

    columns = {name: _column_values(frame[name]) for name in predictor.preprocessor.input_columns}
    return explain_features(predictor, predictor.preprocessor.transform_columns(columns))


def explain_records(
    predictor: Predictor, records: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Validate records and explain each prediction; the JSON the explain endpoint returns.

    Raises
    ------
    RecordValidationError
        When a record breaks the contract.
    UnsupportedModelError
        When the model family has no per-prediction explanation.
    """
    predictor.validator.check_records(list(records))
    rows = [predictor.preprocessor.transform_record(record) for record in records]
    features = np.array(rows, dtype=np.float64).reshape(
        len(rows), predictor.preprocessor.n_outputs
    )
    explanation = explain_features(predictor, features)
    answers = predictor.format_outputs(predictor.scorer.score(features))
    results = []
    for index, answer in enumerate(answers):
        values = explanation.contributions[index]
        order = np.argsort(-np.abs(values), kind="stable")
        item = {
            **answer,
            "output": explanation.output_name,
            "raw_output": float(explanation.raw_output[index]),
            "base_value": float(explanation.base_value[index]),
            "contributions": {explanation.columns[k]: float(values[k]) for k in order},
        }
        if predictor.task == "multiclass":
            item["explained_class"] = predictor.classes[int(explanation.class_index[index])]
        results.append(item)
    return results


def contribution_summary(explanation: Explanation) -> dict[str, float]:
    """Mean absolute contribution per input column, largest first."""
    means = np.abs(explanation.contributions).mean(axis=0)
    order = np.argsort(-means, kind="stable")
    return {explanation.columns[k]: float(means[k]) for k in order}


def permutation_importance(
    predictor: Predictor,
    frame: pd.DataFrame,
    y: npt.NDArray[Any],
    metric: str,
    *,
    repeats: int = 3,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Drop in ``metric`` when each input column is shuffled, averaged over ``repeats``.

    Returns ``{column: {"mean": ..., "std": ...}}``, largest mean first; a positive mean means
    the model relies on the column.
    """
    rng = np.random.default_rng(seed)
    sign = 1.0 if GREATER_IS_BETTER[metric] else -1.0
    baseline = score(metric, y, predictor.score_frame(frame))
    results: dict[str, dict[str, float]] = {}
    for column in predictor.preprocessor.input_columns:
        drops = []
        for _ in range(repeats):
            shuffled = frame.copy()
            shuffled[column] = frame[column].to_numpy()[rng.permutation(len(frame))]
            drops.append(sign * (baseline - score(metric, y, predictor.score_frame(shuffled))))
        results[column] = {"mean": float(np.mean(drops)), "std": float(np.std(drops))}
    return dict(sorted(results.items(), key=lambda item: -item[1]["mean"]))


def explain_reference(
    registry: Registry, reference: str, records: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Explain records with a registered version: ``{"model", "version", "explanations"}``."""
    version = registry.resolve(reference)
    predictor = registry.load_predictor(version.reference)
    return {
        "model": version.name,
        "version": version.version,
        "explanations": explain_records(predictor, records),
    }
