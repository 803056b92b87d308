"""Rolling a new version out: the canary stage, and the watch after a promotion.

Both compare a new version with the one it would replace on live numbers from the prediction
log (:mod:`shipyard.monitoring.live`) and act on the verdict, writing it to the audit log:

- :meth:`Rollout.canary_stage`: the canary against the champion over the canary period, on the
  requests each answered. Once the canary has served ``canary.requests`` requests (or
  ``canary.seconds``), it becomes champion unless it did worse; a canary whose metric is
  confidently worse is removed at once.
- :meth:`Rollout.after_promotion`: a champion promoted over another one (by a canary, a retrain
  or by hand) is scored against the previous champion on the rows it answered, both models on
  the same rows. Confidently worse, or failing more requests, rolls it back; enough good
  evidence confirms it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shipyard.errors import RegistryError
from shipyard.manifest import Manifest
from shipyard.monitoring.live import (
    LiveNumbers,
    compare_paired,
    compare_unpaired,
    live_numbers,
)
from shipyard.monitoring.log import MonitoringStore
from shipyard.monitoring.policy import event_time
from shipyard.registry.store import DEFAULT_ALIAS, ModelVersion, Registry
from shipyard.tasks.base import task_for_manifest

if TYPE_CHECKING:
    from shipyard.config import CanaryConfig, RollbackConfig

__all__ = ["CANARY_ALIAS", "Decision", "Rollout", "latest_move"]

CANARY_ALIAS = "canary"


@dataclass(frozen=True)
class Decision:
    """One thing a pass decided (or found), with the numbers behind it."""

    kind: str  # retention, alert, rollback, confirm, canary, promote, retrain, gate, wait
    message: str
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return {"kind": self.kind, "message": self.message, "detail": self.detail}


def latest_move(events: Sequence[Mapping[str, Any]], alias: str) -> Mapping[str, Any] | None:
    """Return the audit log's latest move of ``alias`` (promote, rollback or removal)."""
    moves = [
        event
        for event in events
        if event["action"] in ("promote", "rollback", "remove_alias")
        and event["detail"].get("alias") == alias
    ]
    return moves[-1] if moves else None


class Rollout:
    """Canary decisions and the watch after a promotion, for one model.

    Parameters
    ----------
    registry
        Where the aliases move and the verdicts are logged.
    name
        The model.
    canary
        The canary stage settings (``monitoring.canary``).
    rollback
        When a new version counts as worse (``monitoring.rollback``).
    """

    def __init__(
        self, registry: Registry, name: str, canary: CanaryConfig, rollback: RollbackConfig
    ) -> None:
        self.registry = registry
        self.name = name
        self.canary = canary
        self.rollback = rollback

    def after_promotion(
        self,
        store: MonitoringStore,
        champion: ModelVersion,
        manifest: Mapping[str, Any],
        events: Sequence[Mapping[str, Any]],
        now: datetime,
    ) -> list[Decision]:
        """Watch a champion promoted over another one; roll it back when it does worse."""
        rules = self.rollback
        move = latest_move(events, DEFAULT_ALIAS)
        if (
            not rules.enabled
            or move is None
            or move["action"] != "promote"
            or move["version"] != champion.version
            or move["detail"].get("previous") is None
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
        kind = task_for_manifest(manifest).label_kind(Manifest.from_document(manifest))
        task, classes, metric = (
            kind or "",
            manifest.get("classes", []),
            str(manifest.get("metric") or ""),
        )
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
        if new.numbers.labels >= rules.min_labels:  # labels are read for scored tasks only
            predictor = self.registry.load_predictor(f"{self.name}:{previous}")
            # Rows the old version's contract refuses cannot be compared; the rest can.
            new = new.subset([not predictor.validator.problems(row) for row in new.records])
            old_outputs = predictor.score_records(new.records) if new.records else None
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
        if observed and (new.numbers.labels >= rules.min_labels or kind is None):
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

    def canary_stage(
        self,
        store: MonitoringStore,
        champion: ModelVersion,
        canary: ModelVersion,
        manifest: Mapping[str, Any],
        events: Sequence[Mapping[str, Any]],
        now: datetime,
    ) -> list[Decision]:
        """Compare the canary with the champion over the canary period; decide when due."""
        settings, rules = self.canary, self.rollback
        if canary.version == champion.version:  # promoted, but the alias was left behind
            self.registry.remove_alias(self.name, CANARY_ALIAS, reason="already the champion")
            return []
        move = latest_move(events, CANARY_ALIAS)
        started = event_time(move) if move is not None else canary.created_at
        # Tasks whose answers are not scored one by one compare requests and errors only.
        task = task_for_manifest(manifest).label_kind(Manifest.from_document(manifest)) or ""
        classes = manifest.get("classes", [])
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
