"""The pipeline driver: one order of steps for every task.

:func:`train` resolves the task a config describes (:mod:`shipyard.tasks.base`) and runs

``read -> contract -> split -> fit (search, select, export) -> parity -> evaluate -> register
-> [mitigate -> register] -> gate``

asking the task at each step, then writes the bundle (the task's files, the common manifest
entries, the report and the model card), registers it, and makes a first version ``champion``
when the fairness gate allows. With ``fairness.apply`` the task also returns a mitigated model,
registered as a child of the base version; that child is the one that may become champion.
The driver never looks at the task's name.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.config import PipelineConfig, dump_config
from shipyard.errors import ConfigError, ModelNotFoundError
from shipyard.manifest import MANIFEST_VERSION, Manifest
from shipyard.pipeline.lineage import code_version, lineage
from shipyard.registry.store import DEFAULT_ALIAS, ModelVersion, Registry
from shipyard.tasks.base import (
    EvaluatedModel,
    FittedModel,
    PreparedData,
    RunContext,
    SplitData,
    Task,
    task_for_config,
)

if TYPE_CHECKING:
    from shipyard.engines import Engine
    from shipyard.evaluation.metrics import MetricValue
    from shipyard.training.trainer import CandidateResult

__all__ = ["Reporter", "TrainRun", "optuna_storage_url", "train"]

Reporter = Callable[[str], None]


@dataclass
class TrainRun:
    """What a training run produced."""

    version: ModelVersion
    task: str
    metric: str
    best: str
    leaderboard: list[CandidateResult]
    test_metrics: dict[str, MetricValue]
    parity: dict[str, float]
    rows: dict[str, int]
    notes: list[str] = field(default_factory=list)
    promoted: bool = False
    seconds: float = 0.0
    fairness: dict[str, Any] | None = None
    data: dict[str, Any] = field(default_factory=dict)
    verdict: dict[str, Any] = field(default_factory=dict)
    decision_threshold: dict[str, Any] | None = None
    calibration: dict[str, Any] | None = None
    base_version: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary, the shape ``shipyard train --json`` prints."""
        return {
            "model": self.version.name,
            "version": self.version.version,
            "reference": self.version.reference,
            "aliases": list(self.version.aliases),
            "promoted": self.promoted,
            "task": self.task,
            "metric": self.metric,
            "best": self.best,
            "rows": self.rows,
            "seconds": round(self.seconds, 2),
            "test_metrics": {name: value.as_dict() for name, value in self.test_metrics.items()},
            "leaderboard": [row.as_dict() for row in self.leaderboard],
            "verdict": self.verdict,
            "decision_threshold": self.decision_threshold,
            "calibration": None if self.calibration is None else self.calibration["method"],
            "parity": self.parity,
            "notes": self.notes,
            "bundle": str(self.version.bundle_path),
            "fairness": self.fairness["gate"]["verdict"] if self.fairness else None,
            "mitigation": self._mitigation(),
            "data": self.data,
        }

    def _mitigation(self) -> dict[str, Any] | None:
        """Return the applied fairness mitigation: its base version, thresholds, trade-off."""
        applied = (self.fairness or {}).get("applied")
        if not applied:
            return None
        return {
            "base_version": self.base_version,
            "method": applied["method"],
            "thresholds": applied["thresholds"],
            "test": applied["test"],
        }


def _silent(message: str) -> None:
    """Print nothing (the default reporter)."""


def train(
    config: PipelineConfig,
    report: Reporter | None = None,
    registry: Registry | None = None,
    engine: Engine | None = None,
) -> TrainRun:
    """Run the whole pipeline a config describes and register the model.

    The first version of a model becomes its ``champion`` when the fairness gate allows;
    later versions are registered without moving the alias (promote them with
    :meth:`Registry.promote`). The model is registered only once every step succeeded.

    With a cluster engine (``engine.url``, or ``engine`` given), the cross-validation folds
    of the search run on the cluster; with ``engine.distributed_training`` LightGBM is trained
    on the cluster from partitioned data instead (see docs/scale.md).

    Raises
    ------
    ConfigError
        When the config sets a key its task does not honour.
    DataError
        When the data cannot be read, breaks its contract, or cannot be split.
    TrainingError
        When no candidate model could be trained.
    ExportError
        When the exported model disagrees with the trained one.
    """
    task = task_for_config(config)  # before an engine is opened: a bad key fails at once
    if engine is None:
        from shipyard.engines import open_engine

        with open_engine(config.engine) as opened:
            return _run(task, config, report or _silent, registry, opened)
    return _run(task, config, report or _silent, registry, engine)


def _run(
    task: Task,
    config: PipelineConfig,
    report: Reporter,
    registry: Registry | None,
    engine: Engine,
) -> TrainRun:
    """Run the steps of ``task`` in order on ``engine``; register the model."""
    started = time.perf_counter()
    context = RunContext(report, engine, optuna_storage_url(config))
    data = task.read(config, context)
    _check_personal_columns(config, data.frame)
    data = task.contract(data, config, context)
    split = task.split(data, config, context)
    fitted = task.fit(split, config, context)
    parity = task.check_parity(fitted, split)
    evaluated = task.evaluate(fitted, split, config, context)
    registry = registry or Registry.from_config(config.registry)
    parent = _latest_version(registry, config.name)
    version, manifest = _register(
        registry, config, task, data, split, fitted, evaluated, parity, parent
    )
    base_version = None
    if config.fairness.apply != "none":
        base_version = version.version
        fitted, evaluated = task.mitigate(fitted, evaluated, split, config, context)
        context.report(f"registered {version.reference}, the base of the mitigated version")
        split.prepared.notes.append(
            f"fairness mitigation ({config.fairness.apply}) of version {base_version}: the "
            "same probabilities, a decision threshold per sensitive group"
        )
        version, manifest = _register(
            registry, config, task, data, split, fitted, evaluated, parity, base_version
        )
    # Only the served version of a model's first run may become champion (the gate allowing).
    version, promoted = _first_promotion(
        registry, config, version, parent is not None, manifest, split
    )
    context.report(f"registered {version.reference}" + (" as champion" if promoted else ""))
    fairness: dict[str, Any] | None = manifest.get("fairness")
    return TrainRun(
        version,
        str(manifest["task"]),
        str(manifest["metric"]),
        fitted.best,
        fitted.leaderboard,
        evaluated.test_metrics,
        parity,
        split.rows,
        split.prepared.notes,
        promoted,
        time.perf_counter() - started,
        fairness=fairness,
        data=dict(manifest.get("data") or {}),
        verdict=fitted.verdict,
        decision_threshold=fitted.threshold,
        calibration=fitted.calibration,
        base_version=base_version,
    )


def _register(
    registry: Registry,
    config: PipelineConfig,
    task: Task,
    data: PreparedData,
    split: SplitData,
    fitted: FittedModel,
    evaluated: EvaluatedModel,
    parity: dict[str, float],
    parent: int | None,
) -> tuple[ModelVersion, dict[str, Any]]:
    """Write the bundle of an evaluated model and register it as a child of ``parent``."""
    manifest = _manifest(config, split, fitted, evaluated, parity)
    files = _files(config, task, manifest, evaluated, fitted, parent)
    version = registry.register(
        config.name,
        files,
        manifest,
        params=fitted.params,
        config=dump_config(config),
        data_fingerprint=data.fingerprint or "",
        package_versions=manifest["lineage"]["packages"],
        parent_version=parent,
    )
    return version, manifest


def optuna_storage_url(config: PipelineConfig) -> str | None:
    """Return the Optuna storage URL of a run; ``registry`` is the registry's database."""
    storage = config.engine.optuna_storage
    return config.registry.resolved_url() if storage == "registry" else storage


def _manifest(
    config: PipelineConfig,
    split: SplitData,
    fitted: FittedModel,
    evaluated: EvaluatedModel,
    parity: dict[str, float],
) -> dict[str, Any]:
    """Return the entries every manifest has, then the task's own (which may refine them)."""
    common: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "target": config.data.target,
        "classes": split.classes,
        "metric": split.metric,
        "config": "config.yaml",
        "metrics": {
            "test": {name: value.as_dict() for name, value in evaluated.test_metrics.items()},
            "cv": {row.name: row.as_dict() for row in fitted.leaderboard},
        },
        "leaderboard": [row.as_dict() for row in fitted.leaderboard],
        "verdict": fitted.verdict,
        "parity": parity,
        "rows": split.rows,
        "notes": split.prepared.notes,
        "code_version": code_version(),
        "lineage": lineage(),
        "sensitive": list(config.sensitive),
        "personal_data": {
            "columns": list(config.data.personal),
            "log_policy": config.monitoring.personal_data,
        },
    }
    # Validated against the schema before anything is written: a task cannot leave one out.
    return Manifest.from_document({**common, **evaluated.manifest}).to_document()


def _check_personal_columns(config: PipelineConfig, frame: Any) -> None:
    """Refuse a ``data.personal`` column the data does not have (a typo would log it in clear)."""
    columns = getattr(frame, "columns", None)
    if columns is None:
        return
    missing = [name for name in config.data.personal if name not in columns]
    if missing:
        raise ConfigError(
            f"data.personal names column(s) {', '.join(missing)} that {config.data.source} "
            f"does not have; its columns: {', '.join(map(str, columns))}."
        )


def _files(
    config: PipelineConfig,
    task: Task,
    manifest: dict[str, Any],
    evaluated: EvaluatedModel,
    fitted: FittedModel,
    parent: int | None,
) -> dict[str, bytes]:
    """Return the task's files, the resolved config, and (when asked) the report and card."""
    files = {**evaluated.files, "config.yaml": dump_config(config).encode()}
    if not config.evaluation.report:
        return files
    from shipyard.evaluation.card import bundle_documents

    contract = getattr(fitted.predictor, "contract", None)
    described = {
        **manifest,
        "name": config.name,
        "parent_version": parent,
        "package_versions": manifest["lineage"]["packages"],
    }
    files.update(
        bundle_documents(
            described,
            files,
            contract.model_dump(mode="json", exclude_none=True)
            if contract is not None and manifest.get("contract")
            else None,
            evaluated.plots,
            task.document_sections(),
        )
    )
    return files


def _first_promotion(
    registry: Registry,
    config: PipelineConfig,
    version: ModelVersion,
    earlier: bool,
    manifest: dict[str, Any],
    split: SplitData,
) -> tuple[ModelVersion, bool]:
    """Make the first run's served version its champion, when the fairness gate allows.

    ``earlier`` says the model had versions before this run: then nothing is promoted.
    """
    if earlier:
        return version, False
    fairness: dict[str, Any] | None = manifest.get("fairness")
    if fairness is not None and not fairness["gate"]["passed"]:
        split.prepared.notes.append(
            f"not promoted to {DEFAULT_ALIAS}: fairness gate {fairness['gate']['verdict']}"
        )
        return version, False
    promoted = registry.promote(
        config.name, version.version, DEFAULT_ALIAS, reason="first version of the model"
    )
    return promoted, True


def _latest_version(registry: Registry, name: str) -> int | None:
    try:
        versions = registry.versions(name)
    except ModelNotFoundError:
        return None
    return versions[-1].version if versions else None
