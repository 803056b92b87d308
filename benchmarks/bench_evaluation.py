"""Cost of the evaluation suite: the demo's Adult pipeline trained with and without it.

Run: .venv/bin/python benchmarks/bench_evaluation.py [HOME]

Trains LightGBM on the bundled Adult data (32,561 training rows, the 16,281-row official test
file) twice with the same seed, first with `evaluation.report: false`, then with the suite on,
and prints the wall time of each run and of the suite itself, with the machine load.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time

from shipyard.demos.adult import demo_config
from shipyard.pipeline import train


def run(report: bool, home: str) -> tuple[float, float | None]:
    shutil.rmtree(home, ignore_errors=True)
    config = demo_config(
        {
            "registry.home": home,
            "training.cv_folds": 2,
            "training.models": ["lightgbm"],
            "evaluation.report": report,
        }
    )
    marks: dict[str, float] = {}
    started = time.perf_counter()

    def note(message: str) -> None:
        marks.setdefault(message.split(":")[0], time.perf_counter() - started)

    train(config, report=note)
    total = time.perf_counter() - started
    suite_start = next((v for k, v in marks.items() if k.startswith("evaluation suite")), None)
    end = min(v for k, v in marks.items() if k.startswith(("registered", "not promoted")))
    return total, (end - suite_start) if suite_start is not None else None


def main() -> None:
    home = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp()
    print(f"load before: {os.getloadavg()[0]:.2f}")
    without, _ = run(False, home)
    with_suite, suite = run(True, home)
    print(f"load after: {os.getloadavg()[0]:.2f}")
    print(f"train without the suite: {without:.1f} s")
    print(f"train with the suite:    {with_suite:.1f} s (suite itself {suite:.1f} s)")


if __name__ == "__main__":
    main()
