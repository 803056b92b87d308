"""What the consumer needs of a broker, and how a URL picks one.

A :class:`Broker` reads events for a durable consumer, publishes answers and dead letters
idempotently (a second publish under the same id changes nothing), and acknowledges events.
The consumer acknowledges an event only after its answer (or dead letter) is published and
logged, so a crash at any point leaves it unacknowledged: the broker delivers it again, the
publish is dropped as a duplicate and the log row is kept once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol
from urllib.parse import urlsplit

from shipyard.config import StreamConfig
from shipyard.errors import ConfigError, require
from shipyard.streams.events import DeadLetter, Event, Published

__all__ = ["Broker", "open_broker"]


class Broker(Protocol):
    """A connected broker, for one input, one output and one dead-letter destination."""

    async def fetch(self, count: int, timeout: float) -> list[Event]:
        """Return up to ``count`` events, waiting up to ``timeout`` s for the first one."""

    async def publish(self, answers: Sequence[Published], dead: Sequence[DeadLetter]) -> None:
        """Publish answers and dead letters, each under its event's id, idempotently."""

    async def ack(self, events: Sequence[Event]) -> None:
        """Acknowledge events: they are never delivered again."""

    async def retry(self, events: Sequence[Event]) -> None:
        """Hand events back (their answer could not be published or logged)."""

    async def lag(self) -> int | None:
        """Return how many events wait to be read (``None`` when the broker cannot tell)."""

    async def close(self) -> None:
        """Flush what was sent and disconnect."""


def _required(spec: StreamConfig) -> tuple[str, str, str]:
    missing = [
        flag
        for flag, value in (
            ("--source", spec.source),
            ("--subject", spec.subject),
            ("--to", spec.to),
        )
        if not value
    ]
    if missing:
        raise ConfigError(
            f"A stream needs {', '.join(missing)}: for example --source nats://127.0.0.1:4222 "
            "--subject payments --to payments.scored (stream.source, stream.subject, stream.to)."
        )
    assert spec.source is not None
    assert spec.subject is not None
    assert spec.to is not None
    return spec.source, spec.subject, spec.to


async def open_broker(spec: StreamConfig, name: str) -> Broker:
    """Connect to the broker ``spec.source`` names and set up its consumer.

    ``name`` (the model's) makes the default consumer name, ``shipyard-NAME``.

    Raises
    ------
    ConfigError
        When the URL's scheme is neither ``nats`` nor ``redis``, or a setting is missing.
    MissingDependencyError
        When the broker's client is not installed (``pip install 'shipyard[stream]'``).
    """
    source, subject, to = _required(spec)
    scheme = urlsplit(source).scheme
    group = spec.group or f"shipyard-{name}"
    dead_letter = spec.dead_letter or f"{to}.dead"
    if scheme in ("nats", "tls"):
        require("nats", "stream")
        from shipyard.streams.nats_broker import NatsBroker

        return await NatsBroker.connect(
            source,
            subject,
            to,
            dead_letter,
            group,
            ack_wait=spec.ack_wait,
            dedup_seconds=spec.dedup_seconds,
            max_in_flight=spec.max_in_flight,
        )
    if scheme in ("redis", "rediss"):
        require("redis", "stream")
        from shipyard.streams.redis_broker import RedisBroker

        return await RedisBroker.connect(
            source,
            subject,
            to,
            dead_letter,
            group,
            ack_wait=spec.ack_wait,
            dedup_seconds=spec.dedup_seconds,
        )
    raise ConfigError(
        f"stream.source '{source}' names no supported broker; use nats://HOST:4222 "
        "(NATS JetStream) or redis://HOST:6379/0 (Redis Streams)."
    )
