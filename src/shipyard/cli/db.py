"""``shipyard db``: the schema version of the registry's database, and its upgrade."""

from __future__ import annotations

import typer

from shipyard.cli import output
from shipyard.cli.commands import (
    ConfigOption,
    HomeOption,
    JsonOption,
    RegistryOption,
    _registry_config,
    handles_errors,
)

__all__ = ["db_app"]

db_app = typer.Typer(
    help="Schema versions of the registry's database: see them, upgrade them.",
    no_args_is_help=True,
)

_STATES = {
    "new": "no tables yet (created when first opened)",
    "unversioned": "written before schema versions: run 'shipyard db upgrade'",
    "behind": "older than this shipyard: run 'shipyard db upgrade'",
    "current": "up to date",
    "ahead": "newer than this shipyard: upgrade shipyard",
}


@db_app.command("upgrade")
@handles_errors
def db_upgrade(
    context: typer.Context,
    config: ConfigOption = None,
    home: HomeOption = None,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Bring every store in the registry's database to this shipyard's schema."""
    from shipyard.migrations import upgrade_database

    upgrades = upgrade_database(_registry_config(config, home, registry).resolved_url())
    if as_json:
        output.print_json([upgrade.as_dict() for upgrade in upgrades])
        return
    for upgrade in upgrades:
        before = upgrade.before or "unversioned"
        if not upgrade.applied:
            output.console.print(
                f"{upgrade.store}: at {upgrade.after}, nothing to do", highlight=False
            )
            continue
        output.console.print(f"{upgrade.store}: {before} -> {upgrade.after}", highlight=False)
        for step in upgrade.applied:
            output.console.print(f"  applied {step}", highlight=False)


@db_app.command("current")
@handles_errors
def db_current(
    context: typer.Context,
    config: ConfigOption = None,
    home: HomeOption = None,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show each store's schema revision in the registry's database, and the one needed."""
    from shipyard.migrations import database_status

    statuses = database_status(_registry_config(config, home, registry).resolved_url())
    if as_json:
        output.print_json([status.as_dict() for status in statuses])
        return
    for status in statuses:
        output.console.print(
            f"{status.store.name}: {status.revision or 'none'} (needs {status.head}), "
            f"{_STATES[status.state]}",
            highlight=False,
        )
