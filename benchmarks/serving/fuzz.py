"""Fuzz the server from its OpenAPI document with schemathesis, every check on.

Starts ``shipyard serve`` (API key on, predictions logged, so the feedback route is mounted) on
the prepared model and runs schemathesis with ``--checks all``: no 5xx, every status code,
content type, header and body as documented, schema-valid requests accepted and invalid ones
refused, 405 with ``Allow`` for undeclared methods, 401 without a key. MAX_EXAMPLES cases per
operation and phase (20 operations: several thousand cases at the default 100). Writes the
summary to WORKDIR/fuzz-results.txt and exits with schemathesis's exit code.
Run in the benchmark venv (schemathesis installed there):
  python benchmarks/serving/fuzz.py WORKDIR [--max-examples 100]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from run import free_port, start, stop, targets, wait_ready


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--max-examples", type=int, default=100)
    arguments = parser.parse_args()
    workdir = arguments.workdir.resolve()
    target = targets(workdir, sys.executable)["shipyard"]
    port = free_port()
    process = start(target, port, workdir / "server-fuzz.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, target, process)
        key = target["headers"]["Authorization"]
        command = [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"{url}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            str(arguments.max_examples),
            "-H",
            f"Authorization: {key}",
            "--generation-deterministic",
            "--report",
            "junit",
            "--report-dir",
            str(workdir / "fuzz-report"),
        ]
        result = subprocess.run(command, capture_output=True, text=True)
    finally:
        stop(process)
    (workdir / "fuzz-results.txt").write_text(result.stdout + result.stderr)
    print(result.stdout[-4000:])
    print("schemathesis exit code", result.returncode)
    sys.exit(result.returncode)


if __name__ == "__main__":
    main()
