"""Prediction log durability: throughput and latency of ``durable`` against ``async`` logging.

The same model (see prepare.py) is served by ``shipyard serve`` twice, once per value of
``monitoring.log_durability``, pinned to CPU 0; wrk (CPU 1) POSTs one JSON record per request
to the own API with N connections for DURATION seconds, after a 2 s warm-up. In ``durable``
mode each answer waits for the commit of the batch holding its log row (group commit); in
``async`` mode rows are queued and written in the background. After each run the rows the
server logged are counted: in durable mode every 200 has its row.

Run with the project's interpreter (wrk on the PATH or --wrk):
  python benchmarks/serving/durability.py WORKDIR [--duration 15] [--connections 32] [--rounds 1]
Writes WORKDIR/durability-results.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from run import free_port, run_wrk, start, stop, targets, wait_ready, wrk_script

MODES = ("async", "durable")


def mode_target(workdir: Path, mode: str) -> dict[str, Any]:
    """The shipyard target of run.py, with a config file that sets the log's durability."""
    target = dict(targets(workdir, sys.executable)["shipyard"])
    config = workdir / f"durability-{mode}.yaml"
    config.write_text(
        "name: adult\n"
        "data: {source: unused.csv, target: income}\n"
        f"monitoring: {{log_durability: {mode}, drift_refresh_seconds: 0}}\n"
    )
    target["command"] = [*target["command"], "--config", str(config)]
    return target


def logged_rows(workdir: Path) -> int:
    with sqlite3.connect(workdir / "home" / "registry.db") as connection:
        return int(connection.execute("SELECT count(*) FROM shipyard_predictions").fetchone()[0])


def measure(workdir: Path, mode: str, wrk: str, connections: int, duration: int) -> dict:
    target = mode_target(workdir, mode)
    port = free_port()
    process = start(target, port, workdir / f"server-durability-{mode}.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, target, process)
        script = wrk_script(target, workdir / "wrk-durability.lua")
        run_wrk([wrk], url + target["path"], script, connections, 2)  # warm-up
        before = logged_rows(workdir)
        result = run_wrk([wrk], url + target["path"], script, connections, duration)
    finally:
        stop(process)  # SIGTERM: the server writes what is queued before it exits
    result["logged_rows"] = logged_rows(workdir) - before
    return {"mode": mode, **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1, help="async then durable, repeated")
    parser.add_argument("--wrk", default=os.environ.get("WRK", shutil.which("wrk") or "wrk"))
    arguments = parser.parse_args()
    workdir = arguments.workdir.resolve()

    def uptime() -> str:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()

    results: dict[str, Any] = {"uptime_before": uptime(), "cpus": os.cpu_count(), "runs": []}
    for _ in range(arguments.rounds):
        for mode in MODES:
            run = measure(workdir, mode, arguments.wrk, arguments.connections, arguments.duration)
            results["runs"].append(run)
            print(json.dumps(run), flush=True)
    results["uptime_after"] = uptime()
    (workdir / "durability-results.json").write_text(json.dumps(results, indent=2))
    print(markdown(results))


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "| mode | clients | req/s | p50 ms | p99 ms | non-2xx | requests | rows logged |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in results["runs"]:
        lines.append(
            f"| {run['mode']} | {run['connections']} | {run['requests_per_s']:,.0f} | "
            f"{run['p50_ms']:.1f} | {run['p99_ms']:.1f} | {run['non_2xx']} | "
            f"{run['requests']:,} | {run['logged_rows']:,} |"
        )
    lines.append(f"\n{results['uptime_before']}  ->  {results['uptime_after']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
