"""The own JSON API: ``/v1/models/{name}/predict`` (one record or a list) and metadata."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shipyard.serving.context import JSONResponse, RequestError, ServingContext, new_request_id
from shipyard.serving.multipart import is_multipart, records_from_multipart

__all__ = ["own_routes"]


def metadata(context: ServingContext) -> dict[str, Any]:
    """Describe the primary model: version, task, classes, metrics, contract."""
    model = context.state.primary.model
    predictor = model.predictor
    return {
        "name": model.name,
        "version": model.version,
        "task": predictor.task,
        "classes": predictor.classes,
        "target": model.manifest.get("target"),
        "model_family": model.manifest.get("model", {}).get("family"),
        "metrics": model.manifest.get("metrics", {}).get("test", {}),
        "contract": predictor.contract.model_dump(mode="json", exclude_none=True),
    }


def own_routes(context: ServingContext) -> list[Route]:
    """Return the routes of the own JSON API."""

    async def predict(request: Request) -> Response:
        started = time.perf_counter()
        context.check_name(request.path_params["name"])
        content_type = request.headers.get("content-type")
        if is_multipart(content_type):
            # Files uploaded as a form (images): one record per file, as a JSON client sends.
            assert content_type is not None
            uploaded = records_from_multipart(await context.read_body(request), content_type)
            payload: Any = uploaded[0] if len(uploaded) == 1 else uploaded
        else:
            payload = await context.read_json(request)
        single = isinstance(payload, dict)
        records = [payload] if single else payload
        if not isinstance(records, list) or not records:
            raise RequestError(
                422,
                "validation_error",
                "The body must be a JSON object (one record) "
                "or a non-empty JSON array of objects (a batch).",
            )
        scored = await context.score(records)
        slot = scored.slot
        head = {"model": slot.model.name, "version": slot.model.version}
        answers = context.answers(scored, records)
        if context.prediction_log is not None:
            ids = [new_request_id() for _ in records]
            await context.log_answers(scored, records, answers, ids, started)
            for answer, request_id in zip(answers, ids, strict=True):
                answer["request_id"] = request_id
        background = context.shadow_task(records, scored)
        if single:
            return JSONResponse({**head, **answers[0]}, background=background)
        return JSONResponse({**head, "predictions": answers}, background=background)

    async def model_metadata(request: Request) -> Response:
        context.check_name(request.path_params["name"])
        return JSONResponse(metadata(context))

    async def models(request: Request) -> Response:
        model = context.state.primary.model
        return JSONResponse({"models": [{"name": model.name, "version": model.version}]})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> Response:
        model = context.state.primary.model
        return JSONResponse({"status": "ready", "model": model.name, "version": model.version})

    return [
        Route("/v1/models/{name}/predict", predict, methods=["POST"]),
        Route("/v1/models/{name}", model_metadata, methods=["GET"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
    ]
