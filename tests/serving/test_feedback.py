from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import textwrap
import time

import httpx

from shipyard.config import ServingConfig
from shipyard.monitoring.log import MonitoringStore
from shipyard.serving import build_app, running_server


def test_predictions_are_logged_and_feedback_is_stored(registry_copy, records):
    frame, rows = records
    app = build_app(registry_copy, "adult", ServingConfig(auth=False))
    with running_server(app) as url:
        single = httpx.post(f"{url}/v1/models/adult/predict", json=rows[0]).json()
        batch = httpx.post(f"{url}/v1/models/adult/predict", json=rows[1:5]).json()
        ids = [single["request_id"]] + [answer["request_id"] for answer in batch["predictions"]]
        assert len(set(ids)) == 5
        labels = [
            {"request_id": request_id, "label": label}
            for request_id, label in zip(ids, frame["income"].head(5), strict=True)
        ]
        stored = httpx.post(f"{url}/v1/models/adult/feedback", json=labels)
        assert stored.status_code == 200
        assert stored.json() == {"model": "adult", "stored": 5}
        unknown = httpx.post(
            f"{url}/v1/models/adult/feedback", json={"request_id": "nope", "label": ">50K"}
        )
        assert unknown.status_code == 404
        assert "nope" in unknown.json()["message"]
        malformed = httpx.post(f"{url}/v1/models/adult/feedback", json=[{"label": 1}])
        assert malformed.status_code == 422
        assert "'request_id'" in malformed.json()["message"]
    store = MonitoringStore(registry_copy.url)
    labelled = store.labelled("adult")
    store.close()
    assert [row["request_id"] for row in labelled] == ids
    assert [row["label"] for row in labelled] == list(frame["income"].head(5))
    assert labelled[0]["inputs"] == rows[0]
    assert labelled[0]["output"]["prediction"] == single["prediction"]


def test_logging_can_be_turned_off(registry_copy, records):
    app = build_app(registry_copy, "adult", ServingConfig(auth=False, log_predictions=False))
    with running_server(app) as url:
        answer = httpx.post(f"{url}/v1/models/adult/predict", json=records[1][0]).json()
        assert "request_id" not in answer
        assert httpx.post(f"{url}/v1/models/adult/feedback", json=[]).status_code == 404


def test_acknowledged_feedback_survives_killing_the_server(registry_copy, records):
    """SIGKILL the server while it takes feedback: every acknowledged label is in the database."""
    with socket.socket() as probe:  # a free port for the server process
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = textwrap.dedent(f"""
        from shipyard.config import ServingConfig
        from shipyard.registry.store import Registry
        from shipyard.serving import build_app, run_server
        registry = Registry({registry_copy.url!r}, {str(registry_copy.artifacts)!r})
        app = build_app(registry, "adult", ServingConfig(auth=False))
        run_server(app, "127.0.0.1", {port}, log_level="warning")
    """)
    server = subprocess.Popen([sys.executable, "-c", script])
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/health", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        acknowledged = []
        with httpx.Client(base_url=url, timeout=10) as client:
            for index, record in enumerate(records[1] * 3):
                answer = client.post("/v1/models/adult/predict", json=record).json()
                label = ">50K" if index % 2 else "<=50K"
                done = client.post(
                    "/v1/models/adult/feedback",
                    json={"request_id": answer["request_id"], "label": label},
                )
                assert done.status_code == 200
                acknowledged.append((answer["request_id"], label))
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=30)
    store = MonitoringStore(registry_copy.url)
    stored = {row["request_id"]: row["label"] for row in store.labelled("adult")}
    store.close()
    assert len(acknowledged) == 60
    assert all(stored.get(request_id) == label for request_id, label in acknowledged)
    assert json.dumps(stored)  # plain JSON values came back
