"""The closed loop, continuously: what ``shipyard watch NAME`` runs on every pass.

One pass, driven by the ``monitoring`` section of the config:

1. Retention: delete logged predictions and feedback older than ``retention_days``.
2. Drift: advance the champion's drift windows over the new log rows (incrementally).
3. Alerts: check the rules on a :class:`~shipyard.monitoring.alerts.Snapshot` (latest window's
   drift, realised metric, error rate); send new alerts to the log, the webhook and the audit
   log.
4. A freshly promoted champion is compared with the one it replaced, both scored on the rows
   the new one answered (paired); worse beyond the tolerance rolls it back, enough good
   evidence confirms it.
5. A canary is compared with the champion over the canary period once it has served
   ``canary.requests`` requests (or ``canary.seconds``): promoted to champion, or removed.
6. Otherwise the retraining triggers are checked; a retrain trains a challenger on the
   reference data plus the new labels and gates it (:func:`shipyard.loop.retrain`); a passing
   challenger becomes the canary (or the champion when ``canary.share`` is 0).

Every decision that changes something goes to the audit log with its numbers.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shipyard.config import MonitoringConfig
from shipyard.errors import ModelNotFoundError, RegistryError, ShipyardError
from shipyard.monitoring.alerts import Snapshot, WebhookNotifier, decide_retrain, evaluate_rules
from shipyard.monitoring.live import LiveNumbers, compare_paired, compare_unpaired, live_numbers
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
from shipyard.monitoring.service import open_drift_monitor
from shipyard.monitoring.windows import DriftWindow
from shipyard.registry.store import DEFAULT_ALIAS, ModelVersion, Registry

__all__ = ["CANARY_ALIAS", "Decision", "WatchPass", "Watcher"]

logger = logging.getLogger("shipyard.monitoring")

CANARY_ALIAS = "canary"
# The snapshot's realised metric needs this many labels (as the windows of `shipyard monitor`).
SNAPSHOT_MIN_LABELS = 30

Reporter = Callable[[str], None]


@dataclass(frozen=True)
class Decision:
    """One thing a pass decided (or found), with the numbers behind it."""

    kind: str  # retention, alert, rollback, confirm, canary, promote, retrain, gate, wait
    message: str
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return {"kind": self.kind, "message": self.message, "detail": self.detail}


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


def latest_move(events: Sequence[Mapping[str, Any]], alias: str) -> Mapping[str, Any] | None:
    """Return the audit log's latest move of ``alias`` (promote, rollback or removal)."""
    moves = [
        event
        for event in events
        if event["action"] in ("promote", "rollback", "remove_alias")
        and event["detail"].get("alias") == alias
    ]
    return moves[-1] if moves else None


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
        on_error: Callable[[ShipyardError], None] | None = None,
    ) -> int:
        """Run passes every ``interval_seconds`` until ``stop`` is set (or ``passes`` ran).

        A pass that fails with a shipyard error (a bundle that does not verify, a database
        that is down) is reported to ``on_error`` and the next pass runs on time; other
        errors stop the loop. Returns the number of passes run.
        """
        stop = stop or threading.Event()
        done = 0
        while not stop.is_set() and (passes is None or done < passes):
            started = time.monotonic()
            try:
                on_pass(self.run_once())
            except ShipyardError as error:
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
        store = MonitoringStore(self.registry.url)
        try:
            decisions += self._retention(store)
            window = self._drift(store, champion)
            since = window.started_at if window and window.started_at else champion.created_at
            live = None
            if metric and manifest["task"] in ("binary", "multiclass", "regression"):
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
            new_labels = store.labels_since(self.name, champion.created_at)
            snapshot = build_snapshot(champion, metric, window, live, new_labels, now)
            decisions += self._alerts(snapshot, events, now)
            after_promotion = self._after_promotion(store, champion, manifest, events, now)
            decisions += after_promotion
            if canary is not None:
                decisions += self._canary_stage(store, champion, canary, manifest, events, now)
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

    def _drift(self, store: MonitoringStore, champion: ModelVersion) -> DriftWindow | None:
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
        self, snapshot: Snapshot, events: Sequence[Mapping[str, Any]], now: datetime
    ) -> list[Decision]:
        alerts = evaluate_rules(alert_rules(self.config.alerts), snapshot)
        fresh = fresh_alerts(alerts, events, self.config.alerts.repeat_minutes, now)
        if not fresh:
            return []
        webhook = self.config.alerts.webhook
        if webhook is not None:
            WebhookNotifier(webhook).send(fresh)  # logs each alert, and each failed delivery
        else:
            for alert in fresh:
                logger.warning("alert: %s", alert.message)
        decisions = []
        for alert in fresh:
            detail = {**alert.as_dict(), "key": alert.key, "webhook": webhook is not None}
            self.registry.log_event(self.name, alert.version, "alert", detail)
            decisions.append(Decision("alert", alert.message, detail))
        return decisions

    def _after_promotion(
        self,
        store: MonitoringStore,
        champion: ModelVersion,
        manifest: Mapping[str, Any],
        events: Sequence[Mapping[str, Any]],
        now: datetime,
    ) -> list[Decision]:
        """Watch a champion promoted over another one; roll it back when it does worse."""
        rules = self.config.rollback
        move = latest_move(events, DEFAULT_ALIAS)
        if (
            not rules.enabled
            or move is None
            or move["action"] != "promote"
            or move["version"] != champion.version
            or move["detail"].get("previous") is None
            or not manifest.get("metric")
        ):
            return []
        settled = any(
            event["action"] == "live_check" and event["detail"].get("promoted_at") == move["at"]
            for event in events
        )
        if settled:
            return []
        previous = int(move["detail"]["previous"])
        promoted_at = event_time(move)
        task, classes, metric = manifest["task"], manifest.get("classes", []), manifest["metric"]
        new = live_numbers(
            store,
            self.name,
            champion.version,
            task,
            classes,
            metric,
            promoted_at,
            min_labels=rules.min_labels,
        )
        # The old version's error rate over as long a period before the promotion.
        activity = store.activity(
            self.name, previous, promoted_at - (now - promoted_at), promoted_at
        )
        old = LiveNumbers(previous, activity["answered"], activity["failed"], 0, metric)
        old_outputs = None
        if new.numbers.labels >= rules.min_labels:
            predictor = self.registry.load_predictor(f"{self.name}:{previous}")
            old_outputs = predictor.score_records(new.records)
        comparison = compare_paired(
            new,
            old,
            old_outputs,
            min_labels=rules.min_labels,
            error_rate_tolerance=rules.error_rate_tolerance,
            metric_tolerance=rules.metric_tolerance,
        )
        observed = new.numbers.requests >= rules.observe_requests
        detail = {"promoted_at": move["at"], "previous": previous, **comparison.as_dict()}
        if comparison.metric_worse or (comparison.error_rate_worse and observed):
            reason = "; ".join(comparison.reasons)
            self.registry.rollback(
                self.name, DEFAULT_ALIAS, reason=f"automatic rollback: {reason}"
            )
            self.registry.log_event(
                self.name, champion.version, "live_check", {**detail, "verdict": "rolled_back"}
            )
            return [
                Decision(
                    "rollback",
                    f"{champion.reference} rolled back to {self.name}:{previous}: {reason}",
                    detail,
                )
            ]
        if observed and new.numbers.labels >= rules.min_labels:
            self.registry.log_event(
                self.name, champion.version, "live_check", {**detail, "verdict": "confirmed"}
            )
            return [
                Decision(
                    "confirm",
                    f"{champion.reference} confirmed as champion after "
                    f"{new.numbers.requests} requests: {_compared(comparison.as_dict())}",
                    detail,
                )
            ]
        return [
            Decision(
                "wait",
                f"watching the new champion {champion.reference}: "
                f"{new.numbers.requests}/{rules.observe_requests} requests, "
                f"{new.numbers.labels}/{rules.min_labels} labels",
                detail,
            )
        ]

    def _canary_stage(
        self,
        store: MonitoringStore,
        champion: ModelVersion,
        canary: ModelVersion,
        manifest: Mapping[str, Any],
        events: Sequence[Mapping[str, Any]],
        now: datetime,
    ) -> list[Decision]:
        """Compare the canary with the champion over the canary period; decide when due."""
        settings, rules = self.config.canary, self.config.rollback
        move = latest_move(events, CANARY_ALIAS)
        started = event_time(move) if move is not None else canary.created_at
        task, classes = manifest["task"], manifest.get("classes", [])
        metric = str(manifest.get("metric") or "")
        samples = [
            live_numbers(
                store,
                self.name,
                version.version,
                task,
                classes,
                metric,
                started,
                min_labels=settings.min_labels,
            )
            for version in (canary, champion)
        ]
        comparison = compare_unpaired(
            *samples,
            min_labels=settings.min_labels,
            error_rate_tolerance=rules.error_rate_tolerance,
            metric_tolerance=rules.metric_tolerance,
        )
        served = comparison.new.requests
        elapsed = (now - started).total_seconds()
        due = (settings.requests is not None and served >= settings.requests) or (
            settings.seconds is not None and elapsed >= settings.seconds
        )
        detail = {
            "canary": canary.reference,
            "champion": champion.reference,
            "started_at": started.isoformat(),
            "seconds": round(elapsed, 1),
            **comparison.as_dict(),
        }
        progress = (
            f"{served}/{settings.requests} requests"
            if settings.requests is not None
            else f"{elapsed:.0f}/{settings.seconds:g} s"
        )
        if comparison.metric_worse or (due and comparison.worse):
            reason = "; ".join(comparison.reasons)
            if not rules.enabled:
                return [
                    Decision(
                        "wait",
                        f"canary {canary.reference} looks worse ({reason}); automatic rollback "
                        "is off: promote or remove it by hand",
                        detail,
                    )
                ]
            return [self._end_canary(canary, "rolled_back", f"rolled back: {reason}", detail)]
        if not due:
            return [
                Decision(
                    "wait",
                    f"canary {canary.reference}: {progress}; {_compared(comparison.as_dict())}",
                    detail,
                )
            ]
        try:
            self.registry.promote(
                self.name,
                canary.version,
                DEFAULT_ALIAS,
                reason=f"canary passed after {served} requests: {_compared(comparison.as_dict())}",
            )
        except RegistryError as error:  # the fairness gate, for one
            return [self._end_canary(canary, "rolled_back", f"not promoted: {error}", detail)]
        return [
            self._end_canary(
                canary,
                "promoted",
                f"promoted to champion after {served} requests: {_compared(comparison.as_dict())}",
                detail,
            )
        ]

    def _end_canary(
        self, canary: ModelVersion, verdict: str, message: str, detail: dict[str, Any]
    ) -> Decision:
        self.registry.remove_alias(self.name, CANARY_ALIAS, reason=message)
        self.registry.log_event(
            self.name, canary.version, "canary", {**detail, "verdict": verdict}
        )
        kind = "promote" if verdict == "promoted" else "rollback"
        return Decision(kind, f"canary {canary.reference} {message}", detail)

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
        from shipyard.loop import retrain

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


def _compared(detail: Mapping[str, Any]) -> str:
    """One line for a comparison: metric difference with its interval, error rates."""
    new, old = detail["new"], detail["old"]
    parts = []
    if detail["difference"] is not None:
        parts.append(
            f"{detail['metric']} {new['value'] if new['value'] is not None else float('nan'):.4f}"
            f" vs {old['value'] if old['value'] is not None else float('nan'):.4f}, "
            f"difference {detail['difference']:+.4f} "
            f"[{detail['low']:+.4f}, {detail['high']:+.4f}] (positive is better)"
        )
    else:
        parts.append(f"{new['labels']} and {old['labels']} labels: no metric verdict yet")
    if new["error_rate"] is not None and old["error_rate"] is not None:
        parts.append(f"error rate {new['error_rate']:.2%} vs {old['error_rate']:.2%}")
    return "; ".join(parts)
