"""Schema versions of shipyard's stores (Alembic revisions shipped in the package).

See :mod:`shipyard.migrations.runner` for what happens when a store opens, and
``docs/registry.md`` (Upgrades) for ``shipyard db upgrade``.
"""

from shipyard.migrations.runner import (
    MONITORING,
    REGISTRY,
    STORES,
    SchemaStatus,
    StoreSchema,
    Upgrade,
    check_schema,
    database_status,
    read_status,
    upgrade,
    upgrade_database,
)

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
    "upgrade",
    "upgrade_database",
]
