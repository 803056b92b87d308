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
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shipyard.config import ServingConfig
from shipyard.errors import DataError, PredictionLogError
from shipyard.runtime.recommend import RecommenderScorer, UnknownItemError
from shipyard.serving.app import JSONResponse, ServedModel
from shipyard.serving.context import RequestError, new_request_id, read_json
from shipyard.serving.feedback_routes import parse_feedback, store_feedback
from shipyard.serving.single_model import (
    create_single_model_app,
    error_response,
    wrong_model,
)
from shipyard.tasks.recommendation.feedback import check_label

if TYPE_CHECKING:
    from shipyard.monitoring.log import PredictionLogger

__all__ = ["create_recommendation_app", "recommendation_routes"]

logger = logging.getLogger("shipyard.serving")
Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]


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
            wrong = wrong_model(model, request)
            if wrong is not None:
                return wrong
            started = time.perf_counter()
            try:
                answer = handler(request)
            except UnknownItemError as error:
                return error_response(404, "item_not_found", str(error))
            except DataError as error:
                return error_response(422, "validation_error", str(error))
            if prediction_log is not None and "user" in answer:
                try:
                    await _log_list(prediction_log, model, answer, time.perf_counter() - started)
                except PredictionLogError as error:
                    return error_response(503, "log_unavailable", str(error))
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
        wrong = wrong_model(model, request)
        if wrong is not None:
            return wrong
        try:
            pairs = parse_feedback(await read_json(request, settings))
            if len(pairs) > settings.max_records:
                return error_response(
                    413,
                    "too_many_records",
                    f"{len(pairs)} labels exceed the limit of {settings.max_records} per "
                    "request; split the batch.",
                )
            for index, (_, label) in enumerate(pairs):
                try:
                    check_label(label)
                except DataError as error:
                    return error_response(
                        422, "validation_error", f"Feedback item {index}: {error}"
                    )
            stored = await store_feedback(log, model.name, pairs)
        except RequestError as error:
            return error_response(error.status, error.error, error.message)
        return JSONResponse({"model": model.name, "stored": stored})

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
    return create_single_model_app(
        model,
        recommendation_routes(model, prediction_log, settings),
        metadata,
        verify_key=verify_key,
        prediction_log=prediction_log,
        settings=settings,
    )
