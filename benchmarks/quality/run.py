"""Quality benchmark: shipyard against FLAML and AutoGluon, same split, same time budget.

For each dataset and budget, every tool trains on the same training CSV, predicts the same test
CSV, and reports the test metric (ROC AUC for Adult and COMPAS, RMSE for California housing)
and its wall time. shipyard runs in this Python; the peers run through ``peer.py`` with the
Python given by ``--peer-python`` (they may need a separate virtual environment).

    .venv/bin/python benchmarks/quality/run.py --budgets 60 --datasets adult \
        --tools shipyard flaml --peer-python ../bench-venv/bin/python

The datasets folder defaults to ``../shared/datasets`` relative to the repository root.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from datasets import LOADERS, Split

REPO = Path(__file__).resolve().parents[2]


def run_shipyard(split: Split, train: Path, test: Path, budget: float, home: Path) -> dict:
    from shipyard.config import load_config_dict
    from shipyard.pipeline import train as shipyard_train

    config = load_config_dict(
        {
            "name": f"bench-{split.name}",
            "metric": split.metric,
            "data": {"source": str(train), "test_source": str(test), "target": split.target},
            "training": {"time_budget": budget},
            "evaluation": {"bootstrap_samples": 200},
            "registry": {"home": str(home)},
        }
    )
    started = time.perf_counter()
    run = shipyard_train(config)
    seconds = time.perf_counter() - started
    return {
        "metric": run.test_metrics[split.metric].value,
        "seconds": seconds,
        "best": run.best,
        "verdict": run.verdict.get("summary"),
        "timings": run.timings,
        # What each family did, so that a leaderboard of one explains itself.
        "families": {
            row.name: (
                f"{row.status} {row.cv_mean:.4f}"
                if row.status == "ok"
                else f"{row.status}: {row.message}"
            )
            for row in run.leaderboard
        },
    }


def run_peer(tool: str, python: str, split: Split, train: Path, test: Path, budget: float) -> dict:
    command = [
        python,
        str(Path(__file__).parent / "peer.py"),
        tool,
        str(train),
        str(test),
        split.target,
        split.task,
        str(budget),
    ]
    # The peers get the OpenMP wait policy shipyard sets for itself, so that the comparison
    # is between the searches, not between spinning and passive threads on a busy machine.
    environment = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=environment)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO / ".." / "shared" / "datasets")
    parser.add_argument("--datasets", nargs="+", default=sorted(LOADERS), choices=sorted(LOADERS))
    parser.add_argument("--budgets", nargs="+", type=float, default=[60.0, 300.0])
    parser.add_argument(
        "--tools", nargs="+", default=["shipyard", "flaml", "autogluon"],
        choices=["shipyard", "flaml", "autogluon"],
    )  # fmt: skip
    parser.add_argument("--peer-python", default=sys.executable)
    parser.add_argument("--out", type=Path, default=Path("quality-results.json"))
    args = parser.parse_args()

    results = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for name in args.datasets:
            split = LOADERS[name](args.data_dir)
            train, test = split.write(folder)
            for budget in args.budgets:
                for tool in args.tools:
                    load_before = uptime()
                    if tool == "shipyard":
                        outcome = run_shipyard(split, train, test, budget, folder / "home")
                    else:
                        outcome = run_peer(tool, args.peer_python, split, train, test, budget)
                    row = {
                        "dataset": name,
                        "metric_name": split.metric,
                        "budget": budget,
                        "tool": tool,
                        "load_before": load_before,
                        "load_after": uptime(),
                        **outcome,
                    }
                    results.append(row)
                    print(json.dumps(row), flush=True)
                    args.out.write_text(json.dumps(results, indent=1))
    print("\n| dataset | budget s | tool | test metric | wall s | best | load (1 min) |")
    print("|---|---|---|---|---|---|---|")
    for row in results:
        value = f"{row['metric']:.4f}" if "metric" in row else row.get("error", "")
        seconds = f"{row['seconds']:.0f}" if "seconds" in row else ""
        load = row["load_after"].split("load average:")[-1].split(",")[0].strip()
        print(
            f"| {row['dataset']} ({row['metric_name']}) | {row['budget']:g} | {row['tool']} | "
            f"{value} | {seconds} | {row.get('best', '')} | {load} |"
        )


if __name__ == "__main__":
    main()
