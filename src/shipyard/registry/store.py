"""The model registry: versions in a SQL database, bundles on disk, aliases that move.

Versions never change once registered. Promotion moves an alias (``champion``) and every move
is written to an append-only event log. The database is any SQLAlchemy URL: SQLite under
``.shipyard/`` by default, PostgreSQL for a shared registry.

Examples
--------
>>> import tempfile, pathlib
>>> home = tempfile.TemporaryDirectory()
>>> registry = Registry("sqlite://", pathlib.Path(home.name) / "artifacts")
>>> version = registry.register("demo", {"model.txt": b"weights"},
...                             {"task": "binary", "metrics": {}})
>>> version.reference
'demo:1'

A new version serves nothing until an alias points at it; ``promote`` moves ``champion``:

>>> registry.promote("demo", version.version, reason="first model").reference
'demo:1'
>>> registry.resolve("demo").version
1
>>> registry.close()
>>> home.cleanup()
"""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from shipyard.databases import create_private_sqlite_file, open_store_engine
from shipyard.errors import ModelNotFoundError, RegistryError
from shipyard.migrations import REGISTRY, check_schema
from shipyard.registry.bundle import load_predictor, read_manifest, verify_bundle, write_bundle

__all__ = [
    "DEFAULT_ALIAS",
    "FairnessGateError",
    "ModelVersion",
    "Registry",
    "create_private_sqlite_file",
    "parse_reference",
]

DEFAULT_ALIAS = "champion"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_REFERENCE = re.compile(r"^(?P<name>[^@:]+)(?:@(?P<alias>[A-Za-z0-9_-]+)|:(?P<version>\d+))?$")


class FairnessGateError(RegistryError):
    """A version breaches its fairness thresholds, so it cannot become champion."""


def _now() -> datetime:
    return datetime.now(UTC)


class _FolderTaken(Exception):
    """The next version's bundle folder exists: a concurrent registration, or a leftover."""


class _Base(DeclarativeBase):
    pass


class _Model(_Base):
    __tablename__ = "shipyard_models"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class _Version(_Base):
    __tablename__ = "shipyard_model_versions"
    __table_args__ = (UniqueConstraint("model_name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(ForeignKey("shipyard_models.name"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    task: Mapped[str] = mapped_column(String(32))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    data_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    config: Mapped[str | None] = mapped_column(Text, nullable=True)
    package_versions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    parent_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    bundle_path: Mapped[str] = mapped_column(String(500))
    manifest_sha256: Mapped[str] = mapped_column(String(64))


class _Alias(_Base):
    __tablename__ = "shipyard_aliases"

    model_name: Mapped[str] = mapped_column(ForeignKey("shipyard_models.name"), primary_key=True)
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class _Event(_Base):
    __tablename__ = "shipyard_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    model_name: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


@dataclass(frozen=True)
class ModelVersion:
    """A registered model version, as read from the registry."""

    name: str
    version: int
    created_at: datetime
    task: str
    metrics: dict[str, Any]
    params: dict[str, Any]
    data_fingerprint: str | None
    package_versions: dict[str, Any]
    parent_version: int | None
    bundle_path: Path
    manifest_sha256: str
    config: str | None = None
    aliases: tuple[str, ...] = field(default=())

    @property
    def reference(self) -> str:
        """``name:version``, the reference that always means this version."""
        return f"{self.name}:{self.version}"

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (the config is left out; read it from the bundle)."""
        return {
            "name": self.name,
            "version": self.version,
            "reference": self.reference,
            "created_at": self.created_at.isoformat(),
            "task": self.task,
            "aliases": list(self.aliases),
            "metrics": self.metrics,
            "params": self.params,
            "data_fingerprint": self.data_fingerprint,
            "package_versions": self.package_versions,
            "parent_version": self.parent_version,
            "bundle_path": str(self.bundle_path),
            "manifest_sha256": self.manifest_sha256,
        }


def parse_reference(reference: str) -> tuple[str, str | None, int | None]:
    """Split ``name``, ``name@alias`` or ``name:version`` into its parts.

    >>> parse_reference("adult@champion"), parse_reference("adult:3")
    (('adult', 'champion', None), ('adult', None, 3))

    Raises
    ------
    RegistryError
        When the reference has another shape.
    """
    match = _REFERENCE.match(reference.strip())
    if not match:
        raise RegistryError(
            f"'{reference}' is not a model reference; write NAME, NAME@ALIAS "
            "or NAME:VERSION, for example adult@champion or adult:3."
        )
    version = match["version"]
    return match["name"], match["alias"], int(version) if version else None


class Registry:
    """Model versions in a SQL database, with their bundles in an artifact folder.

    Parameters
    ----------
    url
        SQLAlchemy database URL, for example ``sqlite:///.shipyard/registry.db`` or
        ``postgresql+psycopg://user@host/db``.
    artifacts
        Folder that holds one bundle folder per version.
    """

    def __init__(self, url: str, artifacts: str | Path) -> None:
        self.url = url
        self.artifacts = Path(artifacts)
        try:
            create_private_sqlite_file(url)
            self.engine = open_store_engine(url)
            try:
                # A new database is created at the head revision; another is refused, with
                # the way to upgrade it (shipyard.migrations).
                check_schema(self.engine, REGISTRY)
            except BaseException:
                self.engine.dispose()  # a refused database keeps no connection open
                raise
        except (OperationalError, ImportError) as error:
            raise RegistryError(
                f"Cannot open the registry database at {self._safe_url()}: "
                f"{error.__class__.__name__}: {str(error).splitlines()[0]}. "
                "Check registry.url and that the server is running."
            ) from error

    @classmethod
    def from_config(cls, config: Any) -> Registry:
        """Open the registry a :class:`~shipyard.config.RegistryConfig` describes."""
        return cls(config.resolved_url(), config.resolved_artifacts())

    def _safe_url(self) -> str:
        return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", self.url)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    # -- writing ---------------------------------------------------------------------------

    def register(
        self,
        name: str,
        files: Mapping[str, bytes],
        manifest: Mapping[str, Any],
        *,
        params: Mapping[str, Any] | None = None,
        config: str | None = None,
        data_fingerprint: str | None = None,
        package_versions: Mapping[str, Any] | None = None,
        parent_version: int | Literal["latest"] | None = None,
    ) -> ModelVersion:
        """Write a new immutable version: its bundle on disk and its row in the database.

        The bundle is written to a temporary folder first and moved into place inside the
        database transaction, so a failure leaves neither a row without files nor files that a
        row points at half-written. ``parent_version="latest"`` makes the parent the model's
        latest version inside that transaction, so two registrations at once never both
        believe they are the first.
        """
        if not _NAME.match(name):
            raise RegistryError(
                f"'{name}' is not a valid model name: use letters, digits, "
                "'.', '_' and '-', starting with a letter or digit."
            )
        for attempt in range(5):
            try:
                return self._register_once(
                    name,
                    files,
                    manifest,
                    dict(params or {}),
                    config,
                    data_fingerprint,
                    dict(package_versions or {}),
                    parent_version,
                )
            except IntegrityError:
                if attempt == 4:
                    raise
            except _FolderTaken as taken:
                if attempt == 4:  # not a race: a folder no row points at
                    raise RegistryError(str(taken)) from None
                time.sleep(0.1 * (attempt + 1))  # let the other registration commit
        raise AssertionError("unreachable")

    def _register_once(
        self,
        name: str,
        files: Mapping[str, bytes],
        manifest: Mapping[str, Any],
        params: dict[str, Any],
        config: str | None,
        data_fingerprint: str | None,
        package_versions: dict[str, Any],
        parent_version: int | Literal["latest"] | None,
    ) -> ModelVersion:
        staging: Path | None = None
        moved: Path | None = None
        try:
            with Session(self.engine) as session, session.begin():
                if session.get(_Model, name) is None:
                    session.add(_Model(name=name))
                    session.flush()
                latest = session.scalar(
                    select(func.max(_Version.version)).where(_Version.model_name == name)
                )
                version = (latest or 0) + 1
                if parent_version == "latest":
                    parent_version = latest
                relative = Path(name) / f"v{version}"
                final = self.artifacts / relative
                if final.exists():
                    # Another registration may have moved its bundle in after this
                    # transaction read the latest version: register() tries again.
                    raise _FolderTaken(
                        f"Bundle folder {final} already exists but the registry "
                        f"has no {name}:{version}; move it away and retry."
                    )
                staging = self.artifacts / name / f".staging-{uuid.uuid4().hex}"
                document = {
                    **manifest,
                    "name": name,
                    "version": version,
                    "parent_version": parent_version,
                    "data_fingerprint": data_fingerprint,
                    "package_versions": package_versions,
                }
                manifest_sha256 = write_bundle(staging, files, document)
                session.add(
                    _Version(
                        model_name=name,
                        version=version,
                        task=str(manifest["task"]),
                        metrics=dict(manifest.get("metrics", {})),
                        params=params,
                        data_fingerprint=data_fingerprint,
                        config=config,
                        package_versions=package_versions,
                        parent_version=parent_version,
                        bundle_path=relative.as_posix(),
                        manifest_sha256=manifest_sha256,
                    )
                )
                session.add(
                    _Event(
                        model_name=name,
                        version=version,
                        action="register",
                        detail={"manifest_sha256": manifest_sha256},
                    )
                )
                session.flush()
                # Moved last, inside the transaction: the row commits only if the move worked.
                staging.rename(final)
                moved = final
        except BaseException:
            for leftover in (staging, moved):
                if leftover is not None:
                    shutil.rmtree(leftover, ignore_errors=True)
            raise
        return self.get(name, version)

    def adopt(self, source: ModelVersion, aliases: tuple[str, ...] = ()) -> ModelVersion:
        """Copy a version of another registry here, unchanged: same number, same manifest hash.

        The bundle is verified against ``source.manifest_sha256`` before and after the copy,
        so the copy is the registered bundle byte for byte. Used to build a registry that holds
        one served version (a container image's).

        Raises
        ------
        RegistryError
            When this registry already holds a version of that number.
        BundleIntegrityError
            When the source bundle differs from its recorded hashes.
        """
        verify_bundle(source.bundle_path, source.manifest_sha256)
        relative = Path(source.name) / f"v{source.version}"
        final = self.artifacts / relative
        staging = self.artifacts / source.name / f".staging-{uuid.uuid4().hex}"
        try:
            with Session(self.engine) as session, session.begin():
                if session.get(_Model, source.name) is None:
                    session.add(_Model(name=source.name))
                    session.flush()
                if final.exists() or session.scalar(
                    select(_Version.id).where(
                        _Version.model_name == source.name, _Version.version == source.version
                    )
                ):
                    raise RegistryError(
                        f"This registry already holds {source.reference}; adopt it into an "
                        "empty registry."
                    )
                shutil.copytree(source.bundle_path, staging, symlinks=True)
                verify_bundle(staging, source.manifest_sha256)
                session.add(
                    _Version(
                        model_name=source.name,
                        version=source.version,
                        task=source.task,
                        metrics=source.metrics,
                        params=source.params,
                        data_fingerprint=source.data_fingerprint,
                        config=source.config,
                        package_versions=source.package_versions,
                        parent_version=source.parent_version,
                        bundle_path=relative.as_posix(),
                        manifest_sha256=source.manifest_sha256,
                    )
                )
                for alias in aliases:
                    session.add(
                        _Alias(model_name=source.name, alias=alias, version=source.version)
                    )
                session.add(
                    _Event(
                        model_name=source.name,
                        version=source.version,
                        action="adopt",
                        detail={
                            "manifest_sha256": source.manifest_sha256,
                            "aliases": list(aliases),
                        },
                    )
                )
                session.flush()
                staging.rename(final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return self.get(source.name, source.version)

    def promote(
        self,
        name: str,
        version: int,
        alias: str = DEFAULT_ALIAS,
        reason: str = "",
        *,
        override_fairness: bool = False,
    ) -> ModelVersion:
        """Point ``alias`` at ``version`` and log the move.

        A version whose manifest records breached fairness thresholds cannot become
        ``champion`` unless ``override_fairness`` is set and a ``reason`` is given; both are
        kept in the audit log.

        Raises
        ------
        ModelNotFoundError
            When the version does not exist.
        FairnessGateError
            When the version breaches its fairness gate and no override was given.
        """
        target = self.get(name, version)
        detail: dict[str, Any] = {}
        if alias == DEFAULT_ALIAS:
            detail = self._fairness_gate(target, reason, override_fairness)
        with Session(self.engine) as session, session.begin():
            current = session.get(_Alias, (name, alias))
            previous = current.version if current else None
            if current is None:
                session.add(_Alias(model_name=name, alias=alias, version=version))
            else:
                current.version, current.updated_at = version, _now()
            session.add(
                _Event(
                    model_name=name,
                    version=version,
                    action="promote",
                    detail={"alias": alias, "previous": previous, "reason": reason, **detail},
                )
            )
        return self.get(target.name, target.version)

    def claim(
        self, name: str, version: int, alias: str = DEFAULT_ALIAS, reason: str = ""
    ) -> ModelVersion | None:
        """Point ``alias`` at ``version`` only if no version holds it: an atomic compare-and-set.

        Returns the promoted version, or ``None`` when the alias was already held (another
        run claimed it first). The alias row is inserted without reading it first: the
        primary key makes the loser of a race fail on SQLite and PostgreSQL alike.

        Raises
        ------
        ModelNotFoundError
            When the version does not exist.
        FairnessGateError
            When the version breaches its fairness gate.
        """
        target = self.get(name, version)
        detail = self._fairness_gate(target, reason, False) if alias == DEFAULT_ALIAS else {}
        try:
            with Session(self.engine) as session, session.begin():
                session.add(_Alias(model_name=name, alias=alias, version=version))
                session.flush()
                session.add(
                    _Event(
                        model_name=name,
                        version=version,
                        action="promote",
                        detail={"alias": alias, "previous": None, "reason": reason, **detail},
                    )
                )
        except IntegrityError:
            return None
        return self.get(target.name, target.version)

    def log_event(
        self, name: str, version: int | None, action: str, detail: dict[str, Any]
    ) -> None:
        """Append a decision (a gate verdict, for one) to the audit log."""
        with Session(self.engine) as session, session.begin():
            session.add(_Event(model_name=name, version=version, action=action, detail=detail))

    def rollback(self, name: str, alias: str = DEFAULT_ALIAS, reason: str = "") -> ModelVersion:
        """Point ``alias`` back at the version it held before its latest move; log it.

        Raises
        ------
        RegistryError
            When the alias never pointed anywhere else.
        """
        moves = [
            event
            for event in self.events(name)
            if event["action"] in ("promote", "rollback") and event["detail"].get("alias") == alias
        ]
        if not moves or moves[-1]["detail"].get("previous") is None:
            raise RegistryError(
                f"'{name}@{alias}' has no earlier version to roll back to; promote a version "
                f"with 'shipyard models promote {name} VERSION --alias {alias}'."
            )
        previous = int(moves[-1]["detail"]["previous"])
        self.get(name, previous)  # the version must still exist
        with Session(self.engine) as session, session.begin():
            current = session.get(_Alias, (name, alias))
            assert current is not None  # a recorded move means the alias exists
            rolled_back = current.version
            current.version, current.updated_at = previous, _now()
            session.add(
                _Event(
                    model_name=name,
                    version=previous,
                    action="rollback",
                    detail={"alias": alias, "previous": rolled_back, "reason": reason},
                )
            )
        return self.get(name, previous)

    def remove_alias(self, name: str, alias: str, reason: str = "") -> ModelVersion:
        """Delete ``alias`` (a canary that is rolled back, for one); log it; return its version.

        Raises
        ------
        RegistryError
            For ``champion``, which must always point somewhere (use :meth:`rollback`).
        ModelNotFoundError
            When the alias does not exist.
        """
        if alias == DEFAULT_ALIAS:
            raise RegistryError(
                f"'{DEFAULT_ALIAS}' cannot be removed; move it with 'shipyard models promote' "
                "or 'shipyard models rollback'."
            )
        held = self.resolve(f"{name}@{alias}")
        with Session(self.engine) as session, session.begin():
            current = session.get(_Alias, (name, alias))
            if current is not None:
                session.delete(current)
            session.add(
                _Event(
                    model_name=name,
                    version=held.version,
                    action="remove_alias",
                    detail={"alias": alias, "previous": held.version, "reason": reason},
                )
            )
        return held

    def check_fairness(self, reference: str) -> None:
        """Raise :class:`FairnessGateError` when a version could not become champion.

        A canary is checked before it gets traffic, so that it can be promoted afterwards.
        """
        self._fairness_gate(self.resolve(reference), "", override=False)

    def _fairness_gate(self, target: ModelVersion, reason: str, override: bool) -> dict[str, Any]:
        """Check the fairness gate recorded in the manifest; return audit details."""
        fairness = read_manifest(target.bundle_path).get("fairness") or {}
        gate = fairness.get("gate") or {}
        if gate.get("passed", True):
            return {}
        breaches = [str(item["message"]) for item in gate.get("breaches", [])]
        if not override:
            raise FairnessGateError(
                f"{target.reference} cannot become {DEFAULT_ALIAS}: it breaches its fairness "
                f"thresholds: {'; '.join(breaches)}. Mitigate and retrain, or promote anyway "
                "with --override-fairness --reason '...' (both are kept in the audit log)."
            )
        if not reason.strip():
            raise FairnessGateError(
                f"Overriding the fairness gate of {target.reference} needs a reason: pass "
                "--reason '...' (it is kept in the audit log)."
            )
        return {"override_fairness": True, "fairness_breaches": breaches}

    # -- reading ---------------------------------------------------------------------------

    def get(self, name: str, version: int) -> ModelVersion:
        """Return one version, or raise :class:`ModelNotFoundError` with what does exist."""
        with Session(self.engine) as session:
            row = session.scalar(
                select(_Version).where(_Version.model_name == name, _Version.version == version)
            )
            if row is None:
                known = session.scalars(
                    select(_Version.version).where(_Version.model_name == name)
                ).all()
                if not known:
                    raise self._unknown_model(session, name)
                raise ModelNotFoundError(
                    f"Model '{name}' has no version {version}; versions: "
                    f"{', '.join(map(str, sorted(known)))}."
                )
            aliases = session.scalars(
                select(_Alias.alias).where(_Alias.model_name == name, _Alias.version == version)
            ).all()
            return self._to_version(row, tuple(sorted(aliases)))

    def resolve(self, reference: str) -> ModelVersion:
        """Resolve ``name`` (its champion), ``name@alias`` or ``name:version``."""
        name, alias, version = parse_reference(reference)
        if version is not None:
            return self.get(name, version)
        alias = alias or DEFAULT_ALIAS
        with Session(self.engine) as session:
            row = session.get(_Alias, (name, alias))
            if row is None:
                if session.get(_Model, name) is None:
                    raise self._unknown_model(session, name)
                raise ModelNotFoundError(
                    f"Model '{name}' has no alias '{alias}'. Point it at a version with "
                    f"'shipyard models promote {name} VERSION --alias {alias}', or use "
                    f"{name}:VERSION."
                )
            version = row.version
        return self.get(name, version)

    def versions(self, name: str) -> list[ModelVersion]:
        """All versions of a model, oldest first."""
        with Session(self.engine) as session:
            if session.get(_Model, name) is None:
                raise self._unknown_model(session, name)
            rows = session.scalars(
                select(_Version).where(_Version.model_name == name).order_by(_Version.version)
            ).all()
            aliases: dict[int, list[str]] = {}
            for alias in session.scalars(select(_Alias).where(_Alias.model_name == name)):
                aliases.setdefault(alias.version, []).append(alias.alias)
            return [
                self._to_version(row, tuple(sorted(aliases.get(row.version, [])))) for row in rows
            ]

    def models(self) -> list[dict[str, Any]]:
        """One summary per model: latest version, version count, aliases."""
        with Session(self.engine) as session:
            names = session.scalars(select(_Model.name).order_by(_Model.name)).all()
        summaries = []
        for name in names:
            versions = self.versions(name)
            if not versions:
                continue
            latest = versions[-1]
            summaries.append(
                {
                    "name": name,
                    "versions": len(versions),
                    "latest": latest.version,
                    "task": latest.task,
                    "created_at": latest.created_at.isoformat(),
                    "aliases": {
                        alias: version.version for version in versions for alias in version.aliases
                    },
                }
            )
        return summaries

    def events(self, name: str) -> list[dict[str, Any]]:
        """Return the audit log of a model, oldest first."""
        with Session(self.engine) as session:
            rows = session.scalars(
                select(_Event).where(_Event.model_name == name).order_by(_Event.id)
            ).all()
            return [
                {
                    "at": row.at.isoformat(),
                    "version": row.version,
                    "action": row.action,
                    "detail": row.detail,
                }
                for row in rows
            ]

    def verify(self, reference: str) -> dict[str, Any]:
        """Verify a version's bundle against the registry; return its manifest."""
        version = self.resolve(reference)
        return verify_bundle(version.bundle_path, version.manifest_sha256)

    def manifest(self, reference: str) -> dict[str, Any]:
        """Read a version's manifest (unverified; use :meth:`verify` before trusting it)."""
        return read_manifest(self.resolve(reference).bundle_path)

    def load_predictor(self, reference: str, unknown_fields: str = "reject") -> Any:
        """Verify a version's bundle and return its predictor (which may use this database)."""
        version = self.resolve(reference)
        return load_predictor(
            version.bundle_path, version.manifest_sha256, unknown_fields, store_url=self.url
        )

    # -- helpers ---------------------------------------------------------------------------

    def _to_version(self, row: _Version, aliases: tuple[str, ...]) -> ModelVersion:
        created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
        return ModelVersion(
            name=row.model_name,
            version=row.version,
            created_at=created,
            task=row.task,
            metrics=_json(row.metrics),
            params=_json(row.params),
            data_fingerprint=row.data_fingerprint,
            package_versions=_json(row.package_versions),
            parent_version=row.parent_version,
            bundle_path=self.artifacts / row.bundle_path,
            manifest_sha256=row.manifest_sha256,
            config=row.config,
            aliases=aliases,
        )

    def _unknown_model(self, session: Session, name: str) -> ModelNotFoundError:
        import difflib

        names = session.scalars(select(_Model.name)).all()
        hint = difflib.get_close_matches(name, names, n=1)
        suggestion = f" Did you mean '{hint[0]}'?" if hint else ""
        listing = (
            f" Registered models: {', '.join(sorted(names))}."
            if names
            else " The registry is empty; train one with 'shipyard train'."
        )
        return ModelNotFoundError(f"No model named '{name}' in the registry.{suggestion}{listing}")


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        loaded: dict[str, Any] = json.loads(value)
        return loaded
    return dict(value or {})
