"""Running the app: load a verified version from the registry and serve it with uvicorn."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from shipyard.config import ServingConfig
from shipyard.registry.bundle import load_predictor, read_manifest
from shipyard.registry.store import Registry
from shipyard.serving.app import ServedModel, create_app

__all__ = ["build_app", "load_served_model", "run_server", "running_server"]


def load_served_model(
    registry: Registry, reference: str, unknown_fields: str = "reject"
) -> ServedModel:
    """Resolve a reference, verify its bundle's hashes, and load its predictor.

    Raises
    ------
    ModelNotFoundError
        When the reference matches no version.
    BundleIntegrityError
        When any bundle file differs from its recorded hash.
    """
    version = registry.resolve(reference)
    predictor = load_predictor(version.bundle_path, version.manifest_sha256, unknown_fields)
    return ServedModel(
        version.name, version.version, predictor, read_manifest(version.bundle_path)
    )


def build_app(registry: Registry, reference: str, settings: ServingConfig) -> Any:
    """Build the ASGI app serving ``reference``, configured by ``settings``."""
    model = load_served_model(registry, reference, settings.unknown_fields)
    if model.manifest.get("task") == "recommendation":
        from shipyard.serving.recommend_routes import create_recommendation_app

        return create_recommendation_app(model)
    return create_app(
        model, max_body_bytes=settings.max_body_bytes, max_records=settings.max_records
    )


def run_server(app: Any, host: str, port: int, log_level: str = "info") -> None:
    """Serve until interrupted (Ctrl+C drains in-flight requests, then stops)."""
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


@contextmanager
def running_server(
    app: Any, host: str = "127.0.0.1", port: int = 0, timeout: float = 30.0
) -> Iterator[str]:
    """Serve ``app`` on a background thread for the duration of a ``with`` block.

    Yields the base URL (``http://127.0.0.1:PORT``); port 0 picks a free port.

    Raises
    ------
    RuntimeError
        When the server does not start within ``timeout`` seconds.
    """
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="shipyard-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"The server did not start on {host}:{port}; is the port free?")
        time.sleep(0.02)
    bound_port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=timeout)
