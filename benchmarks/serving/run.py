"""Single-record throughput and latency: shipyard against its peers, in one invocation.

Each target serves the same Adult model (see prepare.py) pinned to CPU 0 with ``taskset``; wrk
runs pinned to CPU 1 and POSTs one JSON record per request, at 32 and at 1 concurrent
connections, for DURATION seconds each. Every target's answer is checked before it is loaded.

Targets: shipyard (``shipyard serve``, API key on, monitoring on: durable prediction log with
sketches) on uvicorn and on granian (``--server granian``), the same with monitoring off
(``shipyard-unlogged``: no prediction log), the empty endpoint on the same stack (Starlette on
uvicorn, on granian's ASGI, and a bare RSGI app on granian), FastAPI + the scikit-learn
pipeline, ``mlflow models serve``, BentoML plain and with adaptive batching. Peers need bentoml,
mlflow and fastapi, and the granian targets granian, installed in the interpreter given by
--python (a separate venv; they are not shipyard dependencies).

Run:
  python benchmarks/serving/run.py WORKDIR --python BENCH_VENV/bin/python --duration 20 \
      [--targets shipyard,empty,...] [--wrk PATH]
Writes WORKDIR/serving-results.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SERVER_CPU, LOAD_CPU = "0", "1"


def free_port() -> int:
    with socket.socket() as handle:
        handle.bind(("127.0.0.1", 0))
        return int(handle.getsockname()[1])


def targets(workdir: Path, python: str) -> dict[str, dict[str, Any]]:
    record = json.loads((workdir / "record.json").read_text())
    key = (workdir / "api-key.txt").read_text().strip()
    shipyard = str(Path(python).parent / "shipyard")
    bentoml = str(Path(python).parent / "bentoml")
    mlflow = str(Path(python).parent / "mlflow")
    env = {"WORKDIR": str(workdir)}
    # The same server with monitoring off: no prediction log (and so no sketches).
    unlogged = workdir / "unlogged.yaml"
    unlogged.write_text(
        "name: adult\ndata: {source: unused.csv, target: income}\n"
        "serving: {log_predictions: false}\n"
    )
    return {
        "shipyard": {
            "command": [
                shipyard,
                "serve",
                "adult",
                "--home",
                str(workdir / "home"),
                "--port",
                "{port}",
                "--poll-seconds",
                "0",
            ],
            "path": "/v1/models/adult/predict",
            "body": record,
            "headers": {"Authorization": f"Bearer {key}"},
            "env": {},
        },
        "shipyard-unlogged": {
            "command": [
                shipyard,
                "serve",
                "adult",
                "--home",
                str(workdir / "home"),
                "--port",
                "{port}",
                "--poll-seconds",
                "0",
                "--config",
                str(unlogged),
            ],
            "path": "/v1/models/adult/predict",
            "body": record,
            "headers": {"Authorization": f"Bearer {key}"},
            "env": {},
        },
        "shipyard-v2": {
            "command": [
                shipyard,
                "serve",
                "adult",
                "--home",
                str(workdir / "home"),
                "--port",
                "{port}",
                "--poll-seconds",
                "0",
            ],
            "path": "/v2/models/adult/infer",
            "body": {
                "inputs": [
                    {"name": name, "shape": [1], "datatype": _v2_type(value), "data": [value]}
                    for name, value in record.items()
                ]
            },
            "headers": {"Authorization": f"Bearer {key}"},
            "env": {},
        },
        "shipyard-granian": {
            "command": [
                shipyard,
                "serve",
                "adult",
                "--home",
                str(workdir / "home"),
                "--port",
                "{port}",
                "--poll-seconds",
                "0",
                "--server",
                "granian",
            ],
            "path": "/v1/models/adult/predict",
            "body": record,
            "headers": {"Authorization": f"Bearer {key}"},
            "env": {},
        },
        "empty": {
            "command": [python, str(HERE / "empty_app.py"), "{port}"],
            "path": "/predict",
            "body": record,
            "headers": {},
            "env": {},
        },
        "empty-granian": {
            "command": [*_granian(python, "asgi"), "empty_app:app"],
            "cwd": str(HERE),
            "path": "/predict",
            "body": record,
            "headers": {},
            "env": {},
        },
        "empty-rsgi": {
            "command": [*_granian(python, "rsgi"), "empty_app:rsgi_app"],
            "cwd": str(HERE),
            "path": "/predict",
            "body": record,
            "headers": {},
            "env": {},
        },
        "fastapi-sklearn": {
            "command": [python, str(HERE / "peers" / "fastapi_app.py"), "{port}"],
            "path": "/predict",
            "body": record,
            "headers": {},
            "env": env,
        },
        "mlflow": {
            "command": [
                mlflow,
                "models",
                "serve",
                "-m",
                str(workdir / "mlflow-model"),
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                "{port}",
                "-w",
                "1",
            ],
            "path": "/invocations",
            "body": {"dataframe_records": [record]},
            "headers": {},
            "env": env,
        },
        "bentoml": {
            "command": [
                bentoml,
                "serve",
                "bento_service:AdultService",
                "--port",
                "{port}",
                "--host",
                "127.0.0.1",
            ],
            "cwd": str(HERE / "peers"),
            "path": "/predict",
            "body": {"record": record},
            "headers": {},
            "env": {**env, "BENTO_BATCHING": "0"},
        },
        "bentoml-batching": {
            "command": [
                bentoml,
                "serve",
                "bento_service:AdultService",
                "--port",
                "{port}",
                "--host",
                "127.0.0.1",
            ],
            "cwd": str(HERE / "peers"),
            "path": "/predict",
            "body": {"records": [record]},
            "headers": {},
            "env": {**env, "BENTO_BATCHING": "1"},
        },
    }


def _granian(python: str, interface: str) -> list[str]:
    """granian's command line for one process on one thread, logging warnings only."""
    return [
        python,
        "-m",
        "granian",
        "--interface",
        interface,
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--workers",
        "1",
        "--log-level",
        "warning",
    ]


def _v2_type(value: Any) -> str:
    if isinstance(value, str):
        return "BYTES"
    return "INT64" if isinstance(value, int) else "FP64"


def start(
    target: dict[str, Any], port: int, log: Path, python: str = sys.executable
) -> subprocess.Popen[bytes]:
    command = [
        "taskset",
        "-c",
        SERVER_CPU,
        *(part.replace("{port}", str(port)) for part in target["command"]),
    ]
    handle = log.open("wb")
    return subprocess.Popen(
        command,
        stdout=handle,
        stderr=subprocess.STDOUT,
        # The venv's bin first: peers start helpers by name (mlflow runs "uvicorn").
        env={
            **os.environ,
            **target["env"],
            "PATH": f"{Path(python).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        },
        cwd=target.get("cwd"),
        start_new_session=True,
    )


def wait_ready(url: str, target: dict[str, Any], process: subprocess.Popen[bytes]) -> Any:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            response = httpx.post(
                url + target["path"], json=target["body"], headers=target["headers"], timeout=10
            )
            if response.status_code == 200:
                return response.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError("server did not answer within 180 s")


def stop(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except ProcessLookupError:
        process.wait()
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wrk_script(target: dict[str, Any], path: Path) -> Path:
    lines = [
        'wrk.method = "POST"',
        f"wrk.body = {json.dumps(json.dumps(target['body']))}",
        'wrk.headers["Content-Type"] = "application/json"',
    ]
    for name, value in target["headers"].items():
        lines.append(f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}")
    path.write_text("\n".join(lines) + "\n")
    return path


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def run_wrk(wrk: list[str], url: str, script: Path, connections: int, duration: int) -> dict:
    command = [
        "taskset",
        "-c",
        LOAD_CPU,
        *wrk,
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result: dict[str, Any] = {"connections": connections, "duration_s": duration}
    result["requests_per_s"] = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    for percentile in ("50", "90", "99"):
        match = re.search(rf"\s{percentile}(?:\.000)?%\s+([\d.]+\w+)", output)
        result[f"p{percentile}_ms"] = _ms(match.group(1)) if match else None
    total = re.search(r"(\d+) requests in", output)
    result["requests"] = int(total.group(1)) if total else None
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    result["non_2xx"] = int(non_2xx.group(1)) if non_2xx else 0
    result["socket_errors"] = sum(map(int, errors.groups())) if errors else 0
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--python", default=sys.executable, help="benchmark venv interpreter")
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--output", default="serving-results.json", help="file in WORKDIR")
    parser.add_argument("--connections", default="32,1")
    parser.add_argument(
        "--targets",
        default="shipyard,shipyard-granian,shipyard-unlogged,shipyard-v2,empty,empty-granian,"
        "empty-rsgi,"
        "fastapi-sklearn,mlflow,bentoml,bentoml-batching",
    )
    parser.add_argument(
        "--wrk",
        default=os.environ.get("WRK", shutil.which("wrk") or "wrk"),
        help="wrk binary (or a wrapper script)",
    )
    arguments = parser.parse_args()
    workdir = arguments.workdir.resolve()
    catalogue = targets(workdir, arguments.python)
    results: dict[str, Any] = {
        "uptime_before": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "cpus": os.cpu_count(),
        "targets": {},
    }
    for name in arguments.targets.split(","):
        target = catalogue[name]
        port = free_port()
        log = workdir / f"server-{name}.log"
        process = start(target, port, log, arguments.python)
        url = f"http://127.0.0.1:{port}"
        entry: dict[str, Any] = {"path": target["path"]}
        try:
            entry["answer"] = wait_ready(url, target, process)
            script = wrk_script(target, workdir / f"wrk-{name}.lua")
            # Warm up (imports, caches, first-request costs) before measuring.
            run_wrk([arguments.wrk], url + target["path"], script, 8, 2)
            entry["runs"] = [
                run_wrk([arguments.wrk], url + target["path"], script, int(c), arguments.duration)
                for c in arguments.connections.split(",")
            ]
        except Exception as error:  # record and go on with the next target
            entry["error"] = f"{error.__class__.__name__}: {error}"
        finally:
            stop(process)
        results["targets"][name] = entry
        print(name, json.dumps(entry.get("runs", entry.get("error"))), flush=True)
    results["uptime_after"] = subprocess.run(
        ["uptime"], capture_output=True, text=True
    ).stdout.strip()
    (workdir / arguments.output).write_text(json.dumps(results, indent=2))
    print(markdown(results))


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "| target | clients | req/s | p50 ms | p99 ms | non-2xx | socket errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, entry in results["targets"].items():
        for run in entry.get("runs", []):
            lines.append(
                f"| {name} | {run['connections']} | {run['requests_per_s']:.0f} | "
                f"{run['p50_ms']:.2f} | {run['p99_ms']:.2f} | {run['non_2xx']} | "
                f"{run['socket_errors']} |"
            )
        if "error" in entry:
            lines.append(f"| {name} | - | failed: {entry['error']} | | | | |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
