"""Database files that hold logged data: created readable by their owner only."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

__all__ = ["create_private_sqlite_file"]


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
