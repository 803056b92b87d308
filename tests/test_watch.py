"""The closed loop on real Adult records, through a real server: trigger -> retrain -> gate ->
canary -> promote, and automatic rollback of a canary and of a champion that does worse."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from typer.testing import CliRunner

from shipyard.cli import app as cli
from shipyard.config import MonitoringConfig, ServingConfig
from shipyard.errors import ModelNotFoundError
from shipyard.monitoring.log import MonitoringStore, PredictionFailure, PredictionRecord
from shipyard.pipeline.watch import Watcher
from shipyard.serving import build_app, running_server
from shipyard.training.export import frame_to_records

from .conftest import LOOP_MONITORING


def serve(registry):
    settings = ServingConfig(auth=False, poll_seconds=0.1)
    return build_app(
        registry, "adult", settings, monitoring=MonitoringConfig.model_validate(LOOP_MONITORING)
    )


def send(client, frame, one_by_one=False):
    """POST the records (as one batch, or one request each), then their true labels."""
    records = frame_to_records(frame.drop(columns=["income"]))
    if one_by_one:
        answers = [client.post("/v1/models/adult/predict", json=r).json() for r in records]
    else:
        answers = client.post("/v1/models/adult/predict", json=records).json()["predictions"]
    labels = [
        {"request_id": answer["request_id"], "label": label}
        for answer, label in zip(answers, frame["income"], strict=True)
    ]
    assert client.post("/v1/models/adult/feedback", json=labels).status_code == 200
    return answers


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the server did not follow the alias in time"
        time.sleep(0.05)


def actions(registry):
    return [event["action"] for event in registry.events("adult")]


def test_drift_triggers_retrain_gate_canary_then_promotion(loop_models, tmp_path):
    registry = loop_models.registry(tmp_path / "home")
    traffic = loop_models.traffic
    app = serve(registry)
    with running_server(app) as url, httpx.Client(base_url=url) as client:
        send(client, traffic.iloc[:700])

        # The first pass, from the CLI: older people drift on age, the trigger fires, the
        # challenger is trained on the new labels and gated, and becomes the canary.
        result = CliRunner().invoke(
            cli, ["watch", "adult", "--once", "--json", "--home", str(tmp_path / "home")]
        )
        assert result.exit_code == 0, result.output
        first = json.loads(result.stdout.strip().splitlines()[-1])
        # The settings saved with the champion apply: windows of 300, not the default 1000.
        assert first["window"]["count"] == 300
        assert "age" in first["window"]["drifted"]
        kinds = [decision["kind"] for decision in first["decisions"]]
        alerted = [d["detail"]["column"] for d in first["decisions"] if d["kind"] == "alert"]
        assert "age" in alerted
        assert kinds[len(alerted) :] == ["retrain", "gate", "canary"], [
            d["message"] for d in first["decisions"][len(alerted) :]
        ]
        gate = next(d for d in first["decisions"] if d["kind"] == "gate")["detail"]
        assert gate["challenger_reference"] == "adult:3"
        assert gate["samples"] == 210  # 30% of the 700 labels, held out
        assert gate["passed"], gate
        assert gate["low"] > 0
        assert registry.resolve("adult@canary").version == 3
        assert registry.resolve("adult").version == 1

        # The server picks the canary up and routes about half the requests to it.
        wait_for(lambda: app.state.serving.state.canary is not None)
        answers = send(client, traffic.iloc[700:960], one_by_one=True)
        served = {answer["version"] for answer in answers}
        assert served == {1, 3}

        # Enough canary requests: compared with the champion over the same period, promoted.
        second = Watcher(
            registry, "adult", MonitoringConfig.model_validate(LOOP_MONITORING)
        ).run_once()
        verdict = second.decisions[-1]
        assert verdict.kind == "promote", [d.message for d in second.decisions]
        assert verdict.detail["new"]["version"] == 3
        assert verdict.detail["new"]["labels"] >= 30
        assert verdict.detail["low"] <= verdict.detail["difference"] <= verdict.detail["high"]
        assert not verdict.detail["metric_worse"]
        assert registry.resolve("adult").version == 3
        with pytest.raises(ModelNotFoundError):
            registry.resolve("adult@canary")
        wait_for(lambda: app.state.serving.state.primary.model.version == 3)
        wait_for(lambda: app.state.serving.state.canary is None)
        assert {a["version"] for a in send(client, traffic.iloc[960:990], one_by_one=True)} == {3}

    assert actions(registry)[-6:] == [
        "promote",  # canary alias
        "gate",
        "canary",  # stage started
        "promote",  # champion
        "remove_alias",
        "canary",  # verdict
    ]
    events = registry.events("adult")
    retrain_event = next(event for event in events if event["action"] == "retrain")
    assert "age" in retrain_event["detail"]["drifted"]
    assert events[-1]["detail"]["verdict"] == "promoted"
    assert events[-3]["detail"]["reason"].startswith("canary passed after")


def test_a_worse_canary_is_removed_and_a_worse_champion_rolled_back(loop_models, tmp_path):
    registry = loop_models.registry(tmp_path / "home")
    traffic = loop_models.traffic
    config = MonitoringConfig.model_validate({**LOOP_MONITORING, "retraining": {"enabled": False}})
    watcher = Watcher(registry, "adult", config)
    app = serve(registry)
    with running_server(app) as url, httpx.Client(base_url=url) as client:
        # Version 2 learned shuffled labels: as a canary it is confidently worse.
        registry.promote("adult", 2, "canary", reason="a bad candidate, by hand")
        wait_for(lambda: app.state.serving.state.canary is not None)
        send(client, traffic.iloc[:300], one_by_one=True)
        verdict = watcher.run_once().decisions[-1]
        assert verdict.kind == "rollback", verdict.message
        assert verdict.detail["metric_worse"]
        assert verdict.detail["high"] < 0
        with pytest.raises(ModelNotFoundError):
            registry.resolve("adult@canary")
        assert registry.resolve("adult").version == 1

        # Pushed straight to champion, it is compared with version 1 on the same rows.
        registry.promote("adult", 2, reason="a bad push, by hand")
        wait_for(lambda: app.state.serving.state.primary.model.version == 2)
        send(client, traffic.iloc[300:500])
        verdict = watcher.run_once().decisions[-1]
        assert verdict.kind == "rollback", verdict.message
        assert verdict.detail["paired"]
        assert verdict.detail["new"]["labels"] == 200
        assert verdict.detail["difference"] < 0  # log loss: version 2 is higher, worse
        assert registry.resolve("adult").version == 1
        wait_for(lambda: app.state.serving.state.primary.model.version == 1)

    events = registry.events("adult")
    rollback = next(event for event in reversed(events) if event["action"] == "rollback")
    assert rollback["detail"]["reason"].startswith("automatic rollback: log_loss is confidently")
    assert events[-1]["action"] == "live_check"
    assert events[-1]["detail"]["verdict"] == "rolled_back"
    # Settled: the next pass leaves the restored champion alone.
    assert [d.kind for d in watcher.run_once().decisions if d.kind == "rollback"] == []


def test_alerts_reach_the_webhook_once_and_retraining_waits_for_labels(
    loop_models, tmp_path, webhook
):
    url, received = webhook
    registry = loop_models.registry(tmp_path / "home")
    config = MonitoringConfig.model_validate(
        {
            **LOOP_MONITORING,
            "alerts": {
                "rules": [{"kind": "drift", "threshold": 1.0, "column": "age"}],
                "webhook": url,
            },
            "retraining": {"drifted_columns": 1, "min_gate_rows": 500},
        }
    )
    with running_server(serve(registry)) as server, httpx.Client(base_url=server) as client:
        send(client, loop_models.traffic.iloc[:400])
    watcher = Watcher(registry, "adult", config)
    first = watcher.run_once()
    assert [d.kind for d in first.decisions] == ["alert", "wait"]
    assert first.decisions[1].message.endswith(
        "only 400 labels: the gate needs 500 held out, so about 1667"
    )
    assert [(alert["kind"], alert["column"]) for alert in received] == [("drift", "age")]
    assert received[0]["value"] > 1.0
    # The same alert is not sent again within repeat_minutes; nothing was retrained.
    second = watcher.run_once()
    assert [d.kind for d in second.decisions] == ["wait"]
    assert len(received) == 1
    assert actions(registry).count("alert") == 1
    assert "retrain" not in actions(registry)


def test_an_alert_the_webhook_missed_is_retried_on_the_next_pass_not_fired_again(
    loop_models, tmp_path, scripted_webhook
):
    hook = scripted_webhook(503, 503, 204)  # down for the first pass, back for the second
    registry = loop_models.registry(tmp_path / "home")
    config = MonitoringConfig.model_validate(
        {
            **LOOP_MONITORING,
            "alerts": {
                "rules": [{"kind": "drift", "threshold": 1.0, "column": "age"}],
                "webhook": hook.url,
                "delivery_attempts": 2,
                "retry_backoff_seconds": 0.01,
            },
            "retraining": {"enabled": False},
        }
    )
    store = MonitoringStore(registry.url)
    records = frame_to_records(loop_models.traffic.drop(columns=["income"]).iloc[:300])
    output = {"prediction": "<=50K", "probabilities": {"<=50K": 0.8, ">50K": 0.2}}
    store.add_predictions(
        [
            PredictionRecord(f"r{index}", "adult", 1, record, output, 1.0)
            for index, record in enumerate(records)
        ]
    )
    store.close()
    watcher = Watcher(registry, "adult", config)

    first = watcher.run_once()
    assert [d.kind for d in first.decisions] == ["alert", "delivery"]
    assert first.decisions[1].detail == {
        "key": "drift:1:age",
        "status": "pending",
        "attempts": 2,
        "error": "HTTP 503 Service Unavailable",
    }
    assert hook.accepted == []

    # Not fired again within repeat_minutes, but delivered now that the webhook is back.
    second = watcher.run_once()
    assert [(d.kind, d.detail["status"], d.detail["attempts"]) for d in second.decisions] == [
        ("delivery", "delivered", 3)
    ]
    assert [(body["kind"], body["column"]) for body in hook.accepted] == [("drift", "age")]
    assert hook.accepted[0]["message"] == first.decisions[0].message
    assert watcher.run_once().decisions == []
    assert len(hook.bodies) == 3
    assert actions(registry).count("alert") == 1


def test_a_canary_that_fails_more_requests_is_removed(loop_models, tmp_path):
    registry = loop_models.registry(tmp_path / "home")
    registry.promote("adult", 2, "canary")
    store = MonitoringStore(registry.url)
    records = frame_to_records(loop_models.traffic.drop(columns=["income"]).iloc[:240])
    output = {"prediction": "<=50K", "probabilities": {"<=50K": 0.8, ">50K": 0.2}}
    store.add_predictions(
        [
            PredictionRecord(f"r{index}", "adult", 2 if index % 2 else 1, record, output, 1.0)
            for index, record in enumerate(records)
        ]
    )
    store.add_failures([PredictionFailure("adult", 2, "timeout")] * 12)  # 12 of 132: 9%
    store.close()
    config = MonitoringConfig.model_validate({**LOOP_MONITORING, "retraining": {"enabled": False}})
    verdict = Watcher(registry, "adult", config).run_once().decisions[-1]
    assert verdict.kind == "rollback"
    assert verdict.detail["error_rate_worse"]
    assert verdict.detail["new"]["failed"] == 12
    assert verdict.detail["new"]["requests"] == 132
    assert verdict.detail["difference"] is None  # no labels: the error rate decided
    with pytest.raises(ModelNotFoundError):
        registry.resolve("adult@canary")


def test_watch_deletes_log_rows_older_than_the_retention_period(loop_models, tmp_path):
    from datetime import UTC, datetime, timedelta

    registry = loop_models.registry(tmp_path / "home")
    store = MonitoringStore(registry.url)
    now = datetime.now(UTC)
    records = frame_to_records(loop_models.traffic.drop(columns=["income"]).iloc[:4])
    output = {"prediction": "<=50K", "probabilities": {"<=50K": 0.8, ">50K": 0.2}}
    ages = [40, 40, 40, 1]  # days
    store.add_predictions(
        [
            PredictionRecord(
                "recent" if days == 1 else f"old{index}",
                "adult",
                1,
                record,
                output,
                1.0,
                at=now - timedelta(days=days),
            )
            for index, (record, days) in enumerate(zip(records, ages, strict=True))
        ]
    )
    store.add_feedback("adult", [("old0", ">50K"), ("recent", ">50K")])
    store.add_failures([PredictionFailure("adult", 1, "timeout", at=now - timedelta(days=40))])
    config = MonitoringConfig.model_validate(
        {**LOOP_MONITORING, "retention_days": 30, "retraining": {"enabled": False}}
    )
    decisions = Watcher(registry, "adult", config).run_once().decisions
    [retention] = [decision for decision in decisions if decision.kind == "retention"]
    assert retention.detail == {"removed": 5, "days": 30}  # 3 predictions, 1 label, 1 failure
    assert [row["request_id"] for row in store.predictions("adult")] == ["recent"]
    assert store.count("adult") == {"predictions": 1, "labelled": 1}
    store.close()
