"""The REST front door (extra ``[serve]``): ``create_app`` and the uvicorn runner.

This package is never imported by the core; it imports starlette, uvicorn and orjson, which the
``serve`` extra installs.
"""

from shipyard.errors import require

for _module in ("starlette", "uvicorn", "orjson", "prometheus_client"):
    require(_module, "serve")

from shipyard.serving.app import ServedModel, create_app  # noqa: E402
from shipyard.serving.keys import KeyStore  # noqa: E402
from shipyard.serving.server import (  # noqa: E402
    build_app,
    load_served_model,
    run_server,
    running_server,
)

__all__ = [
    "KeyStore",
    "ServedModel",
    "build_app",
    "create_app",
    "load_served_model",
    "run_server",
    "running_server",
]
