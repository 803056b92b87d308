from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from shipyard.config import MonitoringConfig
from shipyard.monitoring.alerts import Alert, AlertRule, RetrainTriggers
from shipyard.monitoring.drift import DriftThresholds
from shipyard.monitoring.live import LiveNumbers
from shipyard.monitoring.policy import (
    alert_rules,
    build_snapshot,
    drift_thresholds,
    fresh_alerts,
    retrain_triggers,
)
from shipyard.monitoring.windows import DriftWindow
from shipyard.registry.store import ModelVersion


def test_the_config_drives_the_library_objects():
    config = MonitoringConfig.model_validate(
        {
            "drift": {"alpha": 0.05, "psi_threshold": 0.2, "min_samples": 50},
            "alerts": {"rules": [{"kind": "drift", "threshold": 0.3, "column": "temp"}]},
            "retraining": {"metric_drop": None, "every_hours": 24},
        }
    )
    assert drift_thresholds(config.drift) == DriftThresholds(alpha=0.05, psi=0.2, min_samples=50)
    assert alert_rules(config.alerts) == [AlertRule("drift", 0.3, "temp")]
    assert retrain_triggers(config.retraining) == RetrainTriggers(
        drifted_columns=1, metric_drop=None, new_labels=None, every_hours=24
    )


def _version(created: datetime) -> ModelVersion:
    return ModelVersion(
        name="bikes",
        version=2,
        created_at=created,
        task="regression",
        metrics={"test": {"rmse": {"value": 30.0, "low": 28.0, "high": 33.0}}},
        params={},
        data_fingerprint=None,
        package_versions={},
        parent_version=1,
        bundle_path=Path("."),
        manifest_sha256="",
    )


def test_snapshot_reads_the_window_and_orients_the_metric():
    now = datetime.now(UTC)
    window = DriftWindow(
        index=4,
        version=2,
        count=500,
        first_log_id=1,
        last_log_id=500,
        started_at=now,
        ended_at=now,
        closed=True,
        report=[
            {"column": "temp", "psi": 0.4, "drifted": True},
            {"column": "hum", "psi": 0.01, "drifted": False},
            {"column": "__prediction__", "psi": 0.3, "drifted": True},
        ],
    )
    live = LiveNumbers(
        2, answered=495, failed=5, labels=400, metric="rmse", value=90.0, low=80.0, high=101.0
    )
    snapshot = build_snapshot(_version(now - timedelta(hours=36)), "rmse", window, live, 400, now)
    assert snapshot.drifted_columns == ["temp", "prediction"]
    assert snapshot.psi == {"temp": 0.4, "hum": 0.01, "prediction": 0.3}
    assert snapshot.reference_metric == 30.0
    assert snapshot.realised_best == 80.0  # lower is better: the optimistic end is the low one
    assert snapshot.metric_drop == 60.0
    assert snapshot.error_rate == 0.01
    assert round(snapshot.hours_since_training) == 36


def test_an_alert_already_sent_recently_is_held_back():
    now = datetime.now(UTC)
    temp = Alert("drift", "bikes", 2, "PSI of 'temp' ...", 0.4, 0.25, column="temp")
    hum = Alert("drift", "bikes", 2, "PSI of 'hum' ...", 0.3, 0.25, column="hum")
    events = [
        {
            "action": "alert",
            "at": (now - timedelta(minutes=5)).isoformat(),
            "detail": {"key": temp.key},
        },
        # Naive timestamps (SQLite) are UTC.
        {
            "action": "alert",
            "at": (now - timedelta(hours=3)).replace(tzinfo=None).isoformat(),
            "detail": {"key": hum.key},
        },
    ]
    assert fresh_alerts([temp, hum], events, 60, now) == [hum]
    assert fresh_alerts([temp, hum], events, 0, now) == [temp, hum]
