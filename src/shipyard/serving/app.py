"""The ASGI application: contract-validated predictions with no pandas or scikit-learn.

Each request is decoded with orjson, validated record by record against the compiled contract,
preprocessed by the compiled spec and scored by the model's own runtime. Every bad request gets
a 4xx whose message names the field; unexpected failures get a 500 without internals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shipyard.runtime.predictor import Predictor
from shipyard.runtime.validate import RecordValidationError
from shipyard.serving.openapi import openapi_document

__all__ = ["JSONResponse", "ServedModel", "create_app"]

logger = logging.getLogger("shipyard.serving")


class JSONResponse(Response):
    """A JSON response encoded with orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Encode with orjson (numpy scalars and arrays included)."""
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


@dataclass(frozen=True)
class ServedModel:
    """A verified model version ready to serve."""

    name: str
    version: int
    predictor: Predictor
    manifest: dict[str, Any]


class _BodyTooLarge(Exception):
    pass


def _error(status: int, error: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": error, "message": message, **extra}, status_code=status)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    model: ServedModel, *, max_body_bytes: int = 1_048_576, max_records: int = 10_000
) -> Starlette:
    """Build the ASGI app serving one model version.

    Parameters
    ----------
    model
        The verified model to serve.
    max_body_bytes
        Larger request bodies get 413.
    max_records
        Requests with more records get 413.
    """
    predictor = model.predictor
    manifest = model.manifest
    document = openapi_document(
        model.name, model.version, predictor.task, predictor.contract, predictor.classes
    )
    metadata = {
        "name": model.name,
        "version": model.version,
        "task": predictor.task,
        "classes": predictor.classes,
        "target": manifest.get("target"),
        "model_family": manifest.get("model", {}).get("family"),
        "metrics": manifest.get("metrics", {}).get("test", {}),
        "contract": predictor.contract.model_dump(mode="json", exclude_none=True),
    }

    def check_name(request: Request) -> JSONResponse | None:
        name = request.path_params["name"]
        if name != model.name:
            return _error(
                404, "model_not_found", f"This server serves model '{model.name}', not '{name}'."
            )
        return None

    async def predict(request: Request) -> Response:
        if (problem := check_name(request)) is not None:
            return problem
        try:
            body = await _read_body(request, max_body_bytes)
        except _BodyTooLarge:
            return _error(
                413,
                "body_too_large",
                f"The request body exceeds {max_body_bytes} bytes; send fewer "
                "records per request.",
            )
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            return _error(400, "invalid_json", f"The request body is not valid JSON: {error}")
        single = isinstance(payload, dict)
        records = [payload] if single else payload
        if not isinstance(records, list) or not records:
            return _error(
                422,
                "validation_error",
                "The body must be a JSON object (one record) "
                "or a non-empty JSON array of objects (a batch).",
            )
        if len(records) > max_records:
            return _error(
                413,
                "too_many_records",
                f"{len(records)} records exceed the limit of "
                f"{max_records} per request; split the batch.",
            )
        try:
            answers = predictor.predict_records(records)
        except RecordValidationError as error:
            return _error(422, "validation_error", str(error), violations=error.violations)
        head = {"model": model.name, "version": model.version}
        if single:
            return JSONResponse({**head, **answers[0]})
        return JSONResponse({**head, "predictions": answers})

    async def model_metadata(request: Request) -> Response:
        if (problem := check_name(request)) is not None:
            return problem
        return JSONResponse(metadata)

    async def models(request: Request) -> Response:
        return JSONResponse({"models": [{"name": model.name, "version": model.version}]})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> Response:
        return JSONResponse({"status": "ready", "model": model.name, "version": model.version})

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

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
        Route("/v1/models/{name}/predict", predict, methods=["POST"]),
        Route("/v1/models/{name}", model_metadata, methods=["GET"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    from shipyard.serving.explain_routes import explain_routes

    routes += explain_routes(model, max_body_bytes=max_body_bytes, max_records=max_records)
    return Starlette(
        routes=routes, exception_handlers={HTTPException: http_error, Exception: server_error}
    )
