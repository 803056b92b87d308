"""Prometheus metrics of one server: requests, latency, errors, batch sizes, model, predictions.

Each app gets its own :class:`prometheus_client.CollectorRegistry`, so several apps in one
process (tests, hot swaps) never collide. Label children are resolved once and cached: looking
them up costs more than the observation itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "ServingMetrics", "route_label"]

_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 10_000)
_SCORE_BUCKETS = tuple(step / 10 for step in range(1, 10))


def route_label(path: str) -> str:
    """Map a request path to a bounded route label (no model names or versions in it)."""
    if path.startswith("/v1/models"):
        return "/v1/predict" if path.endswith("/predict") else "/v1/models"
    if path.startswith("/v2/models"):
        return "/v2/infer" if path.endswith("/infer") else "/v2/models"
    if path.startswith("/v2"):
        return "/v2"
    if path in ("/invocations", "/health", "/ready", "/metrics", "/openapi.json", "/ping"):
        return path
    return "other"


class ServingMetrics:
    """The server's metrics and the text Prometheus scrapes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "shipyard_requests",
            "HTTP requests by route and status code.",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "shipyard_request_seconds",
            "Time from the request's start to the end of its answer.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "shipyard_errors",
            "Answers with an error, by error code.",
            ["error"],
            registry=self.registry,
        )
        # Apart from the errors above, so that dashboards and alerts can tell requests the
        # client must fix from failures of the model (which alone feed the live error rate).
        self.client_errors = Counter(
            "shipyard_client_errors",
            "Requests refused as the client's error (4xx), by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "shipyard_batch_size",
            "Records scored together in one call of the model.",
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.model_info = Gauge(
            "shipyard_model_info",
            "The served model version (1 for the versions serving now, by role).",
            ["name", "version", "role"],
            registry=self.registry,
        )
        self.predictions = Counter(
            "shipyard_predictions",
            "Predicted labels (classification) or predictions (regression), by model version.",
            ["version", "label"],
            registry=self.registry,
        )
        self.scores = Histogram(
            "shipyard_prediction_score",
            "Probability of the last class (binary) or of the predicted class (multiclass).",
            ["version"],
            buckets=_SCORE_BUCKETS,
            registry=self.registry,
        )
        self.shadow = Counter(
            "shipyard_shadow_answers",
            "Shadow answers, by whether they agreed with the served answer.",
            ["agreed"],
            registry=self.registry,
        )
        self.swaps = Counter(
            "shipyard_model_swaps", "Hot swaps to a new version.", registry=self.registry
        )
        # Values scored under the model's unknown-categories policy (as_rare or as_missing);
        # under 'error' such requests are refused and counted as client errors instead.
        self.unknown_categories = Counter(
            "shipyard_unknown_categories",
            "Category values training never saw, scored under the model's policy, by column.",
            ["model", "version", "column"],
            registry=self.registry,
        )
        self._children: dict[tuple[Any, ...], Any] = {}

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        key = ("request", route, status)
        pair = self._children.get(key)
        if pair is None:
            pair = (self.requests.labels(route, str(status)), self.latency.labels(route))
            self._children[key] = pair
        pair[0].inc()
        pair[1].observe(seconds)

    def observe_error(self, error: str, status: int = 500) -> None:
        """Count one error answer by its code; a 4xx also counts as a client error."""
        self.errors.labels(error).inc()
        if 400 <= status < 500:
            self.client_errors.labels(error).inc()

    def observe_predictions(self, version: int, labels: list[str], scores: list[float]) -> None:
        """Count predicted labels and record their scores."""
        histogram = self._children.get(("score", version))
        if histogram is None:
            histogram = self.scores.labels(str(version))
            self._children[("score", version)] = histogram
        for label, score in zip(labels, scores, strict=True):
            counter = self._children.get(("label", version, label))
            if counter is None:
                counter = self.predictions.labels(str(version), label)
                self._children[("label", version, label)] = counter
            counter.inc()
            histogram.observe(score)

    def unknown_categories_observer(
        self, name: str, version: int
    ) -> Callable[[Mapping[str, int]], None]:
        """Return a function that counts one version's unknown categories per column."""

        def observe(counts: Mapping[str, int]) -> None:
            for column, count in counts.items():
                self.unknown_categories.labels(name, str(version), column).inc(count)

        return observe

    def set_model(self, name: str, version: int, role: str) -> None:
        """Mark ``name:version`` as the one serving in ``role`` (primary, canary, shadow)."""
        self.clear_role(role)
        self.model_info.labels(name, str(version), role).set(1)

    def clear_role(self, role: str) -> None:
        """Forget the version serving in ``role`` (a canary that was removed)."""
        for labels in list(self.model_info._metrics):
            if labels[2] == role:
                self.model_info.remove(*labels)

    def render(self) -> bytes:
        """Return the exposition text."""
        return generate_latest(self.registry)
