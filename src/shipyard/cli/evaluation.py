"""``shipyard explain``, ``shipyard card`` and ``shipyard report``: evaluation outputs of a model.

Each command parses its flags and calls one library function from :mod:`shipyard.evaluation`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated, Any

import typer

from shipyard.cli import output
from shipyard.cli.commands import (
    ConfigOption,
    HomeOption,
    JsonOption,
    RegistryOption,
    _open_registry,
    handles_errors,
)
from shipyard.errors import DataError

__all__ = ["card", "explain", "register", "report"]

ReferenceArgument = Annotated[
    str, typer.Argument(help="NAME (its champion), NAME@ALIAS or NAME:VERSION.")
]


def _records(record: str | None, data: str | None, limit: int) -> list[dict[str, Any]]:
    if (record is None) == (data is None):
        raise DataError("Pass exactly one of --record JSON or --data FILE.")
    if record is not None:
        try:
            parsed = json.loads(record)
        except ValueError as error:
            raise DataError(f"--record is not valid JSON: {error}") from error
        records = [parsed] if isinstance(parsed, dict) else parsed
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise DataError("--record must be a JSON object, or an array of objects.")
        return records
    from shipyard.data.sources import read_table
    from shipyard.training.export import frame_to_records

    assert data is not None
    return frame_to_records(read_table(data).head(limit))


def explain(
    context: typer.Context,
    reference: ReferenceArgument,
    record: Annotated[
        str | None, typer.Option(help="One record as a JSON object (or an array of them).")
    ] = None,
    data: Annotated[str | None, typer.Option(help="CSV/Parquet file of records.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Rows of --data to explain.")] = 10,
    top: Annotated[int, typer.Option(min=1, help="Contributions shown per record.")] = 8,
    config: ConfigOption = None,
    home: HomeOption = None,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Explain predictions: each input column's contribution to the model's raw output."""
    from shipyard.evaluation.explain import explain_reference

    records = _records(record, data, limit)
    result = explain_reference(_open_registry(config, home, registry), reference, records)
    if as_json:
        output.print_json(result)
        return
    for index, item in enumerate(result["explanations"]):
        output.console.print(
            f"[bold]record {index}[/bold]: prediction {item['prediction']}; "
            f"{item['output']} {item['raw_output']:.4f} = base {item['base_value']:.4f} "
            "+ contributions",
            highlight=False,
        )
        for column, value in list(item["contributions"].items())[:top]:
            output.console.print(f"  {column:<24} {value:+.4f}", highlight=False)


def card(
    context: typer.Context,
    reference: ReferenceArgument,
    output_dir: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Folder to write the Markdown and HTML cards."),
    ] = None,
    config: ConfigOption = None,
    home: HomeOption = None,
    registry: RegistryOption = None,
) -> None:
    """Show the model card (Markdown), or write it as Markdown and HTML with --output."""
    from shipyard.pipeline.documents import card_for_version, write_card

    opened = _open_registry(config, home, registry)
    if output_dir is None:
        print(card_for_version(opened, reference).to_markdown())
        return
    markdown, page = write_card(opened, reference, output_dir)
    output.console.print(f"Wrote {markdown} and {page}")


def report(
    context: typer.Context,
    reference: ReferenceArgument,
    output_path: Annotated[
        Path | None, typer.Option("--output", "-o", help="Where to copy the HTML report.")
    ] = None,
    config: ConfigOption = None,
    home: HomeOption = None,
    registry: RegistryOption = None,
) -> None:
    """Copy a version's self-contained HTML evaluation report out of its verified bundle."""
    from shipyard.pipeline.documents import report_for_version

    resolved, path = report_for_version(_open_registry(config, home, registry), reference)
    target = output_path or Path(f"{resolved.replace(':', '-v')}-report.html")
    shutil.copyfile(path, target)
    output.console.print(f"Wrote the report of {resolved} to {target}")


def register(app: typer.Typer, models_app: typer.Typer) -> None:
    """Add the commands to the root app (and ``card`` under ``models`` too)."""
    app.command("explain")(handles_errors(explain))
    app.command("card")(handles_errors(card))
    app.command("report")(handles_errors(report))
    models_app.command("card")(handles_errors(card))
