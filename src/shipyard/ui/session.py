"""The UI's session cookie: signed, http-only, SameSite, with a CSRF token inside.

A person logs in with an API key (the keys ``shipyard keys`` manages). The cookie then holds
the key's id and hash (never the key), when it was issued, and a random CSRF token; it is
signed with HMAC-SHA256 under a secret kept next to the keys file, so every worker process
and every restart reads the same sessions. Each request checks the signature, the age, and
that the key is still in the keys file: revoking a key ends its sessions.

Every POST carries the CSRF token (a hidden form field, or the ``X-CSRF-Token`` header that
htmx sends) and is refused when it does not match the session's.

Examples
--------
>>> codec = SessionCodec(b"0" * 32)
>>> session = Session.new(key_id="ab12", key_sha256="f" * 64, now=100.0)
>>> codec.load(codec.dump(session), now=160.0) == session
True
>>> codec.load(codec.dump(session)[:-2] + "xx", now=160.0) is None
True
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = [
    "COOKIE_NAME",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SESSION_SECONDS",
    "Session",
    "SessionCodec",
    "read_or_create_secret",
    "tokens_match",
]

COOKIE_NAME = "shipyard_ui"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SESSION_SECONDS = 12 * 3600
SECRET_FILE_NAME = "ui-session.secret"


@dataclass(frozen=True)
class Session:
    """What the cookie carries: who logged in, when, and the CSRF token.

    An anonymous session (``key_id`` empty) exists only to carry the login form's token.
    """

    csrf: str
    issued: float
    key_id: str = ""
    key_sha256: str = ""

    @classmethod
    def new(cls, key_id: str = "", key_sha256: str = "", now: float | None = None) -> Session:
        """Start a session with a fresh CSRF token."""
        return cls(
            csrf=secrets.token_urlsafe(32),
            issued=time.time() if now is None else now,
            key_id=key_id,
            key_sha256=key_sha256,
        )

    @property
    def logged_in(self) -> bool:
        """Whether a key was presented (not just the login form's token)."""
        return bool(self.key_sha256)


class SessionCodec:
    """Sign and check session cookies.

    Parameters
    ----------
    secret
        At least 32 random bytes (:func:`read_or_create_secret`).
    max_age
        Seconds a session lasts after login.
    """

    def __init__(self, secret: bytes, max_age: int = SESSION_SECONDS) -> None:
        if len(secret) < 32:
            raise ValueError("The UI session secret must be at least 32 bytes.")
        self.secret = secret
        self.max_age = max_age

    def _signature(self, payload: bytes) -> str:
        digest = hmac.new(self.secret, payload, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def dump(self, session: Session) -> str:
        """Return the cookie value: the payload and its signature, both URL-safe."""
        payload = json.dumps(asdict(session), separators=(",", ":")).encode()
        encoded = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        return f"{encoded}.{self._signature(payload)}"

    def load(self, value: str | None, now: float | None = None) -> Session | None:
        """Return the session a cookie holds, or ``None`` when absent, forged or expired."""
        if not value or value.count(".") != 1:
            return None
        encoded, signature = value.split(".")
        try:
            payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except ValueError:
            return None
        if not hmac.compare_digest(signature, self._signature(payload)):
            return None
        try:
            session = Session(**json.loads(payload))
        except (ValueError, TypeError):
            return None
        current = time.time() if now is None else now
        if not 0 <= current - session.issued <= self.max_age:
            return None
        return session


def tokens_match(expected: str, presented: str | None) -> bool:
    """Compare CSRF tokens in constant time."""
    return bool(presented) and hmac.compare_digest(expected.encode(), (presented or "").encode())


def read_or_create_secret(folder: str | Path) -> bytes:
    """Return the signing secret kept in ``folder`` (mode 0600), creating it the first time."""
    path = Path(folder) / SECRET_FILE_NAME
    if path.is_file():
        secret = path.read_bytes()
        if len(secret) >= 32:
            return secret
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(secrets.token_bytes(32))
    try:
        # A link never replaces: of two processes starting at once, both read the first.
        os.link(partial, path)
    except FileExistsError:
        pass
    finally:
        partial.unlink()
    return path.read_bytes()
