"""Export a fitted pipeline to the serving format, and prove the export right.

Preprocessing becomes a JSON spec (:mod:`shipyard.runtime.preprocess`); LightGBM becomes its text
model, XGBoost and CatBoost their own JSON formats; linear models, forests and networks become
their coefficients, nodes or weights in JSON. None of these formats runs code when
loaded. :func:`check_parity` then scores held-out rows through the exported path, one at a time
and in batches, and refuses the export unless every output matches the fitted pipeline within
``1e-6``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.errors import ExportError
from shipyard.runtime.models import LinearScorer, Scorer
from shipyard.runtime.preprocess import SPEC_VERSION, CompiledPreprocessor

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from shipyard.runtime.predictor import Predictor

__all__ = [
    "ExportedModel",
    "check_parity",
    "export_composite",
    "export_pipeline",
    "frame_to_records",
]

PARITY_TOLERANCE = 1e-6


@dataclass(frozen=True)
class ExportedModel:
    """The serving form of a pipeline: a preprocessing spec and a model file."""

    preprocessing: dict[str, Any]
    model_format: str
    model_filename: str
    model_payload: str
    extra_files: Mapping[str, str] = field(default_factory=dict)
    """Further model files the main one refers to (the members of an ensemble)."""

    def scorer(self, task: str) -> Scorer:
        """Build the scorer from the exported payload, exactly as serving will."""
        from shipyard.runtime.scorers import build_scorer

        return build_scorer(
            self.model_format, self.model_payload, self.extra_files.__getitem__, task
        )

    def files(self) -> dict[str, bytes]:
        """Every model file of the bundle, by name."""
        return {
            self.model_filename: self.model_payload.encode(),
            **{name: text.encode() for name, text in self.extra_files.items()},
        }


def export_pipeline(pipeline: Pipeline, task: str) -> ExportedModel:
    """Compile a fitted ``Pipeline([("preprocess", ColumnTransformer), ("model", ...)])``.

    Raises
    ------
    ExportError
        When a step is not one the compiler knows.
    """
    preprocess, model = pipeline.named_steps["preprocess"], pipeline.named_steps["model"]
    encoders: list[dict[str, Any]] = []
    for name, transformer, columns in preprocess.transformers_:
        if name == "remainder" or transformer == "drop" or len(columns) == 0:
            continue
        encoders.extend(_compile_block(transformer, list(columns)))
    spec = {"version": SPEC_VERSION, "encoders": encoders}
    width = len(preprocess.get_feature_names_out())
    compiled = CompiledPreprocessor(spec)
    if compiled.n_outputs != width:
        raise ExportError(
            f"Compiled preprocessing has {compiled.n_outputs} outputs but the "
            f"pipeline produces {width}; this is a shipyard bug, please report it."
        )
    model_format, filename, payload = _export_model(model, task)
    return ExportedModel(spec, model_format, filename, payload)


def _compile_block(transformer: Any, columns: list[str]) -> list[dict[str, Any]]:
    from sklearn.pipeline import Pipeline

    steps = (
        [step for _, step in transformer.steps]
        if isinstance(transformer, Pipeline)
        else [transformer]
    )
    kinds = [type(step).__name__ for step in steps]
    # A fitted ColumnTransformer stores "passthrough" as an identity FunctionTransformer.
    identity = kinds == ["FunctionTransformer"] and steps[0].func is None
    if identity or (kinds == ["str"] and transformer == "passthrough"):
        return [{"column": column, "kind": "numeric", "fill": None} for column in columns]
    if kinds == ["SimpleImputer", "StandardScaler"] and steps[0].strategy != "constant":
        imputer, scaler = steps
        return [
            {
                "column": column,
                "kind": "numeric",
                "fill": float(imputer.statistics_[i]),
                "center": float(scaler.mean_[i]),
                "scale": float(scaler.scale_[i]),
            }
            for i, column in enumerate(columns)
        ]
    if kinds == ["SimpleImputer", "OneHotEncoder"] and steps[0].strategy == "constant":
        return [_compile_onehot(steps[1], i, column) for i, column in enumerate(columns)]
    if kinds == ["OrdinalEncoder"]:
        return [
            {
                "column": column,
                "kind": "ordinal",
                "categories": [str(c) for c in steps[0].categories_[i] if not _is_nan(c)],
            }
            for i, column in enumerate(columns)
        ]
    raise ExportError(
        f"Cannot compile the preprocessing steps {kinds} for columns {columns} "
        "to the serving format; use the transformers shipyard's candidates use."
    )


def _compile_onehot(encoder: Any, index: int, column: str) -> dict[str, Any]:
    if encoder.drop is not None:
        raise ExportError("One-hot encoders with 'drop' are not supported by the exporter.")
    categories = [str(c) for c in encoder.categories_[index]]
    infrequent_all = getattr(encoder, "infrequent_categories_", None)
    infrequent = infrequent_all[index] if infrequent_all is not None else None
    rare = [str(c) for c in infrequent] if infrequent is not None else []
    return {
        "column": column,
        "kind": "onehot",
        "categories": [c for c in categories if c not in set(rare)],
        "infrequent": rare,
    }


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value


def _export_model(model: Any, task: str) -> tuple[str, str, str]:
    name = type(model).__name__
    if name in ("LGBMClassifier", "LGBMRegressor"):
        booster = model.booster_
        best = model.best_iteration_ if getattr(model, "best_iteration_", 0) else None
        return "lightgbm-text", "model.lgb.txt", booster.model_to_string(num_iteration=best)
    if name in ("LogisticRegression", "Ridge", "LinearRegression"):
        coefficients = np.atleast_2d(np.asarray(model.coef_, dtype=np.float64))
        intercepts = np.atleast_1d(np.asarray(model.intercept_, dtype=np.float64))
        payload = LinearScorer(coefficients, intercepts, task).to_json()
        return "linear-json", "model.linear.json", json.dumps(payload)
    if name in ("XGBClassifier", "XGBRegressor"):
        return "xgboost-json", "model.xgb.json", _xgboost_json(model)
    if name in ("CatBoostClassifier", "CatBoostRegressor"):
        return "catboost-json", "model.catboost.json", _catboost_json(model)
    if name in FOREST_MODELS:
        return "forest-json", "model.forest.json", json.dumps(_forest_document(model, task))
    if name in ("MLPClassifier", "MLPRegressor"):
        if model.activation != "relu":
            raise ExportError(f"Only ReLU networks can be exported, not '{model.activation}'.")
        document = {
            "weights": [matrix.tolist() for matrix in model.coefs_],
            "biases": [vector.tolist() for vector in model.intercepts_],
        }
        return "mlp-json", "model.mlp.json", json.dumps(document)
    raise ExportError(f"Cannot export a {name} model to the serving format.")


FOREST_MODELS = frozenset(
    {
        "RandomForestClassifier",
        "RandomForestRegressor",
        "ExtraTreesClassifier",
        "ExtraTreesRegressor",
    }
)


def _xgboost_json(model: Any) -> str:
    booster = model.get_booster()
    try:
        best = int(model.best_iteration)
    except AttributeError:  # no early stopping: every tree is used
        best = None
    if best is not None:
        booster = booster[: best + 1]
    return bytes(booster.save_raw("json")).decode("utf-8")


def _catboost_json(model: Any) -> str:
    """CatBoost's own JSON model format (it saves to a file only)."""
    import tempfile
    from pathlib import Path

    if model.get_cat_feature_indices():
        raise ExportError("CatBoost models with native categorical features cannot be exported.")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.json"
        model.save_model(str(path), format="json")
        return path.read_text(encoding="utf-8")


def _forest_document(model: Any, task: str) -> dict[str, Any]:
    trees = []
    depth = 0
    for estimator in model.estimators_:
        tree = estimator.tree_
        values = np.asarray(tree.value[:, 0, :], dtype=np.float64)
        if task != "regression":
            # A classifier tree predicts the class shares at its leaf.
            totals = values.sum(axis=1, keepdims=True)
            values = values / np.where(totals == 0, 1.0, totals)
        trees.append(
            {
                "feature": tree.feature.tolist(),
                "threshold": tree.threshold.tolist(),
                "left": tree.children_left.tolist(),
                "right": tree.children_right.tolist(),
                "missing_left": np.asarray(tree.missing_go_to_left, dtype=bool).tolist(),
                "value": values.tolist(),
                # The training weight at each node: TreeSHAP's conditional expectations.
                "cover": np.asarray(tree.weighted_n_node_samples, dtype=np.float64).tolist(),
            }
        )
        depth = max(depth, int(tree.max_depth))
    return {"max_depth": depth, "trees": trees}


def export_composite(
    members: Sequence[tuple[Pipeline, float]],
    task: str,
    calibration: Mapping[str, Any] | None = None,
) -> ExportedModel:
    """Export a weighted average of fitted pipelines (and a calibration) as one model.

    The preprocessing specs of the members are laid side by side; each member scores its own
    slice of the encoded row.
    """
    from shipyard.runtime.scorers import COMPOSITE_FORMAT

    encoders: list[dict[str, Any]] = []
    entries, files = [], {}
    for index, (pipeline, weight) in enumerate(members):
        exported = export_pipeline(pipeline, task)
        start = CompiledPreprocessor({"version": SPEC_VERSION, "encoders": encoders}).n_outputs
        encoders.extend(exported.preprocessing["encoders"])
        stop = CompiledPreprocessor({"version": SPEC_VERSION, "encoders": encoders}).n_outputs
        path = f"model.{index}.{exported.model_filename.removeprefix('model.')}"
        files[path] = exported.model_payload
        entries.append(
            {
                "format": exported.model_format,
                "path": path,
                "start": start,
                "stop": stop,
                "weight": float(weight),
            }
        )
    document = {"members": entries, "calibration": dict(calibration) if calibration else None}
    return ExportedModel(
        {"version": SPEC_VERSION, "encoders": encoders},
        COMPOSITE_FORMAT,
        "model.composite.json",
        json.dumps(document, allow_nan=False),
        files,
    )


def frame_to_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Turn a frame into JSON-like records: plain Python values, None for missing."""
    records = []
    for row in frame.itertuples(index=False, name=None):
        records.append(
            {column: _plain(value) for column, value in zip(frame.columns, row, strict=True)}
        )
    return records


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if hasattr(value, "item"):
        value = value.item()
        if isinstance(value, float) and value != value:
            return None
    return value


def training_outputs(pipeline: Pipeline, frame: pd.DataFrame, task: str) -> Any:
    """Return the fitted pipeline's raw outputs: probabilities, or predicted values."""
    if task == "regression":
        return np.asarray(pipeline.predict(frame), dtype=np.float64)
    return np.asarray(pipeline.predict_proba(frame), dtype=np.float64)


def check_parity(
    pipeline: Pipeline, predictor: Predictor, frame: pd.DataFrame, task: str, batch_size: int = 64
) -> dict[str, float]:
    """Compare the exported path with the fitted pipeline on ``frame``.

    Scores every row one at a time, in batches of ``batch_size`` records, and through the
    column batch path, and returns the largest absolute difference of each.

    Raises
    ------
    ExportError
        When any difference exceeds :data:`PARITY_TOLERANCE`.
    """
    columns = predictor.contract.feature_names
    expected = training_outputs(pipeline, frame[columns], task)
    records = frame_to_records(frame[columns])
    single = np.concatenate([predictor.score_records([record]) for record in records])
    batched = np.concatenate(
        [
            predictor.score_records(records[start : start + batch_size])
            for start in range(0, len(records), batch_size)
        ]
    )
    column_batch = predictor.score_frame(frame[columns])
    gaps = {
        "rows": float(len(frame)),
        "single": float(np.max(np.abs(single - expected))),
        "batched": float(np.max(np.abs(batched - expected))),
        "columns": float(np.max(np.abs(column_batch - expected))),
    }
    worst = max(gaps["single"], gaps["batched"], gaps["columns"])
    if not worst <= PARITY_TOLERANCE:
        raise ExportError(
            f"The exported model disagrees with the trained one by up to {worst:.3g}"
            f" (tolerance {PARITY_TOLERANCE:g}) on {len(frame)} held-out rows "
            f"(single: {gaps['single']:.3g}, batched: {gaps['batched']:.3g}, "
            f"columns: {gaps['columns']:.3g}). The bundle was not written."
        )
    return gaps
