"""The message-stream front door (extra ``[stream]``): score events from NATS or Redis.

``shipyard stream NAME --source nats://HOST:4222 --subject IN --to OUT`` reads JSON records
from a JetStream subject (or a Redis stream with ``redis://``), scores them in micro-batches
through the serving path, publishes each answer under its event's id, logs it, and only then
acknowledges the event. See ``docs/streams.md``.

The names below are imported on first use (PEP 562), so that the brokers' clients load only
when a stream runs.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.streams.brokers import Broker, open_broker
    from shipyard.streams.consumer import StreamConsumer
    from shipyard.streams.events import DeadLetter, Event, Published
    from shipyard.streams.runner import StreamSummary, run_stream, serve_stream

_HOMES = {
    "Broker": "shipyard.streams.brokers",
    "DeadLetter": "shipyard.streams.events",
    "Event": "shipyard.streams.events",
    "Published": "shipyard.streams.events",
    "StreamConsumer": "shipyard.streams.consumer",
    "StreamSummary": "shipyard.streams.runner",
    "open_broker": "shipyard.streams.brokers",
    "run_stream": "shipyard.streams.runner",
    "serve_stream": "shipyard.streams.runner",
}

__all__ = [
    "Broker",
    "DeadLetter",
    "Event",
    "Published",
    "StreamConsumer",
    "StreamSummary",
    "open_broker",
    "run_stream",
    "serve_stream",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'shipyard.streams' has no attribute '{name}'")
    return getattr(import_module(home), name)
