from __future__ import annotations

import pytest

from shipyard.monitoring.alerts import (
    AlertRule,
    RetrainTriggers,
    Snapshot,
    WebhookNotifier,
    decide_retrain,
    evaluate_rules,
)


def test_rules_fire_on_the_numbers_and_reach_the_webhook(webhook):
    url, received = webhook
    snapshot = Snapshot(
        model="adult",
        version=3,
        drifted_columns=["age"],
        psi={"age": 0.31, "sex": 0.01},
        metric="roc_auc",
        reference_metric=0.927,
        realised_metric=0.89,
        error_rate=0.002,
    )
    rules = [
        AlertRule("drift", 0.2),
        AlertRule("drift", 0.005, column="sex"),
        AlertRule("metric_drop", 0.02),
        AlertRule("error_rate", 0.01),
    ]
    alerts = evaluate_rules(rules, snapshot)
    assert [alert.kind for alert in alerts] == ["drift", "drift", "metric_drop"]
    assert "worsened by 0.0370" in alerts[2].message
    assert WebhookNotifier(url).send(alerts) == 3
    assert [body["kind"] for body in received] == ["drift", "drift", "metric_drop"]
    assert received[0]["model"] == "adult"
    assert received[0]["value"] == pytest.approx(0.31)


def test_unreachable_webhook_is_logged_not_raised(caplog):
    notifier = WebhookNotifier(
        "http://127.0.0.1:9/nothing-listens-here", timeout=1, backoff_seconds=0.0
    )
    alerts = evaluate_rules(
        [AlertRule("error_rate", 0.01)], Snapshot(model="m", version=1, error_rate=0.5)
    )
    assert notifier.send(alerts) == 0
    assert "could not deliver" in caplog.text


def test_lower_is_better_metrics_drop_the_right_way():
    snapshot = Snapshot(
        model="m",
        version=1,
        metric="rmse",
        reference_metric=10.0,
        realised_metric=12.0,
        greater_is_better=False,
    )
    assert snapshot.metric_drop == pytest.approx(2.0)
    assert decide_retrain(snapshot, RetrainTriggers(drifted_columns=None, metric_drop=1.0)).retrain


def test_retrain_triggers():
    quiet = Snapshot(
        model="m",
        version=1,
        metric="roc_auc",
        reference_metric=0.9,
        realised_metric=0.895,
        realised_best=0.91,
        new_labels=10,
        hours_since_training=1,
    )
    assert decide_retrain(quiet, RetrainTriggers()).retrain is False
    uncertain = Snapshot(
        model="m",
        version=1,
        metric="roc_auc",
        reference_metric=0.9,
        realised_metric=0.85,
        realised_best=0.93,
    )
    assert decide_retrain(uncertain, RetrainTriggers(drifted_columns=None)).retrain is False
    confident = Snapshot(
        model="m",
        version=1,
        metric="roc_auc",
        reference_metric=0.9,
        realised_metric=0.85,
        realised_best=0.87,
    )
    decision = decide_retrain(confident, RetrainTriggers(drifted_columns=None))
    assert decision.retrain
    assert decision.reasons == ["roc_auc worsened by 0.0500"]
    busy = Snapshot(
        model="m", version=1, drifted_columns=["a", "b"], new_labels=5000, hours_since_training=30
    )
    reasons = decide_retrain(
        busy, RetrainTriggers(drifted_columns=2, new_labels=1000, every_hours=24)
    ).reasons
    assert len(reasons) == 3
