"""The pipeline driver: one order of steps for every task.

:func:`train` resolves the task a config describes (:mod:`shipyard.tasks.base`) and runs

``read -> contract -> split -> fit (search, select, export) -> parity -> evaluate -> register
-> [mitigate -> register] -> gate``

asking the task at each step, then writes the bundle (the task's files, the common manifest
entries, the report and the model card), registers it, and makes a first version ``champion``
when the fairness gate allows. With ``fairness.apply`` the task also returns a mitigated model,
registered as a child of the base version; that child is the one that may become champion.
The driver never looks at the task's name.

``training.time_budget`` covers the whole run, from the start of :func:`train` (or of the
``shipyard train`` process) to the registered version: the driver keeps a share for
evaluation, sized from a timed probe (:mod:`shipyard.pipeline.budget`), hands model
development the rest as its budget, and scales evaluation down when less is left than
planned. What each part took is in the manifest's ``timings``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from shipyard.config import PipelineConfig, dump_config
from shipyard.errors import ConfigError, ModelNotFoundError, TrainingError
from shipyard.manifest import MANIFEST_VERSION, Manifest
from shipyard.pipeline.budget import (
    REPLAN_SHARE,
    EvaluationPlan,
    bootstrap_seconds,
    development_config,
    evaluation_config,
    plan_evaluation,
    refuse_hopeless_budget,
    refuse_spent_budget,
)
from shipyard.pipeline.lineage import code_version, lineage
from shipyard.progress import Event, Reporter, event, silent
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
    from collections.abc import Callable

    from shipyard.engines import Engine
    from shipyard.evaluation.metrics import MetricValue
    from shipyard.training.trainer import CandidateResult

__all__ = ["Reporter", "TrainRun", "optuna_storage_url", "train"]


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
    timings: dict[str, float] = field(default_factory=dict)
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
            "timings": self.timings,
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


def train(
    config: PipelineConfig,
    report: Reporter | None = None,
    registry: Registry | None = None,
    engine: Engine | None = None,
    started_at: float | None = None,
) -> TrainRun:
    """Run the whole pipeline a config describes and register the model.

    The first version of a model becomes its ``champion`` when the fairness gate allows;
    later versions are registered without moving the alias (promote them with
    :meth:`Registry.promote`). The model is registered only once every step succeeded.

    ``training.time_budget`` counts from ``started_at`` (``time.time()``; default: now), so
    that a command line can count from the start of its process.

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
        When no candidate model could be trained, or the time budget cannot hold one.
    ExportError
        When the exported model disagrees with the trained one.
    """
    # Counted from the start: a budget is a promise about the whole run.
    started = time.perf_counter() - max(0.0, time.time() - (started_at or time.time()))
    task = task_for_config(config)  # before an engine is opened: a bad key fails at once
    if engine is None:
        from shipyard.engines import open_engine

        with open_engine(config.engine) as opened:
            return _run(task, config, report or silent, registry, opened, started)
    return _run(task, config, report or silent, registry, engine, started)


class _Timings:
    """Seconds since the start of the run, and what each part took."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.parts: dict[str, float] = {}

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def mark(self, part: str, since: float) -> float:
        """Record ``part`` as the time from ``since`` (perf_counter) to now; return now."""
        now = time.perf_counter()
        self.parts[part] = round(now - since, 2)
        return now

    def report(self, budget: float) -> dict[str, float]:
        return {**self.parts, "total_s": round(self.elapsed(), 2), "budget_s": budget}


def _run(
    task: Task,
    config: PipelineConfig,
    report: Reporter,
    registry: Registry | None,
    engine: Engine,
    started: float,
) -> TrainRun:
    """Run the steps of ``task`` in order on ``engine``; register the model."""
    from threadpoolctl import threadpool_limits

    # One BLAS thread: on a loaded machine two spinning OpenBLAS threads slow every linear
    # fit and bootstrap many times over (see shipyard.training.sizing).
    with threadpool_limits(limits=1, user_api="blas"):
        return _steps(task, config, report, registry, engine, _Timings(started))


def _steps(
    task: Task,
    config: PipelineConfig,
    report: Reporter,
    registry: Registry | None,
    engine: Engine,
    timings: _Timings,
) -> TrainRun:
    budget = config.training.time_budget

    def listen(message: str) -> None:
        if isinstance(message, Event) and message.kind == "search_done":
            timings.parts["search_s"] = round(message.fields["search_s"], 2)
        report(message)

    context = RunContext(listen, engine, optuna_storage_url(config))
    data = task.read(config, context)
    refuse_spent_budget(budget, timings.elapsed(), "reading the data")
    _check_personal_columns(config, data.frame)
    data = task.contract(data, config, context)
    refuse_spent_budget(budget, timings.elapsed(), "profiling and cleaning the data")
    split = task.split(data, config, context)
    tick = timings.mark("prepare_s", timings.started)
    plan, per_resample = _plan(config, split, timings, report)
    report(event("stage", "model development", stage="development"))
    development = budget - timings.elapsed() - plan.estimate_s
    fitted = task.fit(split, development_config(config, development), context)
    tick = timings.mark("development_s", tick)
    parity = task.check_parity(fitted, split)
    evaluated_with = _replan(config, split, fitted, per_resample, timings, report)
    evaluated = task.evaluate(fitted, split, evaluated_with, context)
    timings.mark("evaluation_s", tick)
    report(event("stage", "registering", stage="registering"))
    registry = registry or Registry.from_config(config.registry)
    registered = _register_all(
        registry, config, task, data, split, fitted, evaluated, parity, context,
        lambda: timings.report(budget), evaluated_with,
    )  # fmt: skip
    version, manifest, promoted = registered.version, registered.manifest, registered.promoted
    fitted, evaluated, base_version = registered.fitted, registered.evaluated, registered.base
    total = timings.report(budget)
    report(
        event(
            "registered",
            f"registered {version.reference}" + (" as champion" if promoted else ""),
            reference=version.reference,
            total_s=total["total_s"],
        )
    )
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
        timings.elapsed(),
        fairness=fairness,
        data=dict(manifest.get("data") or {}),
        verdict=fitted.verdict,
        decision_threshold=fitted.threshold,
        calibration=fitted.calibration,
        timings=total,
        base_version=base_version,
    )


@dataclass
class _Registered:
    """What registration left: the served version, its manifest, and what was promoted."""

    version: ModelVersion
    manifest: dict[str, Any]
    fitted: FittedModel
    evaluated: EvaluatedModel
    promoted: bool
    base: int | None


def _register_all(
    registry: Registry,
    config: PipelineConfig,
    task: Task,
    data: PreparedData,
    split: SplitData,
    fitted: FittedModel,
    evaluated: EvaluatedModel,
    parity: dict[str, float],
    context: RunContext,
    timings: Callable[[], dict[str, float]],
    evaluated_with: PipelineConfig,
) -> _Registered:
    """Register the model (and its fairness-mitigated child), then the first promotion."""
    version, manifest = _register(
        registry, config, task, data, split, fitted, evaluated, parity, "latest", timings(),
        evaluated_with,
    )  # fmt: skip
    earlier = version.parent_version is not None
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
            registry, config, task, data, split, fitted, evaluated, parity, base_version,
            timings(), evaluated_with,
        )  # fmt: skip
    # Only the served version of a model's first run may become champion (the gate allowing).
    version, promoted = _first_promotion(registry, config, version, earlier, manifest, split)
    return _Registered(version, manifest, fitted, evaluated, promoted, base_version)


def _register(
    registry: Registry,
    config: PipelineConfig,
    task: Task,
    data: PreparedData,
    split: SplitData,
    fitted: FittedModel,
    evaluated: EvaluatedModel,
    parity: dict[str, float],
    parent: int | Literal["latest"],
    timings: dict[str, float],
    evaluated_with: PipelineConfig,
) -> tuple[ModelVersion, dict[str, Any]]:
    """Write the bundle of an evaluated model and register it as a child of ``parent``.

    ``"latest"``: the model's latest version when the registration commits (the card names
    the latest one seen just before).
    """
    manifest = _manifest(config, split, fitted, evaluated, parity, timings)
    described = _latest_version(registry, config.name) if parent == "latest" else parent
    files = _files(config, task, manifest, evaluated, fitted, described, evaluated_with)
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


def _plan(
    config: PipelineConfig,
    split: SplitData,
    timings: _Timings,
    report: Reporter,
) -> tuple[EvaluationPlan, float | None]:
    """Plan evaluation's share of the budget; refuse a budget that cannot hold a model.

    Returns the plan and the probed seconds per bootstrap resample (for the second plan).
    """
    budget = config.training.time_budget

    def probe() -> float | None:
        return bootstrap_seconds(
            split.kind, split.rows.get("test", 0), len(split.classes), config.seed
        )

    per_resample = probe()

    def planned(left_s: float) -> EvaluationPlan:
        return plan_evaluation(
            config,
            left_s=left_s,
            per_resample_s=per_resample,
            test_rows=split.rows.get("test", 0),
            train_rows=split.rows.get("train", 0),
            kind=split.kind,
        )

    try:
        refuse_hopeless_budget(
            budget, timings.elapsed(), planned(0.0), preparing_s=timings.parts["prepare_s"]
        )
    except TrainingError:
        if per_resample is None:
            raise
        # A stall of the machine during the probe must not refuse the run: probe once more
        # and keep the faster measure.
        per_resample = min(per_resample, probe() or per_resample)
        refuse_hopeless_budget(
            budget, timings.elapsed(), planned(0.0), preparing_s=timings.parts["prepare_s"]
        )
    left = budget - timings.elapsed()
    plan = planned(left)
    development = left - plan.estimate_s
    report(
        event(
            "budget",
            f"time budget {budget:g}s: {timings.elapsed():.1f}s spent preparing the data, "
            f"{development:.1f}s for model development, about {plan.estimate_s:.1f}s kept "
            "for evaluation",
            budget_s=budget,
            development_s=development,
            evaluation_s=plan.estimate_s,
            deadline=time.time() + left,
        )
    )
    return plan, per_resample


def _replan(
    config: PipelineConfig,
    split: SplitData,
    fitted: FittedModel,
    per_resample: float | None,
    timings: _Timings,
    report: Reporter,
) -> PipelineConfig:
    """Return the config evaluation runs with: as much as the time now left affords."""
    chosen = next((row for row in fitted.leaderboard if row.name == fitted.best), None)
    plan = plan_evaluation(
        config,
        left_s=config.training.time_budget - timings.elapsed(),
        per_resample_s=per_resample,
        test_rows=split.rows.get("test", 0),
        train_rows=split.rows.get("train", 0),
        share=REPLAN_SHARE,
        rows_per_second=chosen.batch_per_second if chosen is not None else None,
        features=len(getattr(split.test, "columns", ())),
        kind=split.kind,
    )
    timings.parts["evaluation_planned_s"] = round(plan.estimate_s, 2)
    if plan.notes:
        note = "evaluation scaled down to fit the time budget: " + "; ".join(plan.notes)
        split.prepared.notes.append(note)
        report(event("evaluation_scaled", note))
    report(event("stage", "evaluation", stage="evaluation"))
    return evaluation_config(config, plan)


def _manifest(
    config: PipelineConfig,
    split: SplitData,
    fitted: FittedModel,
    evaluated: EvaluatedModel,
    parity: dict[str, float],
    timings: dict[str, float],
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
        "timings": timings,
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
    evaluated_with: PipelineConfig,
) -> dict[str, bytes]:
    """Return the task's files, the resolved config, and (when asked) the report and card.

    ``evaluated_with`` is the config evaluation ran with: it drops the report and card when
    the time budget left no room for them.
    """
    files = {**evaluated.files, "config.yaml": dump_config(config).encode()}
    if not evaluated_with.evaluation.report:
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
    # A compare-and-set: if another run of the same new model holds the alias already, this
    # version stays registered as a challenger.
    promoted = registry.claim(
        config.name, version.version, DEFAULT_ALIAS, reason="first version of the model"
    )
    if promoted is None:
        split.prepared.notes.append(
            f"not promoted to {DEFAULT_ALIAS}: another run of '{config.name}' holds it already"
        )
        return version, False
    return promoted, True


def _latest_version(registry: Registry, name: str) -> int | None:
    try:
        versions = registry.versions(name)
    except ModelNotFoundError:
        return None
    return versions[-1].version if versions else None
