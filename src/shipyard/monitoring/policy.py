"""The ``monitoring`` section of ``shipyard.yaml`` turned into the monitoring objects it drives.

The config holds plain values; the detectors, alert rules and retraining triggers live in
:mod:`shipyard.monitoring.drift` and :mod:`shipyard.monitoring.alerts`. The functions here map
one onto the other (so there is one definition of each rule), build the :class:`Snapshot` that
alerts and triggers read, and keep an alert that keeps firing from being sent on every pass.

Examples
--------
>>> from shipyard.config import MonitoringConfig
>>> config = MonitoringConfig.model_validate({"retraining": {"new_labels": 500}})
>>> retrain_triggers(config.retraining)
RetrainTriggers(drifted_columns=1, metric_drop=0.02, new_labels=500, every_hours=None)
>>> [(rule.kind, rule.threshold) for rule in alert_rules(config.alerts)]
[('drift', 0.25), ('error_rate', 0.01)]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shipyard.evaluation.metrics import GREATER_IS_BETTER
from shipyard.monitoring.alerts import Alert, AlertRule, RetrainTriggers, Snapshot
from shipyard.monitoring.drift import DriftThresholds
from shipyard.monitoring.reference import PREDICTION_COLUMN

if TYPE_CHECKING:
    from shipyard.config import AlertsConfig, DriftConfig, RetrainingConfig
    from shipyard.monitoring.live import LiveNumbers
    from shipyard.monitoring.windows import DriftWindow
    from shipyard.registry.store import ModelVersion

__all__ = [
    "PREDICTION_NAME",
    "alert_rules",
    "build_snapshot",
    "drift_thresholds",
    "event_time",
    "fresh_alerts",
    "retrain_triggers",
]

# How the model's output column is called in snapshots, alerts and the terminal.
PREDICTION_NAME = "prediction"


def drift_thresholds(config: DriftConfig) -> DriftThresholds:
    """Return the drift verdict thresholds the config sets."""
    return DriftThresholds(
        alpha=config.alpha, psi=config.psi_threshold, min_samples=config.min_samples
    )


def alert_rules(config: AlertsConfig) -> list[AlertRule]:
    """Return the alert rules the config lists."""
    return [
        AlertRule(kind=rule.kind, threshold=rule.threshold, column=rule.column)
        for rule in config.rules
    ]


def retrain_triggers(config: RetrainingConfig) -> RetrainTriggers:
    """Return the retraining triggers the config sets (unset ones are off)."""
    return RetrainTriggers(
        drifted_columns=config.drifted_columns,
        metric_drop=config.metric_drop,
        new_labels=config.new_labels,
        every_hours=config.every_hours,
    )


def build_snapshot(
    version: ModelVersion,
    metric: str,
    window: DriftWindow | None,
    live: LiveNumbers | None,
    new_labels: int,
    now: datetime,
) -> Snapshot:
    """Gather what monitoring knows about ``version`` now into a :class:`Snapshot`.

    Parameters
    ----------
    metric
        The model's selection metric; its registered test value is the baseline of drops.
    window
        The latest drift window (its drifted columns and PSI).
    live
        Requests, failures and the realised metric over the latest window's period.
    new_labels
        Labels that arrived since ``version`` was trained.
    """

    def named(column: str) -> str:
        return PREDICTION_NAME if column == PREDICTION_COLUMN else column

    reference = version.metrics.get("test", {}).get(metric, {}).get("value")
    greater = GREATER_IS_BETTER.get(metric, True)
    realised = best = None
    if live is not None and live.value is not None:
        realised = live.value
        best = live.high if greater else live.low
    return Snapshot(
        model=version.name,
        version=version.version,
        drifted_columns=[named(column) for column in window.drifted] if window else [],
        psi={named(str(row["column"])): float(row["psi"]) for row in window.report}
        if window
        else {},
        metric=metric,
        reference_metric=reference,
        realised_metric=realised,
        realised_best=best,
        greater_is_better=greater,
        error_rate=live.error_rate if live is not None else None,
        new_labels=new_labels,
        hours_since_training=(now - version.created_at).total_seconds() / 3600.0,
    )


def event_time(event: Mapping[str, Any]) -> datetime:
    """When an audit event happened, as an aware datetime (SQLite stores naive UTC)."""
    moment = datetime.fromisoformat(str(event["at"]))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def fresh_alerts(
    alerts: Sequence[Alert],
    events: Iterable[Mapping[str, Any]],
    repeat_minutes: float,
    now: datetime,
) -> list[Alert]:
    """Keep the alerts not already sent within the last ``repeat_minutes``.

    ``events`` is the model's audit log; sent alerts are its ``alert`` events.
    """
    cutoff = now - timedelta(minutes=repeat_minutes)
    recent = {
        str(event["detail"].get("key"))
        for event in events
        if event["action"] == "alert" and event_time(event) >= cutoff
    }
    return [alert for alert in alerts if alert.key not in recent]
