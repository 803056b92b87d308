"""Baseline of the monitoring store: prediction log, feedback, failures, drift windows (0.1.0).

A database written before schema versions has some or all of these tables already (the drift
windows table appeared once drift was computed): only missing ones are created (see
:mod:`shipyard.migrations.baseline`).
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Float, Integer, MetaData, String, Table

from shipyard.migrations.baseline import create_missing_tables

revision = "monitoring_0001"
down_revision = None
branch_labels = ("monitoring",)
depends_on = None

# The tables exactly as release 0.1.0 created them: a revision never changes once released.
metadata = MetaData()
Table(
    "shipyard_predictions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False, unique=True),
    Column("model_name", String(100), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("inputs", JSON, nullable=False),
    Column("output", JSON, nullable=False),
    Column("latency_ms", Float, nullable=False),
)
Table(
    "shipyard_feedback",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("model_name", String(100), nullable=False, index=True),
    Column("label", JSON, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)
Table(
    "shipyard_prediction_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_name", String(100), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("error", String(64), nullable=False),
)
Table(
    "shipyard_drift_windows",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_name", String(100), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("closed", Integer, nullable=False),
    Column("first_log_id", Integer, nullable=False),
    Column("last_log_id", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("count", Integer, nullable=False),
    Column("sketches", JSON, nullable=False),
    Column("report", JSON, nullable=False),
)


def upgrade() -> None:
    """Create the monitoring tables the database lacks."""
    create_missing_tables(metadata)


def downgrade() -> None:
    """Leave the tables as releases before schema versions expect them (unversioned)."""
