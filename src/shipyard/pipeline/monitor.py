"""Monitor a registered model: drift per window, realised and estimated performance, report.

:func:`monitor` is what ``shipyard monitor NAME`` runs: it verifies the version's bundle, reads
its drift reference, advances the incremental drift windows over the prediction log, and scores
each window's labelled predictions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.manifest import Manifest
from shipyard.monitoring.adapters import TaskMonitoring
from shipyard.monitoring.drift import DriftThresholds
from shipyard.monitoring.log import MonitoringStore
from shipyard.monitoring.performance import estimated_metrics, realised_metrics
from shipyard.monitoring.privacy import LogMask, hash_key_path, masked_monitoring, read_hash_key
from shipyard.monitoring.report import render_report
from shipyard.monitoring.sketching import RowSketcher
from shipyard.monitoring.timeline import SketchTimeline
from shipyard.monitoring.windows import DriftMonitor, DriftWindow
from shipyard.registry.bundle import load_manifest
from shipyard.registry.store import ModelVersion, Registry
from shipyard.tasks.base import task_for_manifest

__all__ = ["MonitorRun", "monitor", "open_drift_monitor", "open_row_sketcher", "open_timeline"]

MIN_LABELS_PER_WINDOW = 30


@dataclass
class MonitorRun:
    """What monitoring found for one model version."""

    version: ModelVersion
    windows: list[DriftWindow]
    performance: list[dict[str, Any] | None]
    estimates: list[dict[str, float]]
    counts: dict[str, int]
    report_path: Path | None = None
    notes: list[str] = field(default_factory=list)
    signals: list[dict[str, Any]] = field(default_factory=list)
    """Task-specific numbers per window (a recommender's coverage); empty dicts otherwise."""

    @property
    def drifted(self) -> list[str]:
        """Columns drifted in the latest window that has predictions."""
        filled = [window for window in self.windows if window.count]
        return filled[-1].drifted if filled else []

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary, the shape ``shipyard monitor --json`` prints."""
        return {
            "reference": self.version.reference,
            "counts": self.counts,
            "drifted": self.drifted,
            "windows": [
                {
                    "index": window.index,
                    "count": window.count,
                    "closed": window.closed,
                    "drifted": window.drifted,
                    "performance": performance,
                    "estimated": estimate,
                    "signals": signals,
                    "report": window.report,
                }
                for window, performance, estimate, signals in zip(
                    self.windows,
                    self.performance,
                    self.estimates,
                    self.signals or [{} for _ in self.windows],
                    strict=True,
                )
            ],
            "report": str(self.report_path) if self.report_path else None,
            "notes": self.notes,
        }


def monitor(
    registry: Registry,
    reference: str,
    *,
    window_size: int = 1000,
    thresholds: DriftThresholds | None = None,
    report_path: Path | None = None,
) -> MonitorRun:
    """Advance drift windows over the log of ``reference`` and score labelled windows.

    Raises
    ------
    BundleIntegrityError
        When the bundle was altered.
    DataError
        When the bundle has no drift reference (trained before monitoring existed).
    """
    version, manifest, watched = _watched(registry, reference)
    task, classes = watched.task, watched.classes
    store = MonitoringStore(registry.url)
    try:
        drift = DriftMonitor(
            store,
            version.name,
            version.version,
            watched.reference,
            task,
            classes,
            window_size=window_size,
            thresholds=thresholds,
            prepare=watched.prepare,
            values=watched.values,
            clean_column=watched.clean_column,
        )
        drift.update()
        windows = drift.windows()
        performance: list[dict[str, Any] | None] = []
        estimates: list[dict[str, float]] = []
        signals: list[dict[str, Any]] = []
        metric = manifest.metric
        for window in windows:
            rows = store.labelled(version.name, log_ids=(window.first_log_id, window.last_log_id))
            rows = [row for row in rows if row["version"] == version.version]
            if watched.performance is not None:
                performance.append(watched.performance(rows))
            else:
                performance.append(_window_performance(rows, task, classes, metric))
            span = max(window.last_log_id - window.first_log_id + 1, 1)
            logged = [
                row
                for row in store.predictions(version.name, window.first_log_id - 1, span)
                if row["version"] == version.version and row["id"] <= window.last_log_id
            ]
            outputs = [row["output"] for row in logged]
            estimates.append(_window_estimate(outputs, task, classes))
            signals.append(watched.signals(logged, rows) if watched.signals and logged else {})
        counts = store.count(version.name)
    finally:
        store.close()
    run = MonitorRun(version, windows, performance, estimates, counts, signals=signals)
    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(
            render_report(
                version.name,
                version.version,
                windows,
                performance=performance,
                signals=signals,
            ),
            encoding="utf-8",
        )
        run.report_path = report_path
    return run


def open_drift_monitor(
    registry: Registry,
    reference: str,
    store: MonitoringStore,
    *,
    window_size: int = 1000,
    thresholds: DriftThresholds | None = None,
) -> DriftMonitor:
    """Open the incremental drift monitor of a registered version, reading its verified bundle.

    Raises
    ------
    BundleIntegrityError
        When the bundle was altered.
    DataError
        When the bundle has no drift reference (trained before monitoring existed).
    """
    version, _, watched = _watched(registry, reference)
    return DriftMonitor(
        store,
        version.name,
        version.version,
        watched.reference,
        watched.task,
        watched.classes,
        window_size=window_size,
        thresholds=thresholds,
        prepare=watched.prepare,
        values=watched.values,
        clean_column=watched.clean_column,
    )


def open_row_sketcher(registry: Registry, reference: str) -> RowSketcher:
    """Return how a registered version's logged predictions are sketched (its verified bundle).

    Raises
    ------
    BundleIntegrityError
        When the bundle was altered.
    DataError
        When the bundle has no drift reference (trained before monitoring existed).
    """
    _, _, watched = _watched(registry, reference)
    return RowSketcher(
        watched.reference,
        watched.task,
        watched.classes,
        prepare=watched.prepare,
        values=watched.values,
        clean_column=watched.clean_column,
    )


def open_timeline(
    registry: Registry,
    reference: str,
    store: MonitoringStore,
    thresholds: DriftThresholds | None = None,
) -> SketchTimeline:
    """Open the stored sketches of a registered version, for drift over time ranges.

    Raises
    ------
    BundleIntegrityError
        When the bundle was altered.
    DataError
        When the bundle has no drift reference (trained before monitoring existed).
    """
    version, _, watched = _watched(registry, reference)
    return SketchTimeline(store, version.name, version.version, watched.reference, thresholds)


def task_realised_metric(
    registry: Registry, store: MonitoringStore, reference: str, since: datetime
) -> dict[str, Any] | None:
    """Return the realised metric a task computes from its labelled rows since ``since``.

    For tasks whose answers are not scored one label at a time (a forecaster's MASE over the
    actuals that arrived): ``{"metric", "labels", "value", "low", "high", ...}``, or ``None``
    when the task computes none or has too few labelled rows.
    """
    version = registry.resolve(reference)
    manifest = load_manifest(version.bundle_path, version.manifest_sha256)
    if task_for_manifest(manifest).label_kind(manifest) is not None:
        return None  # scored one label at a time: live_numbers already did
    version, _, watched = _watched(registry, reference)
    if watched.performance is None:
        return None
    rows = store.labelled(version.name, since=since, version=version.version)
    return watched.performance(rows)


def _watched(registry: Registry, reference: str) -> tuple[ModelVersion, Manifest, TaskMonitoring]:
    """Resolve a version, verify its bundle, and ask its task how it is monitored."""
    version = registry.resolve(reference)
    manifest = load_manifest(version.bundle_path, version.manifest_sha256)
    watched = task_for_manifest(manifest).monitoring(
        version.bundle_path, manifest, version.reference
    )
    # The log holds what the version's privacy policy kept: compare like with like.
    mask = LogMask.for_manifest(
        manifest.to_document(), lambda: read_hash_key(hash_key_path(registry.artifacts))
    )
    return version, manifest, masked_monitoring(watched, mask)


def _window_performance(
    rows: list[dict[str, Any]], task: str, classes: list[Any], metric: str
) -> dict[str, Any] | None:
    if len(rows) < MIN_LABELS_PER_WINDOW or task not in ("binary", "multiclass", "regression"):
        return None
    values = realised_metrics(rows, task, classes, n_samples=300)
    chosen = values.get(metric) or next(iter(values.values()))
    name = metric if metric in values else next(iter(values))
    return {"metric": name, "labels": len(rows), **chosen.as_dict()}


def _window_estimate(
    outputs: list[dict[str, Any]], task: str, classes: list[Any]
) -> dict[str, float]:
    if not outputs or task not in ("binary", "multiclass"):
        return {}
    labels = [str(label) for label in classes]
    probabilities = np.array(
        [[output["probabilities"][label] for label in labels] for output in outputs]
    )
    return estimated_metrics(probabilities, task)
