"""The steps wired together: data -> contract -> split -> train -> export -> evaluate -> register.

:func:`train` runs the whole pipeline a config describes and returns a :class:`TrainRun`;
:func:`evaluate` scores a registered version on a labelled file through the served path.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard._version import __version__
from shipyard.config import PipelineConfig, dump_config
from shipyard.data.clean import clean_frame
from shipyard.data.contract import Contract, infer_contract
from shipyard.data.prepare import leakage_findings, prepare_training_data
from shipyard.data.sources import fingerprint, read_table
from shipyard.data.split import split_frame
from shipyard.errors import DataError
from shipyard.evaluation.metrics import DEFAULT_METRICS, MetricValue, bootstrap_metrics
from shipyard.evaluation.metrics import default_metric as task_default_metric
from shipyard.monitoring.reference import build_reference, reference_to_json
from shipyard.registry.bundle import load_predictor
from shipyard.registry.store import DEFAULT_ALIAS, ModelVersion, Registry
from shipyard.runtime.clean import Cleaner
from shipyard.runtime.predictor import Predictor
from shipyard.runtime.preprocess import CompiledPreprocessor
from shipyard.tasks.detect import class_order, detect_task
from shipyard.tasks.export import ExportedModel, check_parity, frame_to_records
from shipyard.tasks.tabular import feature_set
from shipyard.training.search import SearchSettings
from shipyard.training.trainer import CandidateResult, SelectionSettings, train_candidates

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.engines import Engine

__all__ = ["EvaluationRun", "TrainRun", "evaluate", "train"]

Reporter = Callable[[str], None]
PARITY_ROWS = 2000
COST_ROWS = 200
PACKAGES = (
    "numpy",
    "pandas",
    "scikit-learn",
    "lightgbm",
    "scipy",
    "pyarrow",
    "sqlalchemy",
    "pydantic",
    "optuna",
    "xgboost",
    "catboost",
)


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
            "data": self.data,
        }


@dataclass
class EvaluationRun:
    """Metrics of a registered version on a labelled data set."""

    version: ModelVersion
    rows: int
    metrics: dict[str, MetricValue]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary, the shape ``shipyard evaluate --json`` prints."""
        return {
            "reference": self.version.reference,
            "rows": self.rows,
            "metrics": {name: value.as_dict() for name, value in self.metrics.items()},
        }


def package_versions() -> dict[str, str]:
    """Versions of shipyard, Python and the packages a bundle depends on."""
    versions = {"shipyard": __version__, "python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _encode_target(series: pd.Series, task: str, classes: list[Any]) -> Any:
    if task == "regression":
        return series.to_numpy(dtype=np.float64)
    index = {str(label): position for position, label in enumerate(classes)}
    encoded = series.astype(str).map(index)
    if encoded.isna().any():
        unknown = sorted(set(series[encoded.isna()].astype(str)))[:5]
        raise DataError(
            f"Target '{series.name}' holds labels the training data did not have: "
            f"{unknown}; the model can only predict {classes}."
        )
    return encoded.to_numpy(dtype=np.int64)


def train(
    config: PipelineConfig,
    report: Reporter | None = None,
    registry: Registry | None = None,
    engine: Engine | None = None,
) -> TrainRun:
    """Run the whole pipeline a config describes and register the model.

    The first version of a model becomes its ``champion``; later versions are registered
    without moving the alias (promote them with :meth:`Registry.promote`). The model is
    registered only once every step succeeded.

    With a cluster engine (``engine.url``, or ``engine`` given), the cross-validation folds
    of the search run on the cluster; with ``engine.distributed_training`` LightGBM is trained
    on the cluster from partitioned data instead (see docs/scale.md).

    Raises
    ------
    DataError
        When the data cannot be read, breaks its contract, or cannot be split.
    TrainingError
        When no candidate model could be trained.
    ExportError
        When the exported model disagrees with the trained one.
    """
    if config.task in ("recommendation", "text_classification"):
        return _train_other_task(config, report, registry)
    if engine is None:
        from shipyard.engines import open_engine

        with open_engine(config.engine) as opened:
            return train(config, report, registry, opened)
    report = report or (lambda message: None)
    if config.engine.distributed_training:
        from shipyard.engines.distributed import train_distributed

        return train_distributed(config, engine, report, registry)
    started = time.perf_counter()
    target, notes = config.data.target, []

    report(f"reading {config.data.source}")
    frame = read_table(config.data.source)
    if target in frame.columns and frame[target].isna().any():
        missing = int(frame[target].isna().sum())
        frame = frame[frame[target].notna()].reset_index(drop=True)
        notes.append(f"dropped {missing} rows whose target '{target}' is missing")
    report("profiling and cleaning the data")
    frame, data_report = prepare_training_data(frame, config)
    contract = infer_contract(frame, target, drop=config.data.drop)
    data_report.describe_contract(contract)
    if contract.ignored:
        notes.append(f"not used as features: {', '.join(contract.ignored)}")
    contract.validate_frame(frame, with_target=True).raise_if_failed("The training data")
    for column in config.sensitive:
        if column not in frame.columns:
            raise DataError(f"Sensitive column '{column}' (from 'sensitive') is not in the data.")

    task = detect_task(frame[target]) if config.task == "auto" else config.task
    metric = task_default_metric(task) if config.metric == "auto" else config.metric
    classes = [] if task == "regression" else class_order(frame[target], config.positive_class)
    if task == "binary" and len(classes) != 2:
        raise DataError(
            f"task is 'binary' but '{target}' has {len(classes)} classes; "
            "set task to 'multiclass' or 'auto'."
        )

    classification = task != "regression"
    if config.data.test_source:
        test = read_table(config.data.test_source)
        if data_report.cleaning_spec is not None:
            test = clean_frame(test, data_report.cleaning_spec)
        contract.validate_frame(test, with_target=True).raise_if_failed(
            f"The test data ({config.data.test_source})"
        )
        share = config.split.validation_size / (1.0 - config.split.test_size)
        train_part, validation, _ = split_frame(
            frame,
            target,
            classification=classification,
            seed=config.seed,
            test_size=None,
            validation_size=share,
            stratify=config.split.stratify,
            group_column=config.split.group_column,
            time_column=config.split.time_column,
        )
    else:
        train_part, validation, held_out = split_frame(
            frame,
            target,
            classification=classification,
            seed=config.seed,
            test_size=config.split.test_size,
            validation_size=config.split.validation_size,
            stratify=config.split.stratify,
            group_column=config.split.group_column,
            time_column=config.split.time_column,
        )
        assert held_out is not None
        test = held_out
    rows = {"train": len(train_part), "validation": len(validation), "test": len(test)}
    report(
        f"{task} task, metric {metric}; rows: train {rows['train']}, "
        f"validation {rows['validation']}, test {rows['test']}"
    )

    report("checking for target leakage")
    leakage_findings(train_part, test, contract, config, task, data_report)
    for finding in data_report.leakage:
        report(f"leakage {finding.level}: {finding.message}")

    features = feature_set(contract)
    columns = contract.feature_names
    training = config.training
    backend, n_jobs = engine.fan_out(training.backend, training.n_jobs)
    if engine.name != "local":
        report(f"cross-validation folds run on {engine.describe()}")

    cleaner = Cleaner(data_report.cleaning_spec) if data_report.cleaning_spec else None

    def build_predictor(exported: ExportedModel) -> Predictor:
        return Predictor(
            contract,
            CompiledPreprocessor(exported.preprocessing),
            exported.scorer(task),
            task,
            classes,
            cleaner=cleaner,
        )

    result = train_candidates(
        train_part[columns],
        _encode_target(train_part[target], task, classes),
        validation[columns],
        _encode_target(validation[target], task, classes),
        features=features,
        task=task,
        metric=metric,
        models=config.training.models,
        cv_folds=config.training.cv_folds,
        time_budget=config.training.time_budget,
        seed=config.seed,
        report=report,
        search=SearchSettings(
            models=training.models,
            time_budget=training.time_budget,
            search_share=training.search_share,
            n_trials=training.n_trials,
            cv_folds=training.cv_folds,
            cv_repeats=training.cv_repeats,
            seed=config.seed,
            model_threads=training.model_threads,
            backend=backend,
            n_jobs=n_jobs,
            class_weight=None if training.class_weight == "none" else training.class_weight,
            optuna_storage=optuna_storage_url(config),
            study_prefix=f"shipyard-{config.name}",
        ),
        selection=SelectionSettings(
            ensemble=training.ensemble,
            prefer_simpler=training.prefer_simpler,
            final_fit=training.final_fit,
            alpha=training.alpha,
            max_latency_ms=training.max_latency_ms,
            calibration=training.calibration,
            threshold_metric=training.threshold_metric,
            confidence=config.evaluation.confidence,
        ),
        build_predictor=build_predictor,
        cost_records=frame_to_records(validation[columns].head(COST_ROWS)),
    )

    report(f"exporting {result.best} and checking parity with the trained model")
    exported = result.pipeline.export()
    predictor = build_predictor(exported)
    predictor.threshold = result.threshold["value"] if result.threshold else None
    parity_rows = pd_concat([validation, test]).head(PARITY_ROWS)
    parity = check_parity(result.pipeline, predictor, parity_rows, task)

    report(f"evaluating on {len(test)} test rows with bootstrap confidence intervals")
    test = test.reset_index(drop=True)
    test_outputs = predictor.score_frame(test[columns])
    test_metrics = bootstrap_metrics(
        _encode_target(test[target], task, classes),
        test_outputs,
        DEFAULT_METRICS[task],
        n_samples=config.evaluation.bootstrap_samples,
        confidence=config.evaluation.confidence,
        seed=config.seed,
        threshold=predictor.threshold,
    )

    registry = registry or Registry.from_config(config.registry)
    manifest = {
        "task": task,
        "target": target,
        "classes": classes,
        "metric": metric,
        "model": {
            "format": exported.model_format,
            "path": exported.model_filename,
            "family": result.best,
        },
        "contract": "contract.yaml",
        "preprocessing": "preprocessing.json",
        "config": "config.yaml",
        "metrics": {
            "test": {name: value.as_dict() for name, value in test_metrics.items()},
            "cv": {row.name: row.as_dict() for row in result.leaderboard},
        },
        "leaderboard": [row.as_dict() for row in result.leaderboard],
        "verdict": result.verdict,
        "calibration": result.calibration,
        "decision_threshold": result.threshold,
        "parity": parity,
        "rows": rows,
        "notes": notes,
        "code_version": __version__,
        "sensitive": list(config.sensitive),
        "data": data_report.as_dict(),
    }

    files = {
        "contract.yaml": contract.to_yaml().encode(),
        "preprocessing.json": json.dumps(
            exported.preprocessing, indent=1, allow_nan=False
        ).encode(),
        **exported.files(),
        "config.yaml": dump_config(config).encode(),
    }
    # Drift reference: the training part's distributions, sketched once, read by monitoring.
    reference = build_reference(
        train_part[columns], contract, predictor.score_frame(train_part[columns]), task
    )
    manifest["drift_reference"] = "drift_reference.json"
    files["drift_reference.json"] = json.dumps(
        reference_to_json(reference), allow_nan=False
    ).encode()
    if data_report.cleaning_spec is not None:
        manifest["cleaning"] = "cleaning.json"
        files["cleaning.json"] = json.dumps(
            data_report.cleaning_spec, indent=1, allow_nan=False
        ).encode()
    parent = _latest_version(registry, config.name)
    if config.evaluation.report:
        report("evaluation suite: slices, fairness, explanations, robustness, plots, card")
        files.update(
            _evaluation_files(
                config, predictor, test, validation, test_outputs, manifest, files, notes, parent
            )
        )
    winner = next(row for row in result.leaderboard if row.name == result.best)
    version = registry.register(
        config.name,
        files,
        manifest,
        params={"family": result.best, **winner.params},
        config=dump_config(config),
        data_fingerprint=fingerprint(frame),
        package_versions=package_versions(),
        parent_version=parent,
    )
    promoted = False
    fairness: dict[str, Any] | None = manifest.get("fairness")  # type: ignore[assignment]
    gate_passed = fairness is None or bool(fairness["gate"]["passed"])
    if parent is None and gate_passed:
        version = registry.promote(
            config.name, version.version, DEFAULT_ALIAS, reason="first version of the model"
        )
        promoted = True
    elif parent is None and fairness is not None:
        notes.append(
            f"not promoted to {DEFAULT_ALIAS}: fairness gate {fairness['gate']['verdict']}"
        )
        report(notes[-1])
    report(f"registered {version.reference}" + (" as champion" if promoted else ""))
    return TrainRun(
        version,
        task,
        metric,
        result.best,
        result.leaderboard,
        test_metrics,
        parity,
        rows,
        notes,
        promoted,
        time.perf_counter() - started,
        verdict=result.verdict,
        decision_threshold=result.threshold,
        calibration=result.calibration,
        fairness=fairness,
        data=data_report.as_dict(),
    )


def optuna_storage_url(config: PipelineConfig) -> str | None:
    """Return the Optuna storage URL of a run; ``registry`` is the registry's database."""
    storage = config.engine.optuna_storage
    return config.registry.resolved_url() if storage == "registry" else storage


def _evaluation_files(
    config: PipelineConfig,
    predictor: Predictor,
    test: pd.DataFrame,
    validation: pd.DataFrame,
    test_outputs: Any,
    manifest: dict[str, Any],
    files: dict[str, bytes],
    notes: list[str],
    parent: int | None,
) -> dict[str, bytes]:
    """Run the evaluation suite; add its manifest sections; return the report, plots and card.

    Without the ``report`` extra the suite is skipped with a note, unless fairness thresholds
    are configured: a gate that cannot be evaluated must not pass silently.
    """
    import hashlib

    from shipyard.errors import MissingDependencyError

    try:
        from shipyard.evaluation.card import build_card
        from shipyard.evaluation.report import render_report
        from shipyard.evaluation.suite import run_suite

        classes, task, target = predictor.classes, predictor.task, config.data.target
        suite = run_suite(
            config,
            predictor,
            test=test,
            y_test=_encode_target(test[target], task, classes),
            outputs=test_outputs,
            validation=validation.reset_index(drop=True),
            y_validation=_encode_target(validation[target], task, classes),
            metric=manifest["metric"],
        )
    except MissingDependencyError as error:
        if config.fairness.thresholds:
            raise
        notes.append(f"evaluation report skipped: {error}")
        return {}
    manifest["evaluation"] = suite.evaluation
    manifest["fairness"] = suite.fairness_section()
    extra = {f"plots/{name}.png": png for name, png in suite.plots.items()}
    extra["report.html"] = render_report({**manifest, "name": config.name}, suite.plots).encode()
    hashes = {
        name: hashlib.sha256(data).hexdigest() for name, data in sorted({**files, **extra}.items())
    }
    card = build_card(
        {
            **manifest,
            "name": config.name,
            "parent_version": parent,
            "package_versions": package_versions(),
            "files": hashes,
        },
        predictor.contract.model_dump(mode="json", exclude_none=True),
    )
    extra["model_card.md"] = card.to_markdown().encode()
    extra["model_card.html"] = card.to_html().encode()
    return extra


def _train_other_task(
    config: PipelineConfig, report: Reporter | None, registry: Registry | None
) -> TrainRun:
    """Run the task adapter for tasks that are not tabular (imported only when used)."""
    if config.task == "recommendation":
        from shipyard.tasks.recommendation.pipeline import train_recommendation

        return train_recommendation(config, report, registry)
    from shipyard.tasks.text.pipeline import train_text_classifier

    return train_text_classifier(config, report, registry)


def pd_concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate frames, ignoring their row labels."""
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


def _latest_version(registry: Registry, name: str) -> int | None:
    from shipyard.errors import ModelNotFoundError

    try:
        versions = registry.versions(name)
    except ModelNotFoundError:
        return None
    return versions[-1].version if versions else None


def evaluate(
    registry: Registry,
    reference: str,
    source: str,
    *,
    bootstrap_samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> EvaluationRun:
    """Score a registered version on a labelled file through the served path.

    Raises
    ------
    DataError
        When the file lacks the target or breaks the model's contract.
    """
    version = registry.resolve(reference)
    predictor: Predictor = load_predictor(version.bundle_path, version.manifest_sha256)
    contract: Contract = predictor.contract
    frame = predictor.clean_frame(read_table(source))
    target = contract.target.name
    if target not in frame.columns:
        raise DataError(f"'{source}' has no target column '{target}'; evaluation needs labels.")
    contract.validate_frame(frame, with_target=True).raise_if_failed(f"'{source}'")
    outputs = predictor.score_frame(frame[contract.feature_names])
    y = _encode_target(frame[target], predictor.task, predictor.classes)
    metrics = bootstrap_metrics(
        y,
        outputs,
        DEFAULT_METRICS[predictor.task],
        n_samples=bootstrap_samples,
        confidence=confidence,
        seed=seed,
        threshold=predictor.threshold,
    )
    return EvaluationRun(version, len(frame), metrics)
