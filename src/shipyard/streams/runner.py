"""Running a stream consumer for a registered model: the serving pieces, around a broker.

:func:`serve_stream` loads the verified version the reference resolves to, builds the same
serving state as ``shipyard serve`` (primary and canary slots, hot swap when the alias moves,
the canary alias followed), the durable prediction log and the drift gauges, then consumes
until SIGTERM or SIGINT, and drains.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.config import MonitoringConfig, ServingConfig, StreamConfig
from shipyard.errors import ConfigError, ModelNotFoundError
from shipyard.pipeline.rollout import CANARY_ALIAS
from shipyard.registry.store import Registry, parse_reference
from shipyard.runtime.fast import accelerate
from shipyard.serving.context import ServingContext
from shipyard.serving.logs import log_config, log_event
from shipyard.serving.metrics import ServingMetrics
from shipyard.serving.server import load_served_model
from shipyard.serving.state import AliasWatcher, ServingState
from shipyard.streams.brokers import open_broker
from shipyard.streams.consumer import StreamConsumer
from shipyard.streams.metrics import StreamMetrics
from shipyard.streams.scoring import StreamScorer
from shipyard.tasks.base import task_for_manifest

if TYPE_CHECKING:
    from shipyard.monitoring.log import PredictionLogger
    from shipyard.serving.app import ServedModel

__all__ = ["StreamSummary", "run_stream", "serve_stream"]

logger = logging.getLogger("shipyard.streams")


@dataclass(frozen=True)
class StreamSummary:
    """What a consumer did before it stopped."""

    answered: int
    dead_letters: int
    metrics_port: int | None


def _canary_version(registry: Registry, name: str) -> int | None:
    try:
        return registry.resolve(f"{name}@{CANARY_ALIAS}").version
    except ModelNotFoundError:
        return None


def _prediction_log(
    registry: Registry, settings: ServingConfig, monitoring: MonitoringConfig
) -> PredictionLogger | None:
    if not settings.log_predictions:
        return None
    from shipyard.monitoring.log import MonitoringStore, PredictionLogger

    return PredictionLogger(
        MonitoringStore(registry.url),
        durable=monitoring.log_durability == "durable",
        commit_timeout=monitoring.log_commit_timeout,
    )


def _services(
    registry: Registry,
    reference: str,
    state: ServingState,
    settings: ServingConfig,
    monitoring: MonitoringConfig,
    canary_share: float,
    prediction_log: PredictionLogger | None,
) -> list[Any]:
    """Build the hot-swap watcher (following an alias) and the drift refresher (logging)."""
    name, _, pinned = parse_reference(reference)
    unknown = settings.unknown_fields
    services: list[Any] = []
    if pinned is None and settings.poll_seconds > 0:
        managed = settings.canary is None
        services.append(
            AliasWatcher(
                state,
                resolve=lambda: registry.resolve(reference).version,
                load=lambda number: _prepare(
                    load_served_model(registry, f"{name}:{number}", unknown)
                ),
                interval=settings.poll_seconds,
                resolve_canary=(lambda: _canary_version(registry, name)) if managed else None,
                canary_share=canary_share,
            )
        )
    manifest = state.primary.model.manifest
    if (
        prediction_log is not None
        and monitoring.drift_refresh_seconds > 0
        and manifest.get("drift_reference")
    ):
        from shipyard.monitoring.drift import DriftThresholds
        from shipyard.pipeline.monitor import open_drift_monitor
        from shipyard.serving.drift_gauges import DriftGauges, DriftRefresher

        thresholds = DriftThresholds(
            alpha=monitoring.drift.alpha,
            psi=monitoring.drift.psi_threshold,
            min_samples=monitoring.drift.min_samples,
        )
        store = prediction_log.store
        services.append(
            DriftRefresher(
                state,
                DriftGauges(state.metrics.registry),
                lambda number: open_drift_monitor(
                    registry,
                    f"{name}:{number}",
                    store,
                    window_size=monitoring.window_size,
                    thresholds=thresholds,
                ),
                monitoring.drift_refresh_seconds,
            )
        )
    return services


def _prepare(model: ServedModel) -> ServedModel:
    """Give a loaded version the fast one-row path and, for its batches, the compiled trees.

    Micro-batches of events go through the batch path: LightGBM trees compiled to C answer
    them bit for bit as LightGBM does, several times faster (``shipyard predict`` uses the
    same kernel); without a C compiler LightGBM's own predict stays.
    """
    from shipyard.runtime.compiled import compile_scorer

    accelerate(model.predictor)
    compile_scorer(getattr(model.predictor, "scorer", None))
    return model


def _build_state(
    registry: Registry,
    reference: str,
    settings: ServingConfig,
    monitoring: MonitoringConfig,
) -> tuple[ServingState, float]:
    """Load the primary (and canary) version into serving slots; return them and the share."""
    unknown = settings.unknown_fields
    model = load_served_model(registry, reference, unknown)
    task = task_for_manifest(model.manifest)
    if "predict" not in task.capabilities.protocols:
        raise ConfigError(
            f"The {task.name} task answers {', '.join(task.capabilities.protocols)} requests, "
            "not records; 'shipyard stream' scores tasks that serve 'predict'."
        )
    name, _, pinned = parse_reference(reference)
    managed = pinned is None and settings.poll_seconds > 0 and settings.canary is None
    canary = None
    if settings.canary is not None:
        canary = load_served_model(registry, settings.canary, unknown)
    elif managed:
        number = _canary_version(registry, name)
        if number is not None and number != model.version:
            canary = load_served_model(registry, f"{name}:{number}", unknown)
    if canary is not None and canary.name != model.name:
        raise ConfigError(f"The canary must be a version of '{model.name}', got '{canary.name}'.")
    for served in (model, canary):
        if served is not None:
            _prepare(served)
    share = monitoring.canary.share if managed else settings.canary_share
    # The stream makes its own micro-batches: no serving batcher on top.
    slots = settings.model_copy(update={"batching": "off"})
    state = ServingState(model, slots, ServingMetrics(), canary=canary, canary_share=share)
    return state, share


async def serve_stream(
    registry: Registry,
    reference: str,
    stream: StreamConfig,
    settings: ServingConfig | None = None,
    monitoring: MonitoringConfig | None = None,
    *,
    on_ready: Callable[[StreamConsumer], None] | None = None,
    handle_signals: bool = True,
) -> StreamSummary:
    """Consume ``stream`` with the version ``reference`` resolves to, until stopped.

    Parameters
    ----------
    registry
        Where the model (and its prediction log) live.
    reference
        ``NAME`` or ``NAME@ALIAS`` (followed: hot swap when it moves), or ``NAME:VERSION``.
    stream
        Broker, subjects, batch size and wait, events in flight.
    settings
        Serving settings that apply to a stream too: prediction logging, unknown fields,
        alias polling, canary.
    monitoring
        Log durability, drift refresh, canary share.
    on_ready
        Called with the consumer once it is connected (``consumer.stop()`` ends the run).
    handle_signals
        Stop on SIGTERM and SIGINT (the command does; an embedding program may not).

    Raises
    ------
    ConfigError
        When a setting is missing or wrong, or the task does not answer records.
    BrokerError
        When the broker cannot be reached.
    """
    settings = settings or ServingConfig()
    monitoring = monitoring or MonitoringConfig()
    state, share = _build_state(registry, reference, settings, monitoring)
    prediction_log = _prediction_log(registry, settings, monitoring)
    context = ServingContext(state, settings, state.metrics, prediction_log)
    services = _services(registry, reference, state, settings, monitoring, share, prediction_log)
    metrics_port = None
    server = None
    try:
        broker = await open_broker(stream, state.primary.model.name)
        consumer = StreamConsumer(
            broker, StreamScorer(context), stream, StreamMetrics(state.metrics.registry)
        )
        if stream.metrics_port is not None:
            from prometheus_client import start_http_server

            server, _ = start_http_server(stream.metrics_port, registry=state.metrics.registry)
            metrics_port = consumer.metrics_port = int(server.server_port)
        for service in services:
            service.start()
        loop = asyncio.get_running_loop()
        if handle_signals:
            for number in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(number, consumer.stop)
        log_event(
            logger,
            "stream started",
            event="stream_start",
            model=state.primary.model.name,
            version=state.primary.model.version,
            source=stream.source,
            subject=stream.subject,
            to=stream.to,
            metrics_port=metrics_port,
        )
        if on_ready is not None:
            on_ready(consumer)
        try:
            await consumer.run()
        finally:
            if handle_signals:
                for number in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(number)
            await broker.close()
    finally:
        for service in reversed(services):
            service.stop()
        if server is not None:
            server.shutdown()
            server.server_close()
        if prediction_log is not None:
            prediction_log.close()
            prediction_log.store.close()
    log_event(
        logger,
        "stream stopped",
        event="stream_stop",
        answered=consumer.answered,
        dead_letters=consumer.dead_letters,
    )
    return StreamSummary(consumer.answered, consumer.dead_letters, metrics_port)


def run_stream(
    registry: Registry,
    reference: str,
    stream: StreamConfig,
    settings: ServingConfig | None = None,
    monitoring: MonitoringConfig | None = None,
) -> StreamSummary:
    """Run :func:`serve_stream` on a new event loop until SIGTERM or SIGINT."""
    import logging.config

    logging.config.dictConfig(log_config())
    return asyncio.run(serve_stream(registry, reference, stream, settings, monitoring))
