"""The web UI mounted under ``/ui`` of ``shipyard serve`` (each worker process builds it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.routing import Mount

from shipyard.config import MonitoringConfig, ServingConfig
from shipyard.registry.store import Registry
from shipyard.serving.keys import KeyStore
from shipyard.ui.app import UISettings, ui_routes
from shipyard.ui.session import read_or_create_secret

__all__ = ["MOUNTS_FACTORY", "ui_mount", "ui_mounts"]

# What a worker recipe names to mount the UI (see shipyard.serving.server.mounts_from_spec).
MOUNTS_FACTORY = "shipyard.ui.mounted:ui_mounts"


def ui_mount(registry: Registry, keys: KeyStore, settings: UISettings | None = None) -> Mount:
    """Return the UI mounted at ``/ui``; its session secret is kept beside the keys file."""
    secret = read_or_create_secret(keys.path.parent)
    return Mount("/ui", routes=ui_routes(registry, keys, secret, settings))


def ui_mounts(registry: Registry, spec: dict[str, Any]) -> list[Mount]:
    """Return the UI's mount for a server recipe: its keys file, cookie and window settings.

    The session secret is kept beside the keys file, so every worker signs alike.
    """
    settings = ServingConfig.model_validate(spec["settings"])
    monitoring = MonitoringConfig.model_validate(spec.get("monitoring") or {})
    keys = KeyStore(Path(spec["keys_file"]))
    ui = UISettings(secure_cookie=settings.ui_secure_cookie, window_size=monitoring.window_size)
    return [ui_mount(registry, keys, ui)]
