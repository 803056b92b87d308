"""Distributed training: LightGBM with ``lightgbm.dask`` on data partitioned across workers.

``engine.distributed_training`` replaces the in-memory search when the data does not fit one
machine. ``data.source`` is a directory of Parquet files (one partition each) that the
workers read themselves; the client only ever holds small samples. In order:

0. every worker must have room left under its memory limit once the training libraries are
   loaded: a worker past Dask's pause threshold runs no task, so the job would wait forever
   (:func:`check_worker_memory`);
1. the contract is inferred from merged per-partition facts, and every partition is checked
   against it on the workers (:mod:`shipyard.engines.partitioned`);
2. each partition is encoded by the serving runtime's own compiled preprocessing (numbers
   passed through, categories as ordinal codes: the spec LightGBM bundles use), and each row
   is assigned to train, validation or test by a seeded hash of its content, so the split does
   not depend on how the rows are cut into files;
3. ``DaskLGBMClassifier`` / ``DaskLGBMRegressor`` train data-parallel on the train rows, each
   worker on the partitions it holds (a fixed number of rounds: ``lightgbm.dask`` does not
   early-stop);
4. the booster is exported as LightGBM text with the preprocessing spec, checked for parity
   against the trained model, scored on the test rows on the workers (metrics with bootstrap
   intervals on up to 200,000 of them), and registered like any model, only when all of this
   succeeded.

Cleaning, leakage checks and the evaluation suite (fairness, explanations, report) need the
table in one place and are not run here; the bundle notes say so.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.engines.base import Engine, read_partition
from shipyard.engines.directory import count_partition_rows, list_partitions
from shipyard.engines.partitioned import infer_partitioned_contract, validate_partitions
from shipyard.errors import ConfigError, DataError, EngineError, ExportError

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.config import PipelineConfig
    from shipyard.lifecycle import Reporter, TrainRun
    from shipyard.registry.store import Registry

__all__ = ["EncodePartition", "check_worker_memory", "distributed_params", "train_distributed"]

TRAIN, VALIDATION, TEST = 0, 1, 2
LABEL, PART = "__label", "__part"
EVALUATION_ROWS = 200_000
REFERENCE_ROWS = 20_000
PARITY_ROWS = 2000
_MIX = np.uint64(0x9E3779B97F4A7C15)


def distributed_params(config: PipelineConfig) -> dict[str, Any]:
    """LightGBM settings of distributed training: the search's defaults, fixed rounds."""
    from shipyard.tasks.tabular import LightGBMCandidate

    settings = {
        key: value
        for key, value in LightGBMCandidate.defaults.items()
        if key != "native_categorical"
    }
    settings.update(learning_rate=config.engine.learning_rate, num_leaves=config.engine.num_leaves)
    return {
        **settings,
        "n_estimators": config.engine.trees,
        "subsample_freq": 1,
        "random_state": config.seed,
        "deterministic": True,
        "verbose": -1,
    }


@dataclass(frozen=True)
class EncodePartition:
    """Raw rows in; encoded features, the label's code and the row's split part out."""

    spec: dict[str, Any]
    target: str
    classes: tuple[Any, ...]
    seed: int
    test_share: float
    validation_share: float

    def draws(self, frame: pd.DataFrame, salt: int = 0) -> Any:
        """Return a uniform number per row from a seeded hash of its content."""
        import pandas as pd

        hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)
        mixed = (hashed ^ np.uint64(self.seed * 1_000_003 + salt)) * _MIX
        return (mixed >> np.uint64(11)).astype(np.float64) / float(1 << 53)

    def parts(self, frame: pd.DataFrame) -> Any:
        """Each row's part: 0 train, 1 validation, 2 test."""
        draw = self.draws(frame)
        return np.where(
            draw < self.test_share,
            TEST,
            np.where(draw < self.test_share + self.validation_share, VALIDATION, TRAIN),
        ).astype(np.int8)

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Encode one partition."""
        import pandas as pd

        from shipyard.runtime.predictor import encode_frame
        from shipyard.runtime.preprocess import CompiledPreprocessor

        preprocessor = CompiledPreprocessor(self.spec)
        encoded = pd.DataFrame(
            encode_frame(preprocessor, frame), columns=preprocessor.input_columns
        )
        if self.classes:
            index = {str(label): position for position, label in enumerate(self.classes)}
            encoded[LABEL] = frame[self.target].astype(str).map(index).to_numpy(np.float64)
        else:
            encoded[LABEL] = frame[self.target].to_numpy(np.float64)
        encoded[PART] = self.parts(frame)
        return encoded


@dataclass(frozen=True)
class SampleTrainRows:
    """Raw training rows of a partition, a seeded share of them (for the drift reference)."""

    encode: EncodePartition
    share: float

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return the sampled training rows."""
        keep = (self.encode.parts(frame) == TRAIN) & (self.encode.draws(frame, 1) < self.share)
        return frame[keep]


@dataclass(frozen=True)
class PredictPartition:
    """Encoded rows in; the label and the booster's outputs out (computed on the worker)."""

    model: str
    features: tuple[str, ...]
    task: str

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return the outputs as columns ``o0``, ``o1`` ... beside ``__label``."""
        import pandas as pd

        from shipyard.runtime.scorers import build_scorer

        no_files: dict[str, str] = {}
        scorer = build_scorer("lightgbm-text", self.model, no_files.__getitem__, self.task)
        values = frame[list(self.features)].to_numpy(np.float64)
        outputs = np.asarray(scorer.score(values), dtype=np.float64).reshape(len(frame), -1)
        result = pd.DataFrame(outputs, columns=[f"o{i}" for i in range(outputs.shape[1])])
        result.insert(0, LABEL, frame[LABEL].to_numpy())
        return result


def _check_supported(config: PipelineConfig, engine: Engine) -> None:
    if engine.name != "dask":
        raise ConfigError(
            "engine.distributed_training needs a Dask engine; set engine.url to dask://HOST:PORT."
        )
    if config.task not in ("auto", "binary", "multiclass", "regression"):
        raise ConfigError(f"Distributed training supports tabular tasks, not '{config.task}'.")
    if config.fairness.thresholds:
        raise ConfigError(
            "fairness.thresholds cannot be checked by distributed training (the evaluation "
            "suite needs the test rows in one place); train in process, or remove the gate."
        )
    if config.data.test_source:
        raise ConfigError(
            "Distributed training holds out its own test rows; remove data.test_source."
        )


def worker_memory(dask_worker: Any) -> dict[str, Any]:
    """Return a worker's memory, limit and pause fraction with the training libraries loaded.

    Run on every worker by ``Client.run`` (which passes ``dask_worker``), in the worker's event
    loop, so it answers even when the worker is paused.
    """
    import lightgbm  # noqa: F401  (with scikit-learn and SciPy: most of a worker's footprint)
    import pyarrow.parquet  # noqa: F401

    import shipyard.runtime.predictor  # noqa: F401

    manager = dask_worker.memory_manager
    return {
        "memory": int(dask_worker.monitor.get_process_memory()),
        "limit": manager.memory_limit,
        "pause": manager.memory_pause_fraction,
    }


def check_worker_memory(engine: Engine) -> None:
    """Fail when a worker is already past Dask's pause threshold with the libraries loaded.

    Such a worker runs no task (Dask pauses it until its memory falls, which it never does),
    so the job would wait forever without an error.

    Raises
    ------
    EngineError
        Naming the worker, its memory, its limit and the smallest limit that leaves it running.
    """
    answers: dict[str, dict[str, Any]] = engine.client.run(worker_memory)  # type: ignore[attr-defined]
    for address, answer in sorted(answers.items()):
        limit, pause = answer["limit"], answer["pause"]
        if not limit or pause is False or answer["memory"] <= pause * limit:
            continue
        mib = 2**20
        raise EngineError(
            f"Dask worker {address} uses {answer['memory'] / mib:.0f} MiB of its "
            f"{limit / mib:.0f} MiB memory limit with pandas and LightGBM loaded, over the "
            f"{pause:.0%} at which Dask pauses a worker (distributed.worker.memory.pause): it "
            "would run no task and training would wait forever. Give each worker a memory "
            f"limit above {answer['memory'] / pause / mib:.0f} MiB plus room for its share of "
            "the data (dask worker --memory-limit; see docs/scale.md)."
        )


def _task_and_classes(config: PipelineConfig, facts: Any) -> tuple[str, list[Any]]:
    import pandas as pd

    from shipyard.tasks.detect import class_order, detect_task

    target = facts[config.data.target]
    values = pd.Series(sorted(target.raw_values, key=str), name=config.data.target)
    if target.kind in ("integer", "number"):
        values = values.astype(np.float64 if target.kind == "number" else np.int64)
    task: str
    if config.task != "auto":
        task = config.task
    elif len(target.raw_values) > 1000:
        task = "regression"
    else:
        task = detect_task(values)
    classes = [] if task == "regression" else class_order(values, config.positive_class)
    if task == "binary" and len(classes) != 2:
        raise DataError(f"task is 'binary' but the target has {len(classes)} classes.")
    return task, classes


def train_distributed(
    config: PipelineConfig, engine: Engine, report: Reporter, registry: Registry | None
) -> TrainRun:
    """Train LightGBM on the cluster from ``data.source`` and register the model.

    Raises
    ------
    ConfigError
        When the engine or the config asks for something distributed training cannot do.
    DataError
        When the partitions disagree on columns, or break the inferred contract.
    PartitionError, EngineError
        When a partition fails, the cluster loses the work, or a worker has no memory left
        for it.
    """
    from shipyard.evaluation.metrics import DEFAULT_METRICS, bootstrap_metrics
    from shipyard.evaluation.metrics import default_metric as task_default_metric
    from shipyard.runtime.predictor import Predictor
    from shipyard.runtime.preprocess import SPEC_VERSION, CompiledPreprocessor
    from shipyard.tasks.export import ExportedModel
    from shipyard.tasks.tabular import feature_set

    _check_supported(config, engine)
    check_worker_memory(engine)
    started = time.perf_counter()
    target = config.data.target
    sources = list_partitions(config.data.source)
    total_rows = count_partition_rows(sources)
    report(f"{len(sources)} partitions, {total_rows:,} rows, on {engine.describe()}")
    contract, facts = infer_partitioned_contract(engine, sources, target, config.data.drop)
    validate_partitions(engine, sources, contract, with_target=True).raise_if_failed(
        f"The training data ({config.data.source})"
    )
    task, classes = _task_and_classes(config, facts)
    metric = task_default_metric(task) if config.metric == "auto" else config.metric
    features = feature_set(contract)
    spec = {
        "version": SPEC_VERSION,
        "encoders": [
            {"column": name, "kind": "numeric", "fill": None} for name in features.numeric
        ]
        + [
            {
                "column": name,
                "kind": "ordinal",
                "categories": list(contract.column(name).categories or ()),
            }
            for name in features.categorical
        ],
    }
    encode = EncodePartition(
        spec,
        target,
        tuple(classes),
        config.seed,
        config.split.test_size,
        config.split.validation_size,
    )
    report(f"{task} task, metric {metric}; training LightGBM with lightgbm.dask")
    model, fit_seconds = _fit(engine, sources, encode, features.all, task, config)
    exported = ExportedModel(
        spec, "lightgbm-text", "model.lgb.txt", model.booster_.model_to_string()
    )
    predictor = Predictor(
        contract, CompiledPreprocessor(spec), exported.scorer(task), task, classes
    )
    parity = _parity(model, predictor, encode, read_partition(sources[0]), features.all, task)

    report("scoring the test rows on the workers")
    outputs = _test_outputs(engine, sources, encode, exported.model_payload, features.all, task)
    rows = {"train": -1, "validation": -1, "test": len(outputs)}
    notes = [
        f"trained on a Dask cluster with lightgbm.dask ({len(sources)} partitions); cleaning, "
        "leakage checks and the evaluation suite were not run"
    ]
    if len(outputs) > EVALUATION_ROWS:
        outputs = outputs.sample(n=EVALUATION_ROWS, random_state=config.seed)
        notes.append(f"test metrics from a seeded sample of {EVALUATION_ROWS:,} test rows")
    values = outputs.drop(columns=[LABEL]).to_numpy(np.float64)
    labels = outputs[LABEL].to_numpy()
    y = labels.astype(np.float64) if task == "regression" else labels.astype(np.int64)
    scored = values[:, 0] if task == "regression" else values
    test_metrics = bootstrap_metrics(
        y,
        scored,
        DEFAULT_METRICS[task],
        n_samples=config.evaluation.bootstrap_samples,
        confidence=config.evaluation.confidence,
        seed=config.seed,
    )
    reference_rows = _reference_rows(engine, sources, encode, total_rows)
    return _register(
        config,
        registry,
        report,
        contract=contract,
        exported=exported,
        predictor=predictor,
        reference_rows=reference_rows,
        task=task,
        metric=metric,
        classes=classes,
        test_metrics=test_metrics,
        parity=parity,
        rows=rows,
        notes=notes,
        fit_seconds=fit_seconds,
        params=distributed_params(config),
        started=started,
        partitions=len(sources),
        total_rows=total_rows,
        engine=engine,
    )


def _encoded(engine: Engine, sources: list[Path], encode: EncodePartition) -> Any:
    frame = engine._partitions(sources)  # type: ignore[attr-defined]
    meta = encode(frame._meta)
    return frame.map_partitions(encode, meta=meta, enforce_metadata=False)


def _fit(
    engine: Engine,
    sources: list[Path],
    encode: EncodePartition,
    features: list[str],
    task: str,
    config: PipelineConfig,
) -> tuple[Any, float]:
    import lightgbm.dask as lgb_dask
    from lightgbm.basic import LightGBMError

    encoded = _encoded(engine, sources, encode)
    train = encoded[encoded[PART] == TRAIN]
    estimator = lgb_dask.DaskLGBMRegressor if task == "regression" else lgb_dask.DaskLGBMClassifier
    model = estimator(client=engine.client, **distributed_params(config))  # type: ignore[attr-defined]
    categorical = [
        index for index, name in enumerate(features) if name in set(encode_categorical(encode))
    ]
    tick = time.perf_counter()
    label = train[LABEL] if task == "regression" else train[LABEL].astype("int64")
    with warnings.catch_warnings():
        # The scikit-learn wrapper always passes n_jobs; Dask sets the threads per worker.
        warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored")
        try:
            model.fit(train[features], label, categorical_feature=categorical)
        except LightGBMError as error:
            raise EngineError(
                f"Distributed LightGBM training failed ({error}). The workers train together "
                "over sockets, so losing one stops them all; the usual cause is a worker that "
                "Dask's nanny restarted past 95% of its memory limit (the workers' logs say "
                "so). While it trains, a worker holds its share of the training rows about "
                "2.5 times over: give the workers more memory, or add workers (see "
                "docs/scale.md). Nothing was registered."
            ) from error
    return model.to_local(), time.perf_counter() - tick


def encode_categorical(encode: EncodePartition) -> list[str]:
    """Return the columns the spec codes as categories."""
    return [item["column"] for item in encode.spec["encoders"] if item["kind"] == "ordinal"]


def _parity(
    model: Any,
    predictor: Any,
    encode: EncodePartition,
    sample: pd.DataFrame,
    features: list[str],
    task: str,
) -> dict[str, float]:
    """Compare the served path with the trained model on rows of the first partition."""
    from shipyard.tasks.export import PARITY_TOLERANCE

    sample = sample.head(PARITY_ROWS).reset_index(drop=True)
    matrix = encode(sample)[features]
    expected = model.predict(matrix) if task == "regression" else model.predict_proba(matrix)
    served = predictor.score_frame(sample)
    gap = float(np.max(np.abs(np.asarray(expected, dtype=np.float64) - served)))
    if not gap <= PARITY_TOLERANCE:
        raise ExportError(
            f"The exported model disagrees with the trained one by up to {gap:.3g} on "
            f"{len(sample)} rows (tolerance {PARITY_TOLERANCE:g}); nothing was registered."
        )
    return {"rows": float(len(sample)), "columns": gap}


def _test_outputs(
    engine: Engine,
    sources: list[Path],
    encode: EncodePartition,
    model: str,
    features: list[str],
    task: str,
) -> pd.DataFrame:
    import pandas as pd

    encoded = _encoded(engine, sources, encode)
    test = encoded[encoded[PART] == TEST]
    predict = PredictPartition(model, tuple(features), task)
    width = 1 if task == "regression" else len(encode.classes)
    meta = pd.DataFrame(
        {LABEL: pd.Series([], dtype="float64")}
        | {f"o{i}": pd.Series([], dtype="float64") for i in range(width)}
    )
    result: pd.DataFrame = engine.client.compute(  # type: ignore[attr-defined]
        test.map_partitions(predict, meta=meta, enforce_metadata=False)
    ).result()
    return result.reset_index(drop=True)


def _reference_rows(
    engine: Engine, sources: list[Path], encode: EncodePartition, total_rows: int
) -> pd.DataFrame:

    frame = engine._partitions(sources)  # type: ignore[attr-defined]
    share = min(1.0, REFERENCE_ROWS / max(total_rows, 1))
    sample = frame.map_partitions(SampleTrainRows(encode, share), meta=frame._meta)
    result: pd.DataFrame = engine.client.compute(sample).result()  # type: ignore[attr-defined]
    return result.reset_index(drop=True)


def _register(
    config: PipelineConfig,
    registry: Registry | None,
    report: Reporter,
    **run: Any,
) -> TrainRun:
    from shipyard.config import dump_config
    from shipyard.lifecycle import TrainRun, _latest_version, package_versions
    from shipyard.monitoring.reference import build_reference, reference_to_json
    from shipyard.registry.store import DEFAULT_ALIAS, Registry
    from shipyard.training.trainer import CandidateResult

    contract, exported, task = run["contract"], run["exported"], run["task"]
    columns = contract.feature_names
    reference_rows = run["reference_rows"]
    reference = build_reference(
        reference_rows[columns],
        contract,
        run["predictor"].score_frame(reference_rows[columns]),
        task,
    )
    row = CandidateResult("lightgbm", "ok", fit_seconds=run["fit_seconds"], params=run["params"])
    verdict = {"chosen": "lightgbm", "summary": "lightgbm trained on the cluster (no search)"}
    manifest = {
        "task": task,
        "target": config.data.target,
        "classes": run["classes"],
        "metric": run["metric"],
        "model": {
            "format": exported.model_format,
            "path": exported.model_filename,
            "family": "lightgbm",
        },
        "contract": "contract.yaml",
        "preprocessing": "preprocessing.json",
        "config": "config.yaml",
        "metrics": {
            "test": {name: value.as_dict() for name, value in run["test_metrics"].items()},
            "cv": {},
        },
        "leaderboard": [row.as_dict()],
        "verdict": verdict,
        "parity": run["parity"],
        "rows": run["rows"],
        "notes": run["notes"],
        "code_version": package_versions()["shipyard"],
        "sensitive": list(config.sensitive),
        "data": {},
        "engine": {
            "kind": "dask",
            "partitions": run["partitions"],
            "rows": run["total_rows"],
            "training": "lightgbm.dask",
        },
        "drift_reference": "drift_reference.json",
    }
    files = {
        "contract.yaml": contract.to_yaml().encode(),
        "preprocessing.json": json.dumps(
            exported.preprocessing, indent=1, allow_nan=False
        ).encode(),
        **exported.files(),
        "config.yaml": dump_config(config).encode(),
        "drift_reference.json": json.dumps(reference_to_json(reference), allow_nan=False).encode(),
    }
    registry = registry or Registry.from_config(config.registry)
    parent = _latest_version(registry, config.name)
    version = registry.register(
        config.name,
        files,
        manifest,
        params={"family": "lightgbm", **run["params"]},
        config=dump_config(config),
        data_fingerprint=f"partitions:{run['partitions']}:rows:{run['total_rows']}",
        package_versions=package_versions(),
        parent_version=parent,
    )
    promoted = parent is None
    if promoted:
        version = registry.promote(
            config.name, version.version, DEFAULT_ALIAS, reason="first version of the model"
        )
    report(f"registered {version.reference}" + (" as champion" if promoted else ""))
    return TrainRun(
        version,
        task,
        run["metric"],
        "lightgbm",
        [row],
        run["test_metrics"],
        run["parity"],
        run["rows"],
        run["notes"],
        promoted,
        time.perf_counter() - run["started"],
        verdict=verdict,
    )
