"""Time-budget benchmark: does ``shipyard train --time-budget B`` finish in about B seconds?

Runs the real command line (a subprocess, from process start to exit) on Adult, California
housing and COMPAS at each budget, once on the machine as it is and once with two busy-loop
processes competing for the CPU, and reports wall time / budget per cell (the aim is 1.1 or
less), whether the leaderboard has a linear baseline, and where the time went (the run's
``timings``).

    .venv/bin/python benchmarks/quality/budget.py --datasets adult california --budgets 20 60

The datasets folder defaults to ``../shared/datasets`` relative to the repository root.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from datasets import LOADERS, Split

REPO = Path(__file__).resolve().parents[2]
SENSITIVE = {"adult": ["sex", "race"], "compas": ["race", "sex"], "california": []}
LOADS = {"as-is": 0, "busy2": 2}


def _spin() -> None:
    while True:
        pass


def shipyard_command() -> list[str]:
    """The ``shipyard`` script of this Python's environment."""
    script = Path(sys.executable).parent / "shipyard"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from shipyard.cli import main; main()"]


def run_cell(split: Split, train: Path, test: Path, budget: float, home: Path) -> dict:
    command = [
        *shipyard_command(),
        "train",
        "--data",
        str(train),
        "--test-data",
        str(test),
        "--target",
        split.target,
        "--name",
        f"budget-{split.name}",
        "--metric",
        split.metric,
        "--time-budget",
        str(budget),
        "--home",
        str(home),
        "--json",
    ]
    for column in SENSITIVE[split.name]:
        command += ["--sensitive", column]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    cell = {"dataset": split.name, "budget": budget, "wall": round(wall, 1)}
    cell["ratio"] = round(wall / budget, 2)
    if done.returncode != 0:
        # The error is the stderr from "Error:" on (the console wraps it at its width).
        error = done.stderr[done.stderr.rfind("Error:") :] if "Error:" in done.stderr else ""
        return {**cell, "error": " ".join(error.split()) or f"exit {done.returncode}"}
    run = json.loads(done.stdout)
    rows = {row["name"]: row for row in run["leaderboard"]}
    linear = rows.get("linear", {})
    return {
        **cell,
        "baseline": linear.get("status") == "ok",
        "baseline_note": linear.get("message") or "",
        "best": run["best"],
        "metric": round(run["test_metrics"][split.metric]["value"], 4),
        "scored": sum(row.get("trials") or 0 for row in run["leaderboard"] if row["name"] in rows),
        "timings": run.get("timings", {}),
        "notes": [note for note in run["notes"] if "time budget" in note],
    }


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO / ".." / "shared" / "datasets")
    parser.add_argument("--datasets", nargs="+", default=sorted(LOADERS), choices=sorted(LOADERS))
    parser.add_argument("--budgets", nargs="+", type=float, default=[20.0, 60.0, 300.0])
    parser.add_argument("--loads", nargs="+", default=list(LOADS), choices=list(LOADS))
    parser.add_argument("--out", type=Path, help="Also write the cells as JSON lines here.")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="shipyard-budget-"))
    cells = []
    for name in args.datasets:
        split = LOADERS[name](args.data_dir)
        train, test = split.write(folder / "data")
        for load in args.loads:
            for budget in args.budgets:
                spinners = [multiprocessing.Process(target=_spin) for _ in range(LOADS[load])]
                for spinner in spinners:
                    spinner.start()
                before = uptime()
                try:
                    cell = run_cell(split, train, test, budget, folder / f"home-{load}")
                finally:
                    for spinner in spinners:
                        spinner.terminate()
                        spinner.join()
                cell = {"load": load, **cell, "uptime_before": before}
                cells.append(cell)
                print(json.dumps(cell), flush=True)
                if args.out:
                    with args.out.open("a", encoding="utf-8") as out:
                        out.write(json.dumps(cell) + "\n")
    print("\n| dataset | load | budget s | wall s | wall/budget | linear baseline | best |")
    print("|---|---|---:|---:|---:|---|---|")
    for cell in cells:
        baseline = "error" if "error" in cell else ("yes" if cell["baseline"] else "no")
        print(
            f"| {cell['dataset']} | {cell['load']} | {cell['budget']:g} | {cell['wall']} | "
            f"{cell['ratio']} | {baseline} | {cell.get('best', cell.get('error', ''))} |"
        )


if __name__ == "__main__":
    main()
