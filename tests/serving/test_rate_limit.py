"""Rate limits per API key (per address without auth): 429 with Retry-After, probes exempt."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

import httpx
import pytest
from typer.testing import CliRunner

from shipyard.cli import app as cli_app
from shipyard.config import RateLimitConfig, ServingConfig
from shipyard.monitoring.log import MonitoringStore
from shipyard.registry.store import Registry
from shipyard.serving import KeyStore, build_app, running_server
from shipyard.serving.rate_limit import RateLimiter, limiter_for

# A burst of 3, then one request every 1,000 s: the 4th request is refused however slow the
# machine is.
SLOW = RateLimitConfig(requests_per_second=0.001, burst=3)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_gives_its_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.acquire("a") for _ in range(4)] == [0, 0, 0, 1]
    assert limiter.acquire("b") == 0  # another client has its own bucket
    clock.now += 0.5  # one token back at 2 per second
    assert limiter.acquire("a") == 0
    assert limiter.acquire("a") == 1
    slow = RateLimiter(rate=0.1, burst=1, clock=clock)
    assert slow.acquire("a") == 0
    assert slow.acquire("a") == 10  # whole seconds, rounded up


def test_idle_clients_are_forgotten_past_the_table_size() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1.0, burst=1, clock=clock, max_clients=2)
    for client in ("a", "b"):
        limiter.acquire(client)
    clock.now += 5  # both buckets are full again
    limiter.acquire("c")
    assert set(limiter._buckets) == {"c"}


def test_limits_are_off_by_default() -> None:
    assert limiter_for(ServingConfig().rate_limit) is None
    assert limiter_for(SLOW) is not None


@pytest.fixture
def registry_copy(fitted_adult, tmp_path) -> Registry:
    """A copy of the registry, so that this test's prediction log stays its own."""
    home = tmp_path / "home"
    shutil.copytree(fitted_adult.registry.artifacts.parent, home)
    return Registry(f"sqlite:///{home / 'registry.db'}", home / "artifacts")


def test_each_key_gets_its_burst_then_429_with_retry_after(fitted_adult, registry_copy, tmp_path):
    keys = KeyStore(tmp_path / "keys.json")
    _, first = keys.create("first")
    _, second = keys.create("second")
    settings = ServingConfig(poll_seconds=0, rate_limit=SLOW)
    app = build_app(registry_copy, "adult:1", settings, keys)
    predict = "/v1/models/adult/predict"
    record = fitted_adult.records[0]
    with running_server(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        answers = [
            client.post(predict, json=record, headers={"X-API-Key": first}) for _ in range(4)
        ]
        assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
        refused = answers[-1]
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"] == "rate_limited"
        assert refused.json()["retry_after"] == int(refused.headers["retry-after"])
        # The same key in the other header shares the bucket; explain is limited too.
        explain = client.post(
            "/v1/models/adult/explain",
            json=record,
            headers={"Authorization": f"Bearer {first}"},
        )
        assert explain.status_code == 429
        # Another key has a bucket of its own.
        assert client.post(predict, json=record, headers={"X-API-Key": second}).is_success
        # Probes, scrapes and the API description are never limited.
        for path in ("/health", "/ready", "/metrics", "/openapi.json") * 3:
            assert client.get(path).status_code == 200
        # A wrong key is refused (401) before any bucket is touched.
        assert client.post(predict, json=record, headers={"X-API-Key": "x"}).status_code == 401
        metrics = client.get("/metrics").text
    assert 'shipyard_client_errors_total{reason="rate_limited"} 2.0' in metrics
    # 429s are client errors: nothing reached the failure log that rollbacks read.
    app.state.serving.prediction_log.flush()
    activity = MonitoringStore(registry_copy.url).activity(
        "adult", 1, datetime(2000, 1, 1, tzinfo=UTC)
    )
    assert activity["failed"] == 0


def test_without_auth_the_address_is_limited(fitted_adult):
    settings = ServingConfig(auth=False, poll_seconds=0, log_predictions=False, rate_limit=SLOW)
    app = build_app(fitted_adult.registry, "adult:1", settings)
    body = {"dataframe_records": [fitted_adult.records[0]]}
    with running_server(app) as url:
        statuses = [httpx.post(f"{url}/invocations", json=body).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_serve_flags_set_the_rate_limit_keys(fitted_adult, monkeypatch):
    captured = {}

    def run_server(app, host, port, *, settings, worker_spec):  # the app is built, not served
        captured["settings"] = settings

    monkeypatch.setattr("shipyard.serving.run_server", run_server)
    home = str(fitted_adult.registry.artifacts.parent)
    flags = ["--no-auth", "--poll-seconds", "0", "--rate-limit", "5", "--rate-burst", "7"]
    result = CliRunner().invoke(cli_app, ["serve", "adult:1", "--home", home, *flags])
    assert result.exit_code == 0, result.output
    assert captured["settings"].rate_limit == RateLimitConfig(requests_per_second=5, burst=7)
