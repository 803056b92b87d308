"""Anomaly detection (``task: anomaly_detection``): IsolationForest and LOF on numeric columns.

The rows are standardised (and optionally rotated onto principal components, see
:mod:`shipyard.runtime.numeric`). Both families are fitted on the training rows (LOF on a
seeded sample of them, its reference points); with known labels (``data.target``, see
:mod:`.evaluation`) the one with the best validation average precision is served, else the
first of ``anomaly.methods``. The chosen model is exported to plain arrays (:mod:`.export`) and
served as ``{"score": s, "anomaly": bool, "threshold": t}`` on ``/predict``; monitoring
reports the anomaly rate of each window (:mod:`.monitoring`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from shipyard.config import AnomalyConfig, PipelineConfig
    from shipyard.evaluation.report import DocumentSections
    from shipyard.monitoring.adapters import TaskMonitoring

__all__ = ["AnomalyDetectionTask"]

MODEL_FILE = "anomaly.json"
PARITY_ROWS = 500


def _settings(config: PipelineConfig) -> AnomalyConfig:
    from shipyard.config import AnomalyConfig

    return config.anomaly or AnomalyConfig()


def _refuse_feedback(*_: Any) -> Any:
    raise DataError(
        "An anomaly model learns without labels, so feedback cannot retrain it; train a new "
        "version on fresh data with 'shipyard train' (known labels in data.target evaluate it)."
    )


def _make_model(family: str, settings: AnomalyConfig, seed: int) -> Any:
    if family == "isolation_forest":
        from sklearn.ensemble import IsolationForest

        return IsolationForest(
            n_estimators=settings.trees, contamination=settings.contamination, random_state=seed
        )
    from sklearn.neighbors import LocalOutlierFactor

    return LocalOutlierFactor(
        n_neighbors=settings.neighbors, novelty=True, contamination=settings.contamination
    )


class AnomalyDetectionTask(Task):
    """Score how unusual rows are; serve each record's score and the threshold decision."""

    name = "anomaly_detection"
    summary = "IsolationForest and LOF anomaly scores of numeric rows, with a threshold"
    capabilities = Capabilities(
        config_tasks=("anomaly_detection",),
        manifest_tasks=("anomaly_detection",),
        unsupported_keys=(
            *TABLE_ONLY_KEYS,
            "metric",
            "clustering",
            "serving.canary",
            "serving.shadow",
        ),
        live_metrics=False,
        traffic_split=False,
        target="optional",
    )

    def small_config(self, folder: Path) -> dict[str, Any]:
        """Use 2,000 rows of UCI Adult's numeric columns; high incomes as the known labels."""
        from shipyard import datasets

        adult = datasets.load("adult").train.sample(n=2000, random_state=0)
        adult.to_csv(folder / "adult.csv", index=False)
        return {
            "name": "outliers",
            "task": "anomaly_detection",
            "data": {"source": str(folder / "adult.csv"), "target": "income"},
            "positive_class": ">50K",
            "anomaly": {"contamination": 0.1, "trees": 50, "reference_rows": 500, "k": 20},
            "evaluation": {"bootstrap_samples": 100, "report": False},
        }

    # Training -------------------------------------------------------------------------------

    def read(self, config: PipelineConfig, context: RunContext) -> PreparedData:
        """Read the table."""
        from shipyard.data.sources import ReadOptions, fingerprint, read_table

        data = config.data
        context.report(f"reading {data.source}")
        frame = read_table(data.source, ReadOptions(data.encoding, data.header))
        return PreparedData(frame, fingerprint=fingerprint(frame))

    def contract(
        self, data: PreparedData, config: PipelineConfig, context: RunContext
    ) -> PreparedData:
        """Keep the numeric columns (never the labels); check every row against them."""
        from shipyard.data.unlabelled import numeric_contract
        from shipyard.tasks.anomaly.evaluation import known_anomalies

        target = config.data.target
        labels = known_anomalies(data.frame, target, config.positive_class)
        drop = (*config.data.drop, *([target] if target else []))
        data.contract, notes = numeric_contract(data.frame, None, drop)
        data.notes.extend(notes)
        if labels is not None:
            data.notes.append(
                f"known labels in '{target}' for {int(labels[1].sum())} of {len(data.frame)} "
                f"rows ({int(labels[0].sum())} anomalies); used to evaluate, never to train"
            )
        data.contract.validate_frame(data.frame).raise_if_failed("The data")
        return data

    def split(self, data: PreparedData, config: PipelineConfig, context: RunContext) -> SplitData:
        """Shuffle the rows into train, validation and test parts."""
        from shipyard.data.unlabelled import split_rows

        train, validation, test = split_rows(
            data.frame, config.seed, config.split.test_size, config.split.validation_size
        )
        rows = {"train": len(train), "validation": len(validation), "test": len(test)}
        metric = "anomaly_rate" if config.data.target is None else "average_precision"
        return SplitData(data, train, validation, test, "anomaly_detection", metric, [], rows)

    def fit(self, data: SplitData, config: PipelineConfig, context: RunContext) -> FittedModel:
        """Fit each family, choose one (by validation labels when there are some), export it."""
        from shipyard.data.unlabelled import numeric_values
        from shipyard.runtime.numeric import fit_numeric_view
        from shipyard.tasks.anomaly.export import AnomalyPredictor, export_document

        settings = _settings(config)
        assert data.prepared.contract is not None
        columns = data.prepared.contract.feature_names
        values = numeric_values(data.train, columns)
        view = fit_numeric_view(values, columns, settings.pca_components, config.seed)
        rows = view.transform(values)
        validation = view.transform(numeric_values(data.validation, columns))
        fitted: dict[str, tuple[Any, dict[str, Any], float]] = {}
        for family in settings.methods:
            started = time.perf_counter()
            model = _make_model(family, settings, config.seed)
            model.fit(_reference_rows(rows, family, settings, config.seed))
            seconds = time.perf_counter() - started
            fitted[family] = (model, export_document(family, model, rows.shape[1]), seconds)
            context.report(f"fitted {family} in {seconds:.1f}s")
        candidates = _compare(fitted, validation, data.validation, config, settings)
        chosen = max(candidates, key=_rank) if _has_labels(candidates) else candidates[0]
        model, document, _ = fitted[chosen["name"]]
        predictor = AnomalyPredictor(data.prepared.contract, view, document)
        return FittedModel(
            predictor,
            chosen["name"],
            [_leaderboard_row(row) for row in candidates],
            {"family": chosen["name"], "contamination": settings.contamination},
            payload={"model": model, "candidates": candidates},
        )

    def check_parity(self, fitted: FittedModel, data: SplitData) -> dict[str, float]:
        """Compare the exported scorer with scikit-learn, and one record at a time with a batch."""
        import pandas as pd

        from shipyard.data.unlabelled import numeric_values
        from shipyard.tasks.anomaly.export import parity_gaps
        from shipyard.training.export import frame_to_records

        predictor = fitted.predictor
        rows = pd.concat([data.validation, data.test]).head(PARITY_ROWS)
        view_rows = predictor.view.transform(numeric_values(rows, predictor.view.columns))
        gaps = parity_gaps(predictor, fitted.payload["model"], view_rows)
        records = frame_to_records(rows[list(predictor.view.columns)])
        single = np.vstack([predictor.score_records([record]) for record in records])
        alone = float(np.max(np.abs(single - predictor.score_frame(rows))))
        if alone > 1e-9:
            raise ExportError(
                f"Served anomaly scores differ one record at a time (by {alone:.2e})."
            )
        batched = max(gaps.values())
        # The common keys: the served path alone and in a batch, against the trained model.
        return {
            "rows": float(len(rows)),
            "single": max(batched, alone),
            "batched": batched,
            **gaps,
        }

    def evaluate(
        self, fitted: FittedModel, data: SplitData, config: PipelineConfig, context: RunContext
    ) -> EvaluatedModel:
        """Anomaly rate (and with labels precision at k) of the test rows; the bundle's files."""
        from shipyard.monitoring.reference import build_reference, reference_to_json
        from shipyard.tasks.anomaly.evaluation import known_anomalies, test_metrics

        predictor = fitted.predictor
        settings = _settings(config)
        test = predictor.score_frame(data.test)
        train = predictor.score_frame(data.train)
        labels = known_anomalies(data.test, config.data.target, config.positive_class)
        metrics = test_metrics(
            test[:, 0],
            test[:, 1],
            labels,
            settings.k,
            config.evaluation.bootstrap_samples,
            config.evaluation.confidence,
            config.seed,
        )
        training_labels = known_anomalies(data.train, config.data.target, config.positive_class)
        section = {
            "chosen": fitted.best,
            "candidates": fitted.payload["candidates"],
            "contamination": settings.contamination,
            "threshold": predictor.threshold,
            "training_rate": float(train[:, 1].mean()),
            "k": settings.k,
            "labelled_rows": 0 if training_labels is None else int(training_labels[1].sum()),
            "view": {
                "columns": list(predictor.view.columns),
                "explained": list(predictor.view.explained),
            },
        }
        reference = build_reference(data.train, predictor.contract, train[:, 0], "anomaly")
        manifest = {
            "task": "anomaly_detection",
            "model": {"format": "anomaly-json", "path": MODEL_FILE, "family": fitted.best},
            "contract": "contract.yaml",
            "drift_reference": "drift_reference.json",
            "anomaly": section,
        }
        files = {
            MODEL_FILE: json.dumps(
                {"view": predictor.view.to_json(), "model": predictor.model}, sort_keys=True
            ).encode(),
            "contract.yaml": predictor.contract.to_yaml().encode(),
            "drift_reference.json": json.dumps(reference_to_json(reference)).encode(),
        }
        return EvaluatedModel(metrics, manifest, files, test)

    # Serving and monitoring ------------------------------------------------------------------

    def load(self, directory: Path, manifest: Manifest, unknown_fields: str) -> Any:
        """Read the contract, the numeric view and the exported scorer."""
        from shipyard.data.contract import Contract
        from shipyard.runtime.bundle_files import bundle_file
        from shipyard.runtime.numeric import NumericView
        from shipyard.tasks.anomaly.export import AnomalyPredictor

        contract = Contract.from_yaml(
            bundle_file(directory, str(manifest.contract)).read_text("utf-8")
        )
        document = json.loads(bundle_file(directory, str(manifest.model.path)).read_bytes())
        view = NumericView.from_json(document["view"])
        return AnomalyPredictor(contract, view, document["model"], unknown_fields)

    def monitoring(self, directory: Path, manifest: Manifest, reference: str) -> TaskMonitoring:
        """Sketch the logged columns and scores; report the anomaly rate per window."""
        from shipyard.monitoring.adapters import TaskMonitoring, read_reference
        from shipyard.monitoring.reference import reference_from_json
        from shipyard.tasks.anomaly.monitoring import anomaly_signals, anomaly_values

        document = read_reference(directory, manifest.drift_reference, reference)
        section = manifest.section("anomaly", {})
        return TaskMonitoring(
            reference_from_json(document),
            "anomaly_detection",
            [],
            values=anomaly_values(section.get("view", {}).get("columns", [])),
            signals=anomaly_signals(section.get("training_rate")),
        )

    def retrain_steps(self) -> RetrainSteps:
        """Feedback cannot retrain a model learnt without labels: both steps refuse."""
        return RetrainSteps(_refuse_feedback, _refuse_feedback)

    def document_sections(self) -> DocumentSections:
        """Return the report blocks: the candidates, the threshold, the known labels' verdict."""
        from shipyard.tasks.anomaly.documents import ANOMALY_SECTIONS

        return ANOMALY_SECTIONS


def _reference_rows(rows: Any, family: str, settings: AnomalyConfig, seed: int) -> Any:
    """LOF keeps a seeded sample of the training rows as its reference points."""
    if family != "lof" or len(rows) <= settings.reference_rows:
        return rows
    picked = np.random.default_rng(seed).permutation(len(rows))[: settings.reference_rows]
    return rows[np.sort(picked)]


def _compare(
    fitted: dict[str, tuple[Any, dict[str, Any], float]],
    validation: Any,
    frame: Any,
    config: PipelineConfig,
    settings: AnomalyConfig,
) -> list[dict[str, Any]]:
    """Each candidate's validation average precision (with labels) and top-k overlap."""
    from shipyard.tasks.anomaly.evaluation import average_precision, known_anomalies

    labels = known_anomalies(frame, config.data.target, config.positive_class)
    scores = {family: -model.score_samples(validation) for family, (model, _, _) in fitted.items()}
    first = next(iter(scores.values()))
    k = max(1, min(settings.k, len(first)))
    top_first = set(np.argsort(-first, kind="stable")[:k].tolist())
    rows = []
    for family, found in scores.items():
        top = set(np.argsort(-found, kind="stable")[:k].tolist())
        precision = None
        if labels is not None and labels[1].any():
            value = average_precision(found[labels[1]], labels[0][labels[1]])
            precision = None if np.isnan(value) else round(value, 6)
        rows.append(
            {
                "name": family,
                "average_precision": precision,
                "overlap": round(len(top & top_first) / k, 6),
                "seconds": round(fitted[family][2], 3),
            }
        )
    return rows


def _has_labels(candidates: list[dict[str, Any]]) -> bool:
    return all(row["average_precision"] is not None for row in candidates)


def _rank(row: dict[str, Any]) -> float:
    return float(row["average_precision"])


def _leaderboard_row(row: dict[str, Any]) -> Any:
    from shipyard.training.trainer import CandidateResult

    precision = row["average_precision"]
    return CandidateResult(
        row["name"],
        "ok",
        cv_mean=float("nan") if precision is None else precision,
        fit_seconds=row["seconds"],
        params={"family": row["name"]},
        message=f"top-k overlap with the first family {row['overlap']:.3f}",
    )
