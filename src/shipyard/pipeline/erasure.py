"""Erasure on request: delete a person's logged predictions and feedback, and audit it.

``shipyard log delete`` finds the rows by request id, or by the value of a logged field
(``--where column=value``). A field the log hashes is matched by the hash of the value, under
the same key, so a person's rows are found without the log ever holding the value. Each
erasure appends an ``erase`` event to the registry's audit log (``shipyard models events``):
who, when, how the rows were chosen and how many went, with the keyed hash of the value
rather than the value itself.
"""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shipyard.errors import ConfigError
from shipyard.monitoring.log import MonitoringStore
from shipyard.monitoring.privacy import (
    LogMask,
    canonical_text,
    hash_key_path,
    keyed_hash,
    read_hash_key,
)
from shipyard.registry.store import Registry

__all__ = ["Erasure", "erase_records", "parse_where"]

ERASE_ACTION = "erase"
SCAN_BATCH = 5000


@dataclass
class Erasure:
    """What an erasure removed."""

    model: str
    predictions: int
    feedback: int
    audit: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``shipyard log delete --json`` prints)."""
        return {
            "model": self.model,
            "predictions": self.predictions,
            "feedback": self.feedback,
            "audit": self.audit,
        }


def parse_where(text: str) -> tuple[str, str]:
    """Split ``column=value``.

    Raises
    ------
    ConfigError
        When the text has no ``=`` or no column.
    """
    column, equals, value = text.partition("=")
    if not equals or not column.strip():
        raise ConfigError(
            f"--where expects COLUMN=VALUE, got '{text}'; for example --where 'email=ann@x.org'."
        )
    return column.strip(), value


def erase_records(
    registry: Registry,
    name: str,
    request_ids: Sequence[str] = (),
    where: tuple[str, str] | None = None,
    by: str | None = None,
) -> Erasure:
    """Delete a model's logged predictions (and their feedback) by request id or field value.

    Raises
    ------
    ConfigError
        When neither or both of ``request_ids`` and ``where`` are given, or when every version
        of the model drops the ``where`` field from its log.
    ModelNotFoundError
        When no model has that name.
    """
    if bool(request_ids) == (where is not None):
        raise ConfigError(
            "Say which rows to erase: --request-id ID (repeatable) or --where COLUMN=VALUE, "
            "not both."
        )
    versions = registry.versions(name)  # raises for an unknown model
    key = read_hash_key(hash_key_path(registry.artifacts))
    store = MonitoringStore(registry.url)
    try:
        if where is None:
            chosen = sorted(set(request_ids))
            detail: dict[str, Any] = {"by_request_id": len(chosen)}
        else:
            column, value = where
            masks = [
                LogMask.for_manifest(registry.manifest(version.reference), lambda: key)
                for version in versions
            ]
            chosen = _matching(store, name, column, _logged_values(masks, column, value))
            # The audit holds the keyed hash of the value, never the value.
            detail = {"where": column, "value_hash": keyed_hash(key, value)}
        removed = store.erase(name, chosen)
    finally:
        store.close()
    audit = {"by": by or _user(), **detail, **removed}
    registry.log_event(name, None, ERASE_ACTION, audit)
    return Erasure(name, removed["predictions"], removed["feedback"], audit)


def _logged_values(masks: Sequence[LogMask], column: str, value: str) -> set[str]:
    """Return the forms ``value`` takes in the log across the model's versions, as text."""
    found: set[str] = set()
    refusal: ConfigError | None = None
    for mask in masks or [LogMask(frozenset(), "keep")]:
        try:
            found.add(canonical_text(mask.logged_value(column, value)))
        except ConfigError as error:  # this version drops the field: nothing to match there
            refusal = error
    if not found and refusal is not None:
        raise refusal
    return found


def _matching(store: MonitoringStore, name: str, column: str, values: set[str]) -> list[str]:
    """Return the request ids of the predictions whose ``column`` is one of ``values``.

    The log is read in batches and compared in Python, so numbers and text compare alike on
    SQLite and PostgreSQL (a JSON path query types them differently on each).
    """
    chosen: list[str] = []
    after = 0
    while True:
        rows = store.predictions(name, after_id=after, limit=SCAN_BATCH)
        if not rows:
            return chosen
        for row in rows:
            inputs = row["inputs"]
            found = inputs.get(column) if isinstance(inputs, dict) else None
            if found is not None and canonical_text(found) in values:
                chosen.append(row["request_id"])
        after = rows[-1]["id"]


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (a container)
        return "unknown"
