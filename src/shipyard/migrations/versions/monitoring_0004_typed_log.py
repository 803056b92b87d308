"""Typed log tables: each model version's requests and answers in typed columns.

Before this revision every logged prediction held its request and its answer as two JSON
documents in ``shipyard_predictions``. This revision creates the catalogue, moves every
logged row into its version's typed table (column types inferred from the first rows of the
version; values that do not fit are kept in the row's unfit document), reading the old rows
in batches by id, then drops the two JSON columns. See :mod:`shipyard.monitoring.columnar`.

The rows go through the layout code of the release that ships this revision: a later change
to that code must keep this revision's result (or freeze a copy of it here).
"""

from __future__ import annotations

import sqlite3
from typing import Any, NamedTuple

import sqlalchemy as sa
from alembic import op

revision = "monitoring_0004"
down_revision = "monitoring_0003"
branch_labels = None
depends_on = None

PREDICTIONS = "shipyard_predictions"


class _OldRow(NamedTuple):  # not a dataclass: Alembic loads this file outside sys.modules
    model_name: str
    version: int
    inputs: Any
    output: Any


def _old_predictions() -> sa.Table:
    return sa.Table(
        PREDICTIONS,
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_name", sa.String(100)),
        sa.Column("version", sa.Integer),
        sa.Column("inputs", sa.JSON),
        sa.Column("output", sa.JSON),
    )


def upgrade() -> None:
    """Create the catalogue, move the JSON documents into typed tables, drop the JSON columns."""
    from shipyard.monitoring.columnar import UPGRADE_BATCH, LogLayout

    op.create_table(
        "shipyard_log_tables",
        sa.Column("model_name", sa.String(100), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("table_name", sa.String(63), nullable=False, unique=True),
    )
    op.create_table(
        "shipyard_log_columns",
        sa.Column("table_name", sa.String(63), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("column_name", sa.String(63), nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.UniqueConstraint("table_name", "column_name", name="uq_shipyard_log_columns_name"),
    )
    connection = op.get_bind()
    old = _old_predictions()
    layout = LogLayout(connection.dialect.name)
    after = 0
    while True:
        rows = connection.execute(
            sa.select(old.c.id, old.c.model_name, old.c.version, old.c.inputs, old.c.output)
            .where(old.c.id > after)
            .order_by(old.c.id)
            .limit(UPGRADE_BATCH)
        ).all()
        if not rows:
            break
        layout.write(
            connection,
            [(row[0], _OldRow(row[1], row[2], row[3], row[4])) for row in rows],
        )
        after = rows[-1][0]
    if connection.dialect.name != "sqlite" or sqlite3.sqlite_version_info >= (3, 35):
        # PostgreSQL, and SQLite since 3.35, drop a column in place: no copy of the table.
        op.drop_column(PREDICTIONS, "inputs")
        op.drop_column(PREDICTIONS, "output")
        return
    with op.batch_alter_table(PREDICTIONS) as batch:
        batch.drop_column("inputs")
        batch.drop_column("output")


def downgrade() -> None:
    """Put the documents back in JSON columns, then drop the typed tables and the catalogue."""
    from shipyard.monitoring.columnar import UPGRADE_BATCH, LogLayout

    connection = op.get_bind()
    with op.batch_alter_table(PREDICTIONS) as batch:
        batch.add_column(sa.Column("inputs", sa.JSON, nullable=True))
        batch.add_column(sa.Column("output", sa.JSON, nullable=True))
    old = _old_predictions()
    layout = LogLayout(connection.dialect.name)
    after = 0
    while True:
        rows = connection.execute(
            sa.select(old.c.id, old.c.model_name, old.c.version)
            .where(old.c.id > after)
            .order_by(old.c.id)
            .limit(UPGRADE_BATCH)
        ).all()
        if not rows:
            break
        for model_name in {row[1] for row in rows}:
            wanted: dict[int, list[int]] = {}
            for log_id, name, version in rows:
                if name == model_name:
                    wanted.setdefault(version, []).append(log_id)
            documents = layout.documents(connection, model_name, wanted)
            for log_id, (inputs, output) in documents.items():
                connection.execute(
                    old.update()
                    .where(old.c.id == log_id)
                    .values(
                        inputs=inputs if inputs is not None else {},
                        output=output if output is not None else {},
                    )
                )
        after = rows[-1][0]
    names = connection.execute(sa.text("SELECT table_name FROM shipyard_log_tables")).scalars()
    for table_name in list(names):
        op.drop_table(table_name)
    op.drop_table("shipyard_log_columns")
    op.drop_table("shipyard_log_tables")
