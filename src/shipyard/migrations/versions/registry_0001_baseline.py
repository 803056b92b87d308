"""Baseline of the registry: models, versions, aliases and the audit log, as of 0.1.0.

A database written before schema versions has these tables already: only missing ones are
created (see :mod:`shipyard.migrations.baseline`).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from shipyard.migrations.baseline import create_missing_tables

revision = "registry_0001"
down_revision = None
branch_labels = ("registry",)
depends_on = None

# The tables exactly as release 0.1.0 created them: a revision never changes once released.
metadata = MetaData()
Table(
    "shipyard_models",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
Table(
    "shipyard_model_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "model_name",
        String(100),
        ForeignKey("shipyard_models.name"),
        nullable=False,
        index=True,
    ),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("task", String(32), nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("params", JSON, nullable=False),
    Column("data_fingerprint", String(64), nullable=True),
    Column("config", Text, nullable=True),
    Column("package_versions", JSON, nullable=False),
    Column("parent_version", Integer, nullable=True),
    Column("bundle_path", String(500), nullable=False),
    Column("manifest_sha256", String(64), nullable=False),
    UniqueConstraint("model_name", "version"),
)
Table(
    "shipyard_aliases",
    metadata,
    Column("model_name", String(100), ForeignKey("shipyard_models.name"), primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Table(
    "shipyard_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("model_name", String(100), nullable=False, index=True),
    Column("version", Integer, nullable=True),
    Column("action", String(32), nullable=False),
    Column("detail", JSON, nullable=False),
)


def upgrade() -> None:
    """Create the registry's tables the database lacks."""
    create_missing_tables(metadata)


def downgrade() -> None:
    """Leave the tables as releases before schema versions expect them (unversioned)."""
