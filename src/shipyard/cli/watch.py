"""``shipyard watch NAME``: run the monitoring policy pass after pass (or ``--once``)."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shipyard.cli import output
from shipyard.cli.commands import (
    ConfigOption,
    HomeOption,
    RegistryOption,
    _open_registry,
    handles_errors,
)

if TYPE_CHECKING:
    from shipyard.config import MonitoringConfig

__all__ = ["log_errors_only", "monitoring_config", "print_pass", "register"]

_STYLES = {
    "alert": "bold yellow",
    "delivery": "yellow",
    "rollback": "bold red",
    "promote": "bold green",
    "confirm": "green",
    "canary": "cyan",
    "retrain": "magenta",
    "gate": "magenta",
    "retention": "dim",
    "wait": "dim",
}


def log_errors_only() -> None:
    """Print monitoring log errors (a webhook that failed) but not the alert warnings.

    The alerts are printed with each pass already; without a handler Python would print
    them a second time.
    """
    monitoring = logging.getLogger("shipyard.monitoring")
    if not monitoring.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(logging.ERROR)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        monitoring.addHandler(handler)


def monitoring_config(
    registry: Any, name: str, config: Path | None, overrides: dict[str, Any]
) -> MonitoringConfig:
    """Return the ``monitoring`` section to run, with flag overrides applied.

    It comes from ``--config``, else ``./shipyard.yaml``, else the config saved with the
    champion (the one it was trained with), else the defaults.

    Raises
    ------
    ConfigError
        When an override does not validate.
    """
    import yaml

    from shipyard.config import CLI_FLAGS, apply_overrides, load_config, load_config_dict

    default = Path("shipyard.yaml")
    source = config if config is not None else (default if default.is_file() else None)
    raw: Any = None
    if source is not None:
        raw = load_config(source).model_dump(mode="json")
    else:
        saved = registry.resolve(name).config
        raw = yaml.safe_load(saved) if saved else None
    if not isinstance(raw, dict):  # no saved config: the defaults, around a placeholder
        raw = {"name": name, "data": {"source": "unused", "target": "unused"}}
    wanted = {CLI_FLAGS[flag]: value for flag, value in overrides.items() if value is not None}
    return load_config_dict(apply_overrides(raw, wanted), source="the watch settings").monitoring


def print_pass(result: Any) -> None:
    """Print one pass: the champion's numbers, then each decision on its own line."""
    data = result.as_dict()
    window = data["window"]
    parts = [f"[bold]{data['champion']}[/bold] champion"]
    if data["canary"]:
        parts.append(f"[cyan]{data['canary']}[/cyan] canary")
    if window:
        state = "closed" if window["closed"] else "open"
        drifted = ", ".join(window["drifted"]) or "none"
        parts.append(
            f"window {window['index']} ({window['count']} predictions, {state}): drifted {drifted}"
        )
    if data["realised_metric"] is not None:
        registered = data["reference_metric"]
        parts.append(
            f"realised {data['metric']} {data['realised_metric']:.4f}"
            + (f" (registered {registered:.4f})" if registered is not None else "")
        )
    if data["error_rate"] is not None:
        parts.append(f"error rate {data['error_rate']:.2%}")
    stamp = result.at.astimezone().strftime("%H:%M:%S")
    output.console.print(f"[dim]{stamp}[/dim] " + "; ".join(parts), highlight=False)
    decisions = data["decisions"]
    drift_alerts = [
        d for d in decisions if d["kind"] == "alert" and d["detail"].get("kind") == "drift"
    ]
    if len(drift_alerts) > 1:  # one line for the drift alerts of a pass
        listing = ", ".join(
            f"{d['detail']['column']} {d['detail']['value']:.2f}"
            for d in sorted(drift_alerts, key=lambda d: -d["detail"]["value"])
        )
        summary = {
            "kind": "alert",
            "message": f"PSI above the alert threshold on {len(drift_alerts)} columns: {listing}",
        }
        decisions = [summary, *(d for d in decisions if d not in drift_alerts)]
    for decision in decisions:
        style = _STYLES.get(decision["kind"], "")
        output.console.print(
            f"  [{style}]{decision['kind']:>9}[/{style}] {decision['message']}"
            if style
            else f"  {decision['kind']:>9} {decision['message']}",
            highlight=False,
        )


@handles_errors
def watch(
    context: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name; its champion is watched.")],
    once: Annotated[bool, typer.Option("--once", help="Run one pass and exit.")] = False,
    interval: Annotated[
        float | None,
        typer.Option(min=0.1, help="Seconds between passes (monitoring.interval_seconds)."),
    ] = None,
    window_size: Annotated[
        int | None,
        typer.Option(min=10, help="Predictions per drift window (monitoring.window_size)."),
    ] = None,
    webhook: Annotated[
        str | None, typer.Option(help="URL that receives alerts (monitoring.alerts.webhook).")
    ] = None,
    config: ConfigOption = None,
    home: HomeOption = None,
    registry: RegistryOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per pass, one per line.")
    ] = False,
) -> None:
    """Watch a served model: drift, alerts, retraining, canary, promotion and rollback."""
    from shipyard.pipeline.watch import Watcher

    log_errors_only()
    opened = _open_registry(config, home, registry)
    settings = monitoring_config(
        opened,
        name,
        config,
        {"interval": interval, "window_size": window_size, "webhook": webhook},
    )
    watcher = Watcher(opened, name, settings, report=output.reporter(quiet=as_json))

    def show(result: Any) -> None:
        if as_json:
            sys.stdout.write(json.dumps(result.as_dict(), default=str) + "\n")
            sys.stdout.flush()
        else:
            print_pass(result)

    if once:
        show(watcher.run_once())
        return
    stop = threading.Event()

    def interrupt(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C stops at once
        stop.set()
        output.error_console.print("Stopping after this pass (Ctrl-C again to stop now).")

    def failed(error: Exception) -> None:
        output.error_console.print(
            f"[bold red]Pass failed:[/bold red] {error.__class__.__name__}: {error}",
            highlight=False,
        )

    previous = signal.signal(signal.SIGINT, interrupt)
    output.error_console.print(
        f"Watching {name} every {settings.interval_seconds:g} s; Ctrl-C stops.", highlight=False
    )
    try:
        passes = watcher.run(show, stop=stop, on_error=failed)
    except KeyboardInterrupt:
        output.error_console.print("Stopped.")
        return
    finally:
        signal.signal(signal.SIGINT, previous)
    output.error_console.print(f"Stopped after {passes} pass(es).")


def register(app: typer.Typer) -> None:
    """Add ``watch`` to the root command."""
    app.command("watch")(watch)
