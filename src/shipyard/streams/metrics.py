"""Prometheus metrics of a stream consumer, beside the serving metrics of the same model.

The consumer scores through the serving path, so ``shipyard_predictions``,
``shipyard_batch_size``, ``shipyard_model_info`` and the drift gauges are the serving ones;
these add what only a stream has: its lag, its throughput and its dead letters.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["StreamMetrics"]

_BATCH_SECONDS = (0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class StreamMetrics:
    """Counters and gauges of one consumer, in ``registry`` (the serving metrics' registry)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "shipyard_stream_events",
            "Events acknowledged, by outcome (answered or dead_letter); their rate is the "
            "throughput.",
            ["outcome"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "shipyard_stream_dead_letters",
            "Events sent to the dead letters, by reason (invalid_json, not_a_record, "
            "validation_error, id_too_long, model_error).",
            ["reason"],
            registry=registry,
        )
        self.retries = Counter(
            "shipyard_stream_retries",
            "Events handed back to the broker because their answer was not published or "
            "logged (they are delivered again).",
            registry=registry,
        )
        self.lag = Gauge(
            "shipyard_stream_lag",
            "Events waiting in the broker that the consumer has not read yet.",
            registry=registry,
        )
        self.in_flight = Gauge(
            "shipyard_stream_in_flight",
            "Events read and not yet acknowledged.",
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "shipyard_stream_batch_seconds",
            "Time from reading a micro-batch to acknowledging it (scored, published, logged).",
            buckets=_BATCH_SECONDS,
            registry=registry,
        )
