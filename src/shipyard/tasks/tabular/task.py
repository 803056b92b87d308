"""The tabular task: binary, multiclass and regression on a table of typed columns.

The hooks of :class:`TabularTask` are the steps the pipeline driver runs: read the table, profile
and clean it, infer and enforce its contract, split it (seeded, stratified, grouped or
time-ordered), search the candidate families under the time budget, export the winner to JSON
preprocessing plus the model's own format, check parity, and evaluate on the test rows with
the evaluation suite (slices, fairness, explanations, robustness, plots). With
``engine.distributed_training`` the fit runs on a Dask cluster instead
(:mod:`shipyard.tasks.tabular.distributed`): a fit strategy of this task, not a second pipeline.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import BundleIntegrityError, DataError, MissingDependencyError
from shipyard.runtime.bundle_files import bundle_file
from shipyard.tasks.base import (
    Capabilities,
    EvaluatedModel,
    FittedModel,
    PreparedData,
    RetrainSteps,
    RunContext,
    SplitData,
    Task,
)
from shipyard.tasks.labels import encode_target

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.config import PipelineConfig
    from shipyard.manifest import Manifest
    from shipyard.monitoring.adapters import TaskMonitoring
    from shipyard.runtime.predictor import Predictor
    from shipyard.tasks.try_it import TryItAnswer
    from shipyard.training.export import ExportedModel

__all__ = ["TabularTask"]

PARITY_ROWS = 2000
COST_ROWS = 200


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


class TabularTask(Task):
    """Binary classification, multiclass classification and regression on tables."""

    name = "tabular"
    summary = "binary, multiclass and regression on a table of typed columns"
    capabilities = Capabilities(
        config_tasks=("auto", "binary", "multiclass", "regression"),
        manifest_tasks=("binary", "multiclass", "regression"),
        fairness=True,
        explanations=True,
    )

    def small_config(self, folder: Path) -> dict[str, Any]:
        """Use 800 rows of UCI Adult, with a missing-value indicator for the cleaning to fit."""
        import numpy as np

        from shipyard import datasets

        sample = datasets.load("adult").train.sample(n=800, random_state=0)
        gaps = np.random.default_rng(0).random(len(sample)) < 0.05
        sample["hours-per-week"] = sample["hours-per-week"].astype("float64").mask(gaps)
        sample.to_csv(folder / "adult.csv", index=False)
        return {
            "name": "adult",
            "sensitive": ["sex"],
            "data": {"source": str(folder / "adult.csv"), "target": "income", "drop": ["fnlwgt"]},
            "training": {"cv_folds": 2, "models": ["linear", "lightgbm"], "n_trials": 1},
            "evaluation": {"bootstrap_samples": 100, "report": False},
        }

    # Training -------------------------------------------------------------------------------

    def read(self, config: PipelineConfig, context: RunContext) -> PreparedData:
        """Read the source (and the test file); drop rows whose target is missing."""
        if config.engine.distributed_training:
            from shipyard.tasks.tabular.distributed import read_partitioned

            return read_partitioned(config, context)
        from shipyard.data.sources import ReadOptions, read_table
        from shipyard.data.split import labelled_rows, minimum_rows

        data, split = config.data, config.split
        options = ReadOptions(data.encoding, data.header)
        context.report(f"reading {data.source}")
        test = read_table(data.test_source, options) if data.test_source else None
        # The held-out shares as _split_rows passes them to the split.
        held_out = (
            (split.validation_size / (1.0 - split.test_size), None)
            if test is not None
            else (split.validation_size, split.test_size)
        )
        frame, notes = labelled_rows(
            read_table(data.source, options),
            data.target_column,
            data.source,
            minimum_rows(*held_out),
        )
        return PreparedData(frame, test, notes=notes)

    def contract(
        self, data: PreparedData, config: PipelineConfig, context: RunContext
    ) -> PreparedData:
        """Profile and clean the rows, infer the contract and enforce it on every table."""
        if config.engine.distributed_training:
            from shipyard.tasks.tabular.distributed import partitioned_contract

            return partitioned_contract(data, config, context)
        from shipyard.data.contract import infer_contract
        from shipyard.data.prepare import prepare_training_data
        from shipyard.data.sources import fingerprint

        context.report("profiling and cleaning the data")
        frame, data_report = prepare_training_data(data.frame, config)
        contract = infer_contract(frame, config.data.target_column, drop=config.data.drop)
        data_report.describe_contract(contract)
        if contract.ignored:
            data.notes.append(f"not used as features: {', '.join(contract.ignored)}")
        contract.validate_frame(frame, with_target=True).raise_if_failed("The training data")
        for column in config.sensitive:
            if column not in frame.columns:
                raise DataError(
                    f"Sensitive column '{column}' (from 'sensitive') is not in the data."
                )
        test = data.test
        if test is not None:
            test, notes = self._checked_test(test, contract, data_report.cleaning_spec, config)
            data.notes.extend(notes)
        data.frame, data.test, data.contract = frame, test, contract
        data.fingerprint = fingerprint(frame)
        data.payload["data_report"] = data_report
        return data

    @staticmethod
    def _checked_test(
        test: pd.DataFrame,
        contract: Any,
        cleaning_spec: dict[str, Any] | None,
        config: PipelineConfig,
    ) -> tuple[pd.DataFrame, list[str]]:
        """Clean the test file, check it, and settle its unknown categories as serving will.

        Returns the test rows and a note for the run when unknown categories were settled.
        """
        from shipyard.data.clean import clean_frame
        from shipyard.runtime.unknown import UnknownCategories

        if cleaning_spec is not None:
            test = clean_frame(test, cleaning_spec)
        policy = config.data.unknown_categories
        contract.validate_frame(test, with_target=True, unknown_categories=policy).raise_if_failed(
            f"The test data ({config.data.test_source})"
        )
        unknown = UnknownCategories(contract, policy, cleaning_spec)
        test, counts = unknown.settle_frame(test)
        return test, [f"test data: {unknown.describe(counts)}"] if counts else []

    def split(self, data: PreparedData, config: PipelineConfig, context: RunContext) -> SplitData:
        """Detect the label's kind, order the classes, split, and check for target leakage."""
        if config.engine.distributed_training:
            from shipyard.tasks.tabular.distributed import partitioned_split

            return partitioned_split(data, config, context)
        from shipyard.data.prepare import leakage_findings
        from shipyard.evaluation.metrics import default_metric
        from shipyard.tasks.detect import class_order, detect_task
        from shipyard.tasks.tabular.mitigation import check_mitigation

        frame, target = data.frame, config.data.target
        kind = detect_task(frame[target]) if config.task == "auto" else config.task
        metric = default_metric(kind) if config.metric == "auto" else config.metric
        check_mitigation(config, kind)  # before the search, not after it
        classes = [] if kind == "regression" else class_order(frame[target], config.positive_class)
        if kind == "binary" and len(classes) != 2:
            raise DataError(
                f"task is 'binary' but '{target}' has {len(classes)} classes; "
                "set task to 'multiclass' or 'auto'."
            )
        train_part, validation, test = self._split_rows(data, config, kind)
        rows = {"train": len(train_part), "validation": len(validation), "test": len(test)}
        context.report(
            f"{kind} task, metric {metric}; rows: train {rows['train']}, "
            f"validation {rows['validation']}, test {rows['test']}"
        )
        context.report("checking for target leakage")
        assert data.contract is not None  # set by the contract step
        data_report = data.payload["data_report"]
        leakage_findings(train_part, test, data.contract, config, kind, data_report)
        for finding in data_report.leakage:
            context.report(f"leakage {finding.level}: {finding.message}")
        return SplitData(
            data, train_part, validation, test.reset_index(drop=True), kind, metric, classes, rows
        )

    @staticmethod
    def _split_rows(
        data: PreparedData, config: PipelineConfig, kind: str
    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        from shipyard.data.split import split_frame

        separate_test = data.test is not None
        share = config.split.validation_size / (1.0 - config.split.test_size)
        train_part, validation, held_out = split_frame(
            data.frame,
            config.data.target_column,
            classification=kind != "regression",
            seed=config.seed,
            test_size=None if separate_test else config.split.test_size,
            validation_size=share if separate_test else config.split.validation_size,
            stratify=config.split.stratify,
            group_column=config.split.group_column,
            time_column=config.split.time_column,
        )
        test = data.test if separate_test else held_out
        assert test is not None  # split_frame holds rows out when test_size is given
        return train_part, validation, test

    def fit(self, data: SplitData, config: PipelineConfig, context: RunContext) -> FittedModel:
        """Search the families on shared folds; export the winner with its threshold."""
        if config.engine.distributed_training:
            from shipyard.tasks.tabular.distributed import fit_on_cluster

            return fit_on_cluster(data, config, context)
        from shipyard.training.candidates import feature_set
        from shipyard.training.export import frame_to_records
        from shipyard.training.trainer import train_candidates

        contract = data.prepared.contract
        assert contract is not None  # set by the contract step
        columns, target = contract.feature_names, config.data.target
        backend, n_jobs = context.engine.fan_out(config.training.backend, config.training.n_jobs)
        if context.engine.name != "local":
            context.report(f"cross-validation folds run on {context.engine.describe()}")

        def build_predictor(exported: ExportedModel) -> Predictor:
            return self._predictor(data, exported, config.data.unknown_categories)

        search, selection = _search_settings(
            config, backend, n_jobs, context.optuna_storage, data.train
        )
        result = train_candidates(
            data.train[columns],
            encode_target(data.train[target], data.kind, data.classes),
            data.validation[columns],
            encode_target(data.validation[target], data.kind, data.classes),
            features=feature_set(contract),
            task=data.kind,
            metric=data.metric,
            models=config.training.models,
            cv_folds=config.training.cv_folds,
            time_budget=config.training.time_budget,
            seed=config.seed,
            report=context.report,
            search=search,
            selection=selection,
            build_predictor=build_predictor,
            cost_records=frame_to_records(data.validation[columns].head(COST_ROWS)),
        )
        context.report(f"exporting {result.best} and checking parity with the trained model")
        exported = result.pipeline.export()
        predictor = self._predictor(data, exported, config.data.unknown_categories)
        predictor.threshold = result.threshold["value"] if result.threshold else None
        winner = next(row for row in result.leaderboard if row.name == result.best)
        return FittedModel(
            predictor,
            result.best,
            result.leaderboard,
            {"family": result.best, **winner.params},
            verdict=result.verdict,
            calibration=result.calibration,
            threshold=result.threshold,
            payload={"pipeline": result.pipeline, "exported": exported},
        )

    @staticmethod
    def _predictor(data: SplitData, exported: ExportedModel, unknown_categories: str) -> Predictor:
        """Return the served predictor of an exported model, as the bundle will load it."""
        from shipyard.runtime.clean import Cleaner
        from shipyard.runtime.predictor import Predictor
        from shipyard.runtime.preprocess import CompiledPreprocessor

        spec = data.prepared.payload["data_report"].cleaning_spec
        assert data.prepared.contract is not None  # set by the contract step
        return Predictor(
            data.prepared.contract,
            CompiledPreprocessor(exported.preprocessing),
            exported.scorer(data.kind),
            data.kind,
            data.classes,
            cleaner=Cleaner(spec) if spec else None,
            unknown_categories=unknown_categories,
        )

    def check_parity(self, fitted: FittedModel, data: SplitData) -> dict[str, float]:
        """Compare the exported predictor with the fitted pipeline, single and batched."""
        if "parity" in fitted.payload:  # measured by the cluster fit, where the model lives
            parity: dict[str, float] = fitted.payload["parity"]
            return parity
        from shipyard.training.export import check_parity

        rows = _concat([data.validation, data.test]).head(PARITY_ROWS)
        return check_parity(fitted.payload["pipeline"], fitted.predictor, rows, data.kind)

    def evaluate(
        self, fitted: FittedModel, data: SplitData, config: PipelineConfig, context: RunContext
    ) -> EvaluatedModel:
        """Test metrics with bootstrap intervals, the drift reference and the suite."""
        if config.engine.distributed_training:
            from shipyard.tasks.tabular.distributed import evaluate_on_cluster

            return evaluate_on_cluster(fitted, data, config, context)
        from shipyard.evaluation.metrics import DEFAULT_METRICS, bootstrap_metrics

        predictor, target = fitted.predictor, config.data.target
        columns = predictor.contract.feature_names
        context.report(
            f"evaluating on {len(data.test)} test rows with bootstrap confidence intervals"
        )
        outputs = predictor.score_frame(data.test[columns])
        test_metrics = bootstrap_metrics(
            encode_target(data.test[target], data.kind, data.classes),
            outputs,
            DEFAULT_METRICS[data.kind],
            n_samples=config.evaluation.bootstrap_samples,
            confidence=config.evaluation.confidence,
            seed=config.seed,
            threshold=predictor.threshold,
        )
        manifest, files = self._bundle(fitted, data, config)
        evaluated = EvaluatedModel(test_metrics, manifest, files, outputs)
        if config.evaluation.report:
            context.report(
                "evaluation suite: slices, fairness, explanations, robustness, plots, card"
            )
            self._suite(evaluated, fitted, data, config)
        return evaluated

    def _bundle(
        self, fitted: FittedModel, data: SplitData, config: PipelineConfig
    ) -> tuple[dict[str, Any], dict[str, bytes]]:
        """Return the manifest entries and files: model, preprocessing, cleaning, reference."""
        from shipyard.monitoring.reference import build_reference, reference_to_json

        exported: ExportedModel = fitted.payload["exported"]
        data_report = data.prepared.payload["data_report"]
        contract = fitted.predictor.contract
        columns = contract.feature_names
        manifest: dict[str, Any] = {
            "task": data.kind,
            "target": config.data.target,
            "classes": data.classes,
            "metric": data.metric,
            "model": {
                "format": exported.model_format,
                "path": exported.model_filename,
                "family": fitted.best,
            },
            "contract": "contract.yaml",
            "preprocessing": "preprocessing.json",
            "calibration": fitted.calibration,
            "decision_threshold": fitted.threshold,
            "unknown_categories": config.data.unknown_categories,
            "sensitive": list(config.sensitive),
            "data": data_report.as_dict(),
            "drift_reference": "drift_reference.json",
        }
        # Drift reference: the training part's distributions, sketched once, read by monitoring.
        reference = build_reference(
            data.train[columns],
            contract,
            fitted.predictor.score_frame(data.train[columns]),
            data.kind,
        )
        files = {
            "contract.yaml": contract.to_yaml().encode(),
            "preprocessing.json": json.dumps(
                exported.preprocessing, indent=1, allow_nan=False
            ).encode(),
            **exported.files(),
            "drift_reference.json": json.dumps(
                reference_to_json(reference), allow_nan=False
            ).encode(),
        }
        if data_report.cleaning_spec is not None:
            manifest["cleaning"] = "cleaning.json"
            files["cleaning.json"] = json.dumps(
                data_report.cleaning_spec, indent=1, allow_nan=False
            ).encode()
        return manifest, files

    def _suite(
        self,
        evaluated: EvaluatedModel,
        fitted: FittedModel,
        data: SplitData,
        config: PipelineConfig,
    ) -> None:
        """Run the evaluation suite into the manifest and plots.

        Without the ``report`` extra the suite is skipped with a note, unless fairness
        thresholds are configured: a gate that cannot be evaluated must not pass silently.
        """
        target = config.data.target
        try:
            from shipyard.evaluation.suite import run_suite

            suite = run_suite(
                config,
                fitted.predictor,
                test=data.test,
                y_test=encode_target(data.test[target], data.kind, data.classes),
                outputs=evaluated.test_outputs,
                validation=data.validation.reset_index(drop=True),
                y_validation=encode_target(data.validation[target], data.kind, data.classes),
                metric=data.metric,
            )
        except MissingDependencyError as error:
            if config.fairness.thresholds:
                raise
            data.prepared.notes.append(f"evaluation report skipped: {error}")
            return
        evaluated.manifest["evaluation"] = suite.evaluation
        evaluated.manifest["fairness"] = suite.fairness_section()
        evaluated.plots = suite.plots

    def mitigate(
        self,
        fitted: FittedModel,
        evaluated: EvaluatedModel,
        data: SplitData,
        config: PipelineConfig,
        context: RunContext,
    ) -> tuple[FittedModel, EvaluatedModel]:
        """Fit a decision threshold per sensitive group; evaluate the mitigated decisions."""
        from shipyard.tasks.tabular.mitigation import apply_group_thresholds

        return apply_group_thresholds(fitted, evaluated, data, config, context)

    # Serving and monitoring ------------------------------------------------------------------

    def try_it_answer(
        self, predictor: Any, manifest: Manifest, record: dict[str, Any]
    ) -> TryItAnswer:
        """Answer one record with its probabilities and each column's contribution.

        The contributions are those of ``/explain`` (:func:`~shipyard.evaluation.explain.
        explain_records`): each input column's share of the model's raw output.
        """
        from shipyard.evaluation.explain import UnsupportedModelError, explain_records
        from shipyard.tasks.try_it import predict_answer

        answer = predict_answer(predictor.predict_records([record])[0])
        try:
            explained = explain_records(predictor, [record])[0]
        except UnsupportedModelError as error:
            return replace(answer, notes=[*answer.notes, str(error)])
        contributions = sorted(explained["contributions"].items(), key=lambda pair: -abs(pair[1]))
        return replace(
            answer,
            explanation=[(str(name), float(value)) for name, value in contributions],
            explanation_title=f"Contribution of each column to the {explained['space']} "
            f"(base value {explained['base_value']:.4g})",
        )

    def load(self, directory: Path, manifest: Manifest, unknown_fields: str) -> Any:
        """Build a :class:`~shipyard.runtime.Predictor` from the bundle's files."""
        from shipyard.data.contract import Contract
        from shipyard.runtime.models import load_scorer
        from shipyard.runtime.onnx_graph import ONNX_GRAPH_FORMAT
        from shipyard.runtime.predictor import Predictor
        from shipyard.runtime.preprocess import CompiledPreprocessor
        from shipyard.runtime.unknown import LEGACY_POLICY

        contract_path = bundle_file(directory, manifest.contract)
        contract = Contract.from_yaml(
            contract_path.read_text(encoding="utf-8"), source=str(contract_path)
        )
        spec = json.loads(bundle_file(directory, manifest.section("preprocessing")).read_bytes())
        model = manifest.model.model_dump()
        # An ONNX export registered as a version: the graph scores, the native model explains.
        native = model.pop("native") if model["format"] == ONNX_GRAPH_FORMAT else None
        scorer = load_scorer(native or model, directory, manifest.task)
        predictor = Predictor(
            contract,
            CompiledPreprocessor(spec),
            scorer,
            manifest.task,
            manifest.classes,
            unknown_fields,
            cleaner=_cleaner(directory, manifest),
            threshold=(manifest.section("decision_threshold") or {}).get("value"),
            unknown_categories=manifest.section("unknown_categories", LEGACY_POLICY),
            group_thresholds=_group_thresholds(directory, manifest),
        )
        if native is None:
            return predictor
        from shipyard.runtime.onnx_graph import OnnxGraph, OnnxPredictor

        onnx_file = bundle_file(directory, model["path"]).read_bytes()
        return OnnxPredictor(OnnxGraph(onnx_file, predictor.preprocessor), predictor)

    def monitoring(self, directory: Path, manifest: Manifest, reference: str) -> TaskMonitoring:
        """Sketch the logged records after the model's own cleaning, column by column."""
        from shipyard.monitoring.adapters import TaskMonitoring, read_reference
        from shipyard.monitoring.reference import reference_from_json

        sketches = reference_from_json(
            read_reference(directory, manifest.drift_reference, reference)
        )
        prepare, clean_column = None, None
        cleaner = _cleaner(directory, manifest)
        if cleaner is not None:
            from shipyard.monitoring.columns import column_cleaner

            prepare = cleaner.clean_records
            clean_column = column_cleaner(cleaner, sketches)
        return TaskMonitoring(
            sketches,
            manifest.task,
            manifest.classes,
            prepare=prepare,
            clean_column=clean_column,
        )

    def retrain_steps(self) -> RetrainSteps:
        """Labelled requests join the table as rows; the gate compares the model's metric."""
        from shipyard.tasks.labelled_rows import RECORD_STEPS

        return RECORD_STEPS

    def label_kind(self, manifest: Manifest) -> str | None:
        """``binary``, ``multiclass`` or ``regression``: the manifest's task."""
        return manifest.task

    def encode_labels(self, labels: Sequence[Any], manifest: Manifest) -> Any:
        """Class indices, or float values for regression."""
        return encode_target(labels, manifest.task, manifest.classes)


def _cleaner(directory: Path, manifest: Manifest) -> Any:
    """Return the bundle's fitted cleaning, or ``None`` when the model has none."""
    name = manifest.section("cleaning")
    if not name:
        return None
    from shipyard.runtime.clean import Cleaner

    return Cleaner(json.loads(bundle_file(directory, name).read_bytes()))


def _group_thresholds(directory: Path, manifest: Manifest) -> Any:
    """Return a mitigated model's thresholds per sensitive group, or ``None`` (most models)."""
    name = manifest.section("group_thresholds")
    if not name:
        return None
    from shipyard.runtime.group_thresholds import GroupThresholds

    path = bundle_file(directory, name)
    try:
        document = json.loads(path.read_bytes())
    except ValueError as error:
        raise BundleIntegrityError(
            f"{path} is not valid JSON ({error}); the bundle is damaged. Re-train the model."
        ) from None
    return GroupThresholds.from_json(document, source=str(path))


def _search_settings(
    config: PipelineConfig,
    backend: str,
    n_jobs: int,
    optuna_storage: str | None,
    train_rows: pd.DataFrame,
) -> tuple[Any, Any]:
    """Return the search and selection settings of a config's ``training`` section.

    The tuning folds follow the split: grouped by ``split.group_column``, forward-chaining
    over ``split.time_column``, stratified otherwise (values aligned with ``train_rows``).
    """
    split = config.split
    from shipyard.tasks.tabular.candidates import CANDIDATES
    from shipyard.training.search import SearchSettings
    from shipyard.training.trainer import SelectionSettings

    training = config.training
    search = SearchSettings(
        families=CANDIDATES,
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
        optuna_storage=optuna_storage,
        study_prefix=f"shipyard-{config.name}",
        fold_groups=train_rows[split.group_column].to_numpy() if split.group_column else None,
        fold_times=train_rows[split.time_column].to_numpy() if split.time_column else None,
    )
    selection = SelectionSettings(
        ensemble=training.ensemble,
        prefer_simpler=training.prefer_simpler,
        final_fit=training.final_fit,
        alpha=training.alpha,
        max_latency_ms=training.max_latency_ms,
        calibration=training.calibration,
        threshold_metric=training.threshold_metric,
        confidence=config.evaluation.confidence,
    )
    return search, selection
