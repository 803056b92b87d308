"""Profile one file with ydata-profiling; print a JSON line with the time and peak memory.

Run with the Python of the environment where ydata-profiling is installed (it pins its own
versions of pandas, numpy and others, so it lives in a virtual environment of its own)::

    ydata-venv/bin/python benchmarks/profile/peer.py FILE minimal|full

The clock covers reading the file with pandas and ``ProfileReport(...).get_description()``:
the statistics, not the HTML rendering (shipyard's profile renders nothing either).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

# No usage analytics are sent from a benchmark (the machine may have no network at all).
os.environ.setdefault("YDATA_PROFILING_NO_ANALYTICS", "True")

import pandas as pd
from ydata_profiling import ProfileReport


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    path, mode = sys.argv[1:3]
    started, processor = time.perf_counter(), cpu_seconds()
    frame = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)
    report = ProfileReport(frame, minimal=mode == "minimal", progress_bar=False)
    description = report.get_description()
    seconds, processor = time.perf_counter() - started, cpu_seconds() - processor
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    detail = f"ydata-profiling {mode}: {len(description.variables)} variables"
    result = {"name": f"ydata-{mode}", "seconds": seconds, "cpu_seconds": processor}
    result |= {"peak_bytes": peak, "detail": detail}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
