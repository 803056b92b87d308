"""Sketch buckets: per-column counts of the predictions, written with the log as they arrive.

Before this revision monitoring re-read the logged rows to compute drift; the server now adds
each committed batch to the sketches of its time bucket (one row per bucket and writer), and
drift over any time range reads those counts. Logs written before it have no buckets: their
drift still comes from the rows (``shipyard monitor``'s count windows).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "monitoring_0003"
down_revision = "monitoring_0002"
branch_labels = None
depends_on = None

TABLE = "shipyard_sketch_buckets"


def upgrade() -> None:
    """Create the sketch buckets table."""
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("writer", sa.String(32), nullable=False),
        sa.Column("layout", sa.String(16), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("counts", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint(
            "model_name", "version", "started_at", "writer", name="uq_shipyard_sketch_buckets"
        ),
    )
    op.create_index(
        "ix_shipyard_sketch_buckets_range", TABLE, ["model_name", "version", "started_at"]
    )


def downgrade() -> None:
    """Drop the sketch buckets table (drift then comes from the logged rows again)."""
    op.drop_index("ix_shipyard_sketch_buckets_range", table_name=TABLE)
    op.drop_table(TABLE)
