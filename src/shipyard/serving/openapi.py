"""The OpenAPI document of a served model, generated from its data contract."""

from __future__ import annotations

from typing import Any

from shipyard.data.contract import ColumnContract, Contract

__all__ = ["openapi_document", "record_schema"]

_JSON_TYPES = {
    "number": "number",
    "integer": "integer",
    "string": "string",
    "boolean": "boolean",
    "text": "string",
}


def _column_schema(column: ColumnContract) -> dict[str, Any]:
    kind = _JSON_TYPES[column.type]
    schema: dict[str, Any] = {"type": [kind, "null"] if column.nullable else kind}
    if column.categories is not None:
        schema["enum"] = [*column.categories, *([None] if column.nullable else [])]
    if column.min is not None:
        schema["minimum"] = column.min
    if column.max is not None:
        schema["maximum"] = column.max
    return schema


def record_schema(contract: Contract) -> dict[str, Any]:
    """JSON Schema of one request record."""
    return {
        "type": "object",
        "properties": {column.name: _column_schema(column) for column in contract.columns},
        "required": [column.name for column in contract.columns if not column.nullable],
    }


def openapi_document(
    name: str, version: int, task: str, contract: Contract, classes: list[Any]
) -> dict[str, Any]:
    """Return an OpenAPI 3.1 document for the server's routes."""
    answer: dict[str, Any] = {
        "type": "object",
        "properties": {
            "prediction": {"type": "number"} if task == "regression" else {"enum": classes}
        },
    }
    if task != "regression":
        answer["properties"]["probabilities"] = {
            "type": "object",
            "additionalProperties": {"type": "number"},
        }
    error = {
        "type": "object",
        "properties": {
            "error": {"type": "string"},
            "message": {"type": "string"},
            "violations": {"type": "array"},
        },
    }

    def response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    errors = {
        "400": response("The body is not JSON", {"$ref": "#/components/schemas/Error"}),
        "413": response("The body is too large", {"$ref": "#/components/schemas/Error"}),
        "422": response(
            "A record breaks the contract; the message names the field",
            {"$ref": "#/components/schemas/Error"},
        ),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"shipyard: {name}",
            "version": str(version),
            "description": f"{task} model {name}:{version}, served by shipyard.",
        },
        "paths": {
            f"/v1/models/{name}/predict": {
                "post": {
                    "summary": "Predict one record or a list of records",
                    "operationId": "predict",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        {"$ref": "#/components/schemas/Record"},
                                        {
                                            "type": "array",
                                            "items": {"$ref": "#/components/schemas/Record"},
                                            "minItems": 1,
                                        },
                                    ]
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": response(
                            "Predictions",
                            {
                                "oneOf": [
                                    {"$ref": "#/components/schemas/Answer"},
                                    {
                                        "type": "object",
                                        "properties": {
                                            "predictions": {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/Answer"},
                                            }
                                        },
                                    },
                                ]
                            },
                        ),
                        **errors,
                    },
                }
            },
            f"/v1/models/{name}": {
                "get": {
                    "summary": "Model metadata: version, task, classes, metrics, contract",
                    "operationId": "model_metadata",
                    "responses": {"200": response("Metadata", {"type": "object"})},
                }
            },
            "/health": {
                "get": {
                    "summary": "Liveness",
                    "operationId": "health",
                    "responses": {"200": response("Alive", {"type": "object"})},
                }
            },
            "/ready": {
                "get": {
                    "summary": "Readiness: the model is loaded",
                    "operationId": "ready",
                    "responses": {"200": response("Ready", {"type": "object"})},
                }
            },
        },
        "components": {
            "schemas": {"Record": record_schema(contract), "Answer": answer, "Error": error}
        },
    }
