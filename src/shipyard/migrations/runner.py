"""Schema versions of shipyard's stores, kept by Alembic and checked whenever a store opens.

Each store owns a branch of revisions (its label is the store's name) and a version table of its
own, so the registry and the monitoring store can share one database, as they do by default, or
live apart, and a user's own ``alembic_version`` table is never touched. The revisions ship in
the package (``shipyard/migrations/versions``); Alembic is configured in code, so no
``alembic.ini`` is needed.

When a store opens (:func:`check_schema`):

- a database without the store's tables is created at the head revision;
- a database at the head revision opens;
- any other database is refused with one line that says what to do: one written before schema
  versions (the tables without a version table) or at an older revision needs
  ``shipyard db upgrade``; one at a revision this code does not know was upgraded by a newer
  release.

:func:`upgrade` brings a store to its head under a lock (PostgreSQL advisory lock, SQLite
``BEGIN IMMEDIATE``), in one transaction: SQLite and PostgreSQL both roll back DDL, so a failed
upgrade leaves the database as it was.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import OperationalError

from shipyard._version import __version__
from shipyard.databases import open_store_engine
from shipyard.errors import DatabaseSchemaError, RegistryError

__all__ = [
    "MONITORING",
    "REGISTRY",
    "STORES",
    "SchemaStatus",
    "StoreSchema",
    "Upgrade",
    "check_schema",
    "database_status",
    "read_status",
    "run_environment",
    "upgrade",
    "upgrade_database",
]

_LOCATION = Path(__file__).parent
_T = TypeVar("_T")
UPGRADE_HINT = (
    "back the database up, then run 'shipyard db upgrade' (with this command's --config, "
    "--home or --registry)"
)


@dataclass(frozen=True)
class StoreSchema:
    """A store whose tables follow one branch of revisions.

    Parameters
    ----------
    name
        The store, and the branch label of its revisions.
    version_table
        Where its current revision is kept.
    tables
        The tables of its baseline: any of them without a version table means a database
        written before schema versions.
    """

    name: str
    version_table: str
    tables: tuple[str, ...]

    @property
    def head(self) -> str:
        """The revision this code needs."""
        script = _scripts().get_revision(f"{self.name}@head")
        if script is None:  # pragma: no cover - a packaging error: the revisions are missing
            raise DatabaseSchemaError(f"shipyard ships no revisions for the {self.name} store.")
        return script.revision


REGISTRY = StoreSchema(
    "registry",
    "shipyard_registry_version",
    ("shipyard_models", "shipyard_model_versions", "shipyard_aliases", "shipyard_events"),
)
MONITORING = StoreSchema(
    "monitoring",
    "shipyard_monitoring_version",
    (
        "shipyard_predictions",
        "shipyard_feedback",
        "shipyard_prediction_failures",
        "shipyard_drift_windows",
    ),
)
STORES = (REGISTRY, MONITORING)

State = Literal["new", "unversioned", "behind", "current", "ahead"]


@dataclass(frozen=True)
class SchemaStatus:
    """Where a store's tables stand in a database."""

    store: StoreSchema
    revision: str | None  # in the version table; None when there is none
    head: str
    state: State

    def problem(self, where: str) -> str:
        """One line saying why a store cannot open this database, and what to do."""
        name = self.store.name
        if self.state == "unversioned":
            return (
                f"The {name} tables in {where} were written before shipyard kept schema "
                f"versions: {UPGRADE_HINT} to bring them to revision {self.head}."
            )
        if self.state == "behind":
            return (
                f"The {name} tables in {where} are at schema revision {self.revision} and "
                f"this shipyard needs {self.head}: {UPGRADE_HINT}."
            )
        return (
            f"The {name} tables in {where} are at schema revision {self.revision}, which "
            f"shipyard {__version__} does not know: a newer release upgraded this database. "
            "Install that release (or a later one), or use another database."
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (``shipyard db current --json``)."""
        return {
            "store": self.store.name,
            "revision": self.revision,
            "head": self.head,
            "state": self.state,
        }


@dataclass(frozen=True)
class Upgrade:
    """What :func:`upgrade` did to one store."""

    store: str
    before: str | None
    after: str
    applied: tuple[str, ...]  # "revision: what it does", in order

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (``shipyard db upgrade --json``)."""
        return {
            "store": self.store,
            "before": self.before,
            "after": self.after,
            "applied": list(self.applied),
        }


@functools.cache
def _scripts() -> ScriptDirectory:
    # Parsed once per process: the revisions cannot change while it runs.
    return ScriptDirectory.from_config(_config())


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_LOCATION))
    return config


def _known(revision: str) -> bool:
    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def read_status(connection: Connection, store: StoreSchema) -> SchemaStatus:
    """Read where ``store``'s tables stand in the database ``connection`` reaches."""
    head = store.head
    tables = set(inspect(connection).get_table_names())
    if store.version_table not in tables:
        unversioned = any(table in tables for table in store.tables)
        return SchemaStatus(store, None, head, "unversioned" if unversioned else "new")
    context = MigrationContext.configure(connection, opts={"version_table": store.version_table})
    revisions = context.get_current_heads()
    if not revisions:  # the version table is empty: an upgrade was never completed
        unversioned = any(table in tables for table in store.tables)
        return SchemaStatus(store, None, head, "unversioned" if unversioned else "new")
    revision = revisions[0]
    if len(revisions) > 1 or not _known(revision):
        return SchemaStatus(store, ",".join(revisions), head, "ahead")
    return SchemaStatus(store, revision, head, "current" if revision == head else "behind")


def _where(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def check_schema(engine: Engine, store: StoreSchema) -> None:
    """Open-time check: create a new database at head, accept one at head, refuse the rest.

    Raises
    ------
    DatabaseSchemaError
        The database needs ``shipyard db upgrade``, or a newer shipyard.
    """
    with engine.connect() as connection:
        status = read_status(connection, store)
    if status.state == "current":
        return
    if status.state != "new":
        raise DatabaseSchemaError(status.problem(_where(engine)))
    _upgrade(engine, store, states=("new",))


def upgrade(engine: Engine, store: StoreSchema) -> Upgrade:
    """Bring ``store``'s tables to the head revision (``shipyard db upgrade``).

    Raises
    ------
    DatabaseSchemaError
        The database is at a revision this code does not know (a newer release's).
    """
    return _upgrade(engine, store, states=("new", "unversioned", "behind"))


def _upgrade(engine: Engine, store: StoreSchema, states: Sequence[State]) -> Upgrade:
    with engine.begin() as connection:
        _lock(connection, store)
        # Read again under the lock: another process may have upgraded meanwhile.
        status = read_status(connection, store)
        if status.state == "current":
            return Upgrade(store.name, status.revision, status.head, ())
        if status.state not in states:
            raise DatabaseSchemaError(status.problem(_where(engine)))
        applied: list[str] = []
        config = _config()
        config.attributes.update(connection=connection, store=store, applied=applied)
        command.upgrade(config, f"{store.name}@head")
    return Upgrade(store.name, status.revision, status.head, tuple(applied))


def _lock(connection: Connection, store: StoreSchema) -> None:
    dialect = connection.dialect.name
    if dialect == "sqlite":
        # Take the write lock now, so two processes cannot both find the database new.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif dialect == "postgresql":
        key = zlib.crc32(f"shipyard-schema:{store.name}".encode())
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def run_environment(config: Config) -> None:
    """Run the revisions Alembic chose, on the connection :func:`upgrade` holds (``env.py``)."""
    from alembic import context

    store: StoreSchema = config.attributes["store"]
    applied: list[str] = config.attributes["applied"]

    def record(
        ctx: MigrationContext,
        step: MigrationInfo,
        heads: Collection[Any],
        run_args: Mapping[str, Any],
    ) -> None:
        revision = step.up_revision_id or ""
        script = _scripts().get_revision(revision)
        applied.append(f"{revision}: {script.doc if script is not None else ''}")

    context.configure(
        connection=config.attributes["connection"],
        version_table=store.version_table,
        on_version_apply=record,
    )
    with context.begin_transaction():
        context.run_migrations()


def _open_database(url: str) -> Engine:
    """Open an existing database: upgrading a path with a typo must not create one."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise RegistryError(f"'{url}' is not a database URL: {error}.") from error
    database = parsed.database
    if (
        parsed.get_backend_name() == "sqlite"
        and database
        and database != ":memory:"
        and not database.startswith("file:")
        and not Path(database).is_file()
    ):
        raise RegistryError(
            f"There is no registry database at {database}: nothing to upgrade. Check "
            "--registry or --home (registry.url, registry.home in the config)."
        )
    return open_store_engine(url)


def _each_store(url: str, action: Callable[[Engine, StoreSchema], _T]) -> list[_T]:
    engine = _open_database(url)
    try:
        return [action(engine, store) for store in STORES]
    except (OperationalError, ImportError) as error:
        raise RegistryError(
            f"Cannot open the database at {_where(engine)}: {error.__class__.__name__}: "
            f"{str(error).splitlines()[0]}. Check registry.url and that the server is running."
        ) from error
    finally:
        engine.dispose()


def upgrade_database(url: str) -> list[Upgrade]:
    """Bring every store in the database at ``url`` to its head revision."""
    return _each_store(url, upgrade)


def database_status(url: str) -> list[SchemaStatus]:
    """Where every store's tables stand in the database at ``url``."""

    def status(engine: Engine, store: StoreSchema) -> SchemaStatus:
        with engine.connect() as connection:
            return read_status(connection, store)

    return _each_store(url, status)
