"""Clustering (``task: clustering``): k-means and HDBSCAN on the numeric columns of a table.

The rows are standardised (and optionally rotated onto principal components, see
:mod:`shipyard.runtime.numeric`); candidates are chosen by silhouette and stability across
seeds (:mod:`.candidates`); the chosen one is exported to plain arrays (:mod:`.export`) and
served as ``{"cluster": id, "distance": d}`` on ``/predict``. Monitoring compares each
window's cluster proportions with the training ones (:mod:`.monitoring`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.errors import DataError, ExportError, TrainingError
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
    from shipyard.config import ClusteringConfig, PipelineConfig
    from shipyard.evaluation.report import DocumentSections
    from shipyard.monitoring.adapters import TaskMonitoring

__all__ = ["ClusteringTask"]

MODEL_FILE = "clusters.json"
PARITY_ROWS = 500


def _settings(config: PipelineConfig) -> ClusteringConfig:
    from shipyard.config import ClusteringConfig

    return config.clustering or ClusteringConfig()


def _refuse_feedback(*_: Any) -> Any:
    raise DataError(
        "A clustering model learns without labels, so feedback cannot retrain it; train a new "
        "version on fresh data with 'shipyard train'."
    )


class ClusteringTask(Task):
    """Group rows by their numeric columns; serve each record's cluster and distance."""

    name = "clustering"
    summary = "k-means and HDBSCAN clusters of numeric rows, chosen by silhouette and stability"
    capabilities = Capabilities(
        config_tasks=("clustering",),
        manifest_tasks=("clustering",),
        unsupported_keys=(
            *TABLE_ONLY_KEYS,
            "metric",
            "positive_class",
            "anomaly",
            "serving.canary",
            "serving.shadow",
        ),
        live_metrics=False,
        traffic_split=False,
        target="none",
    )

    def small_config(self, folder: Path) -> dict[str, Any]:
        """Use 2,000 rows of UCI Adult's numeric columns, bundled with shipyard."""
        from shipyard import datasets

        adult = datasets.load("adult").train.sample(n=2000, random_state=0)
        adult.to_csv(folder / "adult.csv", index=False)
        return {
            "name": "segments",
            "task": "clustering",
            "data": {"source": str(folder / "adult.csv"), "drop": ["income"]},
            "clustering": {
                "k_values": [2, 3],
                "min_cluster_sizes": [15],
                "seeds": 2,
                "sample_rows": 600,
                "exemplars": 300,
            },
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
        """Infer the contract and keep the numeric columns; check every row against it."""
        from shipyard.data.unlabelled import numeric_contract

        data.contract, notes = numeric_contract(data.frame, None, config.data.drop)
        data.notes.extend(notes)
        data.contract.validate_frame(data.frame).raise_if_failed("The data")
        return data

    def split(self, data: PreparedData, config: PipelineConfig, context: RunContext) -> SplitData:
        """Shuffle the rows into train, validation and test parts."""
        from shipyard.data.unlabelled import split_rows

        train, validation, test = split_rows(
            data.frame, config.seed, config.split.test_size, config.split.validation_size
        )
        rows = {"train": len(train), "validation": len(validation), "test": len(test)}
        return SplitData(data, train, validation, test, "clustering", "silhouette", [], rows)

    def fit(self, data: SplitData, config: PipelineConfig, context: RunContext) -> FittedModel:
        """Score the candidates on a sample, fit the chosen one, export it."""
        from shipyard.data.unlabelled import numeric_values
        from shipyard.runtime.numeric import fit_numeric_view
        from shipyard.tasks.clustering.candidates import choose, fit_labels, search
        from shipyard.tasks.clustering.export import ClusterPredictor, export_document

        settings = _settings(config)
        assert data.prepared.contract is not None
        contract = data.prepared.contract
        values = numeric_values(data.train, contract.feature_names)
        view = fit_numeric_view(
            values, contract.feature_names, settings.pca_components, config.seed
        )
        rows = view.transform(values)
        generator = np.random.default_rng(config.seed)
        picked = np.sort(generator.permutation(len(rows))[: settings.sample_rows])
        sample = rows[picked]
        context.report(f"scoring clustering candidates on {len(sample)} sampled rows")
        candidates = search(sample, settings, config.seed, context.report)
        chosen = choose(candidates, settings.min_stability)
        if chosen is None:
            raise TrainingError(
                "No clustering candidate found two clusters or more: "
                + "; ".join(f"{c.name}: {c.message}" for c in candidates)
                + ". Try other clustering.k_values or smaller clustering.min_cluster_sizes."
            )
        # k-means is refitted on every training row; HDBSCAN keeps the sample it was scored on.
        fitted_on = rows if chosen.family == "kmeans" else sample
        model = fit_labels(chosen.family, chosen.params, fitted_on, config.seed)
        document = export_document(
            chosen.family, model, fitted_on, settings.exemplars, config.seed
        )
        predictor = ClusterPredictor(contract, view, document)
        return FittedModel(
            predictor,
            chosen.name,
            [_leaderboard_row(candidate) for candidate in candidates],
            {"family": chosen.family, **chosen.params, "pca_components": settings.pca_components},
            payload={"model": model, "candidates": candidates, "chosen": chosen},
        )

    def check_parity(self, fitted: FittedModel, data: SplitData) -> dict[str, float]:
        """Compare the exported assigner with scikit-learn, one record at a time with a batch."""
        import pandas as pd

        from shipyard.data.unlabelled import numeric_values
        from shipyard.tasks.clustering.export import parity_gaps
        from shipyard.training.export import frame_to_records

        predictor = fitted.predictor
        rows = pd.concat([data.validation, data.test]).head(PARITY_ROWS)
        view_rows = predictor.view.transform(numeric_values(rows, predictor.view.columns))
        gaps = parity_gaps(predictor, fitted.payload["model"], view_rows)
        records = frame_to_records(rows[list(predictor.view.columns)])
        single = np.vstack([predictor.score_records([record]) for record in records])
        alone = float(np.max(np.abs(single - predictor.score_frame(rows))))
        if alone > 1e-9:
            raise ExportError(f"Served clusters differ one record at a time (by {alone:.2e}).")
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
        """Silhouette and noise share of the test rows with intervals; the bundle's files."""
        from shipyard.monitoring.reference import reference_to_json
        from shipyard.tasks.clustering.monitoring import cluster_reference, proportions

        predictor = fitted.predictor
        settings = _settings(config)
        test = predictor.score_frame(data.test)
        train = predictor.score_frame(data.train)
        test_rows = predictor.view.transform(
            data.test[list(predictor.view.columns)].astype("float64").to_numpy()
        )
        metrics = _test_metrics(test_rows, test[:, 0], config)
        candidates = fitted.payload["candidates"]
        section = {
            "family": fitted.payload["chosen"].family,
            "chosen": fitted.best,
            "clusters": len(predictor.model["labels"]),
            "candidates": [_candidate_row(candidate) for candidate in candidates],
            "proportions": proportions(train[:, 0]),
            "sample_rows": min(settings.sample_rows, len(data.train)),
            "seeds": settings.seeds,
            "min_stability": settings.min_stability,
            "view": {
                "columns": list(predictor.view.columns),
                "explained": list(predictor.view.explained),
            },
        }
        reference = cluster_reference(data.train, predictor.contract, train[:, 0])
        manifest = {
            "task": "clustering",
            "model": {"format": "clusters-json", "path": MODEL_FILE, "family": section["family"]},
            "contract": "contract.yaml",
            "drift_reference": "drift_reference.json",
            "clustering": section,
        }
        files = {
            MODEL_FILE: json.dumps(
                {"view": predictor.view.to_json(), "model": predictor.model}, sort_keys=True
            ).encode(),
            "contract.yaml": predictor.contract.to_yaml().encode(),
            "drift_reference.json": json.dumps(reference_to_json(reference)).encode(),
        }
        plots = {}
        if config.evaluation.report:
            from shipyard.tasks.clustering.documents import pca_view_png

            standardised = predictor.view.standardise(
                data.test[list(predictor.view.columns)].astype("float64").to_numpy()
            )
            plots["pca_2d_view"] = pca_view_png(standardised, test[:, 0])
        return EvaluatedModel(metrics, manifest, files, test, plots)

    # Serving and monitoring ------------------------------------------------------------------

    def load(self, directory: Path, manifest: Manifest, unknown_fields: str) -> Any:
        """Read the contract, the numeric view and the exported model."""
        from shipyard.data.contract import Contract
        from shipyard.runtime.bundle_files import bundle_file
        from shipyard.runtime.numeric import NumericView
        from shipyard.tasks.clustering.export import ClusterPredictor

        contract = Contract.from_yaml(
            bundle_file(directory, str(manifest.contract)).read_text("utf-8")
        )
        document = json.loads(bundle_file(directory, str(manifest.model.path)).read_bytes())
        view = NumericView.from_json(document["view"])
        return ClusterPredictor(contract, view, document["model"], unknown_fields)

    def monitoring(self, directory: Path, manifest: Manifest, reference: str) -> TaskMonitoring:
        """Sketch the logged columns and clusters; report the cluster proportions per window."""
        from shipyard.monitoring.adapters import TaskMonitoring, read_reference
        from shipyard.monitoring.reference import reference_from_json
        from shipyard.tasks.clustering.monitoring import cluster_signals, cluster_values

        document = read_reference(directory, manifest.drift_reference, reference)
        section = manifest.section("clustering", {})
        return TaskMonitoring(
            reference_from_json(document),
            "clustering",
            [],
            values=cluster_values(section.get("view", {}).get("columns", [])),
            signals=cluster_signals(section.get("proportions", {})),
        )

    def retrain_steps(self) -> RetrainSteps:
        """Feedback cannot retrain a model learnt without labels: both steps refuse."""
        return RetrainSteps(_refuse_feedback, _refuse_feedback)

    def document_sections(self) -> DocumentSections:
        """Return the report blocks: candidates, the chosen clustering, sizes, the 2-D view."""
        from shipyard.tasks.clustering.documents import CLUSTERING_SECTIONS

        return CLUSTERING_SECTIONS


def _test_metrics(rows: Any, clusters: Any, config: PipelineConfig) -> dict[str, Any]:
    """Silhouette (noise left out) and the noise share of the test rows, bootstrapped."""
    from sklearn.metrics import silhouette_samples

    from shipyard.evaluation.metrics import MetricValue
    from shipyard.stats import bootstrap

    evaluation = config.evaluation
    noise = (clusters < 0).astype(np.float64)
    kept = clusters >= 0
    metrics: dict[str, Any] = {}
    if len(set(clusters[kept].tolist())) >= 2:
        per_row = silhouette_samples(rows[kept], clusters[kept])
        estimate = bootstrap(
            lambda picked: float(per_row[picked].mean()),
            len(per_row),
            n_samples=evaluation.bootstrap_samples,
            confidence=evaluation.confidence,
            seed=config.seed,
        )
        metrics["silhouette"] = MetricValue(
            estimate.value, estimate.low, estimate.high, estimate.confidence
        )
    estimate = bootstrap(
        lambda picked: float(noise[picked].mean()),
        len(noise),
        n_samples=evaluation.bootstrap_samples,
        confidence=evaluation.confidence,
        seed=config.seed,
    )
    metrics["noise_share"] = MetricValue(
        estimate.value, estimate.low, estimate.high, estimate.confidence
    )
    return metrics


def _leaderboard_row(candidate: Any) -> Any:
    from shipyard.training.trainer import CandidateResult

    return CandidateResult(
        candidate.name,
        "ok" if candidate.ok else "failed",
        cv_scores=list(candidate.agreements),
        cv_mean=candidate.silhouette,
        fit_seconds=round(candidate.seconds, 3),
        params={"family": candidate.family, **candidate.params},
        message=candidate.message or f"stability {candidate.stability:.3f}",
    )


def _candidate_row(candidate: Any) -> dict[str, Any]:
    def number(value: float) -> float | None:
        return None if np.isnan(value) else round(float(value), 6)

    return {
        "name": candidate.name,
        "clusters": candidate.clusters,
        "silhouette": number(candidate.silhouette),
        "stability": number(candidate.stability),
        "noise": round(candidate.noise, 6),
        "message": candidate.message,
    }
