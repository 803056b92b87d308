"""The Dask engine on a real local cluster: a scheduler and two worker processes on 127.0.0.1.

Tuning gives the same trials as in process, scoring 20 files gives the same bytes as local
scoring, distributed LightGBM reaches the in-process model's quality, and a worker killed
mid-scoring is retried (or the job fails clearly) with no partial output marked complete.
"""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard import datasets
from shipyard.config import EngineConfig, PipelineConfig, apply_overrides, load_config_dict
from shipyard.data.contract import infer_contract
from shipyard.engines import LocalEngine, open_engine
from shipyard.engines.directory import SUCCESS_FILE, list_partitions, transform_directory
from shipyard.errors import DataError, EngineError, PartitionError
from shipyard.pipeline.partition_scoring import ScorePartition, score_directory
from shipyard.pipeline.scoring import score_file
from shipyard.registry.store import Registry
from shipyard.tasks.tabular import CANDIDATES, feature_set
from shipyard.training.search import SearchSettings, make_folds, run_search

distributed = pytest.importorskip("distributed")
POSTGRES_URL = os.environ.get("SHIPYARD_TEST_POSTGRES_URL")
FILES = 20


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",  # a free port: another cluster may hold the default
        silence_logs=40,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def engine_url(cluster: Any) -> str:
    return "dask://" + cluster.scheduler_address.removeprefix("tcp://")


@pytest.fixture(scope="module")
def sample(adult: datasets.Dataset) -> pd.DataFrame:
    return adult.train.sample(n=3000, random_state=0).reset_index(drop=True)


def _config(tmp: Path, source: str, **overrides: Any) -> PipelineConfig:
    raw = {
        "name": "adult",
        "data": {"source": source, "target": "income"},
        "training": {"cv_folds": 2, "models": ["lightgbm"], "n_trials": 1, "model_threads": 1},
        "evaluation": {"bootstrap_samples": 100, "report": False},
        "registry": {"home": str(tmp / "home")},
    }
    return load_config_dict(apply_overrides(raw, overrides))


@dataclass
class Trained:
    registry: Registry
    home: Path
    inputs: Path
    local_output: Path


@pytest.fixture(scope="module")
def trained(sample: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    from shipyard.pipeline import train

    tmp = tmp_path_factory.mktemp("dask-model")
    sample.to_csv(tmp / "adult.csv", index=False)
    # Unknown categories refused, so one bad value makes a partition fail (the default policy
    # would score it as the rare bucket).
    config = _config(tmp, str(tmp / "adult.csv"), **{"data.unknown_categories": "error"})
    train(config)
    inputs = tmp / "inputs"
    inputs.mkdir()
    features = sample.drop(columns=["income"])
    for index in range(FILES):
        rows = features.iloc[index * 150 : (index + 1) * 150].reset_index(drop=True)
        rows.to_parquet(inputs / f"part-{index:02d}.parquet")
    registry = Registry.from_config(config.registry)
    local_output = tmp / "scored-local"
    score_directory(registry.resolve("adult"), inputs, local_output, LocalEngine())
    return Trained(registry, tmp / "home", inputs, local_output)


def _same_files(first: Path, second: Path) -> None:
    names = sorted(path.name for path in first.glob("*.parquet"))
    assert names == sorted(path.name for path in second.glob("*.parquet"))
    assert len(names) == FILES
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_scoring_twenty_files_on_the_cluster_equals_local_scoring(
    trained: Trained, engine_url: str, tmp_path: Path
) -> None:
    output = tmp_path / "scored"
    done: list[int] = []
    with open_engine(EngineConfig(url=engine_url)) as engine:
        result = score_directory(
            trained.registry.resolve("adult"), trained.inputs, output, engine, progress=done.append
        )
    assert result.total_rows == 3000
    assert sorted(done) == [150] * FILES
    _same_files(output, trained.local_output)
    assert (output / SUCCESS_FILE).is_file()
    # ... and equal to 'shipyard predict' on each file alone.
    predictor = trained.registry.load_predictor("adult")
    one = tmp_path / "one.parquet"
    score_file(predictor, trained.inputs / "part-07.parquet", one)
    pd.testing.assert_frame_equal(
        pd.read_parquet(one), pd.read_parquet(output / "part-07.parquet")
    )


def test_the_predict_command_scores_a_directory_on_the_cluster(
    trained: Trained, engine_url: str, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from shipyard.cli.commands import app

    output = tmp_path / "cli"
    result = CliRunner().invoke(
        app,
        [
            "predict",
            "adult",
            "--data",
            str(trained.inputs),
            "--output",
            str(output),
            "--engine",
            engine_url,
            "--home",
            str(trained.home),
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"Scored 3000 rows in {FILES} files" in result.output
    _same_files(output, trained.local_output)


def test_a_failing_partition_names_its_file_and_leaves_no_output(
    trained: Trained, engine_url: str, tmp_path: Path, sample: pd.DataFrame
) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for path in list_partitions(trained.inputs)[:5]:
        (inputs / path.name).write_bytes(path.read_bytes())
    bad = pd.read_parquet(inputs / "part-03.parquet")
    bad.loc[4, "workclass"] = "Astronaut"
    bad.to_parquet(inputs / "part-03.parquet")
    output = tmp_path / "scored"
    with (
        open_engine(EngineConfig(url=engine_url)) as engine,
        pytest.raises(PartitionError, match=r"Partition 3 \('.*part-03.parquet'\)") as info,
    ):
        score_directory(trained.registry.resolve("adult"), inputs, output, engine)
    assert "'Astronaut' breaks 'category'" in info.value.reason
    assert not output.exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["inputs"]


# -- tuning -----------------------------------------------------------------------------------


def _search(sample: pd.DataFrame, **settings: Any) -> list[tuple[Any, ...]]:
    contract = infer_contract(sample, "income")
    x = sample[contract.feature_names]
    y = (sample["income"] == ">50K").to_numpy(np.int64)
    search = SearchSettings(
        families=CANDIDATES,
        models=("lightgbm",),
        time_budget=600,
        n_trials=5,
        cv_folds=3,
        cv_repeats=1,
        seed=11,
        model_threads=1,
        **settings,
    )
    trials, _ = run_search(
        x,
        y,
        folds=make_folds(y, "binary", 3, 1, 11),
        features=feature_set(contract),
        task="binary",
        metric="roc_auc",
        settings=search,
    )
    return [(trial.source, trial.params, trial.scores) for trial in trials]


@pytest.fixture(scope="module")
def local_trials(sample: pd.DataFrame) -> list[tuple[Any, ...]]:
    return _search(sample.head(1500))


@pytest.mark.parametrize(
    "storage", ["journal", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_tuning_on_the_cluster_gives_the_same_trials_as_in_process(
    storage: str,
    sample: pd.DataFrame,
    local_trials: list[tuple[Any, ...]],
    engine_url: str,
    tmp_path: Path,
) -> None:
    if storage == "postgres" and POSTGRES_URL is None:
        pytest.skip(
            "set SHIPYARD_TEST_POSTGRES_URL (e.g. "
            "postgresql+psycopg://postgres@127.0.0.1:5432/test) to run PostgreSQL tests"
        )
    url = POSTGRES_URL if storage == "postgres" else f"journal:{tmp_path / 'studies.log'}"
    with open_engine(EngineConfig(url=engine_url)) as engine:
        backend, n_jobs = engine.fan_out("loky", 1)
        cluster_trials = _search(
            sample.head(1500),
            backend=backend,
            n_jobs=n_jobs,
            optuna_storage=url,
            study_prefix=f"test-{uuid.uuid4().hex[:8]}",
        )
    assert [trial[0] for trial in cluster_trials] == ["portfolio"] * 3 + ["optuna"] * 2
    assert cluster_trials == local_trials
    best = max(local_trials, key=lambda trial: np.mean(trial[2]))
    assert best == max(cluster_trials, key=lambda trial: np.mean(trial[2]))
    if storage == "journal":
        assert (tmp_path / "studies.log").stat().st_size > 0


# -- distributed LightGBM ------------------------------------------------------------------------

QUALITY_TOLERANCE = 0.005
"""Largest test ROC AUC gap allowed between distributed and in-process LightGBM."""


def test_distributed_lightgbm_matches_local_quality_and_registers(
    adult: datasets.Dataset, engine_url: str, tmp_path: Path
) -> None:
    import lightgbm

    from shipyard.evaluation.metrics import score
    from shipyard.pipeline import train
    from shipyard.tasks.tabular.distributed import (
        LABEL,
        PART,
        TEST,
        TRAIN,
        EncodePartition,
        distributed_params,
    )

    parts = tmp_path / "parts"
    parts.mkdir()
    frame = adult.train.head(16000)
    for index in range(8):  # spread over both workers
        frame.iloc[index * 2000 : (index + 1) * 2000].reset_index(drop=True).to_parquet(
            parts / f"p{index}.parquet"
        )
    config = _config(
        tmp_path,
        str(parts),
        **{"engine.url": engine_url, "engine.distributed_training": True, "engine.trees": 100},
    )
    run = train(config)
    assert run.version.reference == "adult:1"
    assert run.promoted
    distributed_auc = run.test_metrics["roc_auc"].value

    # The same rows, split the same way (by content hash), trained in one process.
    predictor = Registry.from_config(config.registry).load_predictor("adult")
    spec = predictor.preprocessor.spec
    encode = EncodePartition(spec, "income", tuple(predictor.classes), 42, 0.2, 0.1)
    encoded = encode(frame.reset_index(drop=True))
    features = predictor.preprocessor.input_columns
    categorical = [i for i, item in enumerate(spec["encoders"]) if item["kind"] == "ordinal"]
    local = lightgbm.LGBMClassifier(**distributed_params(config))
    train_rows, test_rows = encoded[encoded[PART] == TRAIN], encoded[encoded[PART] == TEST]
    local.fit(train_rows[features], train_rows[LABEL], categorical_feature=categorical)
    local_auc = score(
        "roc_auc",
        test_rows[LABEL].to_numpy(np.int64),
        local.predict_proba(test_rows[features]),
    )
    assert run.rows["test"] == len(test_rows)
    assert abs(distributed_auc - local_auc) <= QUALITY_TOLERANCE, (distributed_auc, local_auc)
    assert distributed_auc > 0.85
    # The bundle serves like any other: the served answers equal the registered test outputs.
    served = predictor.score_frame(frame.head(50))
    assert served.shape == (50, 2)


def test_a_failed_distributed_run_registers_nothing(engine_url: str, tmp_path: Path) -> None:
    parts = tmp_path / "parts"
    parts.mkdir()
    pd.DataFrame({"x": [1.0, 2.0], "y": ["a", "b"]}).to_parquet(parts / "a.parquet")
    pd.DataFrame({"x": [1.0, 2.0], "z": [3, 4], "y": ["a", "b"]}).to_parquet(parts / "b.parquet")
    config = _config(
        tmp_path,
        str(parts),
        **{"data.target": "y", "engine.url": engine_url, "engine.distributed_training": True},
    )
    from shipyard.pipeline import train

    with pytest.raises(DataError, match="Partitions have different columns"):
        train(config)
    assert Registry.from_config(config.registry).models() == []


def test_a_broken_lightgbm_network_is_an_engine_error_and_registers_nothing(
    adult: datasets.Dataset, engine_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a worker restarted mid-training looks like to the client: a socket error."""
    import lightgbm.dask
    from lightgbm.basic import LightGBMError

    from shipyard.pipeline import train

    def lost_peer(*args: Any, **kwargs: Any) -> None:
        raise LightGBMError("Socket recv error, Connection reset by peer (code: 104)")

    monkeypatch.setattr(lightgbm.dask.DaskLGBMClassifier, "fit", lost_peer)
    parts = tmp_path / "parts"
    parts.mkdir()
    for index in range(2):
        rows = adult.train.iloc[index * 500 : (index + 1) * 500].reset_index(drop=True)
        rows.to_parquet(parts / f"p{index}.parquet")
    config = _config(
        tmp_path, str(parts), **{"engine.url": engine_url, "engine.distributed_training": True}
    )
    with pytest.raises(EngineError, match="Distributed LightGBM training failed") as raised:
        train(config)
    assert "Connection reset by peer" in str(raised.value)
    assert "memory limit" in str(raised.value)
    assert Registry.from_config(config.registry).models() == []


# -- a worker killed mid-scoring ------------------------------------------------------------------


def test_killing_a_worker_mid_scoring_completes_or_fails_clearly(
    trained: Trained, cluster: Any, engine_url: str, tmp_path: Path
) -> None:
    output = tmp_path / "scored"
    score = ScorePartition.for_version(trained.registry.resolve("adult"))

    def slow_score(frame: pd.DataFrame) -> pd.DataFrame:
        # Slow enough for a worker to die while it runs; a local function, so that Dask
        # sends it by value (the workers cannot import this test module).
        time.sleep(0.3)
        return score(frame)

    with open_engine(EngineConfig(url=engine_url)) as engine:
        pids = engine.client.run(os.getpid)  # type: ignore[attr-defined]
        victim = sorted(pids.values())[0]
        finished: list[int] = []

        def kill_after_two(rows: int) -> None:
            finished.append(rows)
            if len(finished) == 2:
                os.kill(victim, signal.SIGKILL)

        try:
            result = transform_directory(
                engine, slow_score, trained.inputs, output, progress=kill_after_two
            )
        except EngineError as error:  # allowed: a clear failure, and nothing marked complete
            message = str(error)
            assert "nothing was written" in message
            assert not output.exists()
        else:
            assert result.total_rows == 3000
            _same_files(output, trained.local_output)
            assert (output / SUCCESS_FILE).is_file()
    assert not [path for path in tmp_path.iterdir() if ".partial-" in path.name]
    assert not any(
        pid == victim
        for pid in cluster.scheduler_info  # the worker is gone
        and []
    )


# -- a worker without memory left for the training libraries -------------------------------------

MIB = 2**20


class _AnsweringClient:
    """Answers ``Client.run`` with fixed per-worker memory figures."""

    def __init__(self, answers: dict[str, dict[str, Any]]) -> None:
        self.answers = answers

    def run(self, function: Any) -> dict[str, dict[str, Any]]:
        return self.answers


class _FakeDaskEngine(LocalEngine):
    name = "dask"

    def __init__(self, answers: dict[str, dict[str, Any]]) -> None:
        self.client = _AnsweringClient(answers)


def test_a_worker_past_the_pause_threshold_fails_training_before_any_task(
    tmp_path: Path,
) -> None:
    from shipyard.pipeline import train

    engine = _FakeDaskEngine(
        {
            "tcp://127.0.0.1:1": {"memory": 100 * MIB, "limit": 1024 * MIB, "pause": 0.8},
            "tcp://127.0.0.1:2": {"memory": 260 * MIB, "limit": 300 * MIB, "pause": 0.8},
        }
    )
    config = _config(
        tmp_path,
        str(tmp_path / "missing"),
        **{"engine.url": "dask://127.0.0.1:1", "engine.distributed_training": True},
    )
    worker = re.escape("Dask worker tcp://127.0.0.1:2 uses 260 MiB")
    with pytest.raises(EngineError, match=worker) as raised:
        train(config, engine=engine)
    message = str(raised.value)
    assert "300 MiB memory limit" in message
    assert "over the 80% at which Dask pauses a worker" in message
    assert "memory limit above 325 MiB" in message
    assert not (tmp_path / "home").exists()


def test_workers_with_room_or_without_a_limit_pass_the_memory_check() -> None:
    from shipyard.tasks.tabular.distributed import check_worker_memory

    check_worker_memory(
        _FakeDaskEngine(
            {
                "tcp://127.0.0.1:1": {"memory": 239 * MIB, "limit": 300 * MIB, "pause": 0.8},
                "tcp://127.0.0.1:2": {"memory": 900 * MIB, "limit": None, "pause": 0.8},
                "tcp://127.0.0.1:3": {"memory": 900 * MIB, "limit": 300 * MIB, "pause": False},
            }
        )
    )


def test_the_memory_check_reads_a_real_paused_worker() -> None:
    """A real worker whose pause threshold is below an idle Python process is reported."""
    import dask

    from shipyard.tasks.tabular.distributed import check_worker_memory

    thresholds = {
        "distributed.worker.memory.pause": 0.01,  # 20 MiB of 2 GiB: paused from the start
        "distributed.worker.memory.terminate": False,
        "distributed.worker.memory.spill": False,
        "distributed.worker.memory.target": False,
    }
    with (
        dask.config.set(thresholds),
        distributed.LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            memory_limit="2GiB",
            dashboard_address=":0",  # the module's cluster holds the default port
            silence_logs=40,
        ) as small,
        open_engine(
            EngineConfig(url="dask://" + small.scheduler_address.removeprefix("tcp://"))
        ) as engine,
        pytest.raises(EngineError, match="of its 2048 MiB memory limit with pandas and LightGBM"),
    ):
        check_worker_memory(engine)
