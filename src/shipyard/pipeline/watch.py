"""The closed loop, continuously: what ``shipyard watch NAME`` runs on every pass.

One pass, driven by the ``monitoring`` section of the config:

1. Retention: delete logged predictions and feedback older than ``retention_days``.
2. Drift: advance the champion's drift windows over the new log rows (incrementally).
3. Alerts: check the rules on a :class:`~shipyard.monitoring.alerts.Snapshot` (latest window's
   drift, realised metric, error rate); send new alerts to the log, the audit log and the
   webhook, where an alert the webhook did not take is tried again on later passes
   (:mod:`shipyard.monitoring.deliveries`).
4. A freshly promoted champion is compared with the one it replaced, and a canary with the
   champion (:class:`shipyard.pipeline.rollout.Rollout`): worse beyond the tolerance rolls
   back, enough good evidence confirms the champion or promotes the canary.
5. Otherwise the retraining triggers are checked; a retrain trains a challenger on the
   reference data plus the new labels and gates it (:func:`shipyard.pipeline.retrain.retrain`);
   a passing challenger becomes the canary (or the champion when ``canary.share`` is 0).

Every decision that changes something goes to the audit log with its numbers.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from shipyard.config import MonitoringConfig
from shipyard.errors import ModelNotFoundError, ShipyardError
from shipyard.monitoring.alerts import (
    Alert,
    Snapshot,
    WebhookNotifier,
    decide_retrain,
    evaluate_rules,
)
from shipyard.monitoring.deliveries import AlertDeliveries
from shipyard.monitoring.live import LiveNumbers, live_numbers
from shipyard.monitoring.log import MonitoringStore
from shipyard.monitoring.policy import (
    PREDICTION_NAME,
    alert_rules,
    build_snapshot,
    drift_thresholds,
    event_time,
    fresh_alerts,
    retrain_triggers,
)
from shipyard.monitoring.windows import DriftWindow
from shipyard.pipeline.monitor import open_drift_monitor, task_realised_metric
from shipyard.pipeline.rollout import CANARY_ALIAS, Decision, Rollout
from shipyard.registry.store import DEFAULT_ALIAS, ModelVersion, Registry

__all__ = ["CANARY_ALIAS", "Decision", "WatchPass", "Watcher"]

logger = logging.getLogger("shipyard.monitoring")

# The snapshot's realised metric needs this many labels (as the windows of `shipyard monitor`).
SNAPSHOT_MIN_LABELS = 30

Reporter = Callable[[str], None]


@dataclass
class WatchPass:
    """What one pass of the policy saw and did."""

    model: str
    champion: str
    canary: str | None
    at: datetime
    window: DriftWindow | None
    snapshot: Snapshot
    decisions: list[Decision]
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary: one line of ``shipyard watch --json``."""
        window = None
        if self.window is not None:
            window = {
                "index": self.window.index,
                "count": self.window.count,
                "closed": self.window.closed,
                "drifted": self.snapshot.drifted_columns,
            }
        snapshot = self.snapshot
        return {
            "model": self.model,
            "at": self.at.isoformat(),
            "champion": self.champion,
            "canary": self.canary,
            "window": window,
            "psi": snapshot.psi,
            "metric": snapshot.metric,
            "reference_metric": snapshot.reference_metric,
            "realised_metric": snapshot.realised_metric,
            "error_rate": snapshot.error_rate,
            "new_labels": snapshot.new_labels,
            "decisions": [decision.as_dict() for decision in self.decisions],
            "seconds": round(self.seconds, 3),
        }


class Watcher:
    """Runs the monitoring policy of one model, pass after pass.

    Parameters
    ----------
    registry
        The registry holding the model; its database holds the prediction log.
    name
        The model watched.
    config
        The ``monitoring`` section: windows, drift thresholds, alerts, retraining, canary,
        rollback, retention, interval.
    report
        Receives progress lines (training steps of a retrain, for one).
    """

    def __init__(
        self,
        registry: Registry,
        name: str,
        config: MonitoringConfig,
        report: Reporter | None = None,
    ) -> None:
        self.registry = registry
        self.name = name
        self.config = config
        self.report = report

    def run(
        self,
        on_pass: Callable[[WatchPass], None],
        stop: threading.Event | None = None,
        passes: int | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> int:
        """Run passes every ``interval_seconds`` until ``stop`` is set (or ``passes`` ran).

        With ``on_error``, a pass that fails (a database that is down, a bundle that does not
        verify) is reported to it and the next pass runs on time; without, the error stops the
        loop. Returns the number of passes run.
        """
        stop = stop or threading.Event()
        done = 0
        while not stop.is_set() and (passes is None or done < passes):
            started = time.monotonic()
            try:
                on_pass(self.run_once())
            except Exception as error:  # a watcher outlives a bad pass when asked to
                if on_error is None:
                    raise
                on_error(error)
            done += 1
            if passes is not None and done >= passes:
                break
            stop.wait(max(self.config.interval_seconds - (time.monotonic() - started), 0.0))
        return done

    def run_once(self) -> WatchPass:
        """Run one pass of the policy and return what it saw and decided."""
        started = time.perf_counter()
        now = datetime.now(UTC)
        champion = self.registry.resolve(f"{self.name}@{DEFAULT_ALIAS}")
        canary = self._canary()
        events = self.registry.events(self.name)
        manifest = self.registry.manifest(champion.reference)
        metric = str(manifest.get("metric") or "")
        decisions: list[Decision] = []
        rollout = Rollout(self.registry, self.name, self.config.canary, self.config.rollback)
        store = MonitoringStore(self.registry.url)
        try:
            decisions += self._retention(store)
            window = self._drift(store, champion, manifest)
            since = window.started_at if window and window.started_at else champion.created_at
            live = live_numbers(
                store,
                self.name,
                champion.version,
                manifest["task"],
                manifest.get("classes", []),
                metric,
                since,
                min_labels=SNAPSHOT_MIN_LABELS,
            ).numbers
            if live.value is None:
                live = self._task_metric(store, champion, live, since)
            new_labels = store.labels_since(self.name, champion.created_at)
            snapshot = build_snapshot(champion, metric, window, live, new_labels, now)
            decisions += self._alerts(store, snapshot, events, now)
            after_promotion = rollout.after_promotion(store, champion, manifest, events, now)
            decisions += after_promotion
            if canary is not None:
                decisions += rollout.canary_stage(store, champion, canary, manifest, events, now)
            elif not after_promotion or after_promotion[-1].kind == "confirm":
                decisions += self._retraining(store, snapshot, events, now)
        finally:
            store.close()
        return WatchPass(
            self.name,
            champion.reference,
            canary.reference if canary else None,
            now,
            window,
            snapshot,
            decisions,
            time.perf_counter() - started,
        )

    # -- the steps -----------------------------------------------------------------------

    def _canary(self) -> ModelVersion | None:
        try:
            return self.registry.resolve(f"{self.name}@{CANARY_ALIAS}")
        except ModelNotFoundError:
            return None

    def _retention(self, store: MonitoringStore) -> list[Decision]:
        days = self.config.retention_days
        if days is None:
            return []
        removed = store.purge(timedelta(days=days))
        if not removed:
            return []
        return [
            Decision(
                "retention",
                f"deleted {removed} logged rows older than {days:g} days",
                {"removed": removed, "days": days},
            )
        ]

    def _task_metric(
        self, store: MonitoringStore, champion: ModelVersion, live: LiveNumbers, since: datetime
    ) -> LiveNumbers:
        """Fill in the realised metric that the task computes itself (a forecaster's error)."""
        realised = task_realised_metric(self.registry, store, champion.reference, since)
        if not realised or realised.get("value") is None:
            return live
        return replace(
            live,
            labels=int(realised.get("labels", 0)),
            metric=str(realised["metric"]),
            value=float(realised["value"]),
            low=realised.get("low"),
            high=realised.get("high"),
        )

    def _drift(
        self, store: MonitoringStore, champion: ModelVersion, manifest: Mapping[str, Any]
    ) -> DriftWindow | None:
        if not manifest.get("drift_reference"):
            return None  # a bundle without sketches: no drift to watch, the rest still runs
        monitor = open_drift_monitor(
            self.registry,
            champion.reference,
            store,
            window_size=self.config.window_size,
            thresholds=drift_thresholds(self.config.drift),
        )
        monitor.update()
        return monitor.latest()

    def _alerts(
        self,
        store: MonitoringStore,
        snapshot: Snapshot,
        events: Sequence[Mapping[str, Any]],
        now: datetime,
    ) -> list[Decision]:
        settings = self.config.alerts
        alerts = evaluate_rules(alert_rules(settings), snapshot)
        # An alert fired within repeat_minutes is not fired again: it was delivered, or it
        # is still pending and tried again below.
        fresh = fresh_alerts(alerts, events, settings.repeat_minutes, now)
        decisions = []
        for alert in fresh:
            logger.warning("alert: %s", alert.message)
            detail = {**alert.as_dict(), "key": alert.key, "webhook": settings.webhook is not None}
            self.registry.log_event(self.name, alert.version, "alert", detail)
            decisions.append(Decision("alert", alert.message, detail))
        if settings.webhook is not None:
            decisions += self._deliver(store, fresh, settings.webhook, now)
        return decisions

    def _deliver(
        self, store: MonitoringStore, fresh: Sequence[Alert], webhook: str, now: datetime
    ) -> list[Decision]:
        """Queue the fresh alerts, then try every pending one; report all but plain successes."""
        settings = self.config.alerts
        deliveries = AlertDeliveries(store)
        deliveries.add(fresh)
        notifier = WebhookNotifier(
            webhook,
            attempts=settings.delivery_attempts,
            backoff_seconds=settings.retry_backoff_seconds,
        )
        outcomes = deliveries.deliver(
            self.name, notifier, now, timedelta(minutes=settings.repeat_minutes)
        )
        decisions = []
        for outcome in outcomes:
            detail = {
                "key": outcome.key,
                "status": outcome.status,
                "attempts": outcome.attempts,
                "error": outcome.error,
            }
            if outcome.status == "undelivered":
                self.registry.log_event(self.name, outcome.version, "alert_undelivered", detail)
                message = (
                    f"gave up on alert '{outcome.message}' after {outcome.attempts} "
                    f"attempt(s): {outcome.error}"
                )
            elif outcome.status == "pending":
                message = (
                    f"the webhook did not take alert '{outcome.message}' ({outcome.error}); "
                    "it is tried again on the next pass"
                )
            elif outcome.earlier_passes:
                message = f"alert '{outcome.message}' delivered after {outcome.attempts} attempts"
            else:
                continue
            decisions.append(Decision("delivery", message, detail))
        return decisions

    def _retraining(
        self,
        store: MonitoringStore,
        snapshot: Snapshot,
        events: Sequence[Mapping[str, Any]],
        now: datetime,
    ) -> list[Decision]:
        settings = self.config.retraining
        if not settings.enabled:
            return []
        decision = decide_retrain(snapshot, retrain_triggers(settings))
        numbers = _snapshot_numbers(snapshot)
        if not decision.retrain:
            return []
        last = next((event for event in reversed(events) if event["action"] == "retrain"), None)
        if last is not None:
            waited = (now - event_time(last)).total_seconds() / 60.0
            if waited < settings.cooldown_minutes:
                return [
                    Decision(
                        "wait",
                        f"retraining due ({'; '.join(decision.reasons)}) but the last retrain "
                        f"was {waited:.0f} min ago (cooldown {settings.cooldown_minutes:g} min)",
                        numbers,
                    )
                ]
        labelled = store.count(self.name)["labelled"]
        if math.floor(labelled * settings.gate_share) < settings.min_gate_rows:
            needed = math.ceil(settings.min_gate_rows / settings.gate_share)
            return [
                Decision(
                    "wait",
                    f"retraining due ({'; '.join(decision.reasons)}) but only {labelled} labels: "
                    f"the gate needs {settings.min_gate_rows} held out, so about {needed}",
                    numbers,
                )
            ]
        return self._retrain(decision.reasons, numbers)

    def _retrain(self, reasons: list[str], numbers: dict[str, Any]) -> list[Decision]:
        from shipyard.pipeline.retrain import retrain

        settings, canary = self.config.retraining, self.config.canary
        promote_to = CANARY_ALIAS if canary.share > 0 else DEFAULT_ALIAS
        detail = {"reasons": reasons, **numbers}
        self.registry.log_event(self.name, None, "retrain", detail)
        decisions = [Decision("retrain", f"retraining: {'; '.join(reasons)}", detail)]
        try:
            run = retrain(
                self.registry,
                self.name,
                gate_share=settings.gate_share,
                min_gate_rows=settings.min_gate_rows,
                min_improvement=settings.min_improvement,
                report=self.report,
                promote_to=promote_to,
            )
        except ShipyardError as error:
            self.registry.log_event(self.name, None, "retrain_failed", {"error": str(error)})
            return [*decisions, Decision("retrain", f"retraining failed: {error}", {})]
        gate = {**run.gate.as_dict(), "challenger_reference": run.challenger.version.reference}
        scores = (
            f"{run.gate.samples} held-out labels, {run.gate.metric} challenger "
            f"{run.gate.challenger:.4f} vs champion {run.gate.champion:.4f}"
        )
        decisions.append(Decision("gate", f"{run.message} ({scores})", gate))
        if run.promoted and promote_to == CANARY_ALIAS:
            stage = {
                "stage": "started",
                "share": canary.share,
                "requests": canary.requests,
                "seconds": canary.seconds,
            }
            self.registry.log_event(self.name, run.challenger.version.version, "canary", stage)
            decisions.append(
                Decision(
                    "canary",
                    f"{run.challenger.version.reference} serves {canary.share:.0%} of traffic "
                    "as the canary",
                    stage,
                )
            )
        return decisions


def _snapshot_numbers(snapshot: Snapshot) -> dict[str, Any]:
    """Return the snapshot's numbers, for the audit log."""
    top = sorted(snapshot.psi.items(), key=lambda item: -item[1])[:5]
    return {
        "version": snapshot.version,
        "drifted": snapshot.drifted_columns,
        "top_psi": dict(top),
        "prediction_psi": snapshot.psi.get(PREDICTION_NAME),
        "metric": snapshot.metric,
        "reference_metric": snapshot.reference_metric,
        "realised_metric": snapshot.realised_metric,
        "error_rate": snapshot.error_rate,
        "new_labels": snapshot.new_labels,
    }
