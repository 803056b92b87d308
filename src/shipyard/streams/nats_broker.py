"""NATS JetStream: a durable pull consumer in, deduplicated publishes out.

Events are read by a durable pull consumer, so a restarted consumer resumes where the last one
acknowledged. Answers are published to JetStream with ``Nats-Msg-Id`` set to the event's id:
within the stream's duplicate window the server stores a second publish of the same id only
once, so an event delivered again after a crash between publish and acknowledgement yields no
duplicate answer. A subject no stream captures gets a stream of its own, whose duplicate
window is ``dedup_seconds``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import nats
from nats.js import api
from nats.js.errors import NotFoundError

from shipyard.errors import BrokerError
from shipyard.serving.logs import log_event
from shipyard.streams.events import DeadLetter, Event, Published

__all__ = ["NatsBroker", "stream_name_for"]

logger = logging.getLogger("shipyard.streams")

_PUBLISH_TIMEOUT = 10.0
_AT_ONCE_SECONDS = 0.01
"""How long a fetch waits for the server's answer about what is stored already."""


def stream_name_for(subject: str) -> str:
    """Return the name of the stream shipyard creates for ``subject``.

    Examples
    --------
    >>> stream_name_for("payments.scored")
    'SHIPYARD_payments_scored'
    """
    return "SHIPYARD_" + re.sub(r"[^A-Za-z0-9_-]", "_", subject)


def event_id(message: Any) -> str:
    """Return the producer's ``Nats-Msg-Id``, else ``STREAM:SEQUENCE`` (stable on redelivery)."""
    given = (message.headers or {}).get("Nats-Msg-Id")
    if given:
        return str(given)
    metadata = message.metadata
    return f"{metadata.stream}:{metadata.sequence.stream}"


async def _reachable(url: str) -> None:
    """Open and close a TCP connection to the server ``url`` names (5 s at most)."""
    parts = urlsplit(url)
    _, writer = await asyncio.wait_for(
        asyncio.open_connection(parts.hostname or "127.0.0.1", parts.port or 4222), 5
    )
    writer.close()
    await writer.wait_closed()


async def _log_error(error: Exception) -> None:
    """Log the client's connection errors in one line (it retries by itself)."""
    log_event(
        logger,
        "NATS connection error; reconnecting",
        logging.WARNING,
        event="broker_error",
        error=f"{error.__class__.__name__}: {error}",
    )


async def _stream_for(js: Any, subject: str, dedup_seconds: float) -> str:
    """Return the stream that captures ``subject``, creating one when none does."""
    try:
        return str(await js.find_stream_name_by_subject(subject))
    except NotFoundError:
        name = stream_name_for(subject)
        await js.add_stream(
            name=name, subjects=[subject], duplicate_window=dedup_seconds, storage="file"
        )
        return name


class NatsBroker:
    """A connected JetStream consumer and publisher (build it with :meth:`connect`)."""

    def __init__(
        self,
        client: Any,
        js: Any,
        subscription: Any,
        stream: str,
        group: str,
        to: str,
        dead_letter: str,
    ) -> None:
        self.client = client
        self.js = js
        self.subscription = subscription
        self.stream = stream
        self.group = group
        self.to = to
        self.dead_letter = dead_letter

    @classmethod
    async def connect(
        cls,
        url: str,
        subject: str,
        to: str,
        dead_letter: str,
        group: str,
        *,
        ack_wait: float,
        dedup_seconds: float,
        max_in_flight: int,
    ) -> NatsBroker:
        """Connect, make sure the three subjects have streams, and bind the durable consumer.

        Raises
        ------
        BrokerError
            When the server cannot be reached or JetStream is not enabled on it.
        """
        try:
            # Reachable first: the client retries a server that refuses forever (it reconnects
            # for as long as the consumer runs once connected, which is what a consumer needs).
            await _reachable(url)
            client = await nats.connect(
                url,
                connect_timeout=5,
                max_reconnect_attempts=-1,
                allow_reconnect=True,
                error_cb=_log_error,
            )
        except Exception as error:
            raise BrokerError(
                f"Cannot connect to NATS at {url} ({error.__class__.__name__}: {error}); "
                "is nats-server running with JetStream (nats-server -js)?"
            ) from None
        js = client.jetstream()
        try:
            stream = await _stream_for(js, subject, dedup_seconds)
            for output in (to, dead_letter):
                await _stream_for(js, output, dedup_seconds)
            config = api.ConsumerConfig(
                durable_name=group,
                ack_policy=api.AckPolicy.EXPLICIT,
                deliver_policy=api.DeliverPolicy.ALL,
                ack_wait=ack_wait,
                # Room for every event in flight, so the server never holds ours back.
                max_ack_pending=max(max_in_flight * 4, 1024),
                filter_subject=subject,
            )
            subscription = await js.pull_subscribe(
                subject, durable=group, stream=stream, config=config
            )
        except Exception as error:
            await client.close()
            raise BrokerError(
                f"NATS at {url} refused to set up the consumer '{group}' on '{subject}' "
                f"({error.__class__.__name__}: {error}); is JetStream enabled (nats-server -js)?"
            ) from None
        return cls(client, js, subscription, stream, group, to, dead_letter)

    async def fetch(self, count: int, timeout: float) -> list[Event]:
        """Return up to ``count`` events, waiting up to ``timeout`` s for the first one.

        What is stored already is taken at once. Otherwise the wait is for one event only:
        once a lingering pull of ``count`` has its first message, the client waits out the
        rest of the timeout for the others, which held a lone event up to ``timeout``.
        """
        at_once = min(timeout, _AT_ONCE_SECONDS)
        messages = await self._fetch(count, at_once)
        if not messages and timeout > at_once:
            messages = await self._fetch(1, timeout - at_once)
        return [Event(event_id(message), message.data, message) for message in messages]

    async def _fetch(self, count: int, timeout: float) -> list[Any]:
        try:
            return list(await self.subscription.fetch(count, timeout=max(timeout, 0.001)))
        except (TimeoutError, nats.errors.TimeoutError):
            return []

    async def publish(self, answers: Sequence[Published], dead: Sequence[DeadLetter]) -> None:
        """Publish every answer and dead letter with its id as ``Nats-Msg-Id``; wait for acks.

        Raises
        ------
        BrokerError
            When JetStream did not store one of them in time (the events are retried).
        """
        pending = [
            await self.js.publish_async(
                self.to, answer.body, headers={"Nats-Msg-Id": answer.event.id}
            )
            for answer in answers
        ]
        pending += [
            await self.js.publish_async(
                self.dead_letter, letter.body(), headers={"Nats-Msg-Id": letter.event.id}
            )
            for letter in dead
        ]
        try:
            async with asyncio.timeout(_PUBLISH_TIMEOUT):
                await asyncio.gather(*pending)
        except Exception as error:
            for future in pending:
                future.cancel()
            raise BrokerError(
                f"JetStream did not confirm {len(pending)} publishes to '{self.to}' "
                f"({error.__class__.__name__}: {error})"
            ) from None

    async def ack(self, events: Sequence[Event]) -> None:
        """Acknowledge events to the durable consumer."""
        for event in events:
            await event.handle.ack()

    async def retry(self, events: Sequence[Event]) -> None:
        """Ask JetStream to deliver the events again, after a second."""
        for event in events:
            await event.handle.nak(delay=1.0)

    async def lag(self) -> int | None:
        """Return the events the durable consumer has not been delivered yet."""
        info = await self.js.consumer_info(self.stream, self.group)
        return int(info.num_pending or 0)

    async def close(self) -> None:
        """Send what is buffered (acknowledgements included), then disconnect."""
        if self.client.is_connected:
            await self.client.flush(timeout=5)
        await self.client.close()
