"""The ASGI application: contract-validated predictions with no pandas or scikit-learn.

Each request is decoded with orjson, validated record by record against the compiled contract,
preprocessed by the compiled spec and scored by the model's own runtime (LightGBM's one-row C
API for single records). Every bad request gets a 4xx whose message names the field; unexpected
failures get a 500 without internals.

The routes come from small modules, one per protocol (:data:`ROUTE_BUILDERS`); a new protocol
or feature adds a function ``(context) -> list[Route]`` there or through ``extra_routes``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from shipyard.config import ServingConfig
from shipyard.monitoring.privacy import LogMask
from shipyard.runtime.fast import accelerate
from shipyard.runtime.predictor import Predictor
from shipyard.serving.context import (
    JSONResponse,
    RequestError,
    ServingContext,
    error_response,
)
from shipyard.serving.explain_routes import explain_routes
from shipyard.serving.feedback_routes import feedback_routes
from shipyard.serving.guard import Guard
from shipyard.serving.inference_protocol import protocol_routes
from shipyard.serving.metrics import CONTENT_TYPE_LATEST, ServingMetrics
from shipyard.serving.mlflow_api import mlflow_routes
from shipyard.serving.openapi import DocumentedModel, openapi_document
from shipyard.serving.own_api import own_routes
from shipyard.serving.rate_limit import limiter_for
from shipyard.serving.state import AliasWatcher, ServingState

if TYPE_CHECKING:
    from shipyard.monitoring.log import PredictionLogger, PredictionRecord

__all__ = [
    "ROUTE_BUILDERS",
    "BackgroundService",
    "JSONResponse",
    "RouteBuilder",
    "ServedModel",
    "create_app",
    "mounted_operations",
]

logger = logging.getLogger("shipyard.serving")

RouteBuilder = Callable[[ServingContext], Sequence[BaseRoute]]


class BackgroundService(Protocol):
    """Work that runs beside the app while it is up (a drift refresher, for one)."""

    def start(self) -> None:
        """Start (on a thread of its own)."""

    def stop(self) -> None:
        """Stop and wait."""


@dataclass(frozen=True)
class ServedModel:
    """A verified model version ready to serve."""

    name: str
    version: int
    predictor: Predictor
    manifest: dict[str, Any]
    # What the prediction log keeps of the personal fields (the manifest's personal_data).
    log_mask: LogMask = field(default_factory=lambda: LogMask(frozenset(), "keep"))

    def log_record(
        self, request_id: str, inputs: Any, output: dict[str, Any], latency_ms: float
    ) -> PredictionRecord:
        """Return the prediction log's row for one answer, personal fields masked.

        Every route that logs builds its rows here, so the version's policy applies to all.
        """
        from shipyard.monitoring.log import PredictionRecord

        return PredictionRecord(
            request_id, self.name, self.version, self.log_mask.apply(inputs), output, latency_ms
        )


def mounted_operations(
    routes: Sequence[BaseRoute], name: str, version: int
) -> set[tuple[str, str]]:
    """Return the ``(path, method)`` pairs of ``routes``, the name and version filled in."""
    found: set[tuple[str, str]] = set()
    for route in routes:
        if isinstance(route, Route) and route.methods:
            path = route.path.format(name=name, version=version)
            found.update((path, method.lower()) for method in route.methods if method != "HEAD")
    return found


def _service_routes(context: ServingContext) -> list[BaseRoute]:
    async def openapi(request: Request) -> Response:
        model = context.state.primary.model
        predictor = model.predictor
        documented = DocumentedModel(
            name=model.name,
            version=model.version,
            task=predictor.task,
            # Under a policy that scores unknown categories, any text is accepted there.
            contract=predictor.unknown.accepted(predictor.contract)
            if hasattr(predictor, "unknown")
            else predictor.contract,
            classes=predictor.classes,
            auth=context.auth,
            max_records=context.settings.max_records,
            unknown_fields=context.settings.unknown_fields,
            # Predictors whose answer is not a label or a value describe it themselves.
            answer=getattr(predictor, "answer_schema", None),
        )
        mounted = mounted_operations(request.app.routes, model.name, model.version)
        return JSONResponse(openapi_document(documented, mounted))

    async def metrics(request: Request) -> Response:
        return Response(context.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return [
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]


ROUTE_BUILDERS: tuple[RouteBuilder, ...] = (
    own_routes,
    protocol_routes,
    mlflow_routes,
    explain_routes,
    feedback_routes,
    _service_routes,
)


def create_app(
    model: ServedModel,
    *,
    settings: ServingConfig | None = None,
    verify_key: Callable[[str | None], bool] | None = None,
    canary: ServedModel | None = None,
    shadow: ServedModel | None = None,
    watcher: Callable[[ServingState], AliasWatcher] | None = None,
    extra_routes: Sequence[RouteBuilder] = (),
    prediction_log: PredictionLogger | None = None,
    max_body_bytes: int | None = None,
    max_records: int | None = None,
    canary_share: float | None = None,
    services: Sequence[Callable[[ServingContext], BackgroundService]] = (),
    own_auth_mounts: Sequence[Mount] = (),
) -> Starlette:
    """Build the ASGI app serving one model version (and optional canary and shadow).

    Parameters
    ----------
    model
        The verified model to serve.
    settings
        Limits, timeouts, batching, CORS, canary share; defaults to ``ServingConfig()``.
    verify_key
        Checks API keys; ``None`` serves without authentication.
    canary, shadow
        Versions for canary routing and shadow scoring.
    watcher
        Builds the hot-swap watcher for the app's state; it runs while the app is up.
    extra_routes
        More route builders, added after the built-in ones.
    prediction_log
        Where served predictions are logged (and feedback accepted); ``None`` logs nothing.
    max_body_bytes, max_records
        Shortcuts that override the same settings.
    canary_share
        Share of requests for the canary; defaults to ``settings.canary_share``.
    services
        Build background services from the app's context; they run while the app is up.
    own_auth_mounts
        Apps mounted beside the API that check their own credentials (the web UI, which
        logs people in with a session cookie): the API-key check skips their paths.
    """
    settings = settings or ServingConfig()
    overrides = {
        key: value
        for key, value in (("max_body_bytes", max_body_bytes), ("max_records", max_records))
        if value is not None
    }
    if overrides:
        settings = settings.model_copy(update=overrides)
    for served in (model, canary, shadow):
        if served is not None:
            accelerate(served.predictor)
    metrics = ServingMetrics()
    state = ServingState(
        model, settings, metrics, canary=canary, shadow=shadow, canary_share=canary_share
    )
    context = ServingContext(state, settings, metrics, prediction_log, auth=verify_key is not None)
    routes: list[BaseRoute] = []
    for build in (*ROUTE_BUILDERS, *extra_routes):
        routes.extend(build(context))
    routes.extend(own_auth_mounts)

    async def request_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestError)
        metrics.observe_error(error.error, error.status)
        return error_response(error.status, error.error, error.message, **error.extra)

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        metrics.observe_error("http_error", error.status_code)
        answer = error_response(error.status_code, "http_error", str(error.detail))
        answer.headers.update(error.headers or {})  # 405 answers carry Allow
        return answer

    async def server_error(request: Request, error: Exception) -> Response:
        metrics.observe_error("internal_error")
        logger.exception("unhandled error on %s", request.url.path)
        return error_response(
            500,
            "internal_error",
            "The server failed to answer this request; the error was logged.",
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        running = [build(context) for build in services]
        if watcher is not None:
            running.append(watcher(state))
        for service in running:
            service.start()
        try:
            yield
        finally:
            for service in reversed(running):
                service.stop()
            if prediction_log is not None:
                prediction_log.close()  # write what is queued before the process ends

    middleware = []
    if settings.cors_origins:
        # Outside the key check, so that browsers' preflight requests and 401s carry CORS headers.
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=[
                    "Authorization",
                    "X-API-Key",
                    "Content-Type",
                    "Inference-Header-Content-Length",
                ],
            )
        )
    middleware.append(
        Middleware(
            Guard,
            metrics=metrics,
            verify=verify_key,
            access_log=settings.access_log,
            limiter=limiter_for(settings.rate_limit),
            own_auth=tuple(mount.path for mount in own_auth_mounts),
        )
    )
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={
            RequestError: request_error,
            HTTPException: http_error,
            Exception: server_error,
        },
        lifespan=lifespan,
    )
    app.state.serving = context
    return app
