"""The REST front door (extra ``[serve]``): ``create_app`` and the uvicorn runner.

This package is never imported by the core; it imports starlette, uvicorn and orjson, which the
``serve`` extra installs.

The names below are imported on first use (PEP 562), not with the package: each worker process
of ``shipyard serve --workers N`` imports ``shipyard.serving.logs`` (its log formatter) before it
can answer the supervisor's health check, and loading the whole serving stack there made slow
machines miss that check, so uvicorn killed and restarted the worker.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from shipyard.errors import require

for _module in ("starlette", "uvicorn", "orjson", "prometheus_client"):
    require(_module, "serve")

if TYPE_CHECKING:
    from shipyard.serving.app import ServedModel, create_app
    from shipyard.serving.keys import KeyStore
    from shipyard.serving.server import (
        build_app,
        load_served_model,
        run_server,
        running_server,
    )

_HOMES = {
    "KeyStore": "shipyard.serving.keys",
    "ServedModel": "shipyard.serving.app",
    "build_app": "shipyard.serving.server",
    "create_app": "shipyard.serving.app",
    "load_served_model": "shipyard.serving.server",
    "run_server": "shipyard.serving.server",
    "running_server": "shipyard.serving.server",
}

__all__ = [
    "KeyStore",
    "ServedModel",
    "build_app",
    "create_app",
    "load_served_model",
    "run_server",
    "running_server",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'shipyard.serving' has no attribute '{name}'")
    return getattr(import_module(home), name)
