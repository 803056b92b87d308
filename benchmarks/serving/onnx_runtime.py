"""ONNX Runtime against shipyard's compiled path, on the same registered version, same run.

The version is exported to one ONNX graph (``shipyard export onnx``'s builder, parity checked
here too) and scored both ways, alternating, --repeat times (medians reported):

- single record: the server's one-record path (``SingleRecordPath``: compiled record encoder,
  LightGBM's single-row C API) against ``OnnxPredictor`` on one record (cleaning, validation,
  then one ``InferenceSession.run``), over --single records one at a time;
- batch: ``Predictor.score_frame`` with the compiled tree kernel against
  ``OnnxPredictor.score_frame``, on --rows rows (Adult's test split repeated).

Run: python benchmarks/serving/onnx_runtime.py HOME REFERENCE [--single 2000]
     [--rows 200000] [--repeat 3]
(HOME: a registry folder holding a LightGBM or linear tabular version, e.g. adult:1)
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

from shipyard import datasets
from shipyard.deploy.onnx_graph import build_graph
from shipyard.registry.store import Registry
from shipyard.runtime.fast import SingleRecordPath
from shipyard.runtime.onnx_graph import OnnxGraph, OnnxPredictor
from shipyard.training.export import frame_to_records


def _timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("home", type=Path)
    parser.add_argument("reference")
    parser.add_argument("--single", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    registry = Registry(f"sqlite:///{options.home / 'registry.db'}", options.home / "artifacts")
    version = registry.resolve(options.reference)
    manifest = registry.verify(version.reference)
    native = registry.load_predictor(version.reference)
    if hasattr(native.scorer, "compile"):
        native.scorer.compile()
    graph = OnnxGraph(
        build_graph(version.bundle_path, manifest).SerializeToString(), native.preprocessor
    )
    onnx = OnnxPredictor(graph, native)

    test = datasets.load("adult").test.drop(columns=manifest["target"])
    records = frame_to_records(test.head(options.single))
    repeats = -(-options.rows // len(test))
    frame = pd.concat([test] * repeats, ignore_index=True).head(options.rows)
    frame = native.clean_frame(frame)
    gap = np.max(np.abs(onnx.score_frame(frame.head(5000)) - native.score_frame(frame.head(5000))))

    fast = SingleRecordPath(native)
    single = {"compiled": [], "onnx": []}
    batch = {"compiled": [], "onnx": []}
    for _ in range(options.repeat):
        single["compiled"].append(_timed(lambda: [fast.outputs(r) for r in records]))
        single["onnx"].append(_timed(lambda: [onnx.score_records([r]) for r in records]))
        batch["compiled"].append(_timed(lambda: native.score_frame(frame)))
        batch["onnx"].append(_timed(lambda: onnx.score_frame(frame)))

    print(f"version {version.reference} ({manifest['model']['family']}), max gap {gap:.2g}")
    print(f"load average {os.getloadavg()[0]:.2f}, {options.repeat} alternating repeats, medians")
    for name, runs, count, unit in (
        ("single record", single, len(records), "us/record"),
        ("batch", batch, len(frame), "rows/s"),
    ):
        compiled = statistics.median(runs["compiled"])
        onnx_time = statistics.median(runs["onnx"])
        times = (("compiled", compiled), ("onnx", onnx_time))
        if unit == "us/record":
            cells = [f"{path} {spent / count * 1e6:.1f} {unit}" for path, spent in times]
        else:
            cells = [f"{path} {count / spent:,.0f} {unit}" for path, spent in times]
        ratio = f"onnx/compiled {onnx_time / compiled:.2f}x time"
        print(f"{name} ({count}): {', '.join(cells)}, {ratio}")
    registry.close()


if __name__ == "__main__":
    main()
