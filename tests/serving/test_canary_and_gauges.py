"""Canary routing by the ``canary`` alias, and the drift gauges of /metrics, over real sockets."""

from __future__ import annotations

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from shipyard.config import MonitoringConfig, ServingConfig
from shipyard.monitoring.log import MonitoringStore
from shipyard.serving import build_app, running_server
from shipyard.training.export import frame_to_records


def scrape(client):
    """Return {(metric name, frozenset of labels): value} from /metrics."""
    samples = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return result


def test_the_canary_alias_gets_its_share_of_requests(loop_models, tmp_path):
    registry = loop_models.registry(tmp_path / "home")
    registry.promote("adult", 2, "canary")
    monitoring = MonitoringConfig.model_validate({"canary": {"share": 0.3}})
    app = build_app(
        registry, "adult", ServingConfig(auth=False, poll_seconds=0.1), monitoring=monitoring
    )
    records = frame_to_records(loop_models.traffic.drop(columns=["income"]).iloc[:500])
    with running_server(app) as url, httpx.Client(base_url=url) as client:
        versions = [
            client.post("/v1/models/adult/predict", json=record).json()["version"]
            for record in records[:400]
        ]
        share = versions.count(2) / len(versions)
        # Binomial(400, 0.3): four standard deviations (0.023 each) either side.
        assert 0.21 < share < 0.39, share
        assert set(versions) == {1, 2}
        model_info = {
            dict(labels)["role"]: dict(labels)["version"]
            for (name, labels), value in scrape(client).items()
            if name == "shipyard_model_info" and value == 1
        }
        assert model_info == {"primary": "1", "canary": "2"}

        registry.remove_alias("adult", "canary", reason="done")
        wait_for(lambda: app.state.serving.state.canary is None)
        after = [
            client.post("/v1/models/adult/predict", json=record).json()["version"]
            for record in records[400:]
        ]
        assert set(after) == {1}
        roles = {
            dict(labels)["role"]
            for (name, labels), value in scrape(client).items()
            if name == "shipyard_model_info"
        }
        assert roles == {"primary"}
    # Each answer was logged under the version that gave it.
    store = MonitoringStore(registry.url)
    since = registry.get("adult", 1).created_at
    assert store.activity("adult", 2, since)["answered"] == versions.count(2)
    assert store.activity("adult", 1, since)["answered"] == 500 - versions.count(2)
    store.close()


def test_metrics_show_the_drift_of_the_latest_window(loop_models, tmp_path):
    registry = loop_models.registry(tmp_path / "home")
    monitoring = MonitoringConfig.model_validate(
        {"window_size": 200, "drift_refresh_seconds": 0.2, "drift": {"min_samples": 50}}
    )
    app = build_app(
        registry, "adult", ServingConfig(auth=False, poll_seconds=0), monitoring=monitoring
    )
    # Older people against a model trained on people under 30: age drifts.
    records = frame_to_records(loop_models.traffic.drop(columns=["income"]).iloc[:300])
    with running_server(app) as url, httpx.Client(base_url=url) as client:
        before = scrape(client)
        assert not [key for key in before if key[0] == "shipyard_drift_psi"]
        assert client.post("/v1/models/adult/predict", json=records).status_code == 200

        def closed_window():
            samples = scrape(client)
            key = ("shipyard_drift_window_closed", frozenset({("version", "1")}))
            return samples if samples.get(key) == 1 else None

        samples = wait_for(closed_window)

    def gauge(name, **labels):
        return samples[(name, frozenset({"version": "1", **labels}.items()))]

    assert gauge("shipyard_drift_window_predictions") == 200
    assert gauge("shipyard_drift_psi", column="age") > 1.0
    assert gauge("shipyard_drift_detected", column="age") == 1
    assert gauge("shipyard_prediction_drift_psi") > 0.25
    assert gauge("shipyard_prediction_drift_detected") == 1
    columns = {dict(labels)["column"] for name, labels in samples if name == "shipyard_drift_psi"}
    assert "age" in columns
    assert "prediction" not in columns  # the model's output has gauges of its own
    assert "__prediction__" not in columns
    # The windows live in the database: 200 closed, 100 still open; nothing read twice.
    from shipyard.pipeline.monitor import open_drift_monitor

    store = MonitoringStore(registry.url)
    windows = open_drift_monitor(registry, "adult:1", store, window_size=200).windows()
    assert [(window.count, window.closed) for window in windows] == [(200, True), (100, False)]
    store.close()
