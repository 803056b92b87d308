"""The app of one model version whose protocol has routes of its own (recommend, forecast, ask).

The record protocol (``predict``) shares one app with canary, shadow and hot swap
(:mod:`shipyard.serving.app`). A recommender, a forecaster and a notes index are each served
by an app of their own: the protocol's routes, plus what every shipyard server answers the same
way: the model's metadata and card, the list of models, ``/health`` and ``/ready``, JSON
errors, the API-key guard with its rate limit, and a prediction log written out on shutdown.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from shipyard.config import ServingConfig
from shipyard.serving.app import JSONResponse, ServedModel

if TYPE_CHECKING:
    from shipyard.monitoring.log import PredictionLogger

__all__ = ["create_single_model_app", "error_response", "wrong_model"]

logger = logging.getLogger("shipyard.serving")


def error_response(status: int, error: str, message: str) -> JSONResponse:
    """Return the JSON error every shipyard route answers: ``{"error", "message"}``."""
    return JSONResponse({"error": error, "message": message}, status_code=status)


def wrong_model(model: ServedModel, request: Request) -> JSONResponse | None:
    """Return a 404 when the request's ``{name}`` is not the served model, else ``None``."""
    name = request.path_params["name"]
    if name == model.name:
        return None
    return error_response(
        404, "model_not_found", f"This server serves model '{model.name}', not '{name}'."
    )


def create_single_model_app(
    model: ServedModel,
    routes: Sequence[Route],
    metadata: Mapping[str, Any],
    verify_key: Callable[[str | None], bool] | None = None,
    prediction_log: PredictionLogger | None = None,
    settings: ServingConfig | None = None,
) -> Starlette:
    """Build the ASGI app serving ``model`` through its protocol's ``routes``.

    ``metadata`` is what ``GET /v1/models/{name}`` answers; ``verify_key`` checks API keys
    (``None`` serves without them); ``prediction_log`` is closed, writing what is queued, when
    the app shuts down, and so is the predictor if it has a ``close`` method.
    """
    from starlette.middleware import Middleware

    from shipyard.evaluation.card import build_card
    from shipyard.serving.guard import Guard
    from shipyard.serving.metrics import ServingMetrics
    from shipyard.serving.rate_limit import limiter_for
    from shipyard.tasks.base import task_for_manifest

    document = dict(metadata)

    async def model_metadata(request: Request) -> Response:
        return wrong_model(model, request) or JSONResponse(document)

    async def models(request: Request) -> Response:
        return JSONResponse({"models": [{"name": model.name, "version": model.version}]})

    async def card(request: Request) -> Response:
        wrong = wrong_model(model, request)
        if wrong is not None:
            return wrong
        kind = request.query_params.get("format", "markdown")
        if kind not in ("markdown", "html", "json"):
            return error_response(
                400, "invalid_format", f"format must be markdown, html or json, not '{kind}'."
            )
        card = build_card(
            model.manifest, sections=task_for_manifest(model.manifest).document_sections()
        )
        if kind == "html":
            return HTMLResponse(card.to_html())
        if kind == "json":
            return JSONResponse({"title": card.title, "markdown": card.to_markdown()})
        return PlainTextResponse(card.to_markdown(), media_type="text/markdown")

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> Response:
        return JSONResponse({"status": "ready", "model": model.name, "version": model.version})

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        return error_response(error.status_code, "http_error", str(error.detail))

    async def server_error(request: Request, error: Exception) -> Response:
        logger.exception("unhandled error on %s", request.url.path)
        return error_response(
            500,
            "internal_error",
            "The server failed to answer this request; the error was logged.",
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if prediction_log is not None:
                prediction_log.close()  # write what is queued before the process ends
            close = getattr(model.predictor, "close", None)
            if callable(close):  # a predictor holding connections (the notes index's)
                close()

    return Starlette(
        routes=[
            *routes,
            Route("/v1/models/{name}/card", card, methods=["GET"]),
            Route("/v1/models/{name}", model_metadata, methods=["GET"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/ready", ready, methods=["GET"]),
        ],
        middleware=[
            Middleware(
                Guard,
                metrics=ServingMetrics(),
                verify=verify_key,
                limiter=limiter_for((settings or ServingConfig()).rate_limit),
            )
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )
