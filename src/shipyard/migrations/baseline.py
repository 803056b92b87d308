"""The baseline revisions' one step: create the tables a database lacks, check the others.

Before schema versions, each store created its tables with ``metadata.create_all`` when it
opened, so a database written then holds some or all of the baseline's tables (the drift
windows table appeared only once drift was computed) and no version table. The baseline
revision therefore creates only the missing tables, and refuses a table of the same name that
lacks the baseline's columns: it belongs to something else.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import MetaData, inspect

from shipyard.errors import DatabaseSchemaError

__all__ = ["create_missing_tables"]


def create_missing_tables(metadata: MetaData) -> list[str]:
    """Create the tables of ``metadata`` the database does not have; return their names."""
    bind = op.get_bind()
    inspector = inspect(bind)
    existing = set(inspector.get_table_names())
    created = []
    for table in metadata.sorted_tables:
        if table.name not in existing:
            table.create(bind)
            created.append(table.name)
            continue
        found = {column["name"] for column in inspector.get_columns(table.name)}
        missing = [column.name for column in table.columns if column.name not in found]
        if missing:
            raise DatabaseSchemaError(
                f"The table {table.name} exists but has no column {', '.join(missing)}: it "
                "was not written by shipyard. Use another database (or schema) for shipyard, "
                "or rename that table."
            )
    return created
