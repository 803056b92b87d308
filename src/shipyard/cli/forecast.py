"""``shipyard forecast``: batch forecasts of a registered forecaster to a file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli import output
from shipyard.cli.commands import (
    ConfigOption,
    HomeOption,
    RegistryOption,
    _open_registry,
    handles_errors,
)
from shipyard.errors import ConfigError

__all__ = ["register"]


@handles_errors
def forecast(
    context: typer.Context,
    reference: Annotated[str, typer.Argument(help="NAME, NAME@ALIAS or NAME:VERSION.")],
    output_path: Annotated[
        Path, typer.Option("--output", "-o", help="New CSV or Parquet file of forecasts.")
    ],
    horizon: Annotated[
        int | None, typer.Option(min=1, help="Steps ahead (default: the trained horizon).")
    ] = None,
    series: Annotated[
        list[str] | None, typer.Option(help="Series to forecast (repeatable; default: all).")
    ] = None,
    covariates: Annotated[
        Path | None,
        typer.Option(
            help="CSV or Parquet of future covariates: the time column, the series column "
            "and one row per forecast stamp."
        ),
    ] = None,
    config: ConfigOption = None,
    home: HomeOption = None,
    registry: RegistryOption = None,
) -> None:
    """Forecast every series of a registered forecaster, with intervals, into a file."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from shipyard.data.sources import read_table
    from shipyard.pipeline.forecasts import forecast_table, write_forecasts
    from shipyard.registry.bundle import read_manifest
    from shipyard.tasks.base import task_for_manifest

    store = _open_registry(config, home, registry)
    version = store.resolve(reference)
    manifest = read_manifest(version.bundle_path)
    if "forecast" not in task_for_manifest(manifest).capabilities.protocols:
        raise ConfigError(
            f"{version.reference} is a {manifest['task']} model, not a forecaster; use "
            "'shipyard predict' to score a file with it."
        )
    forecaster = store.load_predictor(version.reference)
    future = read_table(str(covariates)) if covariates else None
    chosen = series or []
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=output.error_console,
    ) as progress:
        task_id = progress.add_task("forecasting", total=len(chosen) or len(forecaster.series_ids))
        table = forecast_table(
            forecaster,
            dict(manifest["forecasting"]),
            horizon,
            chosen,
            future,
            progress=lambda done: progress.advance(task_id, done),
        )
    write_forecasts(table, output_path)
    output.console.print(
        f"Wrote {len(table)} forecasts of {table['series'].nunique()} series from "
        f"{version.reference} into {output_path}"
    )


def register(app: typer.Typer) -> None:
    """Add ``forecast`` to the root command."""
    app.command("forecast")(forecast)
