"""``shipyard keys``: create, list and revoke the API keys the server accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli import output
from shipyard.cli.commands import (
    ConfigOption,
    HomeOption,
    JsonOption,
    handles_errors,
    keys_file_for,
)

__all__ = ["keys_app"]

keys_app = typer.Typer(help="Create, list and revoke API keys for 'shipyard serve'.")

KeysFileOption = Annotated[
    Path | None, typer.Option("--keys-file", help="Keys file (serving.keys_file).")
]


@keys_app.command("create")
@handles_errors
def keys_create(
    context: typer.Context,
    label: Annotated[str, typer.Option(help="What the key is for.")] = "",
    config: ConfigOption = None,
    home: HomeOption = None,
    keys_file: KeysFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a key and print it once; only its hash is stored."""
    from shipyard.serving.keys import KeyStore

    record, key = KeyStore(keys_file_for(config, home, keys_file)).create(label)
    if as_json:
        output.print_json({**record.as_dict(), "key": key})
        return
    output.console.print(f"API key {record.id} ({label or 'no label'}): {key}", highlight=False)
    output.error_console.print("Store it now: it is shown only once.")


@keys_app.command("list")
@handles_errors
def keys_list(
    context: typer.Context,
    config: ConfigOption = None,
    home: HomeOption = None,
    keys_file: KeysFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """List keys: id, label, creation time (never the keys)."""
    from shipyard.serving.keys import KeyStore

    keys = KeyStore(keys_file_for(config, home, keys_file)).keys()
    if as_json:
        output.print_json(
            [{k: v for k, v in key.as_dict().items() if k != "sha256"} for key in keys]
        )
        return
    if not keys:
        output.console.print("No API keys yet; 'shipyard keys create' makes one.")
    for key in keys:
        output.console.print(f"{key.id}  {key.created_at}  {key.label}", highlight=False)


@keys_app.command("revoke")
@handles_errors
def keys_revoke(
    context: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The key's id (see 'shipyard keys list').")],
    config: ConfigOption = None,
    home: HomeOption = None,
    keys_file: KeysFileOption = None,
) -> None:
    """Revoke a key; running servers refuse it within a second."""
    from shipyard.serving.keys import KeyStore

    revoked = KeyStore(keys_file_for(config, home, keys_file)).revoke(key_id)
    output.console.print(f"Revoked {revoked.id} ({revoked.label or 'no label'}).")
