"""``shipyard monitor NAME``: drift and live performance of a served model, with a report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from shipyard.cli import output
from shipyard.cli.commands import (
    ConfigOption,
    HomeOption,
    JsonOption,
    RegistryOption,
    _open_registry,
    handles_errors,
)

__all__ = ["register"]


@handles_errors
def monitor(
    context: typer.Context,
    reference: Annotated[
        str, typer.Argument(help="NAME (its champion), NAME@ALIAS or NAME:VERSION.")
    ],
    window_size: Annotated[
        int | None,
        typer.Option(min=10, help="Predictions per drift window (monitoring.window_size)."),
    ] = None,
    report: Annotated[
        Path | None, typer.Option("--report", "-o", help="HTML report to write.")
    ] = None,
    config: ConfigOption = None,
    home: HomeOption = None,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Update drift windows over the prediction log; print the latest and write a report."""
    from shipyard.cli.watch import monitoring_config
    from shipyard.monitoring.policy import drift_thresholds
    from shipyard.pipeline.monitor import monitor as run_monitor

    opened = _open_registry(config, home, registry)
    version = opened.resolve(reference)
    settings = monitoring_config(opened, version.name, config, {"window_size": window_size})
    window_size = settings.window_size
    target = report or Path(f"{version.name}-v{version.version}-monitoring.html")
    result = run_monitor(
        opened,
        reference,
        window_size=window_size,
        thresholds=drift_thresholds(settings.drift),
        report_path=target,
    )
    if as_json:
        output.print_json(result.as_dict())
        return
    counts = result.counts
    output.console.print(
        f"{version.reference}: {counts['predictions']} logged predictions, "
        f"{counts['labelled']} with feedback, {len(result.windows)} window(s) of "
        f"{window_size}.",
        highlight=False,
    )
    filled = [window for window in result.windows if window.count]
    if filled:
        latest = filled[-1]
        table = Table(
            title=f"Drift in the latest window ({latest.count} predictions)", title_justify="left"
        )
        for column in ("column", "test", "p-value", "PSI", "JS", "drifted"):
            table.add_column(column, justify="left" if column == "column" else "right")
        for row in latest.report:
            verdict = {True: "[bold red]yes[/]", False: "no", None: "too few"}[row["drifted"]]
            table.add_row(
                row["column"],
                row["test"],
                f"{row['p_value']:.2g}",
                f"{row['psi']:.3f}",
                f"{row['js_distance']:.3f}",
                verdict,
            )
        output.console.print(table)
    for window, performance in zip(result.windows, result.performance, strict=True):
        if performance:
            output.console.print(
                f"window {window.index}: realised {performance['metric']} "
                f"{performance['value']:.4f} [{performance['low']:.4f}, "
                f"{performance['high']:.4f}] on {performance['labels']} labels",
                highlight=False,
            )
    latest_signals = next((item for item in reversed(result.signals) if item), None)
    if latest_signals:
        output.console.print(
            "latest window: "
            + ", ".join(
                f"{name} {value:.4f}" if isinstance(value, float) else f"{name} {value}"
                for name, value in latest_signals.items()
            ),
            highlight=False,
        )
    output.console.print(f"Report: {result.report_path}", highlight=False)


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _duration(text: str, option: str) -> timedelta:
    """``90s``, ``15m``, ``1h`` or ``7d`` as a duration."""
    number, unit = text[:-1], text[-1:].lower()
    try:
        seconds = float(number) * _UNITS[unit]
    except (KeyError, ValueError):
        raise typer.BadParameter(
            f"'{text}' is not a duration; write a number and a unit: 90s, 15m, 1h or 7d.",
            param_hint=option,
        ) from None
    if seconds <= 0:
        raise typer.BadParameter(f"'{text}' must be longer than 0.", param_hint=option)
    return timedelta(seconds=seconds)


def _moment(text: str | None, option: str) -> datetime | None:
    """Read an ISO 8601 time (UTC unless it says otherwise), or a duration meaning ago."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        if text[-1:].lower() not in _UNITS:
            raise typer.BadParameter(
                f"'{text}' is neither an ISO 8601 time (2026-01-31T12:00) nor a duration "
                "ago (24h, 7d).",
                param_hint=option,
            ) from None
        return datetime.now(UTC) - _duration(text, option)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@handles_errors
def drift(
    context: typer.Context,
    reference: Annotated[
        str, typer.Argument(help="NAME (its champion), NAME@ALIAS or NAME:VERSION.")
    ],
    since: Annotated[
        str | None,
        typer.Option(help="From this time (ISO 8601, UTC by default) or this long ago (24h)."),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Up to this time (excluded); default: now.")
    ] = None,
    every: Annotated[
        str | None,
        typer.Option(help="Also report each period of this length (15m, 1h, 1d)."),
    ] = None,
    config: ConfigOption = None,
    home: HomeOption = None,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Drift over a time range from the sketches the server wrote with the log (no row read)."""
    from shipyard.cli.watch import monitoring_config
    from shipyard.monitoring.log import MonitoringStore
    from shipyard.monitoring.policy import drift_thresholds
    from shipyard.pipeline.monitor import open_timeline

    start, end = _moment(since, "--since"), _moment(until, "--until")
    period = _duration(every, "--every") if every else None
    opened = _open_registry(config, home, registry)
    version = opened.resolve(reference)
    settings = monitoring_config(opened, version.name, config, {})
    store = MonitoringStore(opened.url)
    try:
        timeline = open_timeline(
            opened, version.reference, store, drift_thresholds(settings.drift)
        )
        whole = timeline.between(start, end)
        periods = timeline.every(period, start, end) if period else []
    finally:
        store.close()
    if as_json:
        output.print_json(
            {
                "reference": version.reference,
                "range": whole.as_dict(),
                "periods": [item.as_dict() for item in periods],
            }
        )
        return
    if not whole.count:
        output.console.print(
            f"{version.reference}: no sketched predictions in this range (sketches are "
            "written by 'shipyard serve' with monitoring.sketch_seconds > 0).",
            highlight=False,
        )
        return
    table = Table(
        title=f"{version.reference}: drift of {whole.count} predictions, buckets from "
        f"{whole.first_bucket:%Y-%m-%d %H:%M:%S} to {whole.last_bucket:%Y-%m-%d %H:%M:%S} UTC",
        title_justify="left",
    )
    for column in ("column", "test", "p-value", "PSI", "JS", "KS bounds", "drifted"):
        table.add_column(column, justify="left" if column == "column" else "right")
    for row in whole.report:
        bounds = whole.ks_bounds.get(row.column)
        table.add_row(
            row.column,
            row.test,
            f"{row.p_value:.2g}",
            f"{row.psi:.3f}",
            f"{row.js_distance:.3f}",
            f"{bounds[0]:.3f}-{bounds[1]:.3f}" if bounds else "",
            {True: "[bold red]yes[/]", False: "no", None: "too few"}[row.drifted],
        )
    output.console.print(table)
    for item in periods:
        drifted = ", ".join(item.drifted) or "none"
        output.console.print(
            f"{item.first_bucket:%Y-%m-%d %H:%M}: {item.count} predictions, drifted: {drifted}",
            highlight=False,
        )


@handles_errors
def retrain(
    context: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name; its champion is the baseline.")],
    gate_share: Annotated[
        float | None,
        typer.Option(
            min=0.05,
            max=0.9,
            help="Share of recent labels kept for the gate (monitoring.retraining.gate_share).",
        ),
    ] = None,
    min_gate_rows: Annotated[
        int | None,
        typer.Option(
            min=1,
            help=(
                "Fewest held-out labels (recommenders: users) the gate accepts "
                "(monitoring.retraining.min_gate_rows)."
            ),
        ),
    ] = None,
    config: ConfigOption = None,
    home: HomeOption = None,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Retrain on the reference data plus new labels, gate against the champion, promote."""
    from shipyard.cli.watch import monitoring_config
    from shipyard.pipeline.retrain import retrain as run_retrain

    opened = _open_registry(config, home, registry)
    settings = monitoring_config(
        opened, name, config, {"gate_share": gate_share, "min_gate_rows": min_gate_rows}
    ).retraining
    result = run_retrain(
        opened,
        name,
        gate_share=settings.gate_share,
        min_gate_rows=settings.min_gate_rows,
        min_improvement=settings.min_improvement,
        report=output.reporter(quiet=as_json),
    )
    if as_json:
        output.print_json(result.as_dict())
        return
    gate = result.gate
    from shipyard.tasks.base import task_for_manifest

    challenger_manifest = opened.manifest(result.challenger.version.reference)
    units = task_for_manifest(challenger_manifest).capabilities.feedback_unit
    output.console.print(
        f"Gate on {gate.samples} held-out {units}: {gate.metric} challenger {gate.challenger:.4f}"
        f" vs champion {gate.champion:.4f}, difference {gate.improvement:+.4f} "
        f"[{gate.low:+.4f}, {gate.high:+.4f}]",
        highlight=False,
    )
    output.console.print(result.message, highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``monitor``, ``drift`` and ``retrain`` to the root command."""
    app.command("monitor")(monitor)
    app.command("drift")(drift)
    app.command("retrain")(retrain)
