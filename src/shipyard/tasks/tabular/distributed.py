"""Distributed training, a fit strategy of the tabular task: LightGBM with ``lightgbm.dask``.

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
from shipyard.tasks.base import (
    EvaluatedModel,
    FittedModel,
    PreparedData,
    RunContext,
    SplitData,
)

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.config import PipelineConfig

__all__ = [
    "EncodePartition",
    "check_worker_memory",
    "distributed_params",
    "evaluate_on_cluster",
    "fit_on_cluster",
    "partitioned_contract",
    "partitioned_split",
    "read_partitioned",
]

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


def read_partitioned(config: PipelineConfig, context: RunContext) -> PreparedData:
    """List the partitions of ``data.source`` and count their rows (the read step).

    Raises
    ------
    ConfigError
        When the engine or the config asks for something distributed training cannot do.
    EngineError
        When a worker has no memory left for the work.
    """
    _check_supported(config, context.engine)
    check_worker_memory(context.engine)
    sources = list_partitions(config.data.source)
    total_rows = count_partition_rows(sources)
    context.report(
        f"{len(sources)} partitions, {total_rows:,} rows, on {context.engine.describe()}"
    )
    notes = [
        f"trained on a Dask cluster with lightgbm.dask ({len(sources)} partitions); cleaning, "
        "leakage checks and the evaluation suite were not run"
    ]
    return PreparedData(
        None,
        notes=notes,
        fingerprint=f"partitions:{len(sources)}:rows:{total_rows}",
        payload={"sources": sources, "total_rows": total_rows},
    )


def partitioned_contract(
    data: PreparedData, config: PipelineConfig, context: RunContext
) -> PreparedData:
    """Infer the contract from every partition on the workers, and enforce it there.

    Raises
    ------
    DataError
        When the partitions disagree on columns, or break the inferred contract.
    """
    sources = data.payload["sources"]
    contract, facts = infer_partitioned_contract(
        context.engine, sources, config.data.target_column, config.data.drop
    )
    validate_partitions(context.engine, sources, contract, with_target=True).raise_if_failed(
        f"The training data ({config.data.source})"
    )
    data.contract = contract
    data.payload["facts"] = facts
    return data


def partitioned_split(
    data: PreparedData, config: PipelineConfig, context: RunContext
) -> SplitData:
    """Decide the label's kind and the encoding.

    Each row's part (train, validation, test) is drawn from a seeded hash of its content when
    it is encoded on a worker.
    """
    from shipyard.evaluation.metrics import default_metric
    from shipyard.runtime.preprocess import SPEC_VERSION
    from shipyard.tasks.tabular import feature_set

    contract = data.contract
    assert contract is not None  # set by the contract step
    kind, classes = _task_and_classes(config, data.payload["facts"])
    metric = default_metric(kind) if config.metric == "auto" else config.metric
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
        config.data.target_column,
        tuple(classes),
        config.seed,
        config.split.test_size,
        config.split.validation_size,
    )
    rows = {"train": -1, "validation": -1, "test": -1}
    payload = {"encode": encode, "spec": spec, "features": features.all}
    return SplitData(data, None, None, None, kind, metric, classes, rows, payload)


def fit_on_cluster(data: SplitData, config: PipelineConfig, context: RunContext) -> FittedModel:
    """Train LightGBM with ``lightgbm.dask`` and export it.

    Parity is measured here, where the trained model lives.
    """
    from shipyard.runtime.predictor import Predictor
    from shipyard.runtime.preprocess import CompiledPreprocessor
    from shipyard.training.export import ExportedModel
    from shipyard.training.trainer import CandidateResult

    sources, kind = data.prepared.payload["sources"], data.kind
    encode, spec, features = (data.payload[key] for key in ("encode", "spec", "features"))
    context.report(f"{kind} task, metric {data.metric}; training LightGBM with lightgbm.dask")
    model, fit_seconds = _fit(context.engine, sources, encode, features, kind, config)
    exported = ExportedModel(
        spec, "lightgbm-text", "model.lgb.txt", model.booster_.model_to_string()
    )
    assert data.prepared.contract is not None  # set by the contract step
    predictor = Predictor(
        data.prepared.contract,
        CompiledPreprocessor(spec),
        exported.scorer(kind),
        kind,
        data.classes,
    )
    parity = _parity(model, predictor, encode, read_partition(sources[0]), features, kind)
    params = distributed_params(config)
    row = CandidateResult("lightgbm", "ok", fit_seconds=fit_seconds, params=params)
    verdict = {"chosen": "lightgbm", "summary": "lightgbm trained on the cluster (no search)"}
    return FittedModel(
        predictor,
        "lightgbm",
        [row],
        {"family": "lightgbm", **params},
        verdict=verdict,
        payload={"exported": exported, "parity": parity},
    )


def evaluate_on_cluster(
    fitted: FittedModel, data: SplitData, config: PipelineConfig, context: RunContext
) -> EvaluatedModel:
    """Score the test rows on the workers; sketch the drift reference from a sample."""
    from shipyard.evaluation.metrics import DEFAULT_METRICS, bootstrap_metrics

    sources, kind = data.prepared.payload["sources"], data.kind
    encode, features = data.payload["encode"], data.payload["features"]
    exported = fitted.payload["exported"]
    context.report("scoring the test rows on the workers")
    outputs = _test_outputs(
        context.engine, sources, encode, exported.model_payload, features, kind
    )
    data.rows["test"] = len(outputs)
    if len(outputs) > EVALUATION_ROWS:
        outputs = outputs.sample(n=EVALUATION_ROWS, random_state=config.seed)
        data.prepared.notes.append(
            f"test metrics from a seeded sample of {EVALUATION_ROWS:,} test rows"
        )
    values = outputs.drop(columns=[LABEL]).to_numpy(np.float64)
    labels = outputs[LABEL].to_numpy()
    regression = not data.classes
    y = labels.astype(np.float64) if regression else labels.astype(np.int64)
    test_metrics = bootstrap_metrics(
        y,
        values[:, 0] if regression else values,
        DEFAULT_METRICS[kind],
        n_samples=config.evaluation.bootstrap_samples,
        confidence=config.evaluation.confidence,
        seed=config.seed,
    )
    manifest, files = _bundle(fitted, data, context)
    return EvaluatedModel(test_metrics, manifest, files)


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
    from shipyard.training.export import PARITY_TOLERANCE

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


def _bundle(
    fitted: FittedModel, data: SplitData, context: RunContext
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Return the manifest entries and files of a model trained on the cluster."""
    from shipyard.monitoring.reference import build_reference, reference_to_json

    sources = data.prepared.payload["sources"]
    total_rows = data.prepared.payload["total_rows"]
    contract, exported = fitted.predictor.contract, fitted.payload["exported"]
    columns = contract.feature_names
    reference_rows = _reference_rows(context.engine, sources, data.payload["encode"], total_rows)
    reference = build_reference(
        reference_rows[columns],
        contract,
        fitted.predictor.score_frame(reference_rows[columns]),
        data.kind,
    )
    manifest = {
        "task": data.kind,
        "model": {
            "format": exported.model_format,
            "path": exported.model_filename,
            "family": "lightgbm",
        },
        "contract": "contract.yaml",
        "preprocessing": "preprocessing.json",
        "data": {},
        "engine": {
            "kind": "dask",
            "partitions": len(sources),
            "rows": total_rows,
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
        "drift_reference.json": json.dumps(reference_to_json(reference), allow_nan=False).encode(),
    }
    return manifest, files
