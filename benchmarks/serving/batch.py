"""Batch scoring of a Parquet file: ``shipyard predict``'s path against the scikit-learn pipeline.

Both read WORKDIR/rows.parquet (prepare.py --rows N) in chunks, score every row and write a
Parquet file with the input columns plus the predicted label and class probabilities.
shipyard's compiled tree kernel is loaded first (cached in WORKDIR/cache; --cold empties it, so
the build is timed too; --no-compile keeps LightGBM's predict); the build is reported on its own.
Each path runs --repeat times (default 3), alternating; the medians are compared.
Run: python benchmarks/serving/batch.py WORKDIR [--chunk-size 100000] [--cold] [--no-compile]
     [--repeat 3] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import time
from pathlib import Path

import joblib
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from shipyard.pipeline.scoring import score_file
from shipyard.registry.store import Registry
from shipyard.runtime.compiled import compile_scorer

CLASSES = ["<=50K", ">50K"]


def sklearn_score(pipeline, source: Path, output: Path, chunk_size: int) -> int:
    writer = None
    rows = 0
    for batch in pq.ParquetFile(source).iter_batches(batch_size=chunk_size):
        frame = batch.to_pandas()
        probabilities = pipeline.predict_proba(frame)
        frame["prediction"] = np.array(CLASSES, dtype=object)[probabilities.argmax(axis=1)]
        for index, label in enumerate(CLASSES):
            frame[f"probability_{label}"] = probabilities[:, index]
        table = pa.Table.from_pandas(frame, preserve_index=False)
        writer = writer or pq.ParquetWriter(output, table.schema)
        writer.write_table(table)
        rows += len(frame)
    if writer is not None:
        writer.close()
    return rows


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--chunk-size", type=int, default=100_000)
    parser.add_argument("--cold", action="store_true", help="empty the compiled-model cache")
    parser.add_argument("--no-compile", action="store_true", help="score with LightGBM's predict")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each path, alternating")
    parser.add_argument(
        "--threads", type=int, default=0, help="threads of both tree evaluators (0: all CPUs)"
    )
    arguments = parser.parse_args()
    workdir = arguments.workdir
    source = workdir / "rows.parquet"
    registry = Registry(
        f"sqlite:///{workdir / 'home' / 'registry.db'}", workdir / "home" / "artifacts"
    )
    predictor = registry.load_predictor("adult")
    pipeline = joblib.load(workdir / "pipeline.joblib")

    cache = workdir / "cache"
    if arguments.cold:
        shutil.rmtree(cache, ignore_errors=True)
    cached = cache.is_dir() and any(cache.glob("*.so"))
    started = time.perf_counter()
    compiled = not arguments.no_compile and compile_scorer(predictor.scorer, cache)
    compile_seconds = time.perf_counter() - started
    if arguments.threads:
        pipeline.set_params(model__n_jobs=arguments.threads)
        if compiled:
            predictor.scorer.compiled.threads = arguments.threads
        else:
            predictor.scorer.booster.reset_parameter({"num_threads": arguments.threads})

    # Alternate the two paths so that a change in the machine's load hits both; report the
    # median of each.
    shipyard_runs, sklearn_runs, loads = [], [], []
    shipyard_cpu, sklearn_cpu = [], []
    for _ in range(arguments.repeat):
        loads.append(_uptime())
        started, cpu = time.perf_counter(), time.process_time()
        rows = score_file(
            predictor,
            source,
            workdir / "scored-shipyard.parquet",
            chunk_size=arguments.chunk_size,
            compile_trees=not arguments.no_compile,
        ).rows
        shipyard_runs.append(time.perf_counter() - started)
        shipyard_cpu.append(time.process_time() - cpu)
        started, cpu = time.perf_counter(), time.process_time()
        sklearn_rows = sklearn_score(
            pipeline, source, workdir / "scored-sklearn.parquet", arguments.chunk_size
        )
        sklearn_runs.append(time.perf_counter() - started)
        sklearn_cpu.append(time.process_time() - cpu)
    loads.append(_uptime())
    shipyard_seconds = statistics.median(shipyard_runs)
    sklearn_seconds = statistics.median(sklearn_runs)

    ours = pq.read_table(workdir / "scored-shipyard.parquet", columns=["probability_>50K"])
    theirs = pq.read_table(workdir / "scored-sklearn.parquet", columns=["probability_>50K"])
    gap = float(np.abs(ours.column(0).to_numpy() - theirs.column(0).to_numpy()).max())
    result = {
        "rows": rows,
        "sklearn_rows": sklearn_rows,
        "compiled": compiled,
        "compile_seconds": round(compile_seconds, 2),
        "compile_cached": cached,
        "shipyard_seconds": round(shipyard_seconds, 2),
        "sklearn_seconds": round(sklearn_seconds, 2),
        "shipyard_runs": [round(value, 2) for value in shipyard_runs],
        "sklearn_runs": [round(value, 2) for value in sklearn_runs],
        # CPU seconds of all threads: less sensitive than wall time to waiting for a core.
        "shipyard_cpu_seconds": round(statistics.median(shipyard_cpu), 2),
        "sklearn_cpu_seconds": round(statistics.median(sklearn_cpu), 2),
        "speedup": round(sklearn_seconds / shipyard_seconds, 2),
        "speedup_with_compile": round(sklearn_seconds / (shipyard_seconds + compile_seconds), 2),
        "max_probability_gap": gap,
        "threads": arguments.threads or "all",
        "uptime": loads,
    }
    (workdir / "batch-results.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
