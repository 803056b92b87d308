"""Where Optuna keeps its studies: the storage URL, the first of the three scale-out contracts.

The search asks and tells trials from the process that runs it, so a study's sampler sees
the same history whatever the storage, and a seeded search proposes the same settings in
memory, in a journal file or in a database. A persistent storage lets the trials be inspected
(for example with optuna-dashboard) while folds run on a cluster, and keeps them after the run.

Storage URLs
------------
unset
    In memory (the default).
``journal:PATH``
    Optuna's journal file at ``PATH`` (safe for several processes on one machine).
an SQLAlchemy URL
    ``sqlite:///studies.db``, ``postgresql+psycopg://user@host/db`` (for example the
    registry's PostgreSQL); the tables are Optuna's own and do not touch the registry's.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Literal

from shipyard.errors import ConfigError

__all__ = ["close_storage", "create_study", "open_storage"]

SQL_URL = re.compile(r"^[a-z][a-z0-9+]*://", re.IGNORECASE)
JOURNAL_PREFIX = "journal:"


def open_storage(url: str | None) -> Any:
    """Return the Optuna storage ``url`` names, or None for memory.

    Raises
    ------
    ConfigError
        When the URL is neither ``journal:PATH`` nor an SQLAlchemy URL, or the database
        cannot be reached.
    """
    if url is None:
        return None
    import optuna

    if url.startswith(JOURNAL_PREFIX):
        from optuna.storages.journal import JournalFileBackend

        path = url.removeprefix(JOURNAL_PREFIX)
        if not path:
            raise ConfigError("engine.optuna_storage 'journal:' needs a file: journal:PATH.")
        return optuna.storages.JournalStorage(JournalFileBackend(path))
    if not SQL_URL.match(url):
        raise ConfigError(
            f"engine.optuna_storage {url!r} is not a storage: use journal:PATH, an SQLAlchemy "
            "URL such as postgresql+psycopg://user@host/db, or 'registry'."
        )
    try:
        return optuna.storages.RDBStorage(url)
    except Exception as error:  # SQLAlchemy raises many kinds; all mean "cannot use it"
        safe = re.sub(r"//[^@/]*@", "//***@", url)
        raise ConfigError(
            f"Cannot open the Optuna storage {safe}: {error}. Check that the database is "
            "running and the URL is right (engine.optuna_storage)."
        ) from None


def close_storage(storage: Any) -> None:
    """Close a database storage's connections (a journal or memory storage holds none)."""
    engine = getattr(storage, "engine", None)
    if engine is not None:
        engine.dispose()


def create_study(
    storage: Any,
    prefix: str,
    family: str,
    direction: Literal["minimize", "maximize"],
    sampler: Any,
    pruner: Any,
) -> Any:
    """Create one family's study; in a shared storage its name is unique to this run."""
    import optuna

    name = None if storage is None else f"{prefix}-{family}-{uuid.uuid4().hex[:12]}"
    return optuna.create_study(
        storage=storage, study_name=name, direction=direction, sampler=sampler, pruner=pruner
    )
