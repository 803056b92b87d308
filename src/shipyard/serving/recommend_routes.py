"""Recommendation endpoints: top-k items for a user and similar items, over plain arrays.

``GET /v1/models/{name}/recommend?user=ID&k=10`` and ``GET /v1/models/{name}/similar?item=ID&k=10``
answer from a :class:`~shipyard.runtime.recommend.RecommenderScorer`. The routes are built by
:func:`recommendation_routes`, so another app can mount them; :func:`create_recommendation_app`
wraps them with the usual metadata, card and health routes.

With a prediction log, every served list gets a ``request_id`` and is logged (the user, ``k``,
the listed item ids and whether it was a cold start), and ``POST /v1/models/{name}/feedback``
takes the clicks and purchases that followed (see
:mod:`shipyard.tasks.recommendation.feedback`), committed before the answer, as for any model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from shipyard.config import ServingConfig
from shipyard.errors import DataError, PredictionLogError
from shipyard.runtime.recommend import RecommenderScorer, UnknownItemError
from shipyard.serving.app import JSONResponse, ServedModel
from shipyard.serving.context import RequestError, new_request_id, read_json
from shipyard.serving.feedback_routes import parse_feedback, store_feedback
from shipyard.tasks.recommendation.feedback import check_label

if TYPE_CHECKING:
    from shipyard.monitoring.log import PredictionLogger

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


def recommendation_routes(
    model: ServedModel,
    prediction_log: PredictionLogger | None = None,
    settings: ServingConfig | None = None,
) -> list[Route]:
    """Build the ``recommend`` and ``similar`` routes (and ``feedback`` with a log)."""
    scorer = model.predictor
    if not isinstance(scorer, RecommenderScorer):
        raise TypeError(f"Model '{model.name}' is not a recommender; it cannot serve /recommend.")
    default_k = int(model.manifest.get("recommendation", {}).get("k", 10))
    settings = settings or ServingConfig()

    def guarded(handler: Callable[[Request], dict[str, Any]]) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            name = request.path_params["name"]
            if name != model.name:
                return _error(
                    404,
                    "model_not_found",
                    f"This server serves model '{model.name}', not '{name}'.",
                )
            started = time.perf_counter()
            try:
                answer = handler(request)
            except UnknownItemError as error:
                return _error(404, "item_not_found", str(error))
            except DataError as error:
                return _error(422, "validation_error", str(error))
            if prediction_log is not None and "user" in answer:
                try:
                    await _log_list(prediction_log, model, answer, time.perf_counter() - started)
                except PredictionLogError as error:
                    return _error(503, "log_unavailable", str(error))
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

    routes = [
        Route("/v1/models/{name}/recommend", guarded(recommend), methods=["GET"]),
        Route("/v1/models/{name}/similar", guarded(similar), methods=["GET"]),
    ]
    if prediction_log is not None:
        routes.append(_feedback_route(model, prediction_log, settings))
    return routes


async def _log_list(
    log: PredictionLogger, model: ServedModel, answer: dict[str, Any], seconds: float
) -> None:
    """Give a served list a ``request_id`` and log it (durably: return after the commit)."""
    answer["request_id"] = new_request_id()
    items = [entry["item"] for entry in answer["items"]]
    await log.record(
        [
            model.log_record(
                answer["request_id"],
                {"user": answer["user"], "k": len(items)},
                {"items": items, "cold_start": answer["cold_start"]},
                1000.0 * seconds,
            )
        ]
    )


def _feedback_route(model: ServedModel, log: PredictionLogger, settings: ServingConfig) -> Route:
    """``POST /v1/models/{name}/feedback`` for clicks and purchases on served lists."""

    async def feedback(request: Request) -> Response:
        name = request.path_params["name"]
        if name != model.name:
            return _error(
                404, "model_not_found", f"This server serves model '{model.name}', not '{name}'."
            )
        try:
            pairs = parse_feedback(await read_json(request, settings))
            if len(pairs) > settings.max_records:
                return _error(
                    413,
                    "too_many_records",
                    f"{len(pairs)} labels exceed the limit of {settings.max_records} per "
                    "request; split the batch.",
                )
            for index, (_, label) in enumerate(pairs):
                try:
                    check_label(label)
                except DataError as error:
                    return _error(422, "validation_error", f"Feedback item {index}: {error}")
            stored = await store_feedback(log, name, pairs)
        except RequestError as error:
            return _error(error.status, error.error, error.message)
        return JSONResponse({"model": name, "stored": stored})

    return Route("/v1/models/{name}/feedback", feedback, methods=["POST"])


def _parse_id(text: str) -> Any:
    """Ids are echoed as integers when they look like integers (X-Wines ids are)."""
    return int(text) if text.lstrip("-").isdigit() else text


def create_recommendation_app(
    model: ServedModel,
    verify_key: Callable[[str | None], bool] | None = None,
    prediction_log: PredictionLogger | None = None,
    settings: ServingConfig | None = None,
) -> Starlette:
    """Build the ASGI app serving one recommender version.

    ``verify_key`` checks API keys as the tabular server does; ``None`` serves without them.
    ``prediction_log`` logs served lists and turns on the feedback route; the app writes
    what is queued when it shuts down.
    """
    manifest = model.manifest
    metadata = {
        "name": model.name,
        "version": model.version,
        "task": manifest["task"],
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

    async def card(request: Request) -> Response:
        from shipyard.evaluation.card import build_card
        from shipyard.tasks.base import task_for_manifest

        if request.path_params["name"] != model.name:
            return _error(
                404,
                "model_not_found",
                f"This server serves model '{model.name}', not '{request.path_params['name']}'.",
            )
        kind = request.query_params.get("format", "markdown")
        if kind not in ("markdown", "html", "json"):
            return _error(
                400, "invalid_format", f"format must be markdown, html or json, not '{kind}'."
            )
        document = build_card(
            model.manifest, sections=task_for_manifest(model.manifest).document_sections()
        )
        if kind == "html":
            return HTMLResponse(document.to_html())
        if kind == "json":
            return JSONResponse({"title": document.title, "markdown": document.to_markdown()})
        return PlainTextResponse(document.to_markdown(), media_type="text/markdown")

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
        *recommendation_routes(model, prediction_log, settings),
        Route("/v1/models/{name}/card", card, methods=["GET"]),
        Route("/v1/models/{name}", model_metadata, methods=["GET"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
    ]
    from starlette.middleware import Middleware

    from shipyard.serving.guard import Guard
    from shipyard.serving.metrics import ServingMetrics
    from shipyard.serving.rate_limit import limiter_for

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if prediction_log is not None:
                prediction_log.close()  # write what is queued before the process ends

    return Starlette(
        routes=routes,
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
