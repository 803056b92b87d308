"""An example third-party task: a nearest-centroid classifier on the numeric columns of a table.

It lives outside ``shipyard`` and reaches it only through the task contract and an entry point
(``[shipyard.tasks] nearest_centroid = shipyard_centroid:NearestCentroidTask``), as a package
on PyPI would. The common checks (``tests/tasks/test_common.py``) run on it like on the
built-in tasks. docs/tasks.md walks through it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.errors import DataError, ExportError
from shipyard.manifest import Manifest
from shipyard.tasks.base import (
    TABLE_ONLY_KEYS,
    Capabilities,
    EvaluatedModel,
    FittedModel,
    PreparedData,
    RetrainSteps,
    RunContext,
    SplitData,
    Task,
)

__all__ = ["CentroidPredictor", "NearestCentroidTask"]

MODEL_FILE = "centroids.json"


class CentroidPredictor:
    """Validate records with the contract; answer the class whose centroid is nearest.

    Probabilities are a softmax of minus half the squared standardised distances.
    """

    def __init__(self, contract: Any, spec: Mapping[str, Any], unknown_fields: str = "reject"):
        from shipyard.runtime.validate import RecordValidator

        self.contract = contract
        self.spec = dict(spec)
        self.task = str(spec["kind"])
        self.classes = list(spec["classes"])
        self.columns = list(spec["columns"])
        self.validator = RecordValidator(contract, unknown_fields)
        self._mean = np.array(spec["mean"], dtype=np.float64)
        self._scale = np.array(spec["scale"], dtype=np.float64)
        self._centroids = np.array(spec["centroids"], dtype=np.float64)

    def _matrix(self, rows: Sequence[Sequence[Any]]) -> Any:
        values = np.array(
            [[np.nan if value is None else float(value) for value in row] for row in rows],
            dtype=np.float64,
        ).reshape(len(rows), len(self.columns))
        values = np.where(np.isnan(values), self._mean, values)
        return (values - self._mean) / self._scale

    def _probabilities(self, matrix: Any) -> Any:
        distances = ((matrix[:, None, :] - self._centroids[None, :, :]) ** 2).sum(axis=2)
        logits = -0.5 * distances
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        return weights / weights.sum(axis=1, keepdims=True)

    def score_records(self, records: Sequence[Mapping[str, Any]]) -> Any:
        """Validate records; return class probabilities, one row per record."""
        self.validator.check_records(list(records))
        rows = [[record.get(name) for name in self.columns] for record in records]
        return self._probabilities(self._matrix(rows))

    def score_frame(self, frame: Any) -> Any:
        """Score a frame holding the numeric columns."""
        return self._probabilities(self._matrix(frame[self.columns].to_numpy(dtype=object)))

    def clean_frame(self, frame: Any) -> Any:
        """Return ``frame``: this model has no fitted cleaning."""
        return frame

    def predict_records(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Validate and predict: the class and the probabilities of each record."""
        labels = [str(label) for label in self.classes]
        answers = []
        for row in self.score_records(records).tolist():
            best = max(range(len(row)), key=row.__getitem__)
            answers.append(
                {
                    "prediction": self.classes[best],
                    "probabilities": dict(zip(labels, row, strict=True)),
                }
            )
        return answers


def centroid_routes(context: Any) -> list[Any]:
    """The route this task adds to the server, built by serving like its own routes."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def centroids(request: Request) -> Response:
        context.check_name(request.path_params["name"])
        spec = context.state.primary.model.predictor.spec
        return JSONResponse({"classes": spec["classes"], "centroids": spec["centroids"]})

    return [Route("/v1/models/{name}/centroids", centroids, methods=["GET"])]


class NearestCentroidTask(Task):
    """Classify rows by the nearest class centroid of their standardised numeric columns."""

    name = "nearest_centroid"
    summary = "nearest class centroid on the numeric columns (an example plugin task)"
    capabilities = Capabilities(
        config_tasks=("nearest_centroid",),
        manifest_tasks=("nearest_centroid",),
        unsupported_keys=TABLE_ONLY_KEYS,
    )

    def small_config(self, folder: Path) -> dict[str, Any]:
        """Use 1,500 rows of UCI Adult, bundled with shipyard."""
        from shipyard import datasets

        adult = datasets.load("adult").train.sample(n=1500, random_state=0)
        adult.to_csv(folder / "adult.csv", index=False)
        return {
            "name": "centroids",
            "task": "nearest_centroid",
            "data": {"source": str(folder / "adult.csv"), "target": "income"},
            "evaluation": {"bootstrap_samples": 100, "report": False},
        }

    def read(self, config: Any, context: RunContext) -> PreparedData:
        """Read the table; drop rows without a label."""
        from shipyard.data.sources import fingerprint, read_table

        frame = read_table(config.data.source)
        frame = frame[frame[config.data.target].notna()].reset_index(drop=True)
        return PreparedData(frame, fingerprint=fingerprint(frame))

    def contract(self, data: PreparedData, config: Any, context: RunContext) -> PreparedData:
        """Infer the contract; keep the numeric columns only."""
        from shipyard.data.contract import infer_contract

        contract = infer_contract(data.frame, config.data.target, drop=config.data.drop)
        numeric = tuple(c for c in contract.columns if c.type in ("number", "integer"))
        if not numeric:
            raise DataError("A nearest-centroid model needs at least one numeric column.")
        dropped = [c.name for c in contract.columns if c not in numeric]
        data.contract = contract.model_copy(
            update={"columns": numeric, "ignored": (*contract.ignored, *dropped)}
        )
        data.contract.validate_frame(data.frame, with_target=True).raise_if_failed("The data")
        return data

    def split(self, data: PreparedData, config: Any, context: RunContext) -> SplitData:
        """Hold out a stratified test part."""
        from shipyard.data.split import split_frame
        from shipyard.tasks.detect import class_order

        classes = class_order(data.frame[config.data.target], config.positive_class)
        kind = "binary" if len(classes) == 2 else "multiclass"
        train, validation, test = split_frame(
            data.frame,
            config.data.target,
            classification=True,
            seed=config.seed,
            test_size=config.split.test_size,
            validation_size=config.split.validation_size,
        )
        assert test is not None
        rows = {"train": len(train), "validation": len(validation), "test": len(test)}
        metric = "roc_auc" if config.metric == "auto" else config.metric
        return SplitData(data, train, validation, test, kind, metric, classes, rows)

    def fit(self, data: SplitData, config: Any, context: RunContext) -> FittedModel:
        """Standardise the columns and average each class."""
        from shipyard.tasks.labels import encode_target
        from shipyard.training.trainer import CandidateResult

        assert data.prepared.contract is not None
        columns = data.prepared.contract.feature_names
        values = data.train[columns].to_numpy(dtype=np.float64)
        mean = np.nanmean(values, axis=0)
        scale = np.nanstd(values, axis=0)
        scale[scale == 0] = 1.0
        standardised = (np.where(np.isnan(values), mean, values) - mean) / scale
        y = encode_target(data.train[config.data.target], data.kind, data.classes)
        centroids = [standardised[y == index].mean(axis=0) for index in range(len(data.classes))]
        spec = {
            "kind": data.kind,
            "classes": data.classes,
            "columns": columns,
            "mean": mean.tolist(),
            "scale": scale.tolist(),
            "centroids": np.array(centroids).tolist(),
        }
        predictor = CentroidPredictor(data.prepared.contract, spec)
        row = CandidateResult("nearest_centroid", "ok", params={"columns": len(columns)})
        return FittedModel(
            predictor,
            "nearest_centroid",
            [row],
            {"family": "nearest_centroid"},
            payload={"spec": spec, "standardised": standardised},
        )

    def check_parity(self, fitted: FittedModel, data: SplitData) -> dict[str, float]:
        """Compare the one-record path with the whole-frame path on held-out rows."""
        from shipyard.training.export import frame_to_records

        rows = data.test.head(200)
        records = frame_to_records(rows[fitted.predictor.columns])
        batched = fitted.predictor.score_frame(rows)
        single = np.vstack([fitted.predictor.score_records([record]) for record in records])
        gap = float(np.max(np.abs(batched - single)))
        if gap > 1e-9:
            raise ExportError(f"Served centroid answers differ by {gap:.2e}.")
        return {"rows": float(len(rows)), "single": gap, "batched": 0.0}

    def evaluate(
        self, fitted: FittedModel, data: SplitData, config: Any, context: RunContext
    ) -> EvaluatedModel:
        """Test metrics with bootstrap intervals; the training rows' drift reference."""
        from shipyard.evaluation.metrics import DEFAULT_METRICS, bootstrap_metrics
        from shipyard.monitoring.reference import build_reference, reference_to_json
        from shipyard.tasks.labels import encode_target

        predictor = fitted.predictor
        outputs = predictor.score_frame(data.test)
        metrics = bootstrap_metrics(
            encode_target(data.test[config.data.target], data.kind, data.classes),
            outputs,
            DEFAULT_METRICS[data.kind],
            n_samples=config.evaluation.bootstrap_samples,
            confidence=config.evaluation.confidence,
            seed=config.seed,
        )
        columns = predictor.columns
        reference = build_reference(
            data.train[columns], predictor.contract, predictor.score_frame(data.train), data.kind
        )
        manifest = {
            "task": "nearest_centroid",
            "kind": data.kind,
            "model": {
                "format": "centroids-json",
                "path": MODEL_FILE,
                "family": "nearest_centroid",
            },
            "contract": "contract.yaml",
            "drift_reference": "drift_reference.json",
        }
        files = {
            MODEL_FILE: json.dumps(fitted.payload["spec"]).encode(),
            "contract.yaml": predictor.contract.to_yaml().encode(),
            "drift_reference.json": json.dumps(reference_to_json(reference)).encode(),
        }
        return EvaluatedModel(metrics, manifest, files, outputs)

    def load(self, directory: Path, manifest: Manifest, unknown_fields: str) -> Any:
        """Read the contract and the centroids."""
        from shipyard.data.contract import Contract

        contract = Contract.from_yaml((directory / str(manifest.contract)).read_text("utf-8"))
        spec = json.loads((directory / str(manifest.model.path)).read_bytes())
        return CentroidPredictor(contract, spec, unknown_fields)

    def monitoring(self, directory: Path, manifest: Manifest, reference: str) -> Any:
        """Sketch the logged records' numeric columns and the answers."""
        from shipyard.monitoring.adapters import TaskMonitoring, read_reference
        from shipyard.monitoring.reference import reference_from_json

        document = read_reference(directory, manifest.drift_reference, reference)
        return TaskMonitoring(
            reference_from_json(document), self.label_kind(manifest), manifest.classes
        )

    def route_builders(self) -> list[Any]:
        """Add ``GET /v1/models/{name}/centroids``: the class centroids, standardised."""
        return [centroid_routes]

    def retrain_steps(self) -> RetrainSteps:
        """Labelled records join the table; the gate compares the metric."""
        from shipyard.tasks.labelled_rows import RECORD_STEPS

        return RECORD_STEPS

    def label_kind(self, manifest: Manifest) -> str:
        """``binary`` or ``multiclass``."""
        return str(manifest.section("kind"))

    def encode_labels(self, labels: Sequence[Any], manifest: Manifest) -> Any:
        """Class indices."""
        from shipyard.tasks.labels import encode_target

        return encode_target(labels, self.label_kind(manifest), manifest.classes)
