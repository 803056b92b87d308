"""Notes endpoints: ``POST /v1/models/{name}/ask`` answers questions with citations.

The body is one question, ``{"question": "How do I ...?", "k": 5}``, or a batch,
``{"questions": ["...", "..."]}``; the answer carries the answer text, whether it answered or
refused, its citations (file, heading, character span), the retrieved chunks with their
scores, and a ``request_id`` per question when answers are logged. ``POST
/v1/models/{name}/feedback`` takes ``{"request_id": ..., "label": {"helpful": true, "source":
"file.md"}}``. Embedding the question (and calling a generator) runs on a worker thread, so the
event loop keeps accepting requests meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shipyard.config import ServingConfig
from shipyard.errors import ConfigError, DataError, PredictionLogError
from shipyard.serving.app import JSONResponse, ServedModel
from shipyard.serving.context import RequestError, new_request_id, read_json
from shipyard.serving.feedback_routes import parse_feedback, store_feedback
from shipyard.serving.single_model import create_single_model_app, error_response, wrong_model

if TYPE_CHECKING:
    from shipyard.monitoring.log import PredictionLogger

__all__ = ["ask_routes", "create_ask_app"]

logger = logging.getLogger("shipyard.serving")


def _questions(body: Any, limit: int) -> tuple[list[Any], bool, Any]:
    """Return the questions of a body, whether it was a batch, and ``k``."""
    if not isinstance(body, dict):
        raise DataError(
            'Send a JSON object: {"question": "How do I ...?"} or {"questions": [...]}.'
        )
    unknown = sorted(set(body) - {"question", "questions", "k"})
    if unknown:
        raise DataError(
            f"Unknown field(s) {', '.join(repr(name) for name in unknown)}; send 'question' "
            "(or 'questions') and optionally 'k'."
        )
    if ("question" in body) == ("questions" in body):
        raise DataError("Send exactly one of 'question' (one text) or 'questions' (a list).")
    if "questions" in body:
        questions = body["questions"]
        if not isinstance(questions, list) or not questions:
            raise DataError("'questions' must be a non-empty list of strings.")
        if len(questions) > limit:
            raise DataError(f"{len(questions)} questions exceed the limit of {limit}; split them.")
        return questions, True, body.get("k")
    return [body["question"]], False, body.get("k")


def _logged_output(answer: dict[str, Any]) -> dict[str, Any]:
    """Return what the log keeps of an answer: everything but the chunks' texts."""
    chunks = [
        {key: value for key, value in chunk.items() if key != "text"} for chunk in answer["chunks"]
    ]
    return {
        **{key: value for key, value in answer.items() if key not in ("chunks", "question")},
        "chunks": chunks,
    }


def ask_routes(
    model: ServedModel,
    prediction_log: PredictionLogger | None = None,
    settings: ServingConfig | None = None,
) -> list[Route]:
    """Build the ``ask`` route (and ``feedback`` with a log)."""
    predictor: Any = model.predictor  # a NotesPredictor (shipyard.tasks.notes.predictor)
    settings = settings or ServingConfig()

    async def ask(request: Request) -> Response:
        wrong = wrong_model(model, request)
        if wrong is not None:
            return wrong
        started = time.perf_counter()
        try:
            body = await read_json(request, settings)
            questions, batch, k = _questions(body, settings.max_records)
            answers = await run_in_threadpool(predictor.ask_many, questions, k)
        except RequestError as error:
            return error_response(error.status, error.error, error.message)
        except DataError as error:
            return error_response(422, "validation_error", str(error))
        except ConfigError as error:  # the generator did not answer
            return error_response(502, "generator_unavailable", str(error))
        if prediction_log is not None:
            seconds = (time.perf_counter() - started) / len(answers)
            records = []
            for answer in answers:
                answer["request_id"] = new_request_id()
                records.append(
                    model.log_record(
                        answer["request_id"],
                        {"question": answer["question"]},
                        _logged_output(answer),
                        1000.0 * seconds,
                    )
                )
            try:
                await prediction_log.record(records)
            except PredictionLogError as error:
                return error_response(503, "log_unavailable", str(error))
        head = {"model": model.name, "version": model.version}
        return JSONResponse({**head, "answers": answers} if batch else {**head, **answers[0]})

    routes = [Route("/v1/models/{name}/ask", ask, methods=["POST"])]
    if prediction_log is not None:
        routes.append(_feedback_route(model, prediction_log, settings))
    return routes


def _feedback_route(model: ServedModel, log: PredictionLogger, settings: ServingConfig) -> Route:
    """``POST /v1/models/{name}/feedback``: helpful or not, and the right source."""
    from shipyard.tasks.notes.monitoring import check_feedback

    async def feedback(request: Request) -> Response:
        wrong = wrong_model(model, request)
        if wrong is not None:
            return wrong
        try:
            pairs = parse_feedback(await read_json(request, settings))
            for index, (_, label) in enumerate(pairs):
                try:
                    check_feedback(label)
                except DataError as error:
                    return error_response(
                        422, "validation_error", f"Feedback item {index}: {error}"
                    )
            stored = await store_feedback(log, model.name, pairs)
        except RequestError as error:
            return error_response(error.status, error.error, error.message)
        return JSONResponse({"model": model.name, "stored": stored})

    return Route("/v1/models/{name}/feedback", feedback, methods=["POST"])


def create_ask_app(
    model: ServedModel,
    verify_key: Callable[[str | None], bool] | None = None,
    prediction_log: PredictionLogger | None = None,
    settings: ServingConfig | None = None,
) -> Starlette:
    """Build the ASGI app serving one notes version (metadata, card and health included)."""
    manifest = model.manifest
    metadata = {
        "name": model.name,
        "version": model.version,
        "task": manifest["task"],
        "metrics": manifest.get("metrics", {}).get("test", {}),
        "qa": {
            key: value
            for key, value in manifest.get("qa", {}).items()
            if key not in ("question_centroid", "generator")
        },
    }
    return create_single_model_app(
        model,
        ask_routes(model, prediction_log, settings),
        metadata,
        verify_key=verify_key,
        prediction_log=prediction_log,
        settings=settings,
    )
