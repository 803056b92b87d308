"""Redis Streams: a consumer group in, guarded ``XADD`` out.

Events are entries of the input stream with a ``data`` field holding the JSON record (and an
optional ``id`` field; the entry's id otherwise). They are read through a consumer group, so
a restarted consumer first takes back the entries it had read and not acknowledged, then
those other consumers left idle longer than ``ack_wait``, then new ones. Each answer is added
by a Lua script that sets a guard key ``TO:done:ID`` (kept ``dedup_seconds``) and adds the
entry only when the guard was not there: Redis runs the script atomically, so an event
answered before a crash is not answered twice. ``XACK`` follows the publish and the log.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from shipyard.errors import BrokerError
from shipyard.streams.events import DeadLetter, Event, Published

__all__ = ["RedisBroker"]

# KEYS: one guard key per entry; ARGV: the guard's time to live, then (stream, id, body,
# reason) per entry. Returns how many entries were added (the others were duplicates).
_GUARDED_XADD = """
local added = 0
local ttl = tonumber(ARGV[1])
for index, guard in ipairs(KEYS) do
  local base = 2 + (index - 1) * 4
  if redis.call('SET', guard, '1', 'NX', 'EX', ttl) then
    local stream, id, body, reason = ARGV[base], ARGV[base + 1], ARGV[base + 2], ARGV[base + 3]
    if reason == '' then
      redis.call('XADD', stream, '*', 'id', id, 'data', body)
    else
      redis.call('XADD', stream, '*', 'id', id, 'data', body, 'reason', reason)
    end
    added = added + 1
  end
end
return added
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisBroker:
    """A connected consumer-group reader and guarded publisher (build it with :meth:`connect`)."""

    def __init__(
        self,
        client: Any,
        key: str,
        to: str,
        dead_letter: str,
        group: str,
        ack_wait: float,
        dedup_seconds: float,
    ) -> None:
        self.client = client
        self.key = key
        self.to = to
        self.dead_letter = dead_letter
        self.group = group
        self.consumer = socket.gethostname()
        self.ack_wait = ack_wait
        self.dedup_seconds = dedup_seconds
        self._script = client.register_script(_GUARDED_XADD)
        self._own_pending: str | None = "0"  # read our unacknowledged entries first, once
        self._next_claim = 0.0

    @classmethod
    async def connect(
        cls,
        url: str,
        key: str,
        to: str,
        dead_letter: str,
        group: str,
        *,
        ack_wait: float,
        dedup_seconds: float,
    ) -> RedisBroker:
        """Connect and create the consumer group (at the stream's start) when it is missing.

        Raises
        ------
        BrokerError
            When the server cannot be reached.
        """
        client = aioredis.from_url(url, socket_connect_timeout=5)
        try:
            await client.ping()
            await client.xgroup_create(key, group, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                await client.aclose()
                raise BrokerError(f"Redis at {url} refused the consumer group: {error}") from None
        except (RedisError, OSError) as error:
            await client.aclose()
            raise BrokerError(
                f"Cannot connect to Redis at {url} ({error.__class__.__name__}: {error}); "
                "is redis-server running?"
            ) from None
        return cls(client, key, to, dead_letter, group, ack_wait, dedup_seconds)

    async def fetch(self, count: int, timeout: float) -> list[Event]:
        """Return up to ``count`` events: ours left pending, then idle ones, then new ones."""
        if self._own_pending is not None:
            reply = await self.client.xreadgroup(
                self.group, self.consumer, {self.key: self._own_pending}, count=count
            )
            entries = reply[0][1] if reply else []
            if entries:
                self._own_pending = _text(entries[-1][0])
                return self._events(entries)
            self._own_pending = None
        if time.monotonic() >= self._next_claim:
            self._next_claim = time.monotonic() + self.ack_wait
            reply = await self.client.xautoclaim(
                self.key,
                self.group,
                self.consumer,
                min_idle_time=int(self.ack_wait * 1000),
                start_id="0",
                count=count,
            )
            if reply[1]:
                return self._events(reply[1])
        reply = await self.client.xreadgroup(
            self.group,
            self.consumer,
            {self.key: ">"},
            count=count,
            block=max(1, int(timeout * 1000)),
        )
        return self._events(reply[0][1]) if reply else []

    def _events(self, entries: list[Any]) -> list[Event]:
        events = []
        for entry_id, fields in entries:
            if fields is None:  # deleted from the stream while pending: acknowledge it away
                fields = {}
            values = {_text(name): value for name, value in fields.items()}
            given = values.get("id")
            data = values.get("data", b"")
            events.append(
                Event(
                    _text(given) if given else _text(entry_id),
                    data if isinstance(data, bytes) else str(data).encode(),
                    _text(entry_id),
                )
            )
        return events

    async def publish(self, answers: Sequence[Published], dead: Sequence[DeadLetter]) -> None:
        """Add every answer and dead letter once, guarded by its id (one atomic script).

        Raises
        ------
        BrokerError
            When Redis refused the script (the events are retried).
        """
        keys: list[str] = []
        arguments: list[Any] = [int(self.dedup_seconds)]
        for answer in answers:
            keys.append(f"{self.to}:done:{answer.event.id}")
            arguments += [self.to, answer.event.id, answer.body, ""]
        for letter in dead:
            keys.append(f"{self.dead_letter}:done:{letter.event.id}")
            arguments += [self.dead_letter, letter.event.id, letter.body(), letter.reason]
        if not keys:
            return
        try:
            await self._script(keys=keys, args=arguments)
        except (RedisError, OSError) as error:
            raise BrokerError(
                f"Redis did not add {len(keys)} entries to '{self.to}' "
                f"({error.__class__.__name__}: {error})"
            ) from None

    async def ack(self, events: Sequence[Event]) -> None:
        """Acknowledge events in the consumer group (``XACK``)."""
        if events:
            await self.client.xack(self.key, self.group, *[event.handle for event in events])

    async def retry(self, events: Sequence[Event]) -> None:
        """Leave the events pending: they are claimed again once idle for ``ack_wait``."""

    async def lag(self) -> int | None:
        """Return the entries the group has not read yet (Redis 7 and newer tell)."""
        for group in await self.client.xinfo_groups(self.key):
            name = _text(group.get("name") or group.get(b"name"))
            if name == self.group:
                lag = group.get("lag", group.get(b"lag"))
                return int(lag) if lag is not None else None
        return None

    async def close(self) -> None:
        """Disconnect."""
        await self.client.aclose()
