"""``shipyard import``: register a model trained elsewhere, with a contract from a sample file.

Three model files are read, none of them a pickle:

``lightgbm``
    LightGBM's text model (``Booster.save_model``), task from its objective;
``xgboost``
    XGBoost's JSON model (``Booster.save_model("model.json")``), task from its objective;
``onnx``
    an ONNX model exported by skl2onnx (or any graph with one float input ``[N, features]``
    and a probabilities or values output).

The sample file (CSV, Parquet, ...) holds labelled rows the model was not trained on: the data
contract is inferred from it, as training infers one, with the label column ``target``. The
model's features are the sample's columns in the model's order (its feature names when it
records them, else the sample's order without the target), all numeric. Before anything is
registered, the bundle's predictor is checked against the library's own prediction on the
sample (within 1e-6), so a feature order or class order that does not match is refused. The
drift reference is sketched from the sample; the first version of a model becomes ``champion``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.errors import DataError, ExportError
from shipyard.registry.store import DEFAULT_ALIAS, ModelVersion, Registry

__all__ = ["IMPORT_FORMATS", "ImportedModel", "import_model"]

IMPORT_FORMATS = ("lightgbm", "xgboost", "onnx")
_PARITY = 1e-6
_METRICS = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}


@dataclass(frozen=True)
class ImportedModel:
    """What :func:`import_model` registered, and the gap of its parity check."""

    version: ModelVersion
    features: list[str]
    max_gap: float


def _lightgbm(text: str) -> tuple[str, list[str] | None, Any]:
    import lightgbm

    booster = lightgbm.Booster(model_str=text)
    objective = booster.dump_model()["objective"].split()[0]
    task = {"binary": "binary", "multiclass": "multiclass", "multiclassova": "multiclass"}.get(
        objective, "regression"
    )
    return task, list(booster.feature_name()), booster.predict


def _xgboost(text: str) -> tuple[str, list[str] | None, Any]:
    import xgboost

    booster = xgboost.Booster()
    booster.load_model(bytearray(text.encode("utf-8")))
    objective = json.loads(booster.save_config())["learner"]["objective"]["name"]
    task = (
        "binary"
        if objective.startswith("binary:")
        else "multiclass"
        if objective.startswith("multi:")
        else "regression"
    )

    def predict(features: Any) -> Any:
        return booster.inplace_predict(features)

    names = booster.feature_names
    return task, list(names) if names is not None else None, predict


def _onnx(data: bytes) -> tuple[str, list[str] | None, Any]:
    from shipyard.runtime.onnx_graph import OnnxFeatureScorer

    # The task ("classifier" for now) is settled by the sample's labels.
    scorer = OnnxFeatureScorer(data, "regression")
    return ("classifier" if scorer.classifier else "regression"), None, scorer.score


def _model_reader(kind: str, data: bytes) -> tuple[str, list[str] | None, Any, str, str]:
    """Return (task, feature names, native predict, bundle format, bundle file name)."""
    if kind == "lightgbm":
        return (*_lightgbm(data.decode("utf-8")), "lightgbm-text", "model.lgb.txt")
    if kind == "xgboost":
        return (*_xgboost(data.decode("utf-8")), "xgboost-json", "model.xgb.json")
    if kind == "onnx":
        from shipyard.runtime.onnx_graph import ONNX_FEATURES_FORMAT

        return (*_onnx(data), ONNX_FEATURES_FORMAT, "model.onnx")
    raise DataError(f"Unknown model kind '{kind}'; use one of {', '.join(IMPORT_FORMATS)}.")


def _features(names: list[str] | None, columns: Sequence[str], target: str) -> list[str]:
    available = [column for column in columns if column != target]
    generic = names is None or all(
        name.startswith(("Column_", "f")) and name not in available for name in names
    )
    if generic:
        return available
    assert names is not None
    missing = [name for name in names if name not in available]
    if missing:
        raise DataError(
            f"The model's features {', '.join(map(repr, missing))} are not columns of the sample "
            f"(its columns: {', '.join(available)}); rename them in the sample file."
        )
    return names


def import_model(
    registry: Registry,
    name: str,
    model_file: Path,
    kind: str,
    sample: Any,
    target: str,
    classes: Sequence[str] | None = None,
) -> ImportedModel:
    """Register ``model_file`` as a new version of ``name``; see the module docstring.

    Parameters
    ----------
    sample
        A labelled DataFrame (the sample file, read).
    classes
        The class labels in the model's output order (default: the sample's labels, sorted).

    Raises
    ------
    DataError
        When the sample lacks a feature or the target, a feature is not numeric, or the
        classes do not match the model's outputs.
    ExportError
        When the bundle's answers differ from the library's own on the sample.
    """
    import pandas as pd

    from shipyard.data.contract import infer_contract
    from shipyard.monitoring.reference import build_reference, reference_to_json
    from shipyard.registry.bundle import load_predictor

    data = Path(model_file).read_bytes()
    task, names, native_predict, model_format, file_name = _model_reader(kind, data)
    features = _features(names, [str(column) for column in sample.columns], target)
    if target not in sample.columns:
        raise DataError(f"The sample has no column '{target}' (the label); add it.")
    not_numeric = [c for c in features if not pd.api.types.is_numeric_dtype(sample[c])]
    if not_numeric:
        raise DataError(
            f"Imported models read numbers only; the sample's columns "
            f"{', '.join(map(repr, not_numeric))} are not numeric. Encode them as the model "
            "was trained, in the sample file."
        )
    frame = sample[[*features, target]].dropna(subset=[target]).reset_index(drop=True)
    contract = infer_contract(frame, target)
    if task == "classifier":
        task = "binary" if frame[target].nunique() == 2 else "multiclass"
    labels: list[Any] = []
    if task != "regression":
        labels = list(classes) if classes else sorted(frame[target].unique().tolist())
        expected = 2 if task == "binary" else len(labels)
        if len(labels) != expected or (task == "multiclass" and len(labels) < 3):
            raise DataError(
                f"The model is a {task} classifier but the classes are {labels}; pass the "
                "classes in the model's output order (--classes)."
            )
    spec = {
        "version": 1,
        "encoders": [
            {"kind": "numeric", "column": column, "fill": None, "center": 0.0, "scale": 1.0}
            for column in features
        ],
    }
    matrix = frame[features].to_numpy(dtype=np.float64)
    native = np.asarray(native_predict(matrix), dtype=np.float64)
    manifest: dict[str, Any] = {
        "task": task,
        "target": target,
        "metric": _METRICS[task],
        "classes": [str(label) for label in labels] if labels else [],
        "model": {"format": model_format, "path": file_name, "family": kind},
        "contract": "contract.yaml",
        "preprocessing": "preprocessing.json",
        "drift_reference": "drift_reference.json",
        "notes": [
            f"Imported from {Path(model_file).name} (SHA-256 "
            f"{hashlib.sha256(data).hexdigest()}); contract inferred from {len(frame)} "
            "sample rows."
        ],
    }
    files = {
        file_name: data,
        "contract.yaml": contract.to_yaml().encode(),
        "preprocessing.json": json.dumps(spec).encode(),
    }
    # The predictor is built from the files it will be served from, then compared.
    import tempfile

    from shipyard.registry.bundle import write_bundle

    with tempfile.TemporaryDirectory(prefix="shipyard-import-") as scratch:
        staged = Path(scratch) / "bundle"
        write_bundle(staged, {**files, "drift_reference.json": b"{}"}, {**manifest, "name": name})
        predictor = load_predictor(staged)
        outputs = predictor.score_frame(frame)
    # A binary library answers the positive class alone; the predictor answers both.
    served = outputs[:, 1] if len(predictor.classes) == 2 and native.ndim == 1 else outputs
    if served.shape != native.shape:
        raise DataError(
            f"The model gives {native.shape[1:] or 'one value'} per row, but a {task} model with "
            f"classes {labels} gives {served.shape[1:] or 'one value'}; check --classes."
        )
    gap = float(np.max(np.abs(served - native))) if len(frame) else 0.0
    if not gap <= _PARITY:
        raise ExportError(
            f"The imported model answers {gap:.3g} away from {kind}'s own prediction on the "
            "sample; the features may be in another order. Nothing was registered."
        )
    reference = build_reference(frame, contract, outputs, task)
    files["drift_reference.json"] = json.dumps(reference_to_json(reference)).encode()
    manifest["parity"] = {"import_max_gap": gap}
    version = registry.register(name, files, manifest)
    if registry.claim(name, version.version, DEFAULT_ALIAS, "imported") is not None:
        version = registry.get(name, version.version)
    return ImportedModel(version, features, gap)
