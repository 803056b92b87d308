"""Webhook retries with backoff, and alert deliveries kept until they arrive, on real sockets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shipyard.monitoring.alerts import Alert, WebhookNotifier
from shipyard.monitoring.deliveries import AlertDeliveries
from shipyard.monitoring.log import MonitoringStore


def alert(column: str = "age") -> Alert:
    message = f"adult:1: PSI of '{column}' is 0.400"
    return Alert("drift", "adult", 1, message, 0.4, 0.2, column=column)


def test_a_webhook_that_fails_twice_gets_the_alert_on_the_third_attempt(scripted_webhook):
    hook = scripted_webhook(503, 500, 204)
    body = alert().as_dict()
    result = WebhookNotifier(hook.url, attempts=3, backoff_seconds=0.05).post(body)
    assert (result.delivered, result.attempts, result.error) == (True, 3, None)
    assert hook.bodies == [body] * 3
    assert hook.accepted == [body]
    # Exponential backoff: the second wait is twice the first (lower bounds only: a loaded
    # machine can only make the waits longer).
    first_wait, second_wait = (
        later - earlier for earlier, later in zip(hook.times, hook.times[1:], strict=False)
    )
    assert first_wait >= 0.05
    assert second_wait >= 0.1


def test_a_webhook_that_always_fails_is_tried_attempts_times(scripted_webhook, caplog):
    hook = scripted_webhook(500)
    result = WebhookNotifier(hook.url, attempts=4, backoff_seconds=0.0).post(alert().as_dict())
    assert (result.delivered, result.attempts, result.retryable) == (False, 4, True)
    assert str(result.error).startswith("HTTP 500")
    assert len(hook.bodies) == 4
    assert "attempt 4 of 4" in caplog.text
    assert "secret" not in caplog.text  # the webhook's token is not logged


def test_a_refused_alert_is_not_retried(scripted_webhook):
    hook = scripted_webhook(400)
    result = WebhookNotifier(hook.url, attempts=3, backoff_seconds=0.0).post(alert().as_dict())
    assert (result.delivered, result.attempts, result.retryable) == (False, 1, False)
    assert len(hook.bodies) == 1


def test_send_counts_only_accepted_alerts(scripted_webhook):
    hook = scripted_webhook(204, 500)
    notifier = WebhookNotifier(hook.url, attempts=2, backoff_seconds=0.0)
    assert notifier.send([alert("age"), alert("sex")]) == 1
    assert [body["column"] for body in hook.bodies] == ["age", "sex", "sex"]


@pytest.fixture
def deliveries(tmp_path: Path) -> Iterator[AlertDeliveries]:
    store = MonitoringStore(f"sqlite:///{tmp_path / 'log.db'}")
    yield AlertDeliveries(store)
    store.close()


def test_an_alert_the_webhook_missed_waits_for_the_next_pass(scripted_webhook, deliveries):
    hook = scripted_webhook(503, 503, 503, 204)
    notifier = WebhookNotifier(hook.url, attempts=2, backoff_seconds=0.0)
    now = datetime.now(UTC)
    deliveries.add([alert("age"), alert("sex")])

    first = deliveries.deliver("adult", notifier, now, timedelta(minutes=60))
    # The webhook is down: the first alert stays pending, the second is not even tried.
    assert [(row.key, row.status, row.attempts) for row in first] == [
        ("drift:1:age", "pending", 2)
    ]
    assert str(first[0].error).startswith("HTTP 503")
    assert [row.attempts for row in deliveries.pending("adult")] == [2, 0]

    second = deliveries.deliver("adult", notifier, now + timedelta(minutes=1), timedelta(hours=1))
    assert [(row.key, row.status, row.attempts, row.earlier_passes) for row in second] == [
        ("drift:1:age", "delivered", 4, True),
        ("drift:1:sex", "delivered", 1, False),
    ]
    assert [body["column"] for body in hook.accepted] == ["age", "sex"]
    assert deliveries.pending("adult") == []


def test_an_alert_still_pending_after_its_repeat_period_is_marked_undelivered(
    scripted_webhook, deliveries
):
    hook = scripted_webhook(502)
    notifier = WebhookNotifier(hook.url, attempts=1, backoff_seconds=0.0)
    now = datetime.now(UTC)
    deliveries.add([alert("age"), alert("sex")])
    first = deliveries.deliver("adult", notifier, now, timedelta(hours=1))
    assert [row.status for row in first] == ["pending"]
    later = now + timedelta(hours=2)
    outcomes = deliveries.deliver("adult", notifier, later, timedelta(hours=1))
    # Both are given up: the first after one more attempt, the second without one (the
    # webhook had just failed).
    assert [(row.key, row.status, row.attempts) for row in outcomes] == [
        ("drift:1:age", "undelivered", 2),
        ("drift:1:sex", "undelivered", 0),
    ]
    assert [row.key for row in deliveries.undelivered("adult")] == ["drift:1:age", "drift:1:sex"]
    assert deliveries.deliver("adult", notifier, later, timedelta(hours=1)) == []
    assert len(hook.bodies) == 2


def test_an_unreachable_webhook_is_a_pending_delivery_not_an_error(deliveries):
    notifier = WebhookNotifier(
        "http://127.0.0.1:9/nothing-listens", timeout=1, attempts=2, backoff_seconds=0.0
    )
    deliveries.add([alert()])
    [outcome] = deliveries.deliver("adult", notifier, datetime.now(UTC), timedelta(hours=1))
    assert (outcome.status, outcome.attempts) == ("pending", 2)
    assert "Connection" in str(outcome.error)
