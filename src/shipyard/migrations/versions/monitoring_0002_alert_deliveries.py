"""Alert deliveries: each alert for the webhook, until it is delivered or given up.

Before this revision an alert was POSTed once and recorded as sent whether or not the webhook
took it; ``shipyard watch`` now keeps it here and retries it on later passes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "monitoring_0002"
down_revision = "monitoring_0001"
branch_labels = None
depends_on = None

TABLE = "shipyard_alert_deliveries"


def upgrade() -> None:
    """Create the alert deliveries table."""
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("alert", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
    )
    op.create_index(f"ix_{TABLE}_model_name", TABLE, ["model_name"])


def downgrade() -> None:
    """Drop the alert deliveries table (undelivered alerts are lost)."""
    op.drop_index(f"ix_{TABLE}_model_name", table_name=TABLE)
    op.drop_table(TABLE)
