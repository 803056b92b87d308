"""Soak: 64 clients for 60 s against ``shipyard serve``; 0 errors and memory growth under 10%.

Memory is the server's resident set size (from /proc) after a warm-up and after the soak.
Run in the benchmark venv: python benchmarks/serving/soak.py WORKDIR [--duration 60] [--wrk W]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from run import free_port, run_wrk, start, stop, targets, wait_ready, wrk_script


def rss_kib(pid: int) -> int:
    # The server runs under taskset, which execs it: the pid is the server's own.
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--wrk", default=os.environ.get("WRK", shutil.which("wrk") or "wrk"))
    arguments = parser.parse_args()
    workdir = arguments.workdir.resolve()
    target = targets(workdir, sys.executable)["shipyard"]
    port = free_port()
    process = start(target, port, workdir / "server-soak.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, target, process)
        script = wrk_script(target, workdir / "wrk-soak.lua")
        run_wrk([arguments.wrk], url + target["path"], script, arguments.connections, 5)
        before = rss_kib(process.pid)
        run = run_wrk(
            [arguments.wrk],
            url + target["path"],
            script,
            arguments.connections,
            arguments.duration,
        )
        after = rss_kib(process.pid)
    finally:
        stop(process)
    result = {
        **run,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "rss_growth_percent": round(100 * (after - before) / before, 2),
        "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
    }
    (workdir / "soak-results.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
