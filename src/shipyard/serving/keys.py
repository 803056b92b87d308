"""API keys: created once, stored as SHA-256 hashes, checked in constant time.

A key is ``sy_<id>_<secret>``: the id names it in listings and revocations, the secret is 32
random bytes. Only the SHA-256 of the whole key is written (keys are random, so a slow hash
adds nothing), in a JSON file readable by its owner only. The server re-reads the file when it
changes, so a revoked key stops working within a second without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shipyard.errors import ConfigError

__all__ = ["KEYS_FILE_NAME", "ApiKey", "KeyStore", "default_keys_file"]

KEYS_FILE_NAME = "api-keys.json"
_PREFIX = "sy_"


def default_keys_file(registry_home: str | Path) -> Path:
    """Return where keys live by default: next to the registry, in its home folder."""
    return Path(registry_home) / KEYS_FILE_NAME


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    """A stored key: its public id, label, creation time and hash (never the key itself)."""

    id: str
    label: str
    created_at: str
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form written to the keys file."""
        return {
            "id": self.id,
            "label": self.label,
            "created_at": self.created_at,
            "sha256": self.sha256,
        }


class KeyStore:
    """Hashed API keys in a JSON file.

    Parameters
    ----------
    path
        The keys file; created (mode 0600) by the first :meth:`create`.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._loaded_stamp: tuple[int, int] | None = None
        self._digests: tuple[bytes, ...] = ()
        self._checked_at = 0.0

    # -- reading -------------------------------------------------------------------------

    def keys(self) -> list[ApiKey]:
        """Return the stored keys (no secrets)."""
        if not self.path.is_file():
            return []
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return [ApiKey(**item) for item in raw["keys"]]
        except (ValueError, KeyError, TypeError) as error:
            raise ConfigError(
                f"The API keys file '{self.path}' is damaged ({error}); restore it from a "
                "backup or delete it and create new keys with 'shipyard keys create'."
            ) from error

    def _refresh(self) -> None:
        # Re-read at most once a second, and only when the file changed.
        now = time.monotonic()
        if now - self._checked_at < 1.0 and self._loaded_stamp is not None:
            return
        self._checked_at = now
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = (0, 0)
        if stamp != self._loaded_stamp:
            self._digests = tuple(bytes.fromhex(key.sha256) for key in self.keys())
            self._loaded_stamp = stamp

    def verify(self, presented: str | None) -> bool:
        """Return whether ``presented`` is a stored key, comparing every hash in constant time."""
        with self._lock:
            self._refresh()
            digests = self._digests
        if not presented:
            return False
        candidate = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
        found = False
        for digest in digests:
            # No early exit: the time taken does not say which key, if any, matched.
            found |= hmac.compare_digest(candidate, digest)
        return found

    def identify(self, presented: str | None) -> ApiKey | None:
        """Return the stored key ``presented`` is, or ``None`` (a login form's check)."""
        if not self.verify(presented):
            return None
        digest = _digest(presented or "")
        return next((key for key in self.keys() if hmac.compare_digest(key.sha256, digest)), None)

    def knows(self, sha256: str) -> bool:
        """Return whether a key with this SHA-256 is still stored (not revoked)."""
        with self._lock:
            self._refresh()
            digests = self._digests
        try:
            candidate = bytes.fromhex(sha256)
        except ValueError:
            return False
        found = False
        for digest in digests:
            found |= hmac.compare_digest(candidate, digest)
        return found

    # -- writing -------------------------------------------------------------------------

    def create(self, label: str = "") -> tuple[ApiKey, str]:
        """Create a key; return its record and the key itself (shown once, never stored)."""
        key_id = secrets.token_hex(4)
        key = f"{_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        record = ApiKey(
            id=key_id,
            label=label,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            sha256=_digest(key),
        )
        self._write([*self.keys(), record])
        return record, key

    def add(self, key: str, label: str = "") -> ApiKey:
        """Store the hash of a key made elsewhere (a deployment's secret); return its record.

        Raises
        ------
        ConfigError
            When the key is shorter than 16 characters (too easy to guess).
        """
        if len(key) < 16:
            raise ConfigError(
                f"An API key must have at least 16 characters; this one has {len(key)}. "
                "Make one with 'python -c \"import secrets; print(secrets.token_urlsafe(32))\"'."
            )
        record = ApiKey(
            id=_digest(key)[:8],
            label=label,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            sha256=_digest(key),
        )
        self._write([*(known for known in self.keys() if known.id != record.id), record])
        return record

    def revoke(self, key_id: str) -> ApiKey:
        """Delete the key with id ``key_id``.

        Raises
        ------
        ConfigError
            When no key has that id.
        """
        current = self.keys()
        kept = [key for key in current if key.id != key_id]
        if len(kept) == len(current):
            known = ", ".join(key.id for key in current) or "none"
            raise ConfigError(
                f"No API key has id '{key_id}' in '{self.path}' (known ids: {known}); "
                "see 'shipyard keys list'."
            )
        self._write(kept)
        return next(key for key in current if key.id == key_id)

    def _write(self, keys: list[ApiKey]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.name}.partial")
        text = json.dumps({"keys": [key.as_dict() for key in keys]}, indent=2)
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        # The mode above applies only when the file is new: a stale partial keeps its own.
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        partial.replace(self.path)
        with self._lock:
            self._loaded_stamp = None
