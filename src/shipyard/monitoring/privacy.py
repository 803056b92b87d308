"""Personal data in the prediction log: a keyed hash, or nothing, instead of the value.

A model's manifest says which request fields are personal data (``data.personal`` at
training) and what the log keeps of them (``monitoring.personal_data``): ``hash`` replaces
each value by its HMAC-SHA256 under a secret key, ``drop`` leaves the field out, ``keep``
logs it as it came. A plain SHA-256 would not do: a field with few possible values (a
birth year, a postcode) is reversed by hashing every candidate. The key is 32 random bytes
in ``log-hash.key`` beside the registry's bundles (``registry.artifacts``), created on first
use, readable by its owner only: every process that serves or reads a registry reads its
bundles from there already, so they hash alike, while a copy of the database alone does not
reveal the values.

Equal values give equal hashes, so a hashed categorical field still counts per value (drift)
and a request can be found by the value of a hashed field (``shipyard log delete --where``).
Values are compared as trimmed text: ``39`` and ``"39"`` hash alike; missing values stay
missing.

Examples
--------
>>> mask = LogMask(frozenset({"email"}), "hash", b"k" * 32)
>>> masked = mask.apply({"email": "ann@example.org", "age": 39})
>>> masked["age"], masked["email"] == mask.apply({"email": " ann@example.org"})["email"]
(39, True)
>>> LogMask(frozenset({"email"}), "drop", None).apply({"email": "a@b.org", "age": 39})
{'age': 39}
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import ConfigError

if TYPE_CHECKING:
    from shipyard.monitoring.adapters import TaskMonitoring
    from shipyard.monitoring.columns import ColumnCleaner

__all__ = [
    "HASH_KEY_FILE_NAME",
    "LogMask",
    "canonical_text",
    "hash_key_path",
    "keyed_hash",
    "masked_monitoring",
    "read_hash_key",
]

HASH_KEY_FILE_NAME = "log-hash.key"
# 128 bits of the HMAC: enough to make collisions between logged values negligible.
HASH_HEX_DIGITS = 32


def hash_key_path(artifacts: str | Path) -> Path:
    """Return where a registry's log hash key lives: in its artifacts folder."""
    return Path(artifacts) / HASH_KEY_FILE_NAME


def read_hash_key(path: Path) -> bytes:
    """Return the key in ``path``, creating it (32 random bytes, mode 0600) if it is new.

    Two processes starting at once agree: the file is created exclusively, and the loser
    reads the winner's key.

    Raises
    ------
    ConfigError
        When the file exists but does not hold a key.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(descriptor, "w", encoding="ascii") as opened:
            os.fchmod(opened.fileno(), 0o600)
            opened.write(secrets.token_hex(32) + "\n")
    text = path.read_text(encoding="ascii").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 16:
        raise ConfigError(
            f"{path} does not hold a log hash key (64 hex digits); restore it from a backup, "
            "or delete it to start a new key (hashes logged so far will no longer match)."
        )
    return key


def canonical_text(value: Any) -> str:
    """Return the text a value is hashed as: trimmed, numbers without a useless ``.0``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def keyed_hash(key: bytes, value: Any) -> Any:
    """Return the HMAC-SHA256 of a value (hex, 128 bits); missing values stay missing."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    digest = hmac.new(key, canonical_text(value).encode("utf-8"), hashlib.sha256)
    return digest.hexdigest()[:HASH_HEX_DIGITS]


@dataclass(frozen=True)
class LogMask:
    """What the prediction log keeps of a model's personal fields.

    Parameters
    ----------
    columns
        The request fields tagged as personal data.
    policy
        ``hash``, ``drop`` or ``keep``.
    key
        The HMAC key (needed for ``hash`` only).
    """

    columns: frozenset[str]
    policy: str
    key: bytes | None = None

    @classmethod
    def for_manifest(cls, manifest: Mapping[str, Any], key: Callable[[], bytes]) -> LogMask:
        """Return the mask a manifest asks for; ``key()`` is called only when it hashes."""
        entry = manifest.get("personal_data") or {}
        columns = frozenset(str(name) for name in entry.get("columns", ()))
        policy = str(entry.get("log_policy", "keep"))
        if not columns or policy == "keep":
            return cls(columns, "keep")
        return cls(columns, policy, key() if policy == "hash" else None)

    @property
    def active(self) -> bool:
        """Whether the mask changes any record."""
        return bool(self.columns) and self.policy != "keep"

    def apply(self, record: Any) -> Any:
        """Return ``record`` with its personal fields hashed or dropped (a new dict)."""
        if not self.active or not isinstance(record, dict):
            return record
        if self.policy == "drop":
            return {name: value for name, value in record.items() if name not in self.columns}
        assert self.key is not None  # for_manifest reads the key for "hash"
        return {
            name: keyed_hash(self.key, value) if name in self.columns else value
            for name, value in record.items()
        }

    def logged_value(self, column: str, value: Any) -> Any:
        """Return how ``value`` of ``column`` appears in the log (to find rows by it).

        Raises
        ------
        ConfigError
            When the column is dropped from the log, so no row can match it.
        """
        if column not in self.columns or self.policy == "keep":
            return value
        if self.policy == "drop":
            raise ConfigError(
                f"'{column}' is personal data dropped from the log (monitoring.personal_data: "
                "drop), so no logged row holds it; find the rows by --request-id instead."
            )
        assert self.key is not None
        return keyed_hash(self.key, value)


def masked_monitoring(watched: TaskMonitoring, mask: LogMask) -> TaskMonitoring:
    """Return how a version is monitored when its log masks personal fields.

    A hashed categorical field is still compared with its reference: the reference's
    categories are hashed with the same key, and the logged hashes skip the cleaning (which
    cannot read them). Every other masked field (dropped, or a hashed number, whose order the
    hash destroys) leaves the drift windows, with its missing-value indicator.
    """
    if not mask.active:
        return watched
    from shipyard.monitoring.sketch import CategoricalSketch
    from shipyard.runtime.clean import INDICATOR_SUFFIX

    reference = dict(watched.reference)
    hashed: set[str] = set()
    for name in mask.columns:
        reference.pop(name + INDICATOR_SUFFIX, None)
        sketch = reference.pop(name, None)
        if isinstance(sketch, CategoricalSketch) and mask.policy == "hash":
            assert mask.key is not None
            key = mask.key
            pairs = sorted(
                (str(keyed_hash(key, category)), count)
                for category, count in zip(sketch.categories, sketch.counts, strict=False)
            )
            reference[name] = CategoricalSketch(
                categories=[category for category, _ in pairs],
                counts=[count for _, count in pairs] + [sketch.counts[-1]],
                missing=sketch.missing,
            )
            hashed.add(name)
    return replace(
        watched,
        reference=reference,
        prepare=_raw_fields(watched.prepare, hashed),
        clean_column=_raw_columns(watched.clean_column, hashed),
    )


def _raw_fields(
    prepare: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None, hashed: set[str]
) -> Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None:
    """Clean records as ``prepare`` does, but keep the logged hashes of ``hashed`` fields."""
    if prepare is None or not hashed:
        return prepare

    def prepared(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        cleaned = prepare(records)
        for raw, record in zip(records, cleaned, strict=True):
            for name in hashed:
                record[name] = raw.get(name)
        return cleaned

    return prepared


def _raw_columns(clean: ColumnCleaner | None, hashed: set[str]) -> ColumnCleaner | None:
    """Clean columns as ``clean`` does, but pass the logged hashes of ``hashed`` through."""
    if clean is None or not hashed:
        return clean

    def cleaned(name: str, values: list[Any]) -> Any:
        return values if name in hashed else clean(name, values)

    return cleaned
