"""``shipyard serve --server granian``: the same app, served by granian over a real socket."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("granian")


def _free_port() -> int:
    with socket.socket() as handle:
        handle.bind(("127.0.0.1", 0))
        return int(handle.getsockname()[1])


def _shipyard_command() -> list[str]:
    script = Path(sys.executable).parent / "shipyard"
    if script.exists():
        return [sys.executable, str(script)]
    return [sys.executable, "-c", "from shipyard.cli import main; main()"]


def _wait_ready(url: str, log: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180  # generous: the machine may be busy
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"{url}/ready", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"granian did not answer in time:\n{log.read_text()}")


def test_granian_answers_like_the_app_and_writes_its_log_on_shutdown(fitted_adult, tmp_path):
    from shipyard.monitoring.log import MonitoringStore
    from shipyard.serving.keys import KeyStore, default_keys_file

    home = tmp_path / "home"  # a copy: the rows logged here stay out of other tests
    shutil.copytree(Path(fitted_adult.registry.artifacts).parent, home)
    _, key = KeyStore(default_keys_file(home)).create("granian test")
    # Other tests may have logged rows in the session's registry before it was copied.
    store = MonitoringStore(f"sqlite:///{home / 'registry.db'}")
    try:
        logged_before = store.count("adult")["predictions"]
    finally:
        store.close()
    # Logged rows are only queued (async): the shutdown must write them out.
    config = tmp_path / "shipyard.yaml"
    config.write_text(
        "name: adult\ndata: {source: unused.csv, target: income}\n"
        "monitoring: {log_durability: async, drift_refresh_seconds: 0}\n"
    )
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    command = [
        *_shipyard_command(),
        "serve",
        "adult",
        "--home",
        str(home),
        "--port",
        str(port),
        "--server",
        "granian",
        "--poll-seconds",
        "0",
        "--no-ui",
        "--config",
        str(config),
    ]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=environment)
    records = fitted_adult.records[:20]
    try:
        _wait_ready(url, log, process)
        predictor = fitted_adult.registry.load_predictor("adult:1")
        with httpx.Client(base_url=url, timeout=30) as client:
            refused = client.post("/v1/models/adult/predict", json=records[0])
            assert refused.status_code == 401
            assert refused.json()["error"] == "unauthorized"
            headers = {"Authorization": f"Bearer {key}"}
            for record in records:
                answer = client.post("/v1/models/adult/predict", json=record, headers=headers)
                assert answer.status_code == 200, answer.text
                body = answer.json()
                expected = predictor.predict_records([record])[0]
                assert body["prediction"] == expected["prediction"]
                assert body["probabilities"] == expected["probabilities"]
            metrics = client.get("/metrics").text
        assert 'shipyard_requests_total{route="/v1/predict",status="200"} 20.0' in metrics
        assert 'shipyard_requests_total{route="/v1/predict",status="401"} 1.0' in metrics
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=90)
    assert process.returncode == 0, log.read_text()
    store = MonitoringStore(f"sqlite:///{home / 'registry.db'}")
    try:
        assert store.count("adult")["predictions"] == logged_before + len(records)
    finally:
        store.close()
