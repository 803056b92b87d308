"""In process against a local Dask cluster: tuning, batch scoring and LightGBM training.

Jobs (Adult rows, resampled with replacement where more rows are needed):
- tune: N LightGBM settings (3 portfolio + Optuna), 3-fold CV on the Adult training set;
  in process (n_jobs=1) against the folds on the cluster;
- score: ROWS rows in 20 Parquet files scored by a registered LightGBM model
  (``score_directory``), local engine against the cluster;
- train: LightGBM (engine.trees rounds) on ROWS rows: lightgbm in one process on the encoded
  rows against ``lightgbm.dask`` on the cluster (the whole ``engine.distributed_training`` run);
- big (--big-rows): distributed training on a dataset larger than one worker's memory limit,
  with 4 workers of --worker-memory each.
Wall time and the peak resident memory of this process and all its children (the cluster's
worker processes included), sampled every 0.1 s, are reported per job.

Run: python benchmarks/scale/run.py WORKDIR [--rows 1000000] [--trials 20] [--big-rows 8000000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from shipyard import datasets


class PeakMemory:
    """Peak RSS of this process tree while the block runs."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()

    def _total(self) -> int:
        me = psutil.Process()
        total = me.memory_info().rss
        for child in me.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._total())
            time.sleep(0.1)

    @contextmanager
    def measure(self) -> Any:
        self.peak = self._total()
        self._stop.clear()
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()


def timed(label: str, results: dict[str, Any], function: Any) -> Any:
    memory = PeakMemory()
    with memory.measure():
        started = time.perf_counter()
        value = function()
        seconds = time.perf_counter() - started
    results[label] = {"seconds": round(seconds, 2), "peak_mib": round(memory.peak / 2**20)}
    print(label, results[label], flush=True)
    return value


def write_rows(frame: Any, folder: Path, rows: int, files: int, seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    per_file = rows // files
    for index in range(files):
        picked = frame.iloc[rng.integers(0, len(frame), per_file)].reset_index(drop=True)
        picked.to_parquet(folder / f"part-{index:03d}.parquet")


def config(workdir: Path, source: str, **engine: Any) -> Any:
    from shipyard.config import load_config_dict

    return load_config_dict(
        {
            "name": "bench",
            "data": {"source": source, "target": "income"},
            "training": {"cv_folds": 3, "models": ["lightgbm"], "n_trials": 1, "model_threads": 1},
            "evaluation": {"bootstrap_samples": 200, "report": False},
            "registry": {"home": str(workdir / "home")},
            "engine": engine,
        }
    )


def tune(frame: Any, trials: int, **settings: Any) -> float:
    from shipyard.data.contract import infer_contract
    from shipyard.tasks.tabular import feature_set
    from shipyard.training.search import SearchSettings, make_folds, run_search

    contract = infer_contract(frame, "income")
    y = (frame["income"] == ">50K").to_numpy(np.int64)
    results, _ = run_search(
        frame[contract.feature_names],
        y,
        folds=make_folds(y, "binary", 3, 1, 1),
        features=feature_set(contract),
        task="binary",
        metric="roc_auc",
        settings=SearchSettings(
            models=("lightgbm",),
            time_budget=3600,
            n_trials=trials,
            cv_folds=3,
            cv_repeats=1,
            seed=1,
            model_threads=1,
            **settings,
        ),
    )
    return max(float(np.mean(result.scores)) for result in results)


def train_in_process(source: Path, cfg: Any) -> float:
    """LightGBM in one process on the same rows, encoded and split as the cluster run does."""
    import lightgbm
    import pandas as pd

    from shipyard.engines import LocalEngine
    from shipyard.engines.directory import list_partitions
    from shipyard.engines.distributed import (
        LABEL,
        PART,
        TEST,
        TRAIN,
        EncodePartition,
        distributed_params,
    )
    from shipyard.engines.partitioned import infer_partitioned_contract
    from shipyard.evaluation.metrics import score
    from shipyard.runtime.preprocess import SPEC_VERSION
    from shipyard.tasks.tabular import feature_set

    sources = list_partitions(source)
    contract, _ = infer_partitioned_contract(LocalEngine(), sources, "income")
    features = feature_set(contract)
    spec = {
        "version": SPEC_VERSION,
        "encoders": [{"column": n, "kind": "numeric", "fill": None} for n in features.numeric]
        + [
            {
                "column": n,
                "kind": "ordinal",
                "categories": list(contract.column(n).categories or ()),
            }
            for n in features.categorical
        ],
    }
    encode = EncodePartition(spec, "income", ("<=50K", ">50K"), cfg.seed, 0.2, 0.1)
    encoded = pd.concat([encode(pd.read_parquet(path)) for path in sources], ignore_index=True)
    train, test = encoded[encoded[PART] == TRAIN], encoded[encoded[PART] == TEST]
    columns = features.all
    categorical = list(range(len(features.numeric), len(columns)))
    params = {**distributed_params(cfg), "n_jobs": 2}
    model = lightgbm.LGBMClassifier(**params)
    model.fit(train[columns], train[LABEL].astype("int64"), categorical_feature=categorical)
    return score("roc_auc", test[LABEL].to_numpy(np.int64), model.predict_proba(test[columns]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--big-rows", type=int, default=0)
    parser.add_argument("--worker-memory", default="600MiB")
    parser.add_argument("--jobs", default="tune,score,train")
    arguments = parser.parse_args()
    from distributed import LocalCluster

    from shipyard.config import EngineConfig
    from shipyard.engines import LocalEngine, open_engine
    from shipyard.engines.scoring import score_directory
    from shipyard.lifecycle import train
    from shipyard.registry.store import Registry

    workdir = arguments.workdir
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    jobs = set(arguments.jobs.split(","))
    adult = datasets.load("adult").train
    results: dict[str, Any] = {"load_before": subprocess.getoutput("uptime")}
    rows_dir = workdir / "rows"
    write_rows(adult, rows_dir, arguments.rows, 20, seed=0)

    if "tune" in jobs:
        results["tune_best_in_process"] = timed(
            "tune in process", results, lambda: tune(adult, arguments.trials)
        )
    if "score" in jobs or "train" in jobs:
        sample = workdir / "sample.csv"
        adult.to_csv(sample, index=False)
        train(config(workdir, str(sample)))
        version = Registry.from_config(config(workdir, str(sample)).registry).resolve("bench")
    if "score" in jobs:
        timed(
            "score in process",
            results,
            lambda: score_directory(version, rows_dir, workdir / "scored-local", LocalEngine()),
        )
    if "train" in jobs:
        train_cfg = config(
            workdir,
            str(rows_dir),
            url="dask://127.0.0.1:1",
            distributed_training=True,
            trees=arguments.trees,
        )
        results["train_auc_in_process"] = timed(
            "train in process", results, lambda: train_in_process(rows_dir, train_cfg)
        )

    started = time.perf_counter()
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=40,
    ) as cluster:
        results["cluster_start_seconds"] = round(time.perf_counter() - started, 2)
        url = "dask://" + cluster.scheduler_address.removeprefix("tcp://")
        with open_engine(EngineConfig(url=url)) as engine:
            if "tune" in jobs:
                backend, n_jobs = engine.fan_out("loky", 1)
                results["tune_best_cluster"] = timed(
                    "tune on dask",
                    results,
                    lambda: tune(adult, arguments.trials, backend=backend, n_jobs=n_jobs),
                )
            if "score" in jobs:
                timed(
                    "score on dask",
                    results,
                    lambda: score_directory(version, rows_dir, workdir / "scored-dask", engine),
                )
                same = all(
                    (workdir / "scored-local" / p.name).read_bytes() == p.read_bytes()
                    for p in (workdir / "scored-dask").glob("*.parquet")
                )
                results["score_outputs_identical"] = same
            if "train" in jobs:
                cfg = config(
                    workdir,
                    str(rows_dir),
                    url=url,
                    distributed_training=True,
                    trees=arguments.trees,
                )
                run = timed("train on dask", results, lambda: train(cfg, registry=None))
                results["train_auc_cluster"] = run.test_metrics["roc_auc"].value

    if arguments.big_rows:
        big_dir = workdir / "big"
        write_rows(adult, big_dir, arguments.big_rows, 40, seed=1)
        on_disk = sum(path.stat().st_size for path in big_dir.iterdir())
        results["big"] = {
            "rows": arguments.big_rows,
            "parquet_mib": round(on_disk / 2**20),
            "encoded_mib": round(arguments.big_rows * 16 * 8 / 2**20),
            "worker_memory_limit": arguments.worker_memory,
            "workers": 4,
        }
        with LocalCluster(
            n_workers=4,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            memory_limit=arguments.worker_memory,
            dashboard_address=None,
            silence_logs=40,
        ) as cluster:
            url = "dask://" + cluster.scheduler_address.removeprefix("tcp://")
            cfg = config(
                workdir, str(big_dir), url=url, distributed_training=True, trees=arguments.trees
            )
            cfg = cfg.model_copy(update={"name": "big"})
            run = timed("big train on dask", results, lambda: train(cfg))
            results["big"]["auc"] = run.test_metrics["roc_auc"].value
            results["big"]["registered"] = run.version.reference
    results["load_after"] = subprocess.getoutput("uptime")
    print(json.dumps(results, indent=1))
    (workdir / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
