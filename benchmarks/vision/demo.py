"""Time and quality of ``shipyard demo pneumonia``: each step, the leaderboard, the test AUC.

Runs the whole demo (train the three candidates, register, serve three X-rays, write their
saliency PNGs) in a temporary registry, printing each progress line with the seconds since the
start, then one JSON line: wall seconds, the load average before and after, the leaderboard,
the verdict, the test metrics and the parity gaps.

    PYTHONPATH=src .venv/bin/python benchmarks/vision/demo.py
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from shipyard.demos.pneumonia import run_pneumonia_demo


def main() -> None:
    started = time.monotonic()
    load_before = os.getloadavg()[0]

    def report(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}] {message}", flush=True)

    with tempfile.TemporaryDirectory() as home:
        result = run_pneumonia_demo(
            {"registry.home": home}, report=report, saliency_folder=Path(home) / "saliency"
        )
        run = result.run.as_dict()
    print(
        json.dumps(
            {
                "wall_s": round(time.monotonic() - started, 1),
                "load_before_after": [round(load_before, 1), round(os.getloadavg()[0], 1)],
                "best": run["best"],
                "leaderboard": [
                    {
                        key: row[key]
                        for key in (
                            "name",
                            "cv_mean",
                            "cv_low",
                            "cv_high",
                            "p_value_vs_best",
                            "fit_seconds",
                            "message",
                        )
                    }
                    for row in run["leaderboard"]
                ],
                "verdict": run["verdict"]["summary"],
                "test_metrics": run["test_metrics"],
                "parity": run["parity"],
                "notes": run["notes"],
            }
        )
    )


if __name__ == "__main__":
    main()
