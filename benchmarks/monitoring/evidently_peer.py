"""Evidently's DataDriftPreset on a reference and a current Parquet file; print one JSON line.

Run with the Python of the environment where Evidently 0.7 is installed (it has its own
virtual environment), e.g.:

    ../evidently-venv/bin/python benchmarks/monitoring/evidently_peer.py \
        reference.parquet current.parquet temp,hum season,weathersit

The column types are given (numeric, then categorical, comma-separated) so that Evidently
types the columns as shipyard's contract does. ``load_seconds`` is reading both files and
wrapping them as Evidently datasets; ``run_seconds`` is ``Report.run``.
"""

from __future__ import annotations

import json
import sys
import time

import pandas as pd


def main() -> None:
    reference_path, current_path, numeric, categorical = sys.argv[1:5]
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
    current = Dataset.from_pandas(pd.read_parquet(current_path), data_definition=definition)
    load_seconds = time.perf_counter() - started

    started = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current, reference)
    run_seconds = time.perf_counter() - started

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
                "columns": columns,
            }
        )
    )


if __name__ == "__main__":
    main()
