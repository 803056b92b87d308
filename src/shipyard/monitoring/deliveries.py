"""Alerts on their way to the webhook, kept in the monitoring database until they arrive.

A fired alert is written here as ``pending`` before anything is POSTed. Each pass of
``shipyard watch`` then delivers what is pending, oldest first, every alert with a few attempts
and exponential backoff (:class:`~shipyard.monitoring.alerts.WebhookNotifier`). A webhook that
is down keeps the alert pending for the next pass, and the pass stops trying the others; a
webhook that refuses the alert itself (a 4xx other than 408, 425, 429), or an alert still pending
once its repeat period is over, is marked ``undelivered``, by then the rule fires afresh if it
still holds.

Examples
--------
>>> from shipyard.monitoring.alerts import Alert
>>> deliveries = AlertDeliveries(MonitoringStore("sqlite://"))
>>> deliveries.add([Alert("error_rate", "adult", 1, "adult:1: 5.0% of requests failed",
...                       0.05, 0.01)])
>>> [(row.key, row.status, row.attempts) for row in deliveries.pending("adult")]
[('error_rate:1:', 'pending', 0)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import JSON, DateTime, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from shipyard.monitoring.alerts import Alert, WebhookNotifier
from shipyard.monitoring.log import MonitoringStore, _Base

__all__ = ["AlertDeliveries", "DeliveryRecord"]

Status = Literal["pending", "delivered", "undelivered"]


def _now() -> datetime:
    return datetime.now(UTC)


class _Delivery(_Base):
    __tablename__ = "shipyard_alert_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(200))
    alert: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(String(500))


@dataclass(frozen=True)
class DeliveryRecord:
    """One alert's delivery, as stored after the latest attempt."""

    id: int
    model_name: str
    version: int
    key: str
    alert: dict[str, Any]
    status: Status
    attempts: int
    error: str | None
    earlier_passes: bool = False  # it was already pending before this pass

    @property
    def message(self) -> str:
        """The alert's own message."""
        return str(self.alert.get("message", self.key))


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class AlertDeliveries:
    """The alert deliveries of the monitoring store.

    Parameters
    ----------
    store
        The monitoring store; its database holds the deliveries table.
    """

    def __init__(self, store: MonitoringStore) -> None:
        self.store = store

    def add(self, alerts: Sequence[Alert]) -> None:
        """Keep fired alerts as pending, before any attempt to deliver them."""
        if not alerts:
            return
        with Session(self.store.engine) as session, session.begin():
            session.add_all(
                _Delivery(
                    model_name=alert.model,
                    version=alert.version,
                    key=alert.key,
                    alert=alert.as_dict(),
                    status="pending",
                    attempts=0,
                )
                for alert in alerts
            )

    def pending(self, model_name: str) -> list[DeliveryRecord]:
        """Return the model's alerts not delivered yet, oldest first."""
        return self._records(model_name, "pending")

    def undelivered(self, model_name: str) -> list[DeliveryRecord]:
        """Return the model's alerts given up on, oldest first."""
        return self._records(model_name, "undelivered")

    def _records(self, model_name: str, status: Status) -> list[DeliveryRecord]:
        with Session(self.store.engine) as session:
            rows = session.scalars(
                select(_Delivery)
                .where(_Delivery.model_name == model_name, _Delivery.status == status)
                .order_by(_Delivery.id)
            ).all()
            return [_record(row) for row in rows]

    def deliver(
        self,
        model_name: str,
        notifier: WebhookNotifier,
        now: datetime,
        give_up_after: timedelta,
    ) -> list[DeliveryRecord]:
        """Try every pending alert of a model, oldest first; return each one's new state.

        A webhook that cannot be reached stops the pass: the alerts behind it wait for the next
        one, except those pending for longer than ``give_up_after``, which become undelivered.
        """
        outcomes = []
        reachable = True
        with Session(self.store.engine, expire_on_commit=False) as session:
            rows = session.scalars(
                select(_Delivery)
                .where(_Delivery.model_name == model_name, _Delivery.status == "pending")
                .order_by(_Delivery.id)
            ).all()
            for row in rows:
                expired = _aware(row.created_at) <= now - give_up_after
                earlier = row.attempts > 0
                if reachable:
                    result = notifier.post(row.alert)
                    row.attempts += result.attempts
                    row.last_attempt_at = now
                    row.error = result.error[:500] if result.error else None
                    if result.delivered:
                        row.status, row.delivered_at = "delivered", now
                    elif not result.retryable or expired:
                        row.status = "undelivered"
                    reachable = result.delivered or not result.retryable
                elif expired:
                    row.status = "undelivered"
                else:
                    continue
                session.commit()  # each outcome is kept, whatever happens to the next POST
                outcomes.append(_record(row, earlier))
        return outcomes


def _record(row: _Delivery, earlier: bool = False) -> DeliveryRecord:
    return DeliveryRecord(
        row.id,
        row.model_name,
        row.version,
        row.key,
        dict(row.alert),
        row.status,  # type: ignore[arg-type]  # written from Status only
        row.attempts,
        row.error,
        earlier,
    )
