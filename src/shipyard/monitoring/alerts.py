"""Alerts and the retraining policy: rules over a monitoring snapshot, sent to a webhook.

A :class:`Snapshot` gathers what monitoring knows about a model version right now: the drift of
the latest window, the realised metric with its CI against the metric at registration, the
request error rate, labels and time since training. Alert rules and retraining triggers are both
plain checks over it, so what fires an alert and what starts a retrain read the same numbers.

Examples
--------
>>> snapshot = Snapshot(model="adult", version=1, drifted_columns=["age"], psi={"age": 0.4})
>>> [alert.message for alert in evaluate_rules([AlertRule(kind="drift", threshold=0.2)],
...                                            snapshot)]
["adult:1: PSI of 'age' is 0.400, above 0.2"]
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = [
    "Alert",
    "AlertRule",
    "Delivery",
    "RetrainDecision",
    "RetrainTriggers",
    "Snapshot",
    "WebhookNotifier",
    "decide_retrain",
    "evaluate_rules",
]

logger = logging.getLogger("shipyard.monitoring")


@dataclass(frozen=True)
class Snapshot:
    """What monitoring knows about one model version now."""

    model: str
    version: int
    drifted_columns: list[str] = field(default_factory=list)
    psi: dict[str, float] = field(default_factory=dict)
    metric: str | None = None
    reference_metric: float | None = None  # the test metric at registration
    realised_metric: float | None = None
    realised_best: float | None = None  # the better end of the realised metric's CI
    greater_is_better: bool = True
    error_rate: float | None = None
    new_labels: int = 0
    hours_since_training: float | None = None

    @property
    def metric_drop(self) -> float | None:
        """How much worse the realised metric is than at registration (positive = worse)."""
        if self.reference_metric is None or self.realised_metric is None:
            return None
        sign = 1.0 if self.greater_is_better else -1.0
        return sign * (self.reference_metric - self.realised_metric)


@dataclass(frozen=True)
class AlertRule:
    """One alert rule.

    Parameters
    ----------
    kind
        ``drift`` (a column's PSI above ``threshold``; one column or any), ``metric_drop``
        (realised metric worse than at registration by more than ``threshold``) or
        ``error_rate`` (share of failed requests above ``threshold``).
    threshold
        The limit.
    column
        For ``drift``: the column watched; all columns when omitted.
    """

    kind: Literal["drift", "metric_drop", "error_rate"]
    threshold: float
    column: str | None = None


@dataclass(frozen=True)
class Alert:
    """A fired rule, with the numbers that fired it."""

    kind: str
    model: str
    version: int
    message: str
    value: float
    threshold: float
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    column: str | None = None  # drift alerts: the drifted column

    @property
    def key(self) -> str:
        """What makes two alerts the same one fired again: kind, version and column."""
        return f"{self.kind}:{self.version}:{self.column or ''}"

    def as_dict(self) -> dict[str, Any]:
        """Plain dict: the webhook's JSON body."""
        return asdict(self)


def evaluate_rules(rules: Sequence[AlertRule], snapshot: Snapshot) -> list[Alert]:
    """Return the alerts the snapshot fires."""
    alerts = []
    name = f"{snapshot.model}:{snapshot.version}"
    for rule in rules:
        if rule.kind == "drift":
            columns = [rule.column] if rule.column else sorted(snapshot.psi)
            for column in columns:
                value = snapshot.psi.get(column)
                if value is not None and value > rule.threshold:
                    alerts.append(
                        Alert(
                            "drift",
                            snapshot.model,
                            snapshot.version,
                            f"{name}: PSI of '{column}' is {value:.3f}, above {rule.threshold:g}",
                            value,
                            rule.threshold,
                            column=column,
                        )
                    )
        elif rule.kind == "metric_drop":
            drop = snapshot.metric_drop
            if drop is not None and drop > rule.threshold:
                alerts.append(
                    Alert(
                        "metric_drop",
                        snapshot.model,
                        snapshot.version,
                        f"{name}: {snapshot.metric} worsened by {drop:.4f} (now "
                        f"{snapshot.realised_metric:.4f}, at registration "
                        f"{snapshot.reference_metric:.4f}), more than "
                        f"{rule.threshold:g}",
                        drop,
                        rule.threshold,
                    )
                )
        elif snapshot.error_rate is not None and snapshot.error_rate > rule.threshold:
            alerts.append(
                Alert(
                    "error_rate",
                    snapshot.model,
                    snapshot.version,
                    f"{name}: {snapshot.error_rate:.1%} of requests failed, above "
                    f"{rule.threshold:.1%}",
                    snapshot.error_rate,
                    rule.threshold,
                )
            )
    return alerts


@dataclass(frozen=True)
class Delivery:
    """What became of one alert POSTed to the webhook."""

    delivered: bool
    attempts: int
    error: str | None = None
    retryable: bool = True  # False: the webhook refused the alert itself; retrying cannot help


# Answers worth trying again: the webhook is busy, timed out, or failed on its side.
_RETRYABLE_STATUSES = frozenset({408, 425, 429})


class WebhookNotifier:
    """POST alerts as JSON to a webhook URL, retrying with exponential backoff; never raises.

    Parameters
    ----------
    url
        The webhook (for example a chat or incident tool's incoming webhook).
    timeout
        Seconds per POST.
    attempts
        POSTs per alert before :meth:`post` gives up: a connection error, a timeout, a 5xx,
        408, 425 or 429 answer is tried again; another 4xx is not (the webhook refused it).
    backoff_seconds
        Wait before the second attempt; each later wait doubles.
    """

    def __init__(
        self, url: str, timeout: float = 5.0, attempts: int = 3, backoff_seconds: float = 0.5
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds

    def send(self, alerts: Sequence[Alert]) -> int:
        """Send each alert; return how many the webhook accepted (2xx)."""
        delivered = 0
        for alert in alerts:
            logger.warning("alert: %s", alert.message)
            delivered += self.post(alert.as_dict()).delivered
        return delivered

    def post(self, body: Mapping[str, Any]) -> Delivery:
        """POST one alert body, up to ``attempts`` times; say whether the webhook took it."""
        error = "not attempted"
        for attempt in range(1, max(self.attempts, 1) + 1):
            if attempt > 1:
                time.sleep(self.backoff_seconds * 2 ** (attempt - 2))
            error, retryable = self._post_once(body)
            if not error:
                return Delivery(True, attempt)
            logger.error(
                "could not deliver an alert to %s (attempt %d of %d): %s",
                _without_query(self.url),
                attempt,
                self.attempts,
                error,
            )
            if not retryable:
                return Delivery(False, attempt, error, retryable=False)
        return Delivery(False, max(self.attempts, 1), error)

    def _post_once(self, body: Mapping[str, Any]) -> tuple[str, bool]:
        """POST once; return ``("", True)`` on a 2xx, else the error and whether to retry."""
        request = urllib.request.Request(
            self.url,
            data=json.dumps(dict(body)).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "shipyard"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                if 200 <= response.status < 300:
                    return "", True
                return f"HTTP {response.status}", True
        except urllib.error.HTTPError as answer:
            retryable = answer.code >= 500 or answer.code in _RETRYABLE_STATUSES
            return f"HTTP {answer.code} {answer.reason}", retryable
        except (urllib.error.URLError, TimeoutError, OSError) as failure:
            reason = getattr(failure, "reason", failure)
            return f"{type(failure).__name__}: {reason}", True


def _without_query(url: str) -> str:
    # Incoming-webhook URLs often carry their token in the path or query: log the host only.
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class RetrainTriggers:
    """When to retrain. Each trigger left at None is off.

    Parameters
    ----------
    drifted_columns
        Retrain when at least this many columns drifted in the latest window.
    metric_drop
        Retrain when the realised metric is worse than at registration by more than this, and
        the whole CI agrees (its better end is still worse than the registered value).
    new_labels
        Retrain once this many new labels arrived.
    every_hours
        Retrain on a schedule.
    """

    drifted_columns: int | None = 1
    metric_drop: float | None = 0.02
    new_labels: int | None = None
    every_hours: float | None = None


@dataclass(frozen=True)
class RetrainDecision:
    """Whether to retrain, and why."""

    retrain: bool
    reasons: list[str]


def decide_retrain(snapshot: Snapshot, triggers: RetrainTriggers) -> RetrainDecision:
    """Apply the retraining triggers to a snapshot."""
    reasons = []
    if (
        triggers.drifted_columns is not None
        and len(snapshot.drifted_columns) >= triggers.drifted_columns
    ):
        reasons.append(
            f"{len(snapshot.drifted_columns)} column(s) drifted: "
            f"{', '.join(snapshot.drifted_columns)}"
        )
    drop = snapshot.metric_drop
    if triggers.metric_drop is not None and drop is not None and drop > triggers.metric_drop:
        best, reference = snapshot.realised_best, snapshot.reference_metric
        confident = (
            best is None
            or reference is None
            or (best < reference if snapshot.greater_is_better else best > reference)
        )
        if confident:
            reasons.append(f"{snapshot.metric} worsened by {drop:.4f}")
    if triggers.new_labels is not None and snapshot.new_labels >= triggers.new_labels:
        reasons.append(f"{snapshot.new_labels} new labels")
    if (
        triggers.every_hours is not None
        and snapshot.hours_since_training is not None
        and snapshot.hours_since_training >= triggers.every_hours
    ):
        reasons.append(f"{snapshot.hours_since_training:.1f} h since training")
    return RetrainDecision(bool(reasons), reasons)
