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
    document: dict[str, Any] = {
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
            "schemas": {
                "Record": record_schema(contract),
                "Answer": answer,
                "Error": error,
                "InferRequest": _infer_request_schema(),
                "MlflowRequest": _mlflow_request_schema(),
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
    }
    document["paths"].update(_protocol_paths(name, response, errors))
    for path in ("/health", "/ready"):
        document["paths"][path]["get"]["security"] = []
    return document


def _infer_request_schema() -> dict[str, Any]:
    tensor = {
        "type": "object",
        "required": ["name", "shape", "datatype"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
            "datatype": {"type": "string"},
            "data": {"type": "array"},
            "parameters": {"type": "object"},
        },
    }
    return {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "inputs": {"type": "array", "items": tensor},
            "outputs": {"type": "array", "items": {"type": "object"}},
        },
    }


def _mlflow_request_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "Exactly one of dataframe_split, dataframe_records, inputs, instances.",
        "properties": {
            "dataframe_split": {
                "type": "object",
                "properties": {
                    "columns": {"type": "array", "items": {"type": "string"}},
                    "data": {"type": "array", "items": {"type": "array"}},
                },
            },
            "dataframe_records": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/Record"},
            },
            "inputs": {},
            "instances": {},
        },
    }


def _protocol_paths(name: str, response: Any, errors: dict[str, Any]) -> dict[str, Any]:
    def get(summary: str, operation: str, public: bool = False) -> dict[str, Any]:
        item: dict[str, Any] = {
            "summary": summary,
            "operationId": operation,
            "responses": {"200": response(summary, {"type": "object"})},
        }
        if public:
            item["security"] = []
        return {"get": item}

    def post(summary: str, operation: str, schema: str) -> dict[str, Any]:
        return {
            "post": {
                "summary": summary,
                "operationId": operation,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}
                    },
                },
                "responses": {"200": response(summary, {"type": "object"}), **errors},
            }
        }

    return {
        "/v2/health/live": get("Open Inference Protocol: liveness", "v2_live", public=True),
        "/v2/health/ready": get("Open Inference Protocol: readiness", "v2_ready", public=True),
        f"/v2/models/{name}": get("Open Inference Protocol: model metadata", "v2_metadata"),
        f"/v2/models/{name}/ready": get("Open Inference Protocol: model ready", "v2_model_ready"),
        f"/v2/models/{name}/infer": post(
            "Open Inference Protocol: inference (one tensor per column)",
            "v2_infer",
            "InferRequest",
        ),
        "/invocations": post(
            "MLflow scoring protocol: predictions for a data frame", "invocations", "MlflowRequest"
        ),
        "/metrics": get("Prometheus metrics", "metrics", public=True),
    }
