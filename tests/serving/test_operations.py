"""Hot swap under load, canary and shadow routing, CORS, JSON logs, the keys CLI."""

from __future__ import annotations

import json
import logging
import threading
import time

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from shipyard.cli import app as cli_app
from shipyard.config import ServingConfig
from shipyard.serving import KeyStore, build_app, running_server
from shipyard.serving.logs import JsonFormatter


def test_hot_swap_under_load_loses_no_request(fitted_adult):
    registry = fitted_adult.registry
    registry.promote("adult", 1, "champion", reason="test start")
    settings = ServingConfig(auth=False, poll_seconds=0.1)
    app = build_app(registry, "adult", settings)
    record = fitted_adult.records[0]
    results: list[tuple[int, int | None]] = []
    stop = threading.Event()

    def hammer(url):
        with httpx.Client(base_url=url) as client:
            while not stop.is_set():
                response = client.post("/v1/models/adult/predict", json=record)
                version = response.json().get("version") if response.status_code == 200 else None
                results.append((response.status_code, version))

    with running_server(app) as url:
        threads = [threading.Thread(target=hammer, args=(url,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        registry.promote("adult", 2, "champion", reason="hot swap test")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any(v == 2 for _, v in results[-20:]):
            time.sleep(0.05)
        time.sleep(0.3)
        stop.set()
        for thread in threads:
            thread.join()
        metrics = httpx.get(f"{url}/metrics").text
    registry.promote("adult", 1, "champion", reason="test end")
    statuses = {status for status, _ in results}
    versions = [version for _, version in results]
    assert statuses == {200}, f"failed requests during the swap: {statuses}"
    assert 1 in versions
    assert 2 in versions
    # Once swapped, every later answer comes from the new version.
    assert 1 not in versions[versions.index(2) + 50 :]
    assert "shipyard_model_swaps_total 1.0" in metrics


def test_canary_gets_its_share_and_shadow_only_logs(fitted_adult, caplog):
    settings = ServingConfig(
        auth=False, poll_seconds=0, canary="adult:2", canary_share=0.5, shadow="adult:2"
    )
    app = build_app(fitted_adult.registry, "adult:1", settings)
    records = fitted_adult.records[:200]
    with caplog.at_level(logging.INFO, logger="shipyard.serving"), running_server(app) as url:
        with httpx.Client(base_url=url) as client:
            versions = [
                client.post("/v1/models/adult/predict", json=record).json()["version"]
                for record in records
            ]
        time.sleep(0.2)
        metrics = httpx.get(f"{url}/metrics").text
    share = versions.count(2) / len(versions)
    assert 0.3 < share < 0.7
    shadows = [entry for entry in caplog.records if getattr(entry, "event", None) == "shadow"]
    assert len(shadows) == len(records)
    assert all(entry.shadow_version == 2 for entry in shadows)
    # Same model under two version numbers: the shadow always agrees.
    assert 'shipyard_shadow_answers_total{agreed="yes"} 200.0' in metrics
    assert 'role="canary",version="2"' in metrics


def test_cors_is_off_by_default_and_configurable(fitted_adult):
    origin = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    closed = build_app(fitted_adult.registry, "adult:1", ServingConfig(auth=False, poll_seconds=0))
    with running_server(closed) as url:
        response = httpx.options(f"{url}/v1/models/adult/predict", headers=origin)
        assert "access-control-allow-origin" not in response.headers
    opened = build_app(
        fitted_adult.registry,
        "adult:1",
        ServingConfig(auth=False, poll_seconds=0, cors_origins=("https://app.example",)),
    )
    with running_server(opened) as url:
        response = httpx.options(f"{url}/v1/models/adult/predict", headers=origin)
        assert response.headers["access-control-allow-origin"] == "https://app.example"


def test_json_log_lines_carry_the_event_fields():
    record = logging.LogRecord("shipyard.serving", logging.INFO, "x", 1, "hot swap", None, None)
    record.event = "swap"
    record.new_version = 2
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "hot swap"
    assert line["event"] == "swap"
    assert line["new_version"] == 2
    assert line["level"] == "info"


def test_auth_on_needs_a_key_store(fitted_adult):
    from shipyard.errors import ConfigError

    with pytest.raises(ConfigError, match="no API key store"):
        build_app(fitted_adult.registry, "adult:1", ServingConfig())


def test_keys_cli_creates_lists_and_revokes(tmp_path):
    runner = CliRunner()
    keys_file = tmp_path / "keys.json"
    created = runner.invoke(
        cli_app, ["keys", "create", "--label", "ci", "--keys-file", str(keys_file), "--json"]
    )
    assert created.exit_code == 0, created.output
    made = json.loads(created.output)
    assert made["key"].startswith("sy_")
    assert KeyStore(keys_file).verify(made["key"])
    listed = runner.invoke(cli_app, ["keys", "list", "--keys-file", str(keys_file), "--json"])
    assert [item["id"] for item in json.loads(listed.output)] == [made["id"]]
    assert made["key"] not in keys_file.read_text()
    revoked = runner.invoke(cli_app, ["keys", "revoke", made["id"], "--keys-file", str(keys_file)])
    assert revoked.exit_code == 0
    assert not KeyStore(keys_file).verify(made["key"])
    unknown = runner.invoke(cli_app, ["keys", "revoke", "nope", "--keys-file", str(keys_file)])
    assert unknown.exit_code == 1
    assert "No API key has id 'nope'" in unknown.output


def test_fast_scorer_matches_the_booster_on_one_row(fitted_adult):
    from shipyard.runtime.fast import FastLightGBMScorer

    predictor = fitted_adult.registry.load_predictor("adult:1")
    fast = FastLightGBMScorer(predictor.scorer)
    rows = [predictor.preprocessor.transform_record(r) for r in fitted_adult.records[:50]]
    features = np.array(rows, dtype=np.float64)
    one_by_one = np.vstack([fast.score(features[i : i + 1]) for i in range(50)])
    assert np.array_equal(one_by_one, predictor.scorer.score(features))


def test_graceful_shutdown_finishes_the_request_in_flight(fitted_adult):
    import socket

    import uvicorn

    app = build_app(fitted_adult.registry, "adult:1", ServingConfig(auth=False, poll_seconds=0))
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", timeout_graceful_shutdown=10
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    body = json.dumps(fitted_adult.records[0]).encode()
    head = (
        f"POST /v1/models/adult/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
        f"\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(head + body[:10])  # the request is in flight, its body half sent
        time.sleep(0.3)
        server.should_exit = True  # what SIGTERM does
        time.sleep(0.5)
        with pytest.raises(ConnectionRefusedError):  # no new connections once shutdown began
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        connection.sendall(body[10:])
        answer = b""
        while b"}}" not in answer:
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
    thread.join(timeout=15)
    assert answer.startswith(b"HTTP/1.1 200")
    assert b'"prediction"' in answer
    assert not thread.is_alive()


def test_a_body_that_never_arrives_gets_408(fitted_adult):
    import socket

    settings = ServingConfig(auth=False, poll_seconds=0, request_timeout=0.5)
    app = build_app(fitted_adult.registry, "adult:1", settings)
    head = (
        b"POST /v1/models/adult/predict HTTP/1.1\r\nHost: x\r\n"
        b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"age": '
    )
    with running_server(app) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(head)  # and nothing more
            answer = connection.recv(65536)
    assert answer.startswith(b"HTTP/1.1 408")
    assert b"request_timeout" in answer


def test_extra_route_builders_extend_the_app(fitted_adult):
    from starlette.routing import Route

    from shipyard.serving.context import JSONResponse

    def card_routes(context):
        async def card(request):
            return JSONResponse({"model": context.name})

        return [Route("/card", card, methods=["GET"])]

    settings = ServingConfig(auth=False, poll_seconds=0)
    app = build_app(fitted_adult.registry, "adult:1", settings, extra_routes=[card_routes])
    with running_server(app) as url:
        assert httpx.get(f"{url}/card").json() == {"model": "adult"}
