"""Recommendation endpoints: top-k items for a user and similar items, over plain arrays.

``GET /v1/models/{name}/recommend?user=ID&k=10`` and ``GET /v1/models/{name}/similar?item=ID&k=10``
answer from a :class:`~shipyard.runtime.recommend.RecommenderScorer`. The routes are built by
:func:`recommendation_routes`, so another app can mount them; :func:`create_recommendation_app`
wraps them with the usual metadata and health routes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shipyard.errors import DataError
from shipyard.runtime.recommend import RecommenderScorer, UnknownItemError
from shipyard.serving.app import JSONResponse, ServedModel

__all__ = ["create_recommendation_app", "recommendation_routes"]

logger = logging.getLogger("shipyard.serving")
Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]


def _error(status: int, error: str, message: str) -> JSONResponse:
    return JSONResponse({"error": error, "message": message}, status_code=status)


def _k(request: Request, default: int) -> int:
    text = request.query_params.get("k")
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise DataError(f"k must be an integer; got {text!r}.") from None


def recommendation_routes(model: ServedModel) -> list[Route]:
    """Build the ``recommend`` and ``similar`` routes of one served recommender."""
    scorer = model.predictor
    if not isinstance(scorer, RecommenderScorer):
        raise TypeError(f"Model '{model.name}' is not a recommender; it cannot serve /recommend.")
    default_k = int(model.manifest.get("recommendation", {}).get("k", 10))

    def guarded(handler: Callable[[Request], dict[str, Any]]) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            name = request.path_params["name"]
            if name != model.name:
                return _error(
                    404,
                    "model_not_found",
                    f"This server serves model '{model.name}', not '{name}'.",
                )
            try:
                answer = handler(request)
            except UnknownItemError as error:
                return _error(404, "item_not_found", str(error))
            except DataError as error:
                return _error(422, "validation_error", str(error))
            return JSONResponse({"model": model.name, "version": model.version, **answer})

        return endpoint

    def required(request: Request, field: str) -> str:
        value = request.query_params.get(field)
        if value is None or value == "":
            raise DataError(f"The query parameter '{field}' is required, e.g. ?{field}=ID&k=10.")
        return value

    def recommend(request: Request) -> dict[str, Any]:
        return scorer.recommend(_parse_id(required(request, "user")), _k(request, default_k))

    def similar(request: Request) -> dict[str, Any]:
        return scorer.similar(_parse_id(required(request, "item")), _k(request, default_k))

    return [
        Route("/v1/models/{name}/recommend", guarded(recommend), methods=["GET"]),
        Route("/v1/models/{name}/similar", guarded(similar), methods=["GET"]),
    ]


def _parse_id(text: str) -> Any:
    """Ids are echoed as integers when they look like integers (X-Wines ids are)."""
    return int(text) if text.lstrip("-").isdigit() else text


def create_recommendation_app(
    model: ServedModel, verify_key: Callable[[str | None], bool] | None = None
) -> Starlette:
    """Build the ASGI app serving one recommender version.

    ``verify_key`` checks API keys as the tabular server does; ``None`` serves without them.
    """
    manifest = model.manifest
    metadata = {
        "name": model.name,
        "version": model.version,
        "task": "recommendation",
        "model_family": manifest.get("model", {}).get("family"),
        "metrics": manifest.get("metrics", {}).get("test", {}),
        "recommendation": manifest.get("recommendation", {}),
    }

    async def model_metadata(request: Request) -> Response:
        if request.path_params["name"] != model.name:
            return _error(
                404,
                "model_not_found",
                f"This server serves model '{model.name}', not '{request.path_params['name']}'.",
            )
        return JSONResponse(metadata)

    async def models(request: Request) -> Response:
        return JSONResponse({"models": [{"name": model.name, "version": model.version}]})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> Response:
        return JSONResponse({"status": "ready", "model": model.name, "version": model.version})

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        return _error(error.status_code, "http_error", str(error.detail))

    async def server_error(request: Request, error: Exception) -> Response:
        logger.exception("unhandled error on %s", request.url.path)
        return _error(
            500,
            "internal_error",
            "The server failed to answer this request; the error was logged.",
        )

    routes = [
        *recommendation_routes(model),
        Route("/v1/models/{name}", model_metadata, methods=["GET"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
    ]
    from starlette.middleware import Middleware

    from shipyard.serving.guard import Guard
    from shipyard.serving.metrics import ServingMetrics

    return Starlette(
        routes=routes,
        middleware=[Middleware(Guard, metrics=ServingMetrics(), verify=verify_key)],
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
