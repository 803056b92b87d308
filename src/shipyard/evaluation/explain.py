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

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from shipyard.errors import ShipyardError
from shipyard.evaluation.metrics import GREATER_IS_BETTER, score
from shipyard.evaluation.treeshap import ForestPaths, forest_contributions
from shipyard.runtime.models import LightGBMScorer, LinearScorer
from shipyard.runtime.scorers import (
    CatBoostScorer,
    CompositeScorer,
    ForestScorer,
    MLPScorer,
    XGBoostScorer,
)

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.registry.store import Registry
    from shipyard.runtime.predictor import Predictor
    from shipyard.runtime.preprocess import CompiledPreprocessor

__all__ = [
    "Explanation",
    "MemberExplanation",
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


EXACT_TOLERANCE = 1e-6
"""How closely ``base_value + sum(contributions)`` equals the explained score (exact methods)."""

XGBOOST_TOLERANCE = 1e-5
"""XGBoost sums contributions in 32-bit floats: they add up to its margin within this much
times ``max(1, |margin|)``."""

PERMUTATIONS = 64
"""Permutations (32 antithetic pairs) of the sampled Shapley estimate for networks."""

PERMUTATION_SEED = 0


@dataclass(frozen=True)
class Explanation:
    """Contributions of each input column to the explained score of each row.

    Attributes
    ----------
    columns
        Input column names, in the preprocessor's order.
    contributions
        Shape (rows, columns).
    base_value
        Shape (rows,): the explained score with every contribution at zero.
    raw_output
        Shape (rows,): the explained score; ``base_value + contributions.sum(1)``.
    output_name
        The space the contributions add up in, in words (``log-odds of '>50K'``).
    class_index
        For classification, the class each row's explained score belongs to.
    method
        How the contributions were computed.
    tolerance
        Shape (rows,): how closely ``base_value + sum(contributions)`` equals the model's own
        score.
    standard_error
        Shape (rows,), for sampled estimates only: the largest standard error of a row's
        contributions (the sum is exact whatever the sample).
    members
        For an ensemble or a calibrated model: each member explained in its own space.
    """

    columns: list[str]
    contributions: FloatArray
    base_value: FloatArray
    raw_output: FloatArray
    output_name: str
    class_index: npt.NDArray[np.int64]
    method: str = "coefficient x encoded value"
    tolerance: FloatArray | float = EXACT_TOLERANCE
    standard_error: FloatArray | None = None
    members: list[MemberExplanation] = field(default_factory=list)


@dataclass(frozen=True)
class MemberExplanation:
    """One member of an ensemble, its weight and its explanation in its own space."""

    index: int
    model: str
    weight: float
    explanation: Explanation


@dataclass(frozen=True)
class _Encoded:
    """A family's explanation over the encoded features, before summing per input column."""

    contributions: FloatArray
    base: FloatArray
    kind: str  # "log-odds", "probability" or "value": the space the contributions add up in
    method: str
    tolerance: FloatArray | float = EXACT_TOLERANCE
    standard_error: FloatArray | None = None


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


def _columns(preprocessor: CompiledPreprocessor) -> list[str]:
    """Input columns once each (an ensemble encodes a column once per member)."""
    return list(dict.fromkeys(span[0] for span in column_spans(preprocessor)))


def _per_column(preprocessor: CompiledPreprocessor, encoded: FloatArray) -> FloatArray:
    columns = _columns(preprocessor)
    position = {name: index for index, name in enumerate(columns)}
    out = np.zeros((encoded.shape[0], len(columns)), dtype=np.float64)
    for name, start, end in column_spans(preprocessor):
        out[:, position[name]] += encoded[:, start:end].sum(axis=1)
    return out


def _space(kind: str, task: str, classes: Sequence[Any]) -> str:
    if task == "regression":
        return "predicted value"
    if task == "binary":
        return f"{kind} of '{classes[-1]}'"
    if kind == "log-odds":
        return "log-odds (softmax input) of the predicted class"
    return f"{kind} of the predicted class"


def _pick(values: FloatArray, chosen: npt.NDArray[np.int64]) -> FloatArray:
    """Rows of one output: the chosen class's when there is one block per class."""
    if values.ndim == 3:
        return np.asarray(values[np.arange(len(values)), chosen], dtype=np.float64)
    return np.asarray(values, dtype=np.float64)


def _split_bias(values: FloatArray) -> tuple[FloatArray, FloatArray]:
    return values[:, :-1], values[:, -1]


def _lightgbm(scorer: LightGBMScorer, features: FloatArray, chosen: Any) -> _Encoded:
    raw = np.asarray(scorer.booster.predict(features, pred_contrib=True), dtype=np.float64)
    if scorer.task == "multiclass":
        raw = raw.reshape(len(features), -1, features.shape[1] + 1)
    contributions, base = _split_bias(_pick(raw, chosen))
    kind = "value" if scorer.task == "regression" else "log-odds"
    return _Encoded(contributions, base, kind, "TreeSHAP (LightGBM pred_contrib)")


def _linear(scorer: LinearScorer, features: FloatArray, chosen: Any) -> _Encoded:
    # Exact Shapley values of a linear map against the all-zero encoded row (numeric columns
    # at their training mean, no category), so a contribution is coefficient x encoded value.
    row = chosen if scorer.task == "multiclass" else np.zeros(len(features), dtype=np.int64)
    contributions = features * scorer.coefficients[row]
    kind = "value" if scorer.task == "regression" else "log-odds"
    return _Encoded(contributions, scorer.intercepts[row], kind, "coefficient x encoded value")


def _xgboost(scorer: XGBoostScorer, features: FloatArray, chosen: Any) -> _Encoded:
    import xgboost

    matrix = xgboost.DMatrix(features, missing=np.nan)
    raw = np.asarray(scorer.booster.predict(matrix, pred_contribs=True), dtype=np.float64)
    contributions, base = _split_bias(_pick(raw, chosen))
    kind = "value" if scorer.task == "regression" else "log-odds"
    score = np.abs(base + contributions.sum(axis=1))
    tolerance = XGBOOST_TOLERANCE * np.maximum(1.0, score)
    return _Encoded(contributions, base, kind, "TreeSHAP (XGBoost pred_contribs)", tolerance)


def _catboost(scorer: CatBoostScorer, features: FloatArray, chosen: Any) -> _Encoded:
    import catboost

    raw = scorer.model.get_feature_importance(
        data=catboost.Pool(features), type="ShapValues", thread_count=1
    )
    contributions, base = _split_bias(_pick(np.asarray(raw, dtype=np.float64), chosen))
    kind = "value" if scorer.task == "regression" else "log-odds"
    return _Encoded(contributions, base, kind, "TreeSHAP (CatBoost ShapValues)")


_FOREST_PATHS: weakref.WeakKeyDictionary[ForestScorer, ForestPaths] = weakref.WeakKeyDictionary()


def _forest(scorer: ForestScorer, features: FloatArray, chosen: Any) -> _Encoded:
    if any("cover" not in tree for tree in scorer.document["trees"][:1]):
        raise UnsupportedModelError(
            "This forest was exported without node covers, which TreeSHAP needs; retrain it "
            "with this shipyard to explain its predictions, or use permutation importance "
            "(shipyard.evaluation.explain.permutation_importance) for a global view."
        )
    paths = _FOREST_PATHS.get(scorer)
    if paths is None:
        paths = _FOREST_PATHS[scorer] = ForestPaths.from_document(scorer.document)
    contributions, base = forest_contributions(paths, features, features.shape[1])
    rows = np.arange(len(features))
    picked = contributions[rows, :, chosen]
    kind = "value" if scorer.task == "regression" else "probability"
    method = "TreeSHAP (exact, path-dependent) on the forest's trees"
    return _Encoded(np.asarray(picked, dtype=np.float64), base[chosen], kind, method)


def _mlp_margin(scorer: MLPScorer, features: FloatArray) -> FloatArray:
    """Return the network's output before its link (log-odds, softmax input or value)."""
    activation = features
    last = len(scorer.weights) - 1
    for layer, (weights, bias) in enumerate(zip(scorer.weights, scorer.biases, strict=True)):
        activation = activation @ weights + bias
        if layer < last:
            activation = np.maximum(activation, 0.0)
    return np.asarray(activation, dtype=np.float64)


def _permutations(n_groups: int) -> npt.NDArray[np.int64]:
    """Seeded permutations in antithetic pairs (each followed by its reverse)."""
    rng = np.random.default_rng(PERMUTATION_SEED)
    halves = [rng.permutation(n_groups) for _ in range(PERMUTATIONS // 2)]
    return np.array([order for half in halves for order in (half, half[::-1])], dtype=np.int64)


def _mlp(
    scorer: MLPScorer, features: FloatArray, chosen: Any, groups: list[tuple[int, int]]
) -> _Encoded:
    """Estimate Shapley values of the network's margin against the all-zero encoded row.

    Each permutation switches the input columns from the zero row to the record's values one
    at a time; a column's contribution is the mean change it makes. Every permutation's
    changes add up to ``margin(record) - margin(zero row)``, so the sum is exact; each
    contribution is an estimate whose standard error is reported.
    """
    orders = _permutations(len(groups))
    n_rows, width = features.shape
    n_orders, n_steps = len(orders), len(groups) + 1
    masks = np.zeros((n_orders, n_steps, width), dtype=np.float64)
    for order_index, order in enumerate(orders):
        for step, group in enumerate(order, start=1):
            masks[order_index, step:, groups[group][0] : groups[group][1]] = 1.0
    row_of_class = chosen if scorer.task == "multiclass" else np.zeros(n_rows, dtype=np.int64)
    per_order = np.zeros((n_rows, n_orders, len(groups)), dtype=np.float64)
    base = np.zeros(n_rows, dtype=np.float64)
    for row in range(n_rows):
        states = (masks * features[row]).reshape(-1, width)
        margin = _mlp_margin(scorer, states)[:, row_of_class[row]].reshape(n_orders, n_steps)
        steps = np.diff(margin, axis=1)
        per_order[row, np.arange(n_orders)[:, None], orders] = steps
        base[row] = margin[0, 0]
    pairs = per_order.reshape(n_rows, n_orders // 2, 2, len(groups)).mean(axis=2)
    standard_error = pairs.std(axis=1, ddof=1).max(axis=1) / np.sqrt(pairs.shape[1])
    contributions = np.zeros((n_rows, width), dtype=np.float64)
    for group, (start, _) in enumerate(groups):
        contributions[:, start] = per_order[:, :, group].mean(axis=1)
    kind = "value" if scorer.task == "regression" else "log-odds"
    method = (
        f"sampled Shapley values ({n_orders} permutations in antithetic pairs, seed "
        f"{PERMUTATION_SEED}) against the all-zero encoded row"
    )
    return _Encoded(contributions, base, kind, method, EXACT_TOLERANCE, standard_error)


def _explain_scorer(
    scorer: Any, features: FloatArray, chosen: Any, groups: list[tuple[int, int]]
) -> _Encoded:
    """Dispatch to the family's explainer."""
    scorer = getattr(scorer, "inner", scorer)
    if isinstance(scorer, LightGBMScorer):
        return _lightgbm(scorer, features, chosen)
    if isinstance(scorer, LinearScorer):
        return _linear(scorer, features, chosen)
    if isinstance(scorer, XGBoostScorer):
        return _xgboost(scorer, features, chosen)
    if isinstance(scorer, CatBoostScorer):
        return _catboost(scorer, features, chosen)
    if isinstance(scorer, ForestScorer):
        return _forest(scorer, features, chosen)
    if isinstance(scorer, MLPScorer):
        return _mlp(scorer, features, chosen, groups)
    raise UnsupportedModelError(
        f"Per-prediction explanations cover LightGBM, XGBoost, CatBoost, forests, linear "
        f"models, networks and their ensembles; this model is scored by "
        f"{type(scorer).__name__}. Use permutation importance "
        "(shipyard.evaluation.explain.permutation_importance) for a global view instead."
    )


_FAMILIES = {
    "LightGBMScorer": "lightgbm",
    "LinearScorer": "linear",
    "XGBoostScorer": "xgboost",
    "CatBoostScorer": "catboost",
    "ForestScorer": "forest",
    "MLPScorer": "mlp",
}


def _chosen_classes(predictor: Predictor, scorer: Any, features: FloatArray) -> Any:
    """Return the class explained per row: the positive, the predicted, or 0 (regression)."""
    if predictor.task == "binary":
        return np.ones(len(features), dtype=np.int64)
    if predictor.task == "multiclass":
        return np.asarray(np.argmax(scorer.score(features), axis=1), dtype=np.int64)
    return np.zeros(len(features), dtype=np.int64)


def _assemble(
    predictor: Predictor,
    encoded: _Encoded,
    chosen: Any,
    space: str | None = None,
    members: list[MemberExplanation] | None = None,
) -> Explanation:
    contributions = np.nan_to_num(np.asarray(encoded.contributions, dtype=np.float64))
    base = np.broadcast_to(np.asarray(encoded.base, dtype=np.float64), (len(contributions),))
    return Explanation(
        columns=_columns(predictor.preprocessor),
        contributions=_per_column(predictor.preprocessor, contributions),
        base_value=np.array(base, dtype=np.float64),
        raw_output=np.asarray(base + contributions.sum(axis=1), dtype=np.float64),
        output_name=space or _space(encoded.kind, predictor.task, predictor.classes),
        class_index=np.asarray(chosen, dtype=np.int64),
        method=encoded.method,
        tolerance=np.broadcast_to(encoded.tolerance, base.shape).astype(np.float64),
        standard_error=encoded.standard_error,
        members=members or [],
    )


def _groups(preprocessor: CompiledPreprocessor, start: int, stop: int) -> list[tuple[int, int]]:
    """Return each input column's encoded span within ``[start, stop)``, relative to start."""
    return [
        (first - start, end - start)
        for _, first, end in column_spans(preprocessor)
        if start <= first and end <= stop
    ]


def _weighted_standard_error(
    parts: list[tuple[_Encoded, float]], n_rows: int
) -> FloatArray | None:
    """Bound the standard error of a weighted sum whose sampled members may be correlated."""
    sampled = [(part, weight) for part, weight in parts if part.standard_error is not None]
    if not sampled:
        return None
    total = np.zeros(n_rows, dtype=np.float64)
    for part, weight in sampled:
        total += weight * np.asarray(part.standard_error, dtype=np.float64)
    return total


def _explain_composite(
    predictor: Predictor, scorer: CompositeScorer, features: FloatArray, chosen: Any
) -> Explanation:
    """Explain each member in its own space; combine them where their spaces add up.

    A weighted average adds up member by member when the members' explained scores are what
    is averaged: predicted values (regression) and probabilities (forests). Otherwise, and
    for a calibrated model (calibration bends the average), the answer is the heaviest
    member's explanation in its own space, and every member is listed with its weight.
    """
    task, width = predictor.task, features.shape[1]
    members, parts = [], []
    for index, (member, start, stop, weight) in enumerate(scorer.members):
        groups = _groups(predictor.preprocessor, start, stop)
        part = _explain_scorer(member, features[:, start:stop], chosen, groups)
        padded = np.zeros((len(features), width), dtype=np.float64)
        padded[:, start:stop] = part.contributions
        part = _Encoded(
            padded, part.base, part.kind, part.method, part.tolerance, part.standard_error
        )
        name = _FAMILIES.get(type(getattr(member, "inner", member)).__name__, "model")
        space = f"{_space(part.kind, task, predictor.classes)} of member {index} ({name})"
        members.append(
            MemberExplanation(index, name, weight, _assemble(predictor, part, chosen, space))
        )
        parts.append((part, weight))
    kinds = {part.kind for part, _ in parts}
    calibrated = scorer.calibration is not None and task == "binary"
    if kinds == {"value"} or (kinds == {"probability"} and not calibrated):
        combined = _Encoded(
            np.sum([weight * part.contributions for part, weight in parts], axis=0),
            np.sum([weight * np.asarray(part.base) for part, weight in parts], axis=0),
            kinds.pop(),
            "; ".join(dict.fromkeys(part.method for part, _ in parts)),
            np.sum(
                [
                    weight * np.broadcast_to(np.asarray(part.tolerance), (len(features),))
                    for part, weight in parts
                ],
                axis=0,
            ),
            _weighted_standard_error(parts, len(features)),
        )
        space = f"{_space(combined.kind, task, predictor.classes)} (ensemble weights)"
        return _assemble(predictor, combined, chosen, space, members)
    heaviest = max(members, key=lambda item: item.weight)
    note = ", before calibration" if calibrated else ""
    top = heaviest.explanation
    return Explanation(
        columns=top.columns,
        contributions=top.contributions,
        base_value=top.base_value,
        raw_output=top.raw_output,
        output_name=f"{top.output_name}, weight {heaviest.weight:.3g}{note}",
        class_index=top.class_index,
        method=top.method,
        tolerance=top.tolerance,
        standard_error=top.standard_error,
        members=members,
    )


def explain_features(predictor: Predictor, features: FloatArray) -> Explanation:
    """Explain rows that are already encoded by the predictor's preprocessor.

    Raises
    ------
    UnsupportedModelError
        When the model family has no per-prediction explanation.
    """
    # The server swaps in a fast one-row wrapper; explain with the model it wraps.
    scorer = getattr(predictor.scorer, "inner", predictor.scorer)
    features = np.asarray(features, dtype=np.float64)
    chosen = _chosen_classes(predictor, scorer, features)
    if isinstance(scorer, CompositeScorer):
        return _explain_composite(predictor, scorer, features, chosen)
    groups = _groups(predictor.preprocessor, 0, features.shape[1])
    return _assemble(predictor, _explain_scorer(scorer, features, chosen, groups), chosen)


def explain_frame(predictor: Predictor, frame: pd.DataFrame) -> Explanation:
    """Explain every row of a frame (columns named as in the contract, cleaned)."""
    from shipyard.runtime.predictor import encode_frame

    return explain_features(predictor, encode_frame(predictor.preprocessor, frame))


def _contributions(explanation: Explanation, index: int) -> dict[str, float]:
    values = explanation.contributions[index]
    order = np.argsort(-np.abs(values), kind="stable")
    return {explanation.columns[k]: float(values[k]) for k in order}


def _describe(explanation: Explanation, index: int) -> dict[str, Any]:
    """One row's explanation as JSON: space, method, base, score and contributions."""
    item: dict[str, Any] = {
        "output": explanation.output_name,
        "space": explanation.output_name,
        "method": explanation.method,
        "tolerance": float(np.asarray(explanation.tolerance)[index]),
        "raw_output": float(explanation.raw_output[index]),
        "base_value": float(explanation.base_value[index]),
        "contributions": _contributions(explanation, index),
    }
    if explanation.standard_error is not None:
        item["standard_error"] = float(explanation.standard_error[index])
    return item


def explain_records(
    predictor: Predictor, records: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Clean and validate records and explain each prediction; the explain endpoint's JSON.

    Records are cleaned as for ``/predict`` first, so derived columns (the ``__missing``
    indicators) come from the model's cleaning, never from the client.

    Raises
    ------
    RecordValidationError
        When a record breaks the contract.
    UnsupportedModelError
        When the model family has no per-prediction explanation.
    """
    if predictor.cleaner is not None:
        records = predictor.cleaner.clean_records(records)
    predictor.validator.check_records(list(records))
    records = predictor.settle_records(records)  # unknown categories, as /predict scores them
    rows = [predictor.preprocessor.transform_record(record) for record in records]
    features = np.array(rows, dtype=np.float64).reshape(
        len(rows), predictor.preprocessor.n_outputs
    )
    explanation = explain_features(predictor, features)
    answers = predictor.format_outputs(predictor.scorer.score(features))
    results = []
    for index, answer in enumerate(answers):
        item = {**answer, **_describe(explanation, index)}
        if predictor.task == "multiclass":
            item["explained_class"] = predictor.classes[int(explanation.class_index[index])]
        if explanation.members:
            item["members"] = [
                {
                    "member": member.index,
                    "model": member.model,
                    "weight": member.weight,
                    **_describe(member.explanation, index),
                }
                for member in explanation.members
            ]
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
