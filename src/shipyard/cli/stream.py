"""``shipyard stream``: score events from a NATS JetStream subject or a Redis stream."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from shipyard.cli import output
from shipyard.cli.commands import (
    ConfigOption,
    HomeOption,
    RegistryOption,
    _open_registry,
    handles_errors,
)

__all__ = ["register"]


@handles_errors
def stream(
    context: typer.Context,
    reference: Annotated[
        str, typer.Argument(help="NAME (its champion, followed), NAME@ALIAS or NAME:VERSION.")
    ],
    source: Annotated[
        str | None,
        typer.Option(help="nats://HOST:4222 or redis://HOST:6379/0 (stream.source)."),
    ] = None,
    subject: Annotated[
        str | None, typer.Option(help="Input subject or stream key (stream.subject).")
    ] = None,
    to: Annotated[
        str | None, typer.Option(help="Output subject or stream key (stream.to).")
    ] = None,
    dead_letter: Annotated[
        str | None,
        typer.Option(help="Where invalid events go; default TO.dead (stream.dead_letter)."),
    ] = None,
    group: Annotated[
        str | None,
        typer.Option(help="Durable consumer or consumer group; default shipyard-NAME."),
    ] = None,
    max_batch_size: Annotated[
        int | None, typer.Option(help="Events per micro-batch (stream.max_batch_size).")
    ] = None,
    max_batch_wait_ms: Annotated[
        float | None,
        typer.Option(help="Wait for a fuller batch, ms (stream.max_batch_wait_ms)."),
    ] = None,
    max_in_flight: Annotated[
        int | None,
        typer.Option(help="Events read and not yet acknowledged (stream.max_in_flight)."),
    ] = None,
    ack_wait: Annotated[
        float | None,
        typer.Option(help="Seconds before an unacknowledged event comes again (stream.ack_wait)."),
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve /metrics on this port (stream.metrics_port).")
    ] = None,
    poll_seconds: Annotated[
        float | None,
        typer.Option(help="Seconds between alias checks; 0: no hot swap (serving.poll_seconds)."),
    ] = None,
    canary: Annotated[
        str | None, typer.Option(help="Canary version reference (serving.canary).")
    ] = None,
    canary_share: Annotated[
        float | None, typer.Option(help="Share of events for the canary (serving.canary_share).")
    ] = None,
    config: ConfigOption = None,
    home: HomeOption = None,
    registry: RegistryOption = None,
) -> None:
    """Score events from a message stream; answers are published, logged, then acknowledged.

    SIGTERM (or Ctrl+C) stops reading and finishes the events in flight.
    """
    from shipyard.config import (
        CLI_FLAGS,
        ServingConfig,
        StreamConfig,
        apply_overrides,
        load_config,
    )
    from shipyard.errors import require

    for module in ("starlette", "orjson", "prometheus_client"):
        require(module, "serve")
    from shipyard.streams.runner import run_stream

    loaded = load_config(config) if config else None
    flags: dict[str, Any] = {
        "source": source,
        "subject": subject,
        "to": to,
        "dead_letter": dead_letter,
        "group": group,
        "max_batch_size": max_batch_size,
        "max_batch_wait_ms": max_batch_wait_ms,
        "max_in_flight": max_in_flight,
        "ack_wait": ack_wait,
        "metrics_port": metrics_port,
        "poll_seconds": poll_seconds,
        "canary": canary,
        "canary_share": canary_share,
    }
    sections: dict[str, Any] = {
        "stream": (loaded.stream if loaded else StreamConfig()).model_dump(),
        "serving": (loaded.serving if loaded else ServingConfig()).model_dump(),
    }
    merged = apply_overrides(sections, {CLI_FLAGS[flag]: value for flag, value in flags.items()})
    settings = StreamConfig.model_validate(merged["stream"])
    serving = ServingConfig.model_validate(merged["serving"])
    opened = _open_registry(config, home, registry)
    output.error_console.print(
        f"Streaming {reference}: {settings.source} '{settings.subject}' -> '{settings.to}' "
        f"(dead letters: '{settings.dead_letter or f'{settings.to}.dead'}'); "
        "SIGTERM or Ctrl+C drains and stops.",
        highlight=False,
    )
    summary = run_stream(
        opened, reference, settings, serving, loaded.monitoring if loaded else None
    )
    output.error_console.print(
        f"Stopped: {summary.answered} answered, {summary.dead_letters} dead letters.",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add ``stream`` to the root command."""
    app.command("stream")(stream)
