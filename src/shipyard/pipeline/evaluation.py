"""Score a registered version on a labelled file through the served path."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shipyard.data.sources import ReadOptions, read_table
from shipyard.errors import DataError
from shipyard.evaluation.metrics import DEFAULT_METRICS, MetricValue, bootstrap_metrics
from shipyard.manifest import Manifest
from shipyard.registry.bundle import load_predictor
from shipyard.registry.store import ModelVersion, Registry
from shipyard.tasks.base import task_for_manifest

__all__ = ["EvaluationRun", "evaluate"]


@dataclass
class EvaluationRun:
    """Metrics of a registered version on a labelled data set."""

    version: ModelVersion
    rows: int
    metrics: dict[str, MetricValue]
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary, the shape ``shipyard evaluate --json`` prints."""
        return {
            "reference": self.version.reference,
            "rows": self.rows,
            "metrics": {name: value.as_dict() for name, value in self.metrics.items()},
            "notes": list(self.notes),
        }


def evaluate(
    registry: Registry,
    reference: str,
    source: str,
    *,
    bootstrap_samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    options: ReadOptions | None = None,
) -> EvaluationRun:
    """Score a registered version on a labelled file through the served path.

    Categories training never saw are scored as the model's ``unknown_categories`` policy
    says (as its server does); ``notes`` counts them.

    Raises
    ------
    DataError
        When the file lacks the target, is malformed or breaks the model's contract, or the
        model's task does not score labelled records (a recommender: see
        ``shipyard retrain``).
    """
    version = registry.resolve(reference)
    manifest = Manifest.from_document(registry.manifest(version.reference))
    task = task_for_manifest(manifest)
    predictor = load_predictor(version.bundle_path, version.manifest_sha256)
    contract = predictor.contract  # a predictor without one says why it cannot score rows
    kind = task.label_kind(manifest)
    if kind is None:
        raise DataError(
            f"{version.reference} is a {task.name} model, which is not scored on labelled "
            "records; its test metrics are in 'shipyard models show'."
        )
    frame = predictor.clean_frame(read_table(source, options))
    target = contract.target_name
    if target not in frame.columns:
        raise DataError(f"'{source}' has no target column '{target}'; evaluation needs labels.")
    if frame[target].isna().all():
        raise DataError(
            f"Every value of the target column '{target}' is missing in '{source}'; "
            "evaluation needs labels."
        )
    unknown = getattr(predictor, "unknown", None)  # text models have no categories
    policy = unknown.policy if unknown is not None else "error"
    contract.validate_frame(frame, with_target=True, unknown_categories=policy).raise_if_failed(
        f"'{source}'"
    )
    # A fairness-mitigated model decides with its rows' group thresholds (taken, as the server
    # takes them, before unknown categories are settled).
    groups = predictor.groups_of_frame(frame) if hasattr(predictor, "groups_of_frame") else None
    notes = []
    if unknown is not None and unknown.tolerant:
        frame, counts = unknown.settle_frame(frame)
        notes = [unknown.describe(counts)] if counts else []
    outputs = predictor.score_frame(frame[contract.feature_names])
    metrics = bootstrap_metrics(
        task.encode_labels(frame[target], manifest),
        outputs,
        DEFAULT_METRICS[kind],
        n_samples=bootstrap_samples,
        confidence=confidence,
        seed=seed,
        threshold=predictor.decision_thresholds(groups)
        if hasattr(predictor, "decision_thresholds")
        else None,
    )
    return EvaluationRun(version, len(frame), metrics, notes)
