"""``shipyard log``: erase logged predictions on request, purge old ones, export them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

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

__all__ = ["log_app"]

log_app = typer.Typer(
    help="Erase logged predictions (and their feedback) on request; purge old ones; export "
    "a version's log with typed columns.",
    no_args_is_help=True,
)


@log_app.command("delete")
@handles_errors
def log_delete(
    context: typer.Context,
    model: Annotated[str, typer.Option(help="The model whose log holds the rows.")],
    request_id: Annotated[
        list[str] | None,
        typer.Option("--request-id", help="Request id of a prediction, repeatable."),
    ] = None,
    where: Annotated[
        str | None,
        typer.Option(
            help="COLUMN=VALUE: every prediction whose request had this value (a hashed "
            "personal column is matched by the value's hash)."
        ),
    ] = None,
    by: Annotated[
        str | None, typer.Option(help="Who asks, for the audit log (default: the OS user).")
    ] = None,
    config: ConfigOption = None,
    home: HomeOption = None,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Erase predictions and their feedback; print how many; record it in the audit log."""
    from shipyard.pipeline.erasure import erase_records, parse_where

    chosen = parse_where(where) if where is not None else None
    result = erase_records(
        _open_registry(config, home, registry), model, request_id or (), chosen, by
    )
    if as_json:
        output.print_json(result.as_dict())
        return
    output.console.print(
        f"Erased {result.predictions} predictions and {result.feedback} feedback labels of "
        f"'{model}' (audit event 'erase' in 'shipyard models events {model}').",
        highlight=False,
    )


@log_app.command("purge")
@handles_errors
def log_purge(
    context: typer.Context,
    days: Annotated[
        float | None,
        typer.Option(help="Delete rows older than this (default: monitoring.retention_days)."),
    ] = None,
    config: ConfigOption = None,
    home: HomeOption = None,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete logged predictions, feedback and failures older than the retention period.

    'shipyard watch' does this on every pass; this command is for logs nobody watches.
    """
    from shipyard.errors import ConfigError
    from shipyard.monitoring.log import MonitoringStore

    retention = days if days is not None else _retention_days(config)
    if retention is None or retention <= 0:
        raise ConfigError(
            "No retention period: pass --days N (N > 0), or set monitoring.retention_days."
        )
    store = MonitoringStore(_open_registry(config, home, registry).url)
    try:
        removed = store.purge(timedelta(days=retention))
    finally:
        store.close()
    if as_json:
        output.print_json({"removed": removed, "days": retention})
        return
    output.console.print(
        f"Deleted {removed} logged rows older than {retention:g} days.", highlight=False
    )


def _retention_days(config: Path | None) -> float | None:
    from shipyard.config import MonitoringConfig, load_config

    default = Path("shipyard.yaml")
    source = config if config is not None else (default if default.is_file() else None)
    settings = load_config(source).monitoring if source is not None else MonitoringConfig()
    return settings.retention_days


@log_app.command("export")
@handles_errors
def log_export(
    context: typer.Context,
    name: Annotated[str, typer.Argument(help="The model whose log to export.")],
    out: Annotated[Path, typer.Argument(help="The file to write.")],
    version: Annotated[int, typer.Option(help="The model version whose predictions to export.")],
    file_format: Annotated[
        str, typer.Option("--format", help="File format: parquet (the only one yet).")
    ] = "parquet",
    config: ConfigOption = None,
    home: HomeOption = None,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write a version's logged predictions to a file with one typed column per field.

    Query it with DuckDB, for example: SELECT avg(age) FROM 'log.parquet'.
    """
    from shipyard.monitoring.export import export_log
    from shipyard.monitoring.log import MonitoringStore

    if file_format != "parquet":
        raise typer.BadParameter(
            f"'{file_format}' is not a format this command writes; use --format parquet.",
            param_hint="--format",
        )
    opened = _open_registry(config, home, registry)
    url = opened.url
    opened.close()  # only its database URL is needed
    store = MonitoringStore(url)
    try:
        rows = export_log(store, name, version, out)
    finally:
        store.close()
    if as_json:
        output.print_json({"model": name, "version": version, "rows": rows, "path": str(out)})
        return
    output.console.print(
        f"Wrote {rows} logged predictions of {name}:{version} to {out}.", highlight=False
    )
