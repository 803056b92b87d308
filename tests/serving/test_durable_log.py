"""The durable prediction log: acknowledged means logged, for every prediction protocol."""

from __future__ import annotations

import gc
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import httpx
import pytest

from shipyard.config import MonitoringConfig, ServingConfig
from shipyard.monitoring.log import MonitoringStore
from shipyard.serving import build_app, running_server

_TENSOR_TYPES = {"number": "FP64", "integer": "INT64", "string": "BYTES", "boolean": "BOOL"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _logged(url: str) -> dict[str, dict]:
    store = MonitoringStore(url)
    try:
        return {row["request_id"]: row for row in store.predictions("adult", limit=10**6)}
    finally:
        store.close()


def _v2_body(contract, records, request_id=None):
    body = {
        "inputs": [
            {
                "name": column.name,
                "shape": [len(records)],
                "datatype": _TENSOR_TYPES[column.type],
                "data": [record[column.name] for record in records],
            }
            for column in contract.columns
        ]
    }
    if request_id is not None:
        body["id"] = request_id
    return body


def _load(url: str, record: dict, acknowledged: list[str], stop: threading.Event) -> None:
    """Post predictions until stopped or the server goes away; keep the acknowledged ids."""
    with httpx.Client(base_url=url, timeout=30) as client:
        while not stop.is_set():
            try:
                response = client.post("/v1/models/adult/predict", json=record)
            except httpx.TransportError:
                return  # the server was killed
            if response.status_code == 200:
                acknowledged.append(response.json()["request_id"])


def test_no_acknowledged_prediction_is_lost_when_the_server_is_killed(registry_copy, records):
    """32 clients, SIGKILL mid-stream: every request id answered with 200 is in the log."""
    port = _free_port()
    home = registry_copy.artifacts.parent
    command = [sys.executable, "-c", "from shipyard.cli import main; main()", "serve", "adult"]
    command += ["--home", str(home), "--port", str(port), "--no-auth", "--poll-seconds", "0"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    acknowledged: list[str] = []
    stop = threading.Event()
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"{url}/health", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, "the server exited"
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        rows = records[1]
        clients = [
            threading.Thread(target=_load, args=(url, rows[index % len(rows)], acknowledged, stop))
            for index in range(32)
        ]
        for client in clients:
            client.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 300 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # a second more of load, then kill it with requests in flight
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
        stop.set()
        for client in clients:
            client.join(timeout=60)
    finally:
        stop.set()
        if server.poll() is None:
            server.kill()
            server.wait(timeout=30)
    logged = _logged(registry_copy.url)
    assert len(acknowledged) >= 300
    lost = [request_id for request_id in acknowledged if request_id not in logged]
    assert lost == [], f"{len(lost)} of {len(acknowledged)} acknowledged predictions lost"


def test_v2_and_invocations_are_logged_and_labelled(registry_copy, records):
    frame, rows = records
    app = build_app(registry_copy, "adult", ServingConfig(auth=False, poll_seconds=0))
    contract = app.state.serving.state.primary.model.predictor.contract
    with running_server(app) as url:
        own = [httpx.post(f"{url}/v1/models/adult/predict", json=row).json() for row in rows[:6]]
        named = httpx.post(f"{url}/v2/models/adult/infer", json=_v2_body(contract, rows[:1], "t1"))
        unnamed = httpx.post(f"{url}/v2/models/adult/infer", json=_v2_body(contract, rows[1:3]))
        mlflow_one = httpx.post(f"{url}/invocations", json={"dataframe_records": rows[3:4]})
        mlflow_two = httpx.post(f"{url}/invocations", json={"dataframe_records": rows[4:6]})
        for response in (named, unnamed, mlflow_one, mlflow_two):
            assert response.status_code == 200, response.text
        assert named.json()["id"] == "t1"
        v2_id = unnamed.json()["id"]
        one_id = mlflow_one.headers["x-request-id"]
        two_id = mlflow_two.headers["x-request-id"]
        ids = ["t1", f"{v2_id}-0", f"{v2_id}-1", one_id, f"{two_id}-0", f"{two_id}-1"]
        labels = list(frame["income"].head(6))
        stored = httpx.post(
            f"{url}/v1/models/adult/feedback",
            json=[
                {"request_id": key, "label": label} for key, label in zip(ids, labels, strict=True)
            ],
        )
        assert stored.status_code == 200, stored.text
        assert stored.json()["stored"] == 6
    logged = _logged(registry_copy.url)
    for key, row, answer in zip(ids, rows[:6], own, strict=True):
        assert logged[key]["inputs"] == row
        # The same output as the own API logs for the same record.
        expected = {name: value for name, value in answer.items() if name in logged[key]["output"]}
        assert logged[key]["output"] == expected
        assert set(logged[key]["output"]) == set(answer) - {"request_id", "model", "version"}
    store = MonitoringStore(registry_copy.url)
    labelled = {row["request_id"]: row["label"] for row in store.labelled("adult")}
    store.close()
    assert [labelled[key] for key in ids] == labels


def test_model_failures_count_on_every_protocol_and_client_errors_do_not(registry_copy, records):
    rows = records[1]
    # A micro-batch that waits longer than a request may: every request times out (503).
    settings = ServingConfig(
        auth=False, poll_seconds=0, batching="on", max_batch_wait_ms=3000, request_timeout=0.3
    )
    app = build_app(registry_copy, "adult", settings)
    context = app.state.serving
    contract = context.state.primary.model.predictor.contract

    def failures() -> int:
        context.prediction_log.flush()
        store = MonitoringStore(registry_copy.url)
        try:
            return store.activity("adult", 1, datetime(2000, 1, 1, tzinfo=UTC))["failed"]
        finally:
            store.close()

    with running_server(app) as url:
        timed_out = [
            httpx.post(f"{url}/v1/models/adult/predict", json=rows[0]),
            httpx.post(f"{url}/v2/models/adult/infer", json=_v2_body(contract, rows[:1])),
            httpx.post(f"{url}/invocations", json={"dataframe_records": rows[:1]}),
        ]
        assert [response.status_code for response in timed_out] == [503, 503, 503]
        assert failures() == 3
        bad = {**rows[0], "age": "old"}
        long_id = "x" * 49
        refused = [
            httpx.post(f"{url}/v2/models/adult/infer", json={"inputs": "nope"}),
            httpx.post(f"{url}/v2/models/adult/infer", json=_v2_body(contract, [bad])),
            httpx.post(f"{url}/v2/models/adult/infer", json=_v2_body(contract, rows[:1], 7)),
            httpx.post(f"{url}/v2/models/adult/infer", json=_v2_body(contract, rows[:1], long_id)),
            httpx.post(f"{url}/invocations", json={"data": []}),
            httpx.post(f"{url}/invocations", json={"dataframe_records": [bad]}),
        ]
        assert [response.status_code for response in refused] == [400, 422, 400, 400, 400, 422]
        assert "'id' must be a string" in refused[2].json()["message"]
        assert "1 to 48 characters" in refused[3].json()["message"]
        assert failures() == 3


@pytest.mark.parametrize("durability", ["durable", "async"])
def test_a_prediction_the_log_cannot_commit(registry_copy, records, durability):
    """Durable: 503, never a 200 for a row that is not in the log. Async: 200 and the row lost."""
    monitoring = MonitoringConfig(log_durability=durability, drift_refresh_seconds=0)
    app = build_app(
        registry_copy, "adult", ServingConfig(auth=False, poll_seconds=0), monitoring=monitoring
    )
    store = app.state.serving.prediction_log.store
    with store.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE shipyard_predictions")
    with running_server(app) as url:
        answers = [
            httpx.post(f"{url}/v1/models/adult/predict", json=records[1][0]),
            httpx.post(f"{url}/invocations", json={"dataframe_records": records[1][:2]}),
        ]
    if durability == "durable":
        assert [answer.status_code for answer in answers] == [503, 503]
        body = answers[0].json()
        assert body["error"] == "log_unavailable"
        assert "could not commit" in body["message"]
        assert "shipyard_predictions" not in body["message"]  # no database internals
        assert "request_id" not in json.dumps(body)
    else:
        assert [answer.status_code for answer in answers] == [200, 200]


def test_a_hot_swap_in_a_frozen_server_freezes_the_new_model(fitted_adult):
    """A server freezes its models out of the collector; a swap must freeze the new one."""
    from shipyard.serving.metrics import ServingMetrics
    from shipyard.serving.server import freeze_loaded_objects, load_served_model
    from shipyard.serving.state import ServingState

    def collected_by_gc(item) -> bool:
        return any(
            found is item for generation in (0, 1, 2) for found in gc.get_objects(generation)
        )

    state = ServingState(
        load_served_model(fitted_adult.registry, "adult:1"), ServingConfig(), ServingMetrics()
    )
    freeze_loaded_objects()
    try:
        assert not collected_by_gc(state.primary)
        state.swap(load_served_model(fitted_adult.registry, "adult:2"))
        assert state.primary.model.version == 2
        assert not collected_by_gc(state.primary)
    finally:
        gc.unfreeze()
    assert collected_by_gc(state.primary)
