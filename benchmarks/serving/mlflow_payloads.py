"""Check /invocations with the exact bodies MLflow's own code builds, against MLflow itself.

The bodies come from ``mlflow.models.convert_input_example_to_serving_input`` (what
``mlflow models predict`` and the docs' serving examples send) for a DataFrame, a column dict
and a list of records, plus ``{"dataframe_records": ...}``. Each is posted to
``shipyard serve`` and to ``mlflow models serve`` on the same model; the predictions must be
equal. Run in the benchmark venv: python benchmarks/serving/mlflow_payloads.py WORKDIR
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from mlflow.models import convert_input_example_to_serving_input
from run import free_port, start, stop, targets, wait_ready


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    arguments = parser.parse_args()
    workdir = arguments.workdir.resolve()
    frame = pd.read_parquet(workdir / "test-1000.parquet").head(20)
    bodies = {
        "DataFrame": convert_input_example_to_serving_input(frame),
        "dict of columns": convert_input_example_to_serving_input(frame.to_dict(orient="list")),
        "dataframe_records": json.dumps(
            {"dataframe_records": json.loads(frame.to_json(orient="records"))}
        ),
    }
    catalogue = targets(workdir, sys.executable)
    answers: dict[str, dict[str, Any]] = {}
    for name in ("shipyard", "mlflow"):
        target = catalogue[name]
        port = free_port()
        process = start(target, port, workdir / f"server-payloads-{name}.log", sys.executable)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, target, process)
            answers[name] = {}
            for label, body in bodies.items():
                response = httpx.post(
                    url + "/invocations",
                    content=body,
                    headers={**target["headers"], "Content-Type": "application/json"},
                    timeout=30,
                )
                answers[name][label] = (response.status_code, response.json())
        finally:
            stop(process)
    report = {"bodies": {label: json.loads(body) for label, body in bodies.items()}, **answers}
    (workdir / "mlflow-payloads.json").write_text(json.dumps(report, indent=2))
    classes = ["<=50K", ">50K"]  # the pipeline was fitted on 0/1, shipyard answers the labels
    for label in bodies:
        (ours_status, ours), (theirs_status, theirs) = (
            answers["shipyard"][label],
            answers["mlflow"][label],
        )
        same = (
            ours_status == theirs_status == 200
            and [classes.index(item) for item in ours["predictions"]] == theirs["predictions"]
        )
        print(f"{label:18s} shipyard {ours_status}  mlflow {theirs_status}  same answers: {same}")


if __name__ == "__main__":
    main()
