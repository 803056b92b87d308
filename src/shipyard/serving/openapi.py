"""The OpenAPI document of a served model: every route the app mounts, generated from the contract.

Paths are concrete (``/v1/models/adult/predict``): a server serves one model. Each operation
lists the statuses it can answer; the body schemas come from :mod:`.openapi_schemas`. The
document is filtered to the routes the app really mounts (the feedback route exists only with
a prediction log), and a test compares the two so that neither drifts from the other.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from shipyard.data.contract import Contract
from shipyard.serving.openapi_schemas import (
    answer_schema,
    infer_request_schema,
    infer_response_schema,
    mlflow_request_schema,
    record_schema,
    v2_output_names,
)

__all__ = ["DocumentedModel", "openapi_document", "record_schema"]

_ERROR = {"$ref": "#/components/schemas/Error"}
_JSON = "application/json"
_ANY_OBJECT: dict[str, Any] = {"type": "object"}

_ERROR_TEXT = {
    "400": "The body is not JSON, or breaks the protocol; the message says how",
    "401": "A valid API key is missing (send 'Authorization: Bearer KEY' or 'X-API-Key: KEY')",
    "404": "No such model name, version or request id; the message names the right one",
    "408": "The body did not arrive in time",
    "413": "The body or the number of records is over the limit",
    "415": "The body is not application/json",
    "422": "A record breaks the contract; the message names the field",
    "429": "Too many requests for this API key (or address); retry after Retry-After seconds",
    "501": "This model family has no per-prediction explanation",
    "503": "The model did not answer in time; retry later",
}

_BODY_ERRORS = ("400", "404", "408", "413", "415", "422", "503")


@dataclass(frozen=True)
class DocumentedModel:
    """What the document describes: the served model and the server's settings."""

    name: str
    version: int
    task: str
    contract: Contract
    classes: list[Any]
    auth: bool = True
    max_records: int = 10_000
    unknown_fields: str = "reject"
    answer: dict[str, Any] | None = None

    @property
    def output_names(self) -> list[str]:
        """The V2 outputs of the model."""
        return v2_output_names(self.classes)


def _json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": schema}}}


def _error_responses(statuses: Collection[str], public: bool) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status in statuses:
        responses[status] = _json_response(_ERROR_TEXT[status], _ERROR)
    if not public:
        responses["401"] = {
            **_json_response(_ERROR_TEXT["401"], _ERROR),
            "headers": {
                "WWW-Authenticate": {"required": True, "schema": {"type": "string"}},
            },
        }
        responses["429"] = {
            **_json_response(_ERROR_TEXT["429"], _ERROR),
            "headers": {
                "Retry-After": {
                    "required": True,
                    "description": "Whole seconds until the next request is allowed.",
                    "schema": {"type": "integer", "minimum": 1},
                }
            },
        }
    return responses


def _operation(
    operation_id: str,
    summary: str,
    ok: dict[str, Any],
    *,
    errors: Collection[str] = (),
    body: dict[str, Any] | None = None,
    public: bool = False,
    parameters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "responses": {"200": ok, **_error_responses(errors, public)},
    }
    if body is not None:
        item["requestBody"] = {"required": True, "content": {_JSON: {"schema": body}}}
    if parameters:
        item["parameters"] = parameters
    if public:
        item["security"] = []
    return item


def _own_paths(model: DocumentedModel) -> dict[str, dict[str, Any]]:
    base = f"/v1/models/{model.name}"
    records = {
        "oneOf": [
            {"$ref": "#/components/schemas/Record"},
            {
                "type": "array",
                "items": {"$ref": "#/components/schemas/Record"},
                "minItems": 1,
                "maxItems": model.max_records,
            },
        ]
    }
    head = {"model": {"type": "string"}, "version": {"type": "integer"}}
    # The two answers differ by their required key, so exactly one branch matches.
    predicted = {
        "oneOf": [
            {"allOf": [{"$ref": "#/components/schemas/Answer"}, {"properties": head}]},
            {
                "type": "object",
                "required": ["predictions"],
                "properties": {
                    **head,
                    "predictions": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/Answer"},
                    },
                },
                "not": {"required": ["prediction"]},
            },
        ]
    }
    explained = {
        "oneOf": [
            {"type": "object", "required": ["prediction"], "properties": head},
            {
                "type": "object",
                "required": ["explanations"],
                "properties": {**head, "explanations": {"type": "array", "items": _ANY_OBJECT}},
                "not": {"required": ["prediction"]},
            },
        ]
    }
    feedback_item = {
        "type": "object",
        "required": ["request_id", "label"],
        "properties": {"request_id": {"type": "string"}, "label": {}},
    }
    card_format = {
        "name": "format",
        "in": "query",
        "required": False,
        "schema": {"enum": ["markdown", "html", "json"], "default": "markdown"},
    }
    card_ok = {
        "description": "The model card",
        "content": {
            "text/markdown": {"schema": {"type": "string"}},
            "text/html": {"schema": {"type": "string"}},
            _JSON: {
                "schema": {
                    "type": "object",
                    "required": ["title", "markdown"],
                    "properties": {"title": {"type": "string"}, "markdown": {"type": "string"}},
                }
            },
        },
    }
    return {
        f"{base}/predict": {
            "post": _operation(
                "predict",
                "Predict one record (an object) or a batch (an array)",
                _json_response("Predictions", predicted),
                errors=_BODY_ERRORS,
                body=records,
            )
        },
        f"{base}/explain": {
            "post": _operation(
                "explain",
                "Explain one record's prediction or a batch's: each column's contribution",
                _json_response("Explanations", explained),
                errors=(*_BODY_ERRORS, "501"),
                body=records,
            )
        },
        f"{base}/feedback": {
            "post": _operation(
                "feedback",
                "True labels for served predictions, by request id; stored before the answer",
                _json_response(
                    "Stored",
                    {
                        "type": "object",
                        "required": ["model", "stored"],
                        "properties": {"model": {"type": "string"}, "stored": {"type": "integer"}},
                    },
                ),
                errors=("400", "404", "408", "413", "415", "422"),
                body={
                    "oneOf": [
                        feedback_item,
                        {
                            "type": "array",
                            "items": feedback_item,
                            "minItems": 1,
                            "maxItems": model.max_records,
                        },
                    ]
                },
            )
        },
        f"{base}/card": {
            "get": _operation(
                "card",
                "The model card (markdown, html or json)",
                card_ok,
                errors=("400",),
                parameters=[card_format],
            )
        },
        base: {
            "get": _operation(
                "model_metadata",
                "Model metadata: version, task, classes, metrics, contract",
                _json_response("Metadata", _ANY_OBJECT),
            )
        },
        "/v1/models": {
            "get": _operation("models", "The served model", _json_response("Models", _ANY_OBJECT))
        },
    }


def _protocol_paths(model: DocumentedModel) -> dict[str, dict[str, Any]]:
    def get(operation_id: str, summary: str, public: bool = False) -> dict[str, Any]:
        return {
            "get": _operation(
                operation_id, summary, _json_response(summary, _ANY_OBJECT), public=public
            )
        }

    infer = {
        "post": _operation(
            "v2_infer",
            "Open Inference Protocol: inference (one tensor per column)",
            _json_response("Outputs", {"$ref": "#/components/schemas/InferResponse"}),
            errors=_BODY_ERRORS,
            body={"$ref": "#/components/schemas/InferRequest"},
        )
    }
    base = f"/v2/models/{model.name}"
    pinned = f"{base}/versions/{model.version}"
    paths: dict[str, dict[str, Any]] = {
        "/v2": get("v2_server", "Open Inference Protocol: server metadata"),
        "/v2/health/live": get("v2_live", "Open Inference Protocol: liveness", public=True),
        "/v2/health/ready": get("v2_ready", "Open Inference Protocol: readiness", public=True),
        "/invocations": {
            "post": _operation(
                "invocations",
                "MLflow scoring protocol: predictions for a data frame",
                _json_response(
                    "Predictions",
                    {
                        "type": "object",
                        "required": ["predictions"],
                        "properties": {"predictions": {"type": "array"}},
                    },
                ),
                errors=_BODY_ERRORS,
                body={"$ref": "#/components/schemas/MlflowRequest"},
            )
        },
        "/ping": get("ping", "MLflow scoring protocol: liveness", public=True),
    }
    for prefix, suffix in ((base, ""), (pinned, "_version")):
        paths[prefix] = get(f"v2_metadata{suffix}", "Open Inference Protocol: model metadata")
        paths[f"{prefix}/ready"] = get(
            f"v2_model_ready{suffix}", "Open Inference Protocol: model ready"
        )
        paths[f"{prefix}/infer"] = {"post": {**infer["post"], "operationId": f"v2_infer{suffix}"}}
    return paths


def _service_paths() -> dict[str, dict[str, Any]]:
    metrics = {
        "description": "Prometheus metrics",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
    return {
        "/health": {
            "get": _operation(
                "health", "Liveness", _json_response("Alive", _ANY_OBJECT), public=True
            )
        },
        "/ready": {
            "get": _operation(
                "ready",
                "Readiness: the model is loaded",
                _json_response("Ready", _ANY_OBJECT),
                public=True,
            )
        },
        "/metrics": {"get": _operation("metrics", "Prometheus metrics", metrics, public=True)},
        "/openapi.json": {
            "get": _operation(
                "openapi", "This document", _json_response("OpenAPI 3.1", _ANY_OBJECT), public=True
            )
        },
    }


def _components(model: DocumentedModel) -> dict[str, Any]:
    return {
        "Record": record_schema(model.contract, model.unknown_fields),
        "Answer": model.answer or answer_schema(model.task, model.classes),
        "Error": {
            "type": "object",
            "required": ["error", "message"],
            "properties": {
                "error": {"type": "string"},
                "message": {"type": "string"},
                "violations": {"type": "array"},
            },
        },
        "InferRequest": infer_request_schema(model.contract, model.output_names),
        "InferResponse": infer_response_schema(model.output_names),
        "MlflowRequest": mlflow_request_schema(model.contract, model.max_records),
    }


def openapi_document(
    model: DocumentedModel, mounted: Collection[tuple[str, str]] | None = None
) -> dict[str, Any]:
    """Return an OpenAPI 3.1 document for the server's routes.

    ``mounted`` holds the app's ``(path, method)`` pairs (lower-case methods); operations the
    app does not mount are left out. ``None`` keeps every operation.
    """
    paths = {**_own_paths(model), **_protocol_paths(model), **_service_paths()}
    if mounted is not None:
        wanted = set(mounted)
        paths = {
            path: {method: item for method, item in methods.items() if (path, method) in wanted}
            for path, methods in paths.items()
        }
        paths = {path: methods for path, methods in paths.items() if methods}
    if not model.auth:
        for methods in paths.values():
            for item in methods.values():
                item["responses"].pop("401", None)
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": f"shipyard: {model.name}",
            "version": str(model.version),
            "description": f"{model.task} model {model.name}:{model.version}, served by shipyard.",
        },
        "paths": paths,
        "components": {"schemas": _components(model)},
    }
    if model.auth:
        document["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
        document["security"] = [{"bearer": []}, {"apiKey": []}]
    return document
