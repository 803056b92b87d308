"""``POST /v1/models/{name}/feedback``: true labels for served predictions, stored durably.

The body is one ``{"request_id": ..., "label": ...}`` object or a list of them; the request id
is the one a prediction answer carried. The answer (200) comes only after the labels are
committed to the database, so an acknowledged feedback survives a crash of the server.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shipyard.errors import DataError
from shipyard.runtime.validate import number_range_problem
from shipyard.serving.context import JSONResponse, RequestError, ServingContext

if TYPE_CHECKING:
    from shipyard.monitoring.log import PredictionLogger

__all__ = ["feedback_routes", "parse_feedback", "store_feedback"]


def parse_feedback(payload: Any) -> list[tuple[str, Any]]:
    """Return ``(request id, label)`` pairs from a feedback body.

    Raises
    ------
    RequestError
        422 naming the malformed item.
    """
    items = [payload] if isinstance(payload, dict) else payload
    if not isinstance(items, list) or not items:
        raise RequestError(
            422,
            "validation_error",
            'Send {"request_id": ID, "label": LABEL} or a non-empty list of them.',
        )
    pairs = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or "request_id" not in item or "label" not in item:
            raise RequestError(
                422,
                "validation_error",
                f"Feedback item {index} must be an object with 'request_id' and 'label'.",
            )
        problem = _item_problem(item["request_id"], item["label"])
        if problem is not None:
            raise RequestError(422, "validation_error", f"Feedback item {index}: {problem}.")
        pairs.append((item["request_id"], item["label"]))
    return pairs


def _item_problem(request_id: Any, label: Any) -> str | None:
    """Say what is wrong with one item's request id or label, or return ``None``."""
    if not isinstance(request_id, str):
        return (
            "field 'request_id' expected the text a prediction answer carried, "
            f"got {type(request_id).__name__}"
        )
    problem = _number_problem(label)
    return None if problem is None else f"field 'label' {problem}"


def _number_problem(value: Any) -> str | None:
    """Find a NaN or a number past float64 anywhere in a label (recommenders send objects)."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return next((found for item in value if (found := _number_problem(item))), None)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and math.isnan(value):
        return "expected a true label, got NaN"
    return number_range_problem(value)


async def store_feedback(log: PredictionLogger, name: str, pairs: list[tuple[str, Any]]) -> int:
    """Commit labels off the event loop; return how many were stored.

    Raises
    ------
    RequestError
        404 when a request id is unknown for the model (nothing is stored then).
    """

    def store() -> int:
        if not log.durable:  # durable: an acknowledged prediction is already committed
            log.flush()  # a label may follow its prediction faster than the log writes it
        return log.store.add_feedback(name, pairs)

    try:
        return await run_in_threadpool(store)
    except DataError as error:
        # 404: the request is well formed, the prediction it names is not there.
        raise RequestError(404, "unknown_request_id", str(error)) from None


def feedback_routes(context: ServingContext) -> list[Route]:
    """Return the feedback route (only when the server logs its predictions)."""
    if context.prediction_log is None:
        return []
    log = context.prediction_log

    async def feedback(request: Request) -> Response:
        name = request.path_params["name"]
        context.check_name(name)
        pairs = parse_feedback(await context.read_json(request))
        context.check_count(pairs)
        stored = await store_feedback(log, name, pairs)
        return JSONResponse({"model": name, "stored": stored})

    return [Route("/v1/models/{name}/feedback", feedback, methods=["POST"])]
