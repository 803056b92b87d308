"""Evidently's DataDriftPreset on a reference and a current Parquet file; print one JSON line.

Run with the Python of the environment where Evidently 0.7 is installed (it has its own
virtual environment), e.g.:

    ../evidently-venv/bin/python benchmarks/monitoring/evidently_peer.py \
        reference.parquet current.parquet temp,hum season,weathersit [WINDOW_SIZE WINDOWS]

The column types are given (numeric, then categorical, comma-separated) so that Evidently
types the columns as shipyard's contract does. ``load_seconds`` is reading both files and
wrapping them as Evidently datasets; ``run_seconds`` is ``Report.run``. With WINDOW_SIZE and
WINDOWS, the preset also runs on each of the first WINDOWS slices of WINDOW_SIZE current rows
(shipyard's count windows), and ``window_seconds`` lists how long each took.
"""

from __future__ import annotations

import json
import sys
import time

import pandas as pd


def main() -> None:
    reference_path, current_path, numeric, categorical = sys.argv[1:5]
    window_size, windows = (int(sys.argv[5]), int(sys.argv[6])) if len(sys.argv) > 6 else (0, 0)
    numeric_columns = [name for name in numeric.split(",") if name]
    categorical_columns = [name for name in categorical.split(",") if name]

    import evidently
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    started = time.perf_counter()
    definition = DataDefinition(
        numerical_columns=numeric_columns, categorical_columns=categorical_columns
    )
    reference = Dataset.from_pandas(pd.read_parquet(reference_path), data_definition=definition)
    current_frame = pd.read_parquet(current_path)
    current = Dataset.from_pandas(current_frame, data_definition=definition)
    load_seconds = time.perf_counter() - started

    started = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current, reference)
    run_seconds = time.perf_counter() - started

    window_seconds = []
    for start in range(0, window_size * windows, window_size):
        window = current_frame.iloc[start : start + window_size].reset_index(drop=True)
        started = time.perf_counter()
        Report([DataDriftPreset()]).run(
            Dataset.from_pandas(window, data_definition=definition), reference
        )
        window_seconds.append(round(time.perf_counter() - started, 3))

    columns = {}
    share = None
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith("DriftedColumnsCount"):
            share = metric["value"]
            continue
        if not config["type"].endswith("ValueDrift"):
            continue
        method, threshold, score = config["method"], config["threshold"], metric["value"]
        # p-value tests flag below the threshold, distances at or above it (evidently's rule).
        drifted = score < threshold if "p_value" in method else score >= threshold
        columns[config["column"]] = {
            "method": method,
            "threshold": threshold,
            "score": score,
            "drifted": bool(drifted),
        }
    print(
        json.dumps(
            {
                "evidently": evidently.__version__,
                "pandas": pd.__version__,
                "load_seconds": round(load_seconds, 3),
                "run_seconds": round(run_seconds, 3),
                "drifted_columns": share,
                "window_size": window_size,
                "window_seconds": window_seconds,
                "columns": columns,
            }
        )
    )


if __name__ == "__main__":
    main()
