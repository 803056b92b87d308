"""In process against a local Dask cluster: tuning, batch scoring and LightGBM training.

Jobs (Adult rows, resampled with replacement where more rows are needed):
- tune: N LightGBM settings (3 portfolio + Optuna), 3-fold CV on the Adult training set;
  in process (n_jobs=1) against the folds on the cluster;
- score: ROWS rows in 20 Parquet files scored by a registered LightGBM model
  (``score_directory``), local engine against the cluster;
- train: LightGBM (engine.trees rounds) on ROWS rows: lightgbm in one process on the encoded
  rows against ``lightgbm.dask`` on the cluster (the whole ``engine.distributed_training`` run);
- big (--big-rows): distributed training on a dataset larger than one worker's memory limit,
  on --big-workers workers of --worker-memory each, against LightGBM in one process on a
  sample of the same files (--sample-files). The run records the training data as the workers
  held it (peak Dask-managed memory while LightGBM trained), each worker's peak resident memory
  against its limit, spilled bytes and paused workers.
Wall time and the peak resident memory of this process and all its children (the cluster's
worker processes included), sampled every 0.1 s, are reported per job.

Run: python benchmarks/scale/run.py WORKDIR [--rows 1000000] [--trials 20] [--big-rows 10000000]
(--jobs "" runs only the big job; --time-limit stops the script with the cluster's state
printed instead of waiting.)
"""

from __future__ import annotations

import _thread
import argparse
import json
import logging
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
        self.per_process: dict[int, int] = {}
        self._stop = threading.Event()

    def _total(self) -> int:
        me = psutil.Process()
        total = me.memory_info().rss
        for child in me.children(recursive=True):
            try:
                rss = child.memory_info().rss
            except psutil.Error:
                continue
            total += rss
            self.per_process[child.pid] = max(self.per_process.get(child.pid, 0), rss)
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


class ClusterWatch:
    """What the scheduler says of each worker, every 0.5 s, per step of the training run.

    Per step (the training run's report lines): the peak of the Dask-managed memory summed
    over the workers (the data they hold) and on the fullest worker, the largest worker's
    resident memory, the spilled bytes; over the run: the workers seen paused and every
    worker address seen (a restarted worker comes back with a new address).
    """

    def __init__(self, cluster: Any) -> None:
        from distributed import Client

        self.client = Client(cluster)
        self.step = "starting"
        self.steps: dict[str, dict[str, int]] = {}
        self.paused: set[str] = set()
        self.addresses: set[str] = set()
        self._stop = threading.Event()

    def report(self, message: str) -> None:
        print(f"  [{time.strftime('%H:%M:%S')}] {message}", flush=True)
        self.step = message.split(";")[0].split(",")[0]

    def sample(self) -> None:
        workers = self.client.scheduler_info()["workers"]
        step = self.steps.setdefault(
            self.step, {"managed": 0, "worker_managed": 0, "worker_rss": 0, "spilled": 0}
        )
        managed = spilled = 0
        for address, worker in workers.items():
            metrics = worker.get("metrics", {})
            managed += metrics.get("managed_bytes", 0)
            step["worker_managed"] = max(step["worker_managed"], metrics.get("managed_bytes", 0))
            spilled += metrics.get("spilled_bytes", {}).get("disk", 0)
            step["worker_rss"] = max(step["worker_rss"], metrics.get("memory", 0))
            self.addresses.add(address)
            if worker.get("status") == "paused":
                self.paused.add(address)
        step["managed"] = max(step["managed"], managed)
        step["spilled"] = max(step["spilled"], spilled)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.sample()
            except Exception as error:  # a restarting worker or a closing client
                print(f"  (cluster watch: {error!r})", flush=True)

    def __enter__(self) -> ClusterWatch:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        time.sleep(0.6)  # let the last sample finish before the client closes
        self.client.close()

    def state(self) -> str:
        """The workers' memory and status, and their last log lines (for a stopped run)."""
        lines = []
        for address, worker in self.client.scheduler_info()["workers"].items():
            metrics = worker.get("metrics", {})
            lines.append(
                f"{address} {worker.get('status')}: {metrics.get('memory', 0) / 2**20:.0f} MiB "
                f"of {worker.get('memory_limit', 0) / 2**20:.0f} MiB, "
                f"{metrics.get('managed_bytes', 0) / 2**20:.0f} MiB managed, "
                f"{metrics.get('spilled_bytes', {}).get('disk', 0) / 2**20:.0f} MiB spilled, "
                f"{metrics.get('executing', 0)} executing"
            )
        for name, log in self.client.get_worker_logs(n=5).items():
            lines += [f"{name}: {message}" for _, message in log]
        return "\n".join(lines)


def stop_after(seconds: float, watches: list[ClusterWatch], results: dict[str, Any]) -> None:
    """Interrupt the script after ``seconds``, printing the cluster's state first."""

    def expire() -> None:
        results["stopped"] = f"--time-limit {seconds:g} s reached"
        print(f"time limit of {seconds:g} s reached; cluster state:", flush=True)
        for watch in watches:
            print(f"  during '{watch.step}'", flush=True)
            try:
                print(watch.state(), flush=True)
            except Exception as error:  # the cluster may be the reason for the stop
                print(f"  (no state: {error!r})", flush=True)
        _thread.interrupt_main()

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()


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
    from shipyard.tasks.tabular import CANDIDATES, feature_set
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
            families=CANDIDATES,
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


def train_in_process(source: Path | list[Path], cfg: Any) -> dict[str, Any]:
    """LightGBM in one process on the same rows, encoded and split as the cluster run does.

    Returns the test ROC AUC, the rows read, and the training rows and their bytes as
    LightGBM receives them (the features and the label, as the cluster's workers hold them).
    """
    import lightgbm
    import pandas as pd

    from shipyard.engines import LocalEngine
    from shipyard.engines.directory import list_partitions
    from shipyard.engines.partitioned import infer_partitioned_contract
    from shipyard.evaluation.metrics import score
    from shipyard.runtime.preprocess import SPEC_VERSION
    from shipyard.tasks.tabular import feature_set
    from shipyard.tasks.tabular.distributed import (
        LABEL,
        PART,
        TEST,
        TRAIN,
        EncodePartition,
        distributed_params,
    )

    sources = list_partitions(source) if isinstance(source, Path) else source
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
    label = train[LABEL].astype("int64")
    model.fit(train[columns], label, categorical_feature=categorical)
    auc = score("roc_auc", test[LABEL].to_numpy(np.int64), model.predict_proba(test[columns]))
    held = int(train[columns].memory_usage(index=False).sum() + label.memory_usage(index=False))
    return {"auc": auc, "rows": len(encoded), "train_rows": len(train), "train_bytes": held}


def small_jobs(arguments: Any, workdir: Path, adult: Any, results: dict[str, Any]) -> None:
    """The same jobs in process and on a local cluster of two workers (tune, score, train)."""
    from distributed import LocalCluster

    from shipyard.config import EngineConfig
    from shipyard.engines import LocalEngine, open_engine
    from shipyard.pipeline import train
    from shipyard.pipeline.partition_scoring import score_directory
    from shipyard.registry.store import Registry

    jobs = set(arguments.jobs.split(","))
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
        local = timed("train in process", results, lambda: train_in_process(rows_dir, train_cfg))
        results["train_auc_in_process"] = local["auc"]

    started = time.perf_counter()
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.ERROR,
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


def big_job(
    arguments: Any, workdir: Path, adult: Any, results: dict[str, Any], watches: list[Any]
) -> None:
    """Distributed training on more data than one worker's memory limit, against a sample."""
    from dask.utils import parse_bytes
    from distributed import LocalCluster

    from shipyard.engines.directory import list_partitions
    from shipyard.pipeline import train

    mib = 2**20
    trees = arguments.big_trees or arguments.trees
    big_dir = workdir / "big"
    write_rows(adult, big_dir, arguments.big_rows, arguments.big_files, seed=1)
    limit = parse_bytes(arguments.worker_memory)
    big: dict[str, Any] = {
        "rows": arguments.big_rows,
        "files": arguments.big_files,
        "parquet_mib": round(sum(p.stat().st_size for p in big_dir.iterdir()) / mib),
        "workers": arguments.big_workers,
        "worker_memory_limit_mib": round(limit / mib),
        "trees": trees,
    }
    results["big"] = big

    # LightGBM in one process on the first files: the quality to compare with, and the
    # bytes per training row as LightGBM receives them.
    sample_files = list_partitions(big_dir)[
        : arguments.sample_files or max(1, arguments.big_files // 10)
    ]
    sample_cfg = config(
        workdir, str(big_dir), url="dask://127.0.0.1:1", distributed_training=True, trees=trees
    )
    local = timed(
        "big sample in process", results, lambda: train_in_process(sample_files, sample_cfg)
    )
    big["sample"] = {"files": len(sample_files), **local}
    per_row = local["train_bytes"] / local["rows"]
    big["train_data_estimate_mib"] = round(per_row * arguments.big_rows / mib)

    big["load_before"] = subprocess.getoutput("uptime")
    with LocalCluster(
        n_workers=arguments.big_workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        memory_limit=arguments.worker_memory,
        dashboard_address=None,
        silence_logs=logging.WARNING,  # pausing, spilling and restarts are what to see here
    ) as cluster:
        url = "dask://" + cluster.scheduler_address.removeprefix("tcp://")
        cfg = config(workdir, str(big_dir), url=url, distributed_training=True, trees=trees)
        cfg = cfg.model_copy(update={"name": "big"})
        with ClusterWatch(cluster) as watch:
            watches.append(watch)
            memory = PeakMemory()
            started = time.perf_counter()
            try:
                with memory.measure():
                    run = train(cfg, report=watch.report)
            except Exception as error:
                big["error"] = f"{type(error).__name__}: {error}"
                raise
            finally:
                big["seconds"] = round(time.perf_counter() - started, 1)
                big["steps"] = {
                    step: {key: round(value / mib) for key, value in peaks.items()}
                    for step, peaks in watch.steps.items()
                }
                big["paused_workers"] = sorted(watch.paused)
                big["workers_seen"] = len(watch.addresses)
        big["peak_mib"] = round(memory.peak / mib)
        workers = sorted(memory.per_process.values(), reverse=True)[: arguments.big_workers]
        big["worker_peak_rss_mib"] = [round(rss / mib) for rss in workers]
        training = next(v for k, v in watch.steps.items() if k.startswith("binary task"))
        big["train_data_held_mib"] = round(training["managed"] / mib)
        big["auc"] = run.test_metrics["roc_auc"].value
        big["registered"] = run.version.reference
    big["load_after"] = subprocess.getoutput("uptime")
    print("big", json.dumps(big, indent=1), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--jobs", default="tune,score,train", help="'' for the big job only")
    parser.add_argument("--big-rows", type=int, default=0, help="0 skips the big job")
    parser.add_argument("--big-files", type=int, default=100)
    parser.add_argument("--big-workers", type=int, default=8)
    parser.add_argument("--big-trees", type=int, default=0, help="default: --trees")
    parser.add_argument("--worker-memory", default="768MiB", help="each big-job worker's limit")
    parser.add_argument(
        "--sample-files", type=int, default=0, help="in-process sample (default: a tenth)"
    )
    parser.add_argument(
        "--time-limit", type=float, default=0, help="seconds; 0 waits however long it takes"
    )
    arguments = parser.parse_args()

    workdir = arguments.workdir
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    adult = datasets.load("adult").train
    results: dict[str, Any] = {"load_before": subprocess.getoutput("uptime")}
    watches: list[ClusterWatch] = []
    if arguments.time_limit:
        stop_after(arguments.time_limit, watches, results)
    try:
        if arguments.jobs:
            small_jobs(arguments, workdir, adult, results)
        if arguments.big_rows:
            big_job(arguments, workdir, adult, results, watches)
    except KeyboardInterrupt:
        results.setdefault("stopped", "interrupted")
    except Exception as error:  # keep what was measured up to the failure
        results["stopped"] = f"{type(error).__name__}: {error}"
    results["load_after"] = subprocess.getoutput("uptime")
    print(json.dumps(results, indent=1))
    (workdir / "results.json").write_text(json.dumps(results, indent=1))
    if "stopped" in results:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
