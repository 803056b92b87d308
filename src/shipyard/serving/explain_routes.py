"""Routes for explanations and the model card of the served model.

``POST /v1/models/{name}/explain`` takes the same body as ``/predict`` (one record, or an array
of records) and answers each prediction with the contribution of every input column to the
model's raw output. ``GET /v1/models/{name}/card`` returns the model card, generated from the
served bundle's manifest (``?format=markdown``, the default, ``html`` or ``json``).

The module is self-contained so that the app only has to add :func:`explain_routes` to its
route list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from shipyard.evaluation.explain import UnsupportedModelError, explain_records
from shipyard.runtime.validate import RecordTooLargeError, RecordValidationError
from shipyard.serving.context import RequestError

if TYPE_CHECKING:
    from shipyard.serving.context import ServingContext

__all__ = ["explain_routes"]


def _json(content: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
    )


def _error(status: int, error: str, message: str, **extra: Any) -> Response:
    return _json({"error": error, "message": message, **extra}, status)


async def _image_explanation(render: Any, records: list[Any]) -> Response:
    """Answer one image record with its saliency overlay (PNG)."""
    from starlette.concurrency import run_in_threadpool

    if len(records) != 1:
        raise RequestError(
            422,
            "validation_error",
            f"/explain answers one image at a time with a PNG; got {len(records)} records.",
        )
    try:
        png = await run_in_threadpool(render, records[0])
    except RecordTooLargeError as error:
        raise RequestError(
            413, "value_too_large", str(error), violations=error.violations
        ) from None
    except RecordValidationError as error:
        raise RequestError(
            422, "validation_error", str(error), violations=error.violations
        ) from None
    return Response(png, media_type="image/png")


def explain_routes(context: ServingContext) -> list[Route]:
    """Build the explain and card routes; they follow the served model through hot swaps.

    Body limits, JSON decoding and name checks are the server's own (``ServingContext``), so
    these routes answer bad requests exactly as ``/predict`` does.
    """

    def wrong_name(request: Request) -> Response | None:
        try:
            context.check_name(request.path_params["name"])
        except RequestError as error:
            return _error(error.status, error.error, error.message)
        return None

    async def explain(request: Request) -> Response:
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
        context.check_count(records)
        model = context.state.primary.model
        render = getattr(model.predictor, "explain_image", None)
        if render is not None:  # a saliency map over the image, as a PNG
            return await _image_explanation(render, records)
        try:
            answers = explain_records(model.predictor, records)
        except RecordValidationError as error:
            # Raised, not returned, so that the app counts it as a client error.
            raise RequestError(
                422, "validation_error", str(error), violations=error.violations
            ) from None
        except UnsupportedModelError as error:
            return _error(501, "explanation_unsupported", str(error))
        head = {"model": model.name, "version": model.version}
        if single:
            return _json({**head, **answers[0]})
        return _json({**head, "explanations": answers})

    async def card(request: Request) -> Response:
        from shipyard.evaluation.card import build_card
        from shipyard.tasks.base import task_for_manifest

        if (problem := wrong_name(request)) is not None:
            return problem
        kind = request.query_params.get("format", "markdown")
        if kind not in ("markdown", "html", "json"):
            return _error(
                400, "invalid_format", f"format must be markdown, html or json, not '{kind}'."
            )
        model = context.state.primary.model
        document = build_card(
            model.manifest,
            model.predictor.contract.model_dump(mode="json", exclude_none=True),
            sections=task_for_manifest(model.manifest).document_sections(),
        )
        if kind == "html":
            return HTMLResponse(document.to_html())
        if kind == "json":
            return _json({"title": document.title, "markdown": document.to_markdown()})
        return PlainTextResponse(document.to_markdown(), media_type="text/markdown")

    return [
        Route("/v1/models/{name}/explain", explain, methods=["POST"]),
        Route("/v1/models/{name}/card", card, methods=["GET"]),
    ]
