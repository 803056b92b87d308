"""Spam demo quality: test F1 of ``shipyard demo spam``, alone or beside busy processes.

Runs the whole demo (train, register, serve, call) in a temporary registry and prints, as one
JSON line per run, the shipped family, the test F1 with its bootstrap interval, how many
settings the search scored, the wall and CPU seconds, the load average before and after, and
the SHA-256 of the exported model (equal hashes: the same model). ``--busy N`` starts N
processes that spin on a CPU core for the whole run, to check that a busy machine gives the
same model when the search is bound by its trial count.

    .venv/bin/python benchmarks/spam/run.py            # the machine as it is
    .venv/bin/python benchmarks/spam/run.py --busy 2   # two processes competing for the cores
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def busy_processes(count: int) -> list[subprocess.Popen[bytes]]:
    """Start ``count`` processes that each keep one core busy until killed."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def run_once(seed: int | None) -> dict[str, Any]:
    """Run the demo in a temporary registry; return what the benchmark records."""
    from shipyard.demos.spam import run_spam_demo

    with tempfile.TemporaryDirectory() as home:
        overrides: dict[str, Any] = {"registry.home": home}
        if seed is not None:
            overrides["seed"] = seed
        load_before = os.getloadavg()[0]
        wall, cpu = time.perf_counter(), time.process_time()
        result = run_spam_demo(overrides)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        run = result.run
        model = Path(run.version.bundle_path) / "text_model.json"
        f1 = run.test_metrics["f1"]
        return {
            "shipped": run.best,
            "f1": round(f1.value, 4),
            "f1_interval": [round(f1.low, 4), round(f1.high, 4)],
            "settings_scored": sum(row.trials for row in run.leaderboard),
            "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1),
            "load_before": round(load_before, 2),
            "load_after": round(os.getloadavg()[0], 2),
            "model_sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", type=int, default=0, help="busy-loop processes to start")
    parser.add_argument("--runs", type=int, default=1, help="how many demo runs")
    parser.add_argument("--seed", type=int, default=None, help="override the demo's seed")
    args = parser.parse_args()
    spinners = busy_processes(args.busy)
    try:
        for _ in range(args.runs):
            print(json.dumps({"busy": args.busy, **run_once(args.seed)}), flush=True)
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


if __name__ == "__main__":
    main()
