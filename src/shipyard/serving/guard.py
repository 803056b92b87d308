"""The outer layer of every request: API key check, rate limit, metrics, access log.

A plain ASGI middleware (no per-request task or body copy, unlike Starlette's
``BaseHTTPMiddleware``): it reads the key from ``Authorization: Bearer KEY`` or ``X-API-Key``,
answers 401 without calling the app when the key is missing or wrong, or when the request
carries two different keys (which one a proxy or the app would use is then unclear), answers
429 with ``Retry-After`` when the key (or, without auth, the client address) is over its rate
limit, and times every request. Public paths (probes, scrapes, the API description) are never
limited.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson

from shipyard.serving.logs import log_event
from shipyard.serving.metrics import ServingMetrics, route_label
from shipyard.serving.rate_limit import RateLimiter

__all__ = ["PUBLIC_PATHS", "Guard"]

logger = logging.getLogger("shipyard.serving.access")

# Probes, scrapes and the API description stay open so that orchestrators and clients can
# reach them without a key; they reveal nothing a prediction route would not.
PUBLIC_PATHS = frozenset(
    {
        "/health",
        "/ready",
        "/ping",
        "/metrics",
        "/openapi.json",
        "/v2/health/live",
        "/v2/health/ready",
    }
)

_UNAUTHORIZED = orjson.dumps(
    {
        "error": "unauthorized",
        "message": "A valid API key is required: send 'Authorization: Bearer KEY' or "
        "'X-API-Key: KEY'. Create one with 'shipyard keys create'.",
    }
)

_AMBIGUOUS = orjson.dumps(
    {
        "error": "ambiguous_credentials",
        "message": "The request carries different API keys (in 'Authorization: Bearer' and "
        "'X-API-Key', or a header sent twice); send one key, in one header.",
    }
)

Scope = dict[str, Any]
ASGIApp = Callable[..., Any]


class Guard:
    """Check API keys and record metrics around an ASGI app.

    Parameters
    ----------
    app
        The wrapped app.
    metrics
        Where requests are counted.
    verify
        Returns whether a presented key is valid; ``None`` turns authentication off.
    access_log
        Log one JSON line per request.
    limiter
        Rate limits per key (per address without auth); ``None`` sets no limit.
    own_auth
        Path prefixes of mounted apps that check their own credentials (the web UI's session
        cookie under ``/ui``): no API key is asked there, and their rate is kept per address.
    """

    def __init__(
        self,
        app: ASGIApp,
        metrics: ServingMetrics,
        verify: Callable[[str | None], bool] | None,
        access_log: bool = False,
        limiter: RateLimiter | None = None,
        own_auth: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.verify = verify
        self.access_log = access_log
        self.limiter = limiter
        self.own_auth = own_auth

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        """Handle one ASGI connection event."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        path: str = scope["path"]
        status = 500
        refusal = self._refusal(scope, path)
        if refusal is not None:
            error, body = refusal
            status = 401
            self.metrics.observe_error(error, status)
            await _send_unauthorized(send, body)
            self._done(path, scope, status, start)
            return
        wait = self._wait(scope, path)
        if wait:
            status = 429
            self.metrics.observe_error("rate_limited", status)
            await _send_too_many(send, wait)
            self._done(path, scope, status, start)
            return

        async def send_and_watch(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            self._done(path, scope, status, start)

    def _refusal(self, scope: Scope, path: str) -> tuple[str, bytes] | None:
        """Return the error code and body of a 401, or ``None`` when the request may pass."""
        if self.verify is None or scope["method"] == "OPTIONS" or path in PUBLIC_PATHS:
            return None
        if self._own_auth(path):
            return None
        presented = _presented_keys(scope["headers"])
        if len(presented) > 1:
            return "ambiguous_credentials", _AMBIGUOUS
        if not self.verify(next(iter(presented), None)):
            return "unauthorized", _UNAUTHORIZED
        return None

    def _wait(self, scope: Scope, path: str) -> int:
        """Return 0 when the request is within its client's rate, else seconds to wait."""
        if self.limiter is None or scope["method"] == "OPTIONS" or path in PUBLIC_PATHS:
            return 0
        by_key = self.verify is not None and not self._own_auth(path)
        return self.limiter.acquire(_client(scope, by_key))

    def _own_auth(self, path: str) -> bool:
        return any(path == prefix or path.startswith(f"{prefix}/") for prefix in self.own_auth)

    def _done(self, path: str, scope: Scope, status: int, start: float) -> None:
        seconds = time.perf_counter() - start
        self.metrics.observe_request(route_label(path), status, seconds)
        if self.access_log:
            log_event(
                logger,
                "request",
                method=scope["method"],
                path=path,
                status=status,
                ms=round(seconds * 1000, 3),
            )


async def _send_unauthorized(send: Any, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"www-authenticate", b'Bearer realm="shipyard"'),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_too_many(send: Any, wait: int) -> None:
    body = orjson.dumps(
        {
            "error": "rate_limited",
            "message": f"Too many requests for this API key; retry in {wait} s.",
            "retry_after": wait,
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"retry-after", str(wait).encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _client(scope: Scope, by_key: bool) -> str:
    """Name the client a bucket belongs to: its key's hash, or its address without auth."""
    if by_key:
        key = next(iter(_presented_keys(scope["headers"])), "")
        return "key:" + hashlib.sha256(key.encode()).hexdigest()
    address = scope.get("client")
    return f"address:{address[0] if address else 'unknown'}"


def _presented_keys(headers: list[tuple[bytes, bytes]]) -> set[str]:
    """Return every distinct key the request carries.

    ``Authorization`` schemes other than Bearer are not shipyard keys and are left alone.
    """
    keys = set()
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                keys.add(token.strip())
        elif name == b"x-api-key":
            keys.add(value.decode("latin-1").strip())
    return keys
