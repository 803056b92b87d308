"""Database files that hold logged data: created readable by their owner only."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError

__all__ = ["SQLITE_BUSY_TIMEOUT_S", "create_private_sqlite_file", "open_store_engine"]

SQLITE_BUSY_TIMEOUT_S = 30.0
"""How long a SQLite connection waits for another's write lock before "database is locked".

Python's default is 5 s. Several processes opening a new registry at once (a server's
workers, a CLI beside a server) queue for the lock that creates the tables; on a loaded
machine the holder can keep it longer than 5 s.
"""


def open_store_engine(url: str, **options: Any) -> Engine:
    """Open an engine on one of shipyard's own stores (registry, monitoring log).

    For SQLite, connections wait :data:`SQLITE_BUSY_TIMEOUT_S` for a lock instead of failing.
    """
    if url.startswith("sqlite"):
        connect_args = dict(options.pop("connect_args", {}))
        connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_S)
        options["connect_args"] = connect_args
    return create_engine(url, **options)


def create_private_sqlite_file(url: str) -> None:
    """Create the file of a SQLite URL, readable by its owner only (mode 0600), if it is new.

    The database holds logged requests (inputs, answers, feedback), so it must not be
    readable by every user of the machine as SQLite's default (0644 under the usual umask)
    would make it. SQLite gives its journal and WAL files the database file's mode. Other
    databases (PostgreSQL), in-memory SQLite and files that exist already are left alone.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        return  # not a URL: create_engine reports it
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    if database.startswith("file:"):  # a SQLite URI filename: its options decide
        return
    path = Path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.fchmod(descriptor, 0o600)  # whatever the umask; an empty file is an empty database
    os.close(descriptor)
