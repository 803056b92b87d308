"""``shipyard serve --workers 2``: both workers start once, no child is killed and restarted."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as handle:
        handle.bind(("127.0.0.1", 0))
        return int(handle.getsockname()[1])


def _shipyard_command() -> list[str]:
    """The installed console script, as users start it (its spawned workers re-import it)."""
    script = Path(sys.executable).parent / "shipyard"
    if script.exists():
        return [sys.executable, str(script)]
    return [sys.executable, "-c", "from shipyard.cli import main; main()"]


def _wait_for_two_workers(url: str, log: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120  # generous: the machine may be busy
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        if log.read_text().count("Application startup complete") >= 2:
            httpx.get(f"{url}/ready", timeout=5).raise_for_status()
            return
        time.sleep(0.2)
    raise AssertionError(f"two workers did not start in time:\n{log.read_text()}")


def test_a_worker_reaches_its_health_check_without_the_serving_stack():
    # A spawned worker unpickles its log config (shipyard.serving.logs' formatter) before it can
    # answer uvicorn's health check; loading the app, the registry and numpy there made slow
    # machines miss the check, and uvicorn killed the worker ("Child process ... died").
    code = (
        "import json, sys, shipyard.serving.logs; print(json.dumps(sorted(m for m in "
        "('shipyard.serving.app', 'shipyard.serving.server', 'numpy', 'sqlalchemy') "
        "if m in sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_two_workers_start_cleanly_and_answer(fitted_adult, tmp_path):
    home = Path(fitted_adult.registry.artifacts).parent
    port = _free_port()
    log = tmp_path / "server.log"
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [
        *_shipyard_command(),
        "serve",
        "adult",
        "--home",
        str(home),
        "--port",
        str(port),
        "--workers",
        "2",
        "--no-auth",
        "--poll-seconds",
        "0",
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=environment)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_two_workers(url, log, process)
        with httpx.Client(timeout=30) as client:
            for record in fitted_adult.records[:40]:  # new connections spread over both workers
                answer = client.post(
                    f"{url}/v1/models/adult/predict", json=record, headers={"Connection": "close"}
                )
                assert answer.status_code == 200, answer.text
        text = log.read_text()
        workers = set(re.findall(r"Started server process \[(\d+)\]", text))
        assert len(workers) == 2, text
        for pid in workers:
            os.kill(int(pid), 0)  # both are still running: raises when a worker is gone
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    text = log.read_text()
    assert "died" not in text, text
    assert "not ready in time" not in text, text
