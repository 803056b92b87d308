"""Drift over 1,000,000 logged predictions: shipyard's stored sketches against Evidently.

On the bundled UCI Bike Sharing hourly data (CC BY 4.0; Fanaee-T & Gama 2013), the script

1. trains a shipyard LightGBM regression of ``cnt`` on the hours of 2011 with 14 features
   (11 numeric; ``season``, ``weekday`` and ``weathersit`` written as their names, so the
   contract types them as categories), which gives the bundle its drift reference sketches;
2. draws ``--rows`` hours of 2012 with replacement (fixed seed), answers them with the
   registered model, and writes them to the real prediction log (the registry's SQLite
   database) through ``MonitoringStore.add_batch`` with the server's ``SketchBook``, the call
   the server's background logger makes, in batches: the rows are stamped 0.12 s apart (500
   a minute), so they fill 2,000 one-minute sketch buckets;
3. measures what sketching at log time costs the writer: the same rows logged with and
   without sketches, in batches of 32 (what group commit gives under 32 clients);
4. times shipyard's drift from the stored sketches, as ``SketchTimeline`` computes it: the
   whole range in one report, and the 2,000 one-minute windows (PSI, Jensen-Shannon, KS or
   chi-square per column and window, and the prediction drift); opening the verified bundle
   is timed apart. ``--row-path`` also times the count windows read from the log rows;
5. writes the same rows (and the 2011 hours as the reference) to Parquet and times Evidently's
   ``DataDriftPreset`` on them through ``evidently_peer.py``, run with the Python where
   Evidently is installed (it has its own virtual environment);
6. compares the columns each flags, and prints and writes the results as JSON.

Run from the repository root:

    python -m venv ../evidently-venv
    ../evidently-venv/bin/pip install "evidently>=0.7,<0.8" "pandas<3" pyarrow
    python benchmarks/monitoring/drift.py WORKDIR --evidently-python ../evidently-venv/bin/python

``--rows 100000`` makes a quicker run; ``--skip-evidently`` times shipyard alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shipyard import datasets
from shipyard.config import load_config
from shipyard.examples import example_path
from shipyard.monitoring.buckets import SketchBook
from shipyard.monitoring.log import MonitoringStore, PredictionRecord
from shipyard.monitoring.policy import drift_thresholds
from shipyard.pipeline import train
from shipyard.pipeline.monitor import open_drift_monitor, open_row_sketcher, open_timeline
from shipyard.registry.store import Registry
from shipyard.training.export import frame_to_records

NAME = "bike-drift"
TARGET = "cnt"
PREDICTION = "prediction"
# Names from the dataset's own description (Readme.txt of the UCI archive).
SEASONS = {1: "winter", 2: "spring", 3: "summer", 4: "fall"}
WEEKDAYS = {0: "sun", 1: "mon", 2: "tue", 3: "wed", 4: "thu", 5: "fri", 6: "sat"}
WEATHER = {1: "clear", 2: "mist", 3: "light_rain_snow", 4: "heavy_rain_snow"}
NUMERIC = [
    "yr",
    "mnth",
    "day",
    "week",
    "hr",
    "holiday",
    "workingday",
    "temp",
    "atemp",
    "hum",
    "windspeed",
]
CATEGORICAL = ["season", "weekday", "weathersit"]
FEATURES = NUMERIC + CATEGORICAL
# 500 predictions a minute: 1,000,000 rows fill 2,000 one-minute buckets.
FIRST_AT = datetime(2026, 1, 5, tzinfo=UTC)
SECONDS_APART = 0.12
BUCKET_SECONDS = 60.0


def uptime() -> str:
    """The load average line of ``uptime`` (the machine is shared)."""
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def features(hours: pd.DataFrame) -> pd.DataFrame:
    """The 14 feature columns of the hourly data, plus the target."""
    dates = pd.to_datetime(hours["dteday"])
    frame = pd.DataFrame(
        {
            "yr": hours["yr"],
            "mnth": hours["mnth"],
            "day": dates.dt.day.astype("int64"),
            "week": dates.dt.isocalendar().week.astype("int64"),
            "hr": hours["hr"],
            "holiday": hours["holiday"],
            "workingday": hours["workingday"],
            "temp": hours["temp"],
            "atemp": hours["atemp"],
            "hum": hours["hum"],
            "windspeed": hours["windspeed"],
            "season": hours["season"].map(SEASONS),
            "weekday": hours["weekday"].map(WEEKDAYS),
            "weathersit": hours["weathersit"].map(WEATHER),
        }
    )
    frame[TARGET] = hours[TARGET].to_numpy()
    return frame


def train_model(workdir: Path, train_frame: pd.DataFrame) -> tuple[Registry, Any]:
    """Train and register the 2011 model; return the registry and the config."""
    source = workdir / "bike-2011.csv"
    train_frame.to_csv(source, index=False)
    config = load_config(
        example_path("bike_sharing"),
        {
            "name": NAME,
            "data.source": str(source),
            "data.drop": [],
            "registry.home": str(workdir / "home"),
            # The model only supplies the reference and the answers: a loaded machine must
            # not make the example's 60 s budget refuse to train it.
            "training.time_budget": 600,
        },
    )
    registry = Registry.from_config(config.registry)
    started = time.perf_counter()
    run = train(config, registry=registry)
    print(f"trained {run.version.reference} ({run.best}) in {time.perf_counter() - started:.1f} s")
    return registry, config


def prediction_records(
    version: int, records: list[dict[str, Any]], answers: list[dict[str, Any]], prefix: str
) -> list[PredictionRecord]:
    """The log rows, stamped 0.12 s apart from a fixed time."""
    return [
        PredictionRecord(
            f"{prefix}-{index:09d}",
            NAME,
            version,
            record,
            answer,
            1.0,
            at=FIRST_AT + timedelta(seconds=index * SECONDS_APART),
        )
        for index, (record, answer) in enumerate(zip(records, answers, strict=True))
    ]


def log_rows(
    registry: Registry, current: pd.DataFrame, answers: list[dict[str, Any]], batch: int
) -> float:
    """Write the rows to the prediction log with their sketches, as the server's logger does."""
    version = registry.resolve(NAME).version
    rows = prediction_records(version, frame_to_records(current[FEATURES]), answers, "bench")
    store = MonitoringStore(registry.url)
    # One writer id across runs: a resumed run adds to the buckets it wrote before.
    book = SketchBook(
        lambda name, number: open_row_sketcher(registry, f"{name}:{number}"),
        bucket_seconds=BUCKET_SECONDS,
        writer="benchmark",
    )
    done = store.count(NAME)["predictions"]  # rows an earlier, stopped run committed
    if done:
        print(f"resuming after {done} logged rows: the time below is for the other rows")
    started = time.perf_counter()
    try:
        for start in range(done, len(rows), batch):
            store.add_batch(rows[start : start + batch], (), book)
    finally:
        store.close()
    return time.perf_counter() - started


def log_overhead(
    registry: Registry,
    workdir: Path,
    current: pd.DataFrame,
    answers: list[dict[str, Any]],
    rows: int,
    batch: int = 32,
) -> dict[str, Any]:
    """Log the same rows into two fresh databases, without and with sketches; time both."""
    version = registry.resolve(NAME).version
    records = prediction_records(
        version, frame_to_records(current[FEATURES].head(rows)), answers[:rows], "overhead"
    )
    seconds = {}
    for label in ("plain", "sketched", "plain_again", "sketched_again"):
        store = MonitoringStore(f"sqlite:///{workdir / f'overhead-{label}.db'}")
        book = None
        if label.startswith("sketched"):
            book = SketchBook(
                lambda name, number: open_row_sketcher(registry, f"{name}:{number}"),
                bucket_seconds=BUCKET_SECONDS,
            )
            book.prepare(NAME, version)  # the bundle is opened outside the timing
        started = time.perf_counter()
        for start in range(0, len(records), batch):
            store.add_batch(records[start : start + batch], (), book)
        seconds[label] = time.perf_counter() - started
        store.close()
    plain = (seconds["plain"] + seconds["plain_again"]) / 2
    sketched = (seconds["sketched"] + seconds["sketched_again"]) / 2
    return {
        "rows": rows,
        "batch": batch,
        "seconds": {label: round(value, 2) for label, value in seconds.items()},
        "plain_us_per_row": round(1e6 * plain / rows, 1),
        "sketched_us_per_row": round(1e6 * sketched / rows, 1),
        "sketching_us_per_row": round(1e6 * (sketched - plain) / rows, 1),
        "sketched_over_plain": round(sketched / plain, 2),
    }


def reopen(workdir: Path) -> tuple[Registry, Any]:
    """The registry and config an earlier run of this script left in ``workdir``."""
    config = load_config(
        example_path("bike_sharing"),
        {
            "name": NAME,
            "data.source": str(workdir / "bike-2011.csv"),
            "registry.home": str(workdir / "home"),
        },
    )
    return Registry.from_config(config.registry), config


def reset_windows(registry: Registry) -> None:
    """Forget the drift windows so the next update reads the whole log again."""
    store = MonitoringStore(registry.url)
    try:
        with store.engine.begin() as connection:
            connection.exec_driver_sql("DELETE FROM shipyard_drift_windows")
    finally:
        store.close()


def time_shipyard(registry: Registry, window_size: int, thresholds: Any) -> dict[str, Any]:
    """Advance the drift windows over the whole log, as ``shipyard monitor`` does."""
    reset_windows(registry)
    store = MonitoringStore(registry.url)
    try:
        started = time.perf_counter()
        drift = open_drift_monitor(
            registry, NAME, store, window_size=window_size, thresholds=thresholds
        )
        touched = drift.update()
        seconds = time.perf_counter() - started
    finally:
        store.close()
    closed = [window for window in touched if window.closed]
    last = closed[-1] if closed else touched[-1]
    return {
        "window_size": window_size,
        "seconds": round(seconds, 3),
        "windows": len(touched),
        "closed_windows": len(closed),
        "rows": sum(window.count for window in touched),
        "latest_window": {
            "count": last.count,
            "drifted": last.drifted,
            "report": last.report,
        },
    }


def time_log_read(registry: Registry, batch_size: int = 10_000) -> float:
    """Read every logged row once, as the drift update does, and nothing else."""
    store = MonitoringStore(registry.url)
    started = time.perf_counter()
    try:
        after = 0
        while batch := store.prediction_batch(NAME, after, batch_size):
            after = batch.ids[-1]
    finally:
        store.close()
    return time.perf_counter() - started


def time_sketches(registry: Registry, thresholds: Any) -> dict[str, Any]:
    """Drift from the stored sketches: the whole range, then every one-minute window."""
    store = MonitoringStore(registry.url)
    try:
        started = time.perf_counter()
        timeline = open_timeline(registry, NAME, store, thresholds)
        open_seconds = time.perf_counter() - started
        started = time.perf_counter()
        whole = timeline.between()
        whole_seconds = time.perf_counter() - started
        started = time.perf_counter()
        minutes = timeline.every(timedelta(seconds=BUCKET_SECONDS))
        windows_seconds = time.perf_counter() - started
    finally:
        store.close()
    return {
        "open_seconds": round(open_seconds, 4),
        "whole_range": {
            "seconds": round(whole_seconds, 4),
            "buckets": whole.buckets,
            "rows": whole.count,
            "drifted": whole.drifted,
            "report": [row.as_dict() for row in whole.report],
            "ks_bounds": whole.ks_bounds,
        },
        "windows": {
            "seconds": round(windows_seconds, 4),
            "windows": len(minutes),
            "rows": sum(window.count for window in minutes),
            "windows_with_drift": sum(bool(window.drifted) for window in minutes),
        },
    }


def run_evidently(
    python: str, reference: Path, current: Path, window_size: int, windows: int
) -> dict[str, Any]:
    """Run the Evidently peer script in its own environment; return its JSON line."""
    command = [
        python,
        str(Path(__file__).parent / "evidently_peer.py"),
        str(reference),
        str(current),
        ",".join([*NUMERIC, PREDICTION]),
        ",".join(CATEGORICAL),
        str(window_size),
        str(windows),
    ]
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    if finished.returncode != 0:
        return {"error": finished.stderr.strip().splitlines()[-5:]}
    result: dict[str, Any] = json.loads(finished.stdout.strip().splitlines()[-1])
    return result


def compare(shipyard_report: list[dict[str, Any]], evidently: dict[str, Any]) -> dict[str, Any]:
    """Columns each tool flags, and where they disagree."""
    names = {"__prediction__": PREDICTION}
    ours = {names.get(row["column"], row["column"]): row for row in shipyard_report}
    theirs = evidently.get("columns", {})
    rows = []
    for column in [*FEATURES, PREDICTION]:
        mine, other = ours.get(column), theirs.get(column)
        if mine is None or other is None:
            continue
        rows.append(
            {
                "column": column,
                "shipyard": {
                    "drifted": mine["drifted"],
                    "test": mine["test"],
                    "p_value": mine["p_value"],
                    "psi": round(mine["psi"], 4),
                    "js_distance": round(mine["js_distance"], 4),
                },
                "evidently": other,
                "agree": bool(mine["drifted"]) == bool(other["drifted"]),
            }
        )
    return {
        "columns": rows,
        "agree": sum(row["agree"] for row in rows),
        "compared": len(rows),
        "shipyard_flagged": [row["column"] for row in rows if row["shipyard"]["drifted"]],
        "evidently_flagged": [row["column"] for row in rows if row["evidently"]["drifted"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-batch", type=int, default=10_000)
    parser.add_argument(
        "--overhead-rows",
        type=int,
        default=20_000,
        help="rows logged with and without sketches in batches of 32 (the writer's cost)",
    )
    parser.add_argument("--window-size", type=int, help="default: the config's window size")
    parser.add_argument("--evidently-python", default=sys.executable)
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument(
        "--row-path",
        action="store_true",
        help="also time the count windows read from the log rows (the earlier method)",
    )
    parser.add_argument(
        "--evidently-windows",
        type=int,
        default=20,
        help="windows of the current rows Evidently is timed on, one Report each",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="with --phase log: keep the model and the rows WORKDIR holds and log the rest "
        "(a run stopped by a time limit loses only its open transaction)",
    )
    parser.add_argument(
        "--phase",
        choices=["all", "log", "time"],
        default="all",
        help="'log' trains and logs into WORKDIR and stops; 'time' times what 'log' left "
        "there (each phase stays within ten minutes on a loaded machine)",
    )
    arguments = parser.parse_args()
    workdir: Path = arguments.workdir
    results: dict[str, Any] = {
        "rows": arguments.rows,
        "features": {"numeric": NUMERIC, "categorical": CATEGORICAL},
        "cpus": os.cpu_count(),
        "uptime_before": uptime(),
    }
    print(results["uptime_before"])
    bike = datasets.load("bike_sharing")
    year_2011, year_2012 = features(bike.train), features(bike.test)
    reference_path, current_path = workdir / "reference.parquet", workdir / "current.parquet"
    if arguments.phase in ("all", "log"):
        if arguments.resume and (workdir / "home" / "registry.db").exists():
            registry, config = reopen(workdir)
        else:
            if workdir.exists():
                shutil.rmtree(workdir)
            workdir.mkdir(parents=True)
            registry, config = train_model(workdir, year_2011)
        predictor = registry.load_predictor(NAME)
        # 2012 hours drawn with replacement; each hour is answered by the model once and its
        # answer reused for every draw of that hour (the model is deterministic).
        draws = np.random.default_rng(arguments.seed).integers(0, len(year_2012), arguments.rows)
        answered = predictor.score_frame(year_2012[FEATURES])
        current = year_2012.iloc[draws].reset_index(drop=True)
        answers = [{"prediction": float(value)} for value in np.asarray(answered)[draws]]
        if arguments.overhead_rows:
            results["log_overhead"] = log_overhead(
                registry, workdir, current, answers, arguments.overhead_rows
            )
            print(f"sketching at log time: {results['log_overhead']}")
        seconds = log_rows(registry, current, answers, arguments.log_batch)
        results["log_write_seconds"] = round(seconds, 1)
        print(f"logged {arguments.rows} predictions with their sketches in {seconds:.1f} s")
        # The same rows for Evidently, and the 2011 hours with the model's answers.
        reference_answers = np.asarray(predictor.score_frame(year_2011[FEATURES]))
        year_2011[FEATURES].assign(**{PREDICTION: reference_answers}).to_parquet(reference_path)
        current[FEATURES].assign(
            **{PREDICTION: [answer["prediction"] for answer in answers]}
        ).to_parquet(current_path)
        if arguments.phase == "log":
            (workdir / "log-results.json").write_text(json.dumps(results, indent=1))
            print(uptime())
            return
    else:
        registry, config = reopen(workdir)
        logged = workdir / "log-results.json"
        if logged.exists():
            earlier = json.loads(logged.read_text())
            results["log_phase_uptime"] = earlier["uptime_before"]
            for key in ("log_overhead", "log_write_seconds"):
                if key in earlier:
                    results[key] = earlier[key]

    # Imports are outside every timing: scipy's statistics here, Evidently's in its script.
    import scipy.stats  # noqa: F401

    window_size = arguments.window_size or config.monitoring.window_size
    thresholds = drift_thresholds(config.monitoring.drift)
    results["shipyard_sketches"] = time_sketches(registry, thresholds)
    sketched = results["shipyard_sketches"]
    print(
        f"shipyard from sketches: opening the bundle {sketched['open_seconds']} s, whole range "
        f"{sketched['whole_range']['seconds']} s, {sketched['windows']['windows']} one-minute "
        f"windows {sketched['windows']['seconds']} s"
    )
    if arguments.row_path:
        results["log_read_seconds"] = round(time_log_read(registry), 3)
        print(f"read the log once (prediction_batch): {results['log_read_seconds']} s")
        results["shipyard_rows_windows"] = time_shipyard(registry, window_size, thresholds)
        results["shipyard_rows_single_window"] = time_shipyard(
            registry, arguments.rows, thresholds
        )
        print(
            f"shipyard from rows: windows of {window_size} "
            f"{results['shipyard_rows_windows']['seconds']} s, one window "
            f"{results['shipyard_rows_single_window']['seconds']} s"
        )

    if not arguments.skip_evidently:
        evidently = run_evidently(
            arguments.evidently_python,
            reference_path,
            current_path,
            window_size,
            arguments.evidently_windows,
        )
        results["evidently"] = evidently
        if "error" not in evidently:
            report_ratios(results, evidently)
        else:
            print(f"evidently failed: {evidently['error']}")

    results["uptime_after"] = uptime()
    print(results["uptime_after"])
    (workdir / "results.json").write_text(json.dumps(results, indent=1, default=str))
    summary = {key: value for key, value in results.items() if key != "comparison"}
    summary = json.loads(json.dumps(summary, default=str))  # a copy to trim for printing
    summary.get("shipyard_sketches", {}).get("whole_range", {}).pop("report", None)
    for key in ("shipyard_rows_windows", "shipyard_rows_single_window"):
        summary.get(key, {}).pop("latest_window", None)
    print(json.dumps(summary, indent=1, default=str)[:6000])
    if "comparison" in results:
        for row in results["comparison"]["columns"]:
            ours, theirs = row["shipyard"], row["evidently"]
            print(
                f"{row['column']:>12}  shipyard {ours['drifted']!s:>5} (psi {ours['psi']:.3f})"
                f"  evidently {theirs['drifted']!s:>5} ({theirs['method']} {theirs['score']:.4g})"
            )


def report_ratios(results: dict[str, Any], evidently: dict[str, Any]) -> None:
    """Add the verdict comparison and Evidently's times over shipyard's to ``results``."""
    sketched = results["shipyard_sketches"]
    whole, windows = sketched["whole_range"], sketched["windows"]
    results["comparison"] = compare(whole["report"], evidently)
    total = evidently["load_seconds"] + evidently["run_seconds"]
    ratios = {
        "evidently_run_over_shipyard_whole_range": round(
            evidently["run_seconds"] / whole["seconds"], 1
        ),
        "evidently_load_and_run_over_shipyard_whole_range": round(total / whole["seconds"], 1),
        "evidently_load_and_run_over_shipyard_open_and_whole_range": round(
            total / (sketched["open_seconds"] + whole["seconds"]), 1
        ),
        "evidently_run_over_shipyard_windows": round(
            evidently["run_seconds"] / windows["seconds"], 1
        ),
    }
    if evidently["window_seconds"]:
        # Evidently has no incremental windows: each window is one more Report run.
        each = float(np.mean(evidently["window_seconds"]))
        results["evidently_windows_extrapolated"] = {
            "windows_timed": len(evidently["window_seconds"]),
            "mean_seconds_per_window": round(each, 3),
            "windows": windows["windows"],
            "seconds": round(each * windows["windows"], 1),
        }
        ratios["evidently_windows_extrapolated_over_shipyard_windows"] = round(
            each * windows["windows"] / windows["seconds"], 1
        )
    results["ratios"] = ratios
    print(
        f"evidently: load {evidently['load_seconds']} s, report {evidently['run_seconds']} s; "
        f"ratios {ratios}"
    )


if __name__ == "__main__":
    main()
