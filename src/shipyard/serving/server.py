"""Running the app: load verified versions from the registry and serve them.

The HTTP server is uvicorn by default, or granian (``serving.server: granian``, extra
``[granian]``): a Rust server that costs less per request; each of its workers builds the app
from the worker recipe (:func:`app_from_environment`), as uvicorn's workers do.
"""

from __future__ import annotations

import gc
import importlib
import logging
import logging.config
import math
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import uvicorn

from shipyard.config import MonitoringConfig, ServingConfig
from shipyard.errors import ConfigError, DataError, ModelNotFoundError, require
from shipyard.monitoring.privacy import LogMask, hash_key_path, read_hash_key
from shipyard.pipeline.rollout import CANARY_ALIAS
from shipyard.registry.bundle import load_predictor, read_manifest
from shipyard.registry.store import Registry, parse_reference
from shipyard.serving.app import BackgroundService, RouteBuilder, ServedModel, create_app
from shipyard.serving.context import ServingContext
from shipyard.serving.keys import KeyStore
from shipyard.serving.logs import log_config
from shipyard.serving.state import AliasWatcher, ServingState
from shipyard.tasks.base import task_for_manifest

__all__ = [
    "WORKER_SPEC_VARIABLE",
    "app_from_environment",
    "build_app",
    "freeze_loaded_objects",
    "load_served_model",
    "run_server",
    "running_server",
]

if TYPE_CHECKING:
    from shipyard.monitoring.log import PredictionLogger
    from shipyard.monitoring.sketching import RowSketcher

logger = logging.getLogger("shipyard.serving")

# The environment variable that carries the app's recipe to worker processes.
WORKER_SPEC_VARIABLE = "SHIPYARD_SERVING_SPEC"

# How long uvicorn's supervisor waits for a worker to answer its health check (uvicorn's default
# is 5 s). A new worker answers only once Python has started and imported the CLI and the log
# formatter; on a loaded machine that can pass 5 s, and the supervisor then kills and restarts
# it ("Child process ... died"). A hung worker is still replaced, after this long.
WORKER_HEALTHCHECK_SECONDS = 30


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
    predictor = load_predictor(
        version.bundle_path, version.manifest_sha256, unknown_fields, store_url=registry.url
    )
    manifest = read_manifest(version.bundle_path)
    mask = LogMask.for_manifest(manifest, lambda: read_hash_key(hash_key_path(registry.artifacts)))
    return ServedModel(version.name, version.version, predictor, manifest, mask)


def build_app(
    registry: Registry,
    reference: str,
    settings: ServingConfig,
    keys: KeyStore | None = None,
    extra_routes: Sequence[RouteBuilder] = (),
    monitoring: MonitoringConfig | None = None,
    own_auth_mounts: Sequence[Any] = (),
) -> Any:
    """Build the ASGI app serving ``reference``, configured by ``settings``.

    ``extra_routes`` adds route builders (``context -> routes``) after the built-in ones;
    ``own_auth_mounts`` mounts apps that check their own credentials (the web UI).

    When ``reference`` names an alias (``NAME`` or ``NAME@ALIAS``) and ``settings.poll_seconds``
    is positive, the app follows the alias: a moved alias is hot-swapped in without failing a
    request. Unless ``settings.canary`` fixes a canary, it also follows the ``canary`` alias
    (which ``shipyard watch`` moves): the version it points at gets ``monitoring.canary.share``
    of the requests. With predictions logged and ``monitoring.drift_refresh_seconds`` positive,
    a background thread advances the drift windows and refreshes the drift gauges of
    ``/metrics``.

    Raises
    ------
    ConfigError
        When ``settings.auth`` is on and no key store is given, or canary and model differ.
    """
    if settings.auth and keys is None:
        raise ConfigError(
            "serving.auth is on but no API key store was given; pass keys=KeyStore(path) "
            "(see 'shipyard keys'), or set serving.auth to false to serve without keys."
        )
    monitoring = monitoring or MonitoringConfig()
    unknown = settings.unknown_fields
    model = load_served_model(registry, reference, unknown)
    task = task_for_manifest(model.manifest)
    if not task.capabilities.traffic_split and (settings.canary or settings.shadow):
        raise ConfigError(
            f"The {task.name} task does not split traffic; remove serving.canary and "
            "serving.shadow to serve it."
        )
    own_app = _app_of_its_own(task.capabilities.protocols)
    if own_app is not None:
        if own_auth_mounts:
            logger.warning(
                "The web UI is not mounted beside %s models; run 'shipyard ui' to browse "
                "the registry.",
                task.name,
            )
        if not task.capabilities.traffic_split:
            # Said at start, so that nobody waits for a hot swap this app will not do.
            logger.warning(
                "%s models are served as the version resolved now (%s:%d); the server does "
                "not follow the alias: restart it after a promotion.",
                task.name,
                model.name,
                model.version,
            )
        return own_app(
            model,
            verify_key=keys.verify if settings.auth and keys is not None else None,
            prediction_log=_prediction_log(registry, settings, monitoring),
            settings=settings,
        )
    name, _, pinned = parse_reference(reference)
    follows_alias = pinned is None and settings.poll_seconds > 0
    managed_canary = follows_alias and settings.canary is None
    canary = shadow = None
    if settings.canary is not None:
        canary = load_served_model(registry, settings.canary, unknown)
    elif managed_canary:
        number = _canary_version(registry, name)
        if number is not None and number != model.version:
            canary = load_served_model(registry, f"{name}:{number}", unknown)
    if settings.shadow is not None:
        shadow = load_served_model(registry, settings.shadow, unknown)
    for other in (canary, shadow):
        if other is not None and other.name != model.name:
            raise ConfigError(
                f"Canary and shadow must be versions of '{model.name}', got '{other.name}'."
            )
    canary_share = monitoring.canary.share if managed_canary else settings.canary_share
    watcher = None
    if follows_alias:

        def watch(state: ServingState) -> AliasWatcher:
            return AliasWatcher(
                state,
                resolve=lambda: registry.resolve(reference).version,
                load=lambda number: load_served_model(registry, f"{name}:{number}", unknown),
                interval=settings.poll_seconds,
                resolve_canary=(lambda: _canary_version(registry, name))
                if managed_canary
                else None,
                canary_share=canary_share,
            )

        watcher = watch
    prediction_log = _prediction_log(registry, settings, monitoring)
    if prediction_log is not None and prediction_log.sketches is not None:
        # Open the bundle's reference now rather than on the first logged batch.
        prediction_log.sketches.prepare(model.name, model.version)
    services: list[Any] = []
    if (
        prediction_log is not None
        and monitoring.drift_refresh_seconds > 0
        and model.manifest.get("drift_reference")
    ):
        services.append(_drift_refresher(registry, name, prediction_log.store, monitoring))
    return create_app(
        model,
        settings=settings,
        prediction_log=prediction_log,
        verify_key=keys.verify if settings.auth and keys is not None else None,
        canary=canary,
        shadow=shadow,
        watcher=watcher,
        extra_routes=(*extra_routes, *task.route_builders()),
        canary_share=canary_share,
        services=services,
        own_auth_mounts=own_auth_mounts,
    )


def _app_of_its_own(protocols: Sequence[str]) -> Callable[..., Any] | None:
    """Return the builder of the app a protocol is served by alone, or ``None``.

    The record protocols (``predict``) share one app with canary, shadow and hot swap; a
    protocol listed here (``recommend``, ``forecast``, ``ask``) has an app of its own.
    """
    from shipyard.serving.ask_routes import create_ask_app
    from shipyard.serving.forecast_routes import create_forecast_app
    from shipyard.serving.recommend_routes import create_recommendation_app

    apps: dict[str, Callable[..., Any]] = {
        "recommend": create_recommendation_app,
        "forecast": create_forecast_app,
        "ask": create_ask_app,
    }
    return next((apps[protocol] for protocol in protocols if protocol in apps), None)


def _prediction_log(
    registry: Registry, settings: ServingConfig, monitoring: MonitoringConfig
) -> PredictionLogger | None:
    """Start the prediction logger, when ``serving.log_predictions`` is on.

    It is durable (a prediction is answered after its row is committed) unless
    ``monitoring.log_durability`` is ``async``.
    """
    if not settings.log_predictions:
        return None
    from shipyard.monitoring.buckets import SketchBook
    from shipyard.monitoring.log import MonitoringStore, PredictionLogger

    sketches = None
    if monitoring.sketch_seconds > 0:
        sketches = SketchBook(
            lambda name, number: _row_sketcher(registry, name, number),
            bucket_seconds=monitoring.sketch_seconds,
        )
    return PredictionLogger(
        MonitoringStore(registry.url),
        durable=monitoring.log_durability == "durable",
        commit_timeout=monitoring.log_commit_timeout,
        sketches=sketches,
    )


def _row_sketcher(registry: Registry, name: str, number: int) -> RowSketcher | None:
    """How the log thread sketches a version's predictions; None when it has no reference."""
    from shipyard.pipeline.monitor import open_row_sketcher

    try:
        return open_row_sketcher(registry, f"{name}:{number}")
    except DataError as error:  # a bundle without a drift reference: log it, unsketched
        logger.warning("predictions of %s:%d are not sketched: %s", name, number, error)
        return None


def _canary_version(registry: Registry, name: str) -> int | None:
    try:
        return registry.resolve(f"{name}@{CANARY_ALIAS}").version
    except ModelNotFoundError:
        return None


def _drift_refresher(
    registry: Registry, name: str, store: Any, monitoring: MonitoringConfig
) -> Callable[[ServingContext], BackgroundService]:
    from shipyard.monitoring.drift import DriftThresholds
    from shipyard.pipeline.monitor import open_drift_monitor
    from shipyard.serving.drift_gauges import DriftGauges, DriftRefresher

    thresholds = DriftThresholds(
        alpha=monitoring.drift.alpha,
        psi=monitoring.drift.psi_threshold,
        min_samples=monitoring.drift.min_samples,
    )

    def build(context: ServingContext) -> BackgroundService:
        return DriftRefresher(
            context.state,
            DriftGauges(context.metrics.registry),
            lambda number: open_drift_monitor(
                registry,
                f"{name}:{number}",
                store,
                window_size=monitoring.window_size,
                thresholds=thresholds,
            ),
            monitoring.drift_refresh_seconds,
        )

    return build


def app_from_environment() -> Any:
    """Build the app from :data:`WORKER_SPEC_VARIABLE`; each worker process calls this."""
    spec = orjson.loads(os.environ[WORKER_SPEC_VARIABLE])
    registry = Registry(spec["registry_url"], spec["artifacts"])
    settings = ServingConfig.model_validate(spec["settings"])
    keys = KeyStore(spec["keys_file"]) if spec.get("keys_file") else None
    monitoring = MonitoringConfig.model_validate(spec.get("monitoring") or {})
    app = build_app(
        registry,
        spec["reference"],
        settings,
        keys,
        monitoring=monitoring,
        own_auth_mounts=mounts_from_spec(registry, spec),
    )
    freeze_loaded_objects()
    return app


def mounts_from_spec(registry: Registry, spec: dict[str, Any]) -> list[Any]:
    """Build the mounts a worker recipe names (``"module:function"``), or none.

    The function takes the registry and the recipe; naming it keeps this module free of an
    import of the front door it mounts (the web UI).
    """
    factory = spec.get("mounts")
    if not factory:
        return []
    module, _, name = str(factory).partition(":")
    built: list[Any] = getattr(importlib.import_module(module), name)(registry, spec)
    return built


def run_server(
    app: Any,
    host: str,
    port: int,
    log_level: str = "info",
    *,
    settings: ServingConfig | None = None,
    worker_spec: dict[str, Any] | None = None,
) -> None:
    """Serve until interrupted; SIGINT/SIGTERM drain in-flight requests, then stop.

    With ``settings.workers`` above 1, ``worker_spec`` (registry URL, artifacts, reference,
    settings, keys file) is handed to each worker process, which builds its own app; the
    processes share the listening socket.
    """
    settings = settings or ServingConfig()
    logging_setup = log_config(log_level)
    logging.config.dictConfig(logging_setup)
    if settings.server == "granian":
        _run_granian(host, port, log_level, logging_setup, settings, worker_spec)
        return
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "log_config": logging_setup,
        "access_log": False,
        "timeout_graceful_shutdown": settings.shutdown_timeout,
        "server_header": False,
    }
    if settings.workers > 1:
        if worker_spec is None:
            raise ConfigError(
                "serving.workers > 1 needs the worker recipe (use 'shipyard serve')."
            )
        os.environ[WORKER_SPEC_VARIABLE] = orjson.dumps(worker_spec).decode()
        uvicorn.run(
            "shipyard.serving.server:app_from_environment",
            factory=True,
            workers=settings.workers,
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
            **common,
        )
        return
    freeze_loaded_objects()
    uvicorn.run(app, **common)


def _run_granian(
    host: str,
    port: int,
    log_level: str,
    logging_setup: dict[str, Any],
    settings: ServingConfig,
    worker_spec: dict[str, Any] | None,
) -> None:
    """Serve with granian's ASGI interface until interrupted (``serving.server: granian``).

    Every worker process (one by default) builds its app from the recipe, runs its lifespan
    (the prediction log is written out on shutdown) and is given ``shutdown_timeout`` seconds
    to finish its requests on SIGINT/SIGTERM before it is killed.
    """
    if worker_spec is None:
        raise ConfigError(
            "serving.server: granian needs the worker recipe (use 'shipyard serve')."
        )
    granian = require("granian", "granian")
    from granian.constants import Interfaces
    from granian.log import LogLevels

    os.environ[WORKER_SPEC_VARIABLE] = orjson.dumps(worker_spec).decode()
    # granian forks its workers by default; this process already runs threads (the prediction
    # log's, LightGBM's), and a fork copies their locks held: a forked worker hung. Spawned
    # workers start clean, as uvicorn's do.
    multiprocessing.set_start_method("spawn", force=True)
    server = granian.Granian(
        "shipyard.serving.server:app_from_environment",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        factory=True,
        websockets=False,
        log_level=LogLevels(log_level),
        log_dictconfig=logging_setup,
        log_access=False,
        workers_kill_timeout=max(math.ceil(settings.shutdown_timeout), 1),
    )
    server.serve()


def freeze_loaded_objects() -> None:
    """Keep what is loaded now (the models) out of the cyclic garbage collector's passes.

    A server process calls this once its app is built. A full collection over an Adult
    LightGBM model took about 300 ms, and holds every request in flight: with durable
    logging, requests live long enough (a commit) for their objects to reach the oldest
    generation and make full collections frequent. Frozen objects are skipped; a hot swap
    collects the old model and freezes the new one (:meth:`ServingState.swap`).
    """
    gc.freeze()


def worker_spec(
    registry: Registry,
    reference: str,
    settings: ServingConfig,
    keys_file: Path | None,
    monitoring: MonitoringConfig | None = None,
    mounts: str | None = None,
) -> dict[str, Any]:
    """Return the recipe :func:`app_from_environment` rebuilds the app from.

    ``mounts`` names a ``"module:function"`` that builds more mounts from the recipe.
    """
    return {
        "mounts": mounts,
        "registry_url": registry.url,
        "artifacts": str(registry.artifacts),
        "reference": reference,
        "settings": settings.model_dump(mode="json"),
        "keys_file": str(keys_file) if keys_file else None,
        "monitoring": (monitoring or MonitoringConfig()).model_dump(mode="json"),
    }


@contextmanager
def running_server(
    app: Any, host: str = "127.0.0.1", port: int = 0, timeout: float = 30.0
) -> Iterator[str]:
    """Serve ``app`` on a background thread for the duration of a ``with`` block.

    Yields the base URL (``http://127.0.0.1:PORT``); port 0 picks a free port. The app's
    lifespan runs (so a hot-swap watcher starts and stops with the server).

    Raises
    ------
    RuntimeError
        When the server does not start within ``timeout`` seconds.
    """
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, lifespan="auto"
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
