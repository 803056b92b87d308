"""``shipyard ui`` (the web UI over the registry) and ``shipyard gradio NAME`` (a Gradio app)."""

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
    keys_file_for,
)

__all__ = ["register"]


@handles_errors
def ui(
    context: typer.Context,
    host: Annotated[str | None, typer.Option(help="Interface (serving.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (serving.port).")] = None,
    keys_file: Annotated[
        Path | None, typer.Option(help="API keys file (serving.keys_file).")
    ] = None,
    insecure_cookie: Annotated[
        bool,
        typer.Option(
            "--insecure-cookie",
            help="Send the session cookie over plain HTTP too (serving.ui_secure_cookie=false).",
        ),
    ] = False,
    config: ConfigOption = None,
    home: HomeOption = None,
    registry: RegistryOption = None,
) -> None:
    """Serve the web UI: models, versions, reports, monitoring, the audit log and try-it pages.

    People log in with an API key ('shipyard keys create'); 'shipyard serve' mounts the same
    pages under /ui of the model's server.
    """
    from shipyard.config import ServingConfig, load_config
    from shipyard.errors import require

    require("uvicorn", "serve")
    require("jinja2", "serve")
    from shipyard.serving import run_server
    from shipyard.serving.keys import KeyStore
    from shipyard.ui import UISettings, create_ui
    from shipyard.ui.session import read_or_create_secret

    loaded = load_config(config) if config else None
    settings = loaded.serving if loaded else ServingConfig()
    window_size = loaded.monitoring.window_size if loaded else 1000
    host = host or settings.host
    port = settings.port if port is None else port
    opened = _open_registry(config, home, registry)
    keys_path = keys_file_for(config, home, keys_file)
    keys = KeyStore(keys_path)
    if not keys.keys():
        record, key = keys.create("created by the first 'shipyard ui'")
        output.error_console.print(
            f"Created API key {record.id} (shown once; stored hashed in {keys_path}):"
        )
        output.console.print(key, highlight=False)
    secure = settings.ui_secure_cookie and not insecure_cookie
    app = create_ui(
        opened,
        keys,
        read_or_create_secret(keys_path.parent),
        UISettings(secure_cookie=secure, window_size=window_size),
    )
    output.error_console.print(
        f"Web UI: http://{host}:{port}/ui/ (log in with an API key); Ctrl+C stops."
    )
    run_server(app, host, port, log_level="warning")


@handles_errors
def gradio(
    context: typer.Context,
    reference: Annotated[
        str, typer.Argument(help="NAME (its champion), NAME@ALIAS or NAME:VERSION.")
    ],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 7860,
    config: ConfigOption = None,
    home: HomeOption = None,
    registry: RegistryOption = None,
) -> None:
    """Serve a Gradio app for one version, built from its try-it form (shipyard[gradio]).

    It calls the same predictor as 'shipyard serve', with no API key: keep it on 127.0.0.1,
    or put it behind your own login.
    """
    from shipyard.ui.gradio_app import build_gradio_app

    opened = _open_registry(config, home, registry)
    version = opened.resolve(reference)
    app = build_gradio_app(opened, version.name, version.version)
    output.error_console.print(
        f"Gradio app for {version.reference} at http://{host}:{port}/; Ctrl+C stops."
    )
    app.launch(server_name=host, server_port=port, share=False, show_api=False)


def register(app: typer.Typer) -> None:
    """Add ``ui`` and ``gradio`` to the root command."""
    app.command("ui")(ui)
    app.command("gradio")(gradio)
