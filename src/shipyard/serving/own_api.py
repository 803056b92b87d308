"""The own JSON API: ``/v1/models/{name}/predict`` (one record or a list) and metadata."""

from __future__ import annotations

import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shipyard.serving.context import JSONResponse, RequestError, ServingContext

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


def log_answers(
    context: ServingContext,
    model: Any,
    records: list[Any],
    answers: list[dict[str, Any]],
    seconds: float,
) -> None:
    """Give each answer a ``request_id`` and queue it for the prediction log (never blocks).

    The row comes from :meth:`ServedModel.log_record`, which masks the personal fields.
    """
    assert context.prediction_log is not None
    latency_ms = 1000.0 * seconds / len(records)
    for record, answer in zip(records, answers, strict=True):
        answer["request_id"] = uuid.uuid4().hex
        output = {key: value for key, value in answer.items() if key != "request_id"}
        context.prediction_log.log(
            model.log_record(answer["request_id"], record, output, latency_ms)
        )


def log_failure(context: ServingContext, model: Any, error: str) -> None:
    """Queue a request the model failed to answer: the live error rate counts these."""
    from shipyard.monitoring.log import PredictionFailure

    if context.prediction_log is not None:
        context.prediction_log.log(PredictionFailure(model.name, model.version, error))


def own_routes(context: ServingContext) -> list[Route]:
    """Return the routes of the own JSON API."""

    async def predict(request: Request) -> Response:
        started = time.perf_counter()
        context.check_name(request.path_params["name"])
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
        slot = context.state.choose()
        try:
            scored = await context.score(records, slot)
        except RequestError as error:
            if error.status >= 500:  # the model failed, not the client
                log_failure(context, slot.model, error.error)
            raise
        except Exception as error:
            log_failure(context, slot.model, error.__class__.__name__)
            raise
        head = {"model": slot.model.name, "version": slot.model.version}
        background = context.shadow_task(records, scored)
        answers = [
            slot.path.answer(row, scored.group(position))
            for position, row in enumerate(scored.outputs)
        ]
        # Some predictors add to each answer (a text model its top tokens).
        extras = getattr(slot.model.predictor, "answer_extras", None)
        if extras is not None:
            for record, answer in zip(records, answers, strict=True):
                answer.update(extras(record, answer))
        if context.prediction_log is not None:
            log_answers(context, slot.model, records, answers, time.perf_counter() - started)
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
