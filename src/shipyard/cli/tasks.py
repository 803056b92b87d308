"""``shipyard tasks``: the registered tasks and what each supports."""

from __future__ import annotations

import typer

from shipyard.cli import output
from shipyard.cli.commands import JsonOption, handles_errors

__all__ = ["register"]


@handles_errors
def tasks(context: typer.Context, as_json: JsonOption = False) -> None:
    """List the tasks shipyard can train and serve (built in, or added by installed packages)."""
    from rich.table import Table

    from shipyard.tasks.base import available_tasks

    described = [task.describe() for task in available_tasks()]
    if as_json:
        output.print_json(described)
        return
    table = Table()
    for column in ("task", "config 'task:' values", "serves", "fairness", "explain", "canary"):
        table.add_column(column)
    for item in described:
        capabilities = item["capabilities"]
        table.add_row(
            item["name"],
            ", ".join(capabilities["config_tasks"]),
            ", ".join(capabilities["protocols"]),
            "yes" if capabilities["fairness"] else "no",
            "yes" if capabilities["explanations"] else "no",
            "yes" if capabilities["traffic_split"] else "no",
        )
    output.console.print(table)
    for item in described:
        refused = item["capabilities"]["unsupported_keys"]
        if refused:
            output.console.print(f"{item['name']}: refuses {', '.join(refused)}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``tasks`` to the root command."""
    app.command("tasks")(tasks)
