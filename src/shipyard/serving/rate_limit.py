"""Rate limits: a token bucket per client (an API key, or an address when auth is off).

Each client's bucket holds up to ``burst`` tokens and refills at ``rate`` tokens a second; a
request takes one token or is refused with the seconds until the next token. Buckets live in
the worker process: ``--workers N`` gives each worker its own buckets, so a client may get up
to N times the rate across the server.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from shipyard.config import RateLimitConfig

__all__ = ["RateLimiter", "limiter_for"]


def limiter_for(config: RateLimitConfig) -> RateLimiter | None:
    """Return the limiter ``serving.rate_limit`` asks for, or ``None`` when limits are off."""
    if config.requests_per_second <= 0:
        return None
    return RateLimiter(config.requests_per_second, config.burst)


class RateLimiter:
    """Token buckets keyed by client.

    Parameters
    ----------
    rate
        Tokens added per second (the sustained requests per second).
    burst
        The bucket's size: requests a client may send at once.
    clock
        Seconds from a monotonic clock (tests pass their own).
    max_clients
        Buckets kept before the full ones (idle clients, who lose nothing) are dropped.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, when)

    def _tokens(self, client: str, now: float) -> float:
        tokens, when = self._buckets.get(client, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - when) * self.rate)

    def acquire(self, client: str) -> int:
        """Take a token for ``client``; return 0, or the whole seconds to wait (at least 1)."""
        now = self.clock()
        tokens = self._tokens(client, now)
        if tokens >= 1.0:
            self._buckets[client] = (tokens - 1.0, now)
            if len(self._buckets) > self.max_clients:
                self._forget_idle(now)
            return 0
        self._buckets[client] = (tokens, now)
        return max(1, math.ceil((1.0 - tokens) / self.rate))

    def _forget_idle(self, now: float) -> None:
        """Drop full buckets: a client absent from the table gets a full bucket anyway."""
        for client in [name for name in self._buckets if self._tokens(name, now) >= self.burst]:
            del self._buckets[client]
