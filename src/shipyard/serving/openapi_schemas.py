"""JSON Schemas of request and response bodies, generated from the served model's contract.

Each schema says exactly what the server accepts: a body valid under it is answered (2xx), a
body that breaks it is refused (4xx). A schemathesis run with every check
(``benchmarks/serving/fuzz.py``) holds the two to that. Where a protocol allows a shape that
JSON Schema cannot pin down (V2 tensors whose ``shape`` must match their ``data``, MLflow
column lists whose rows must match them), the schema shows the one-row form and the
description says the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shipyard.data.contract import ColumnContract, Contract
from shipyard.runtime.validate import FLOAT64_MAX

__all__ = [
    "V2_DATATYPES",
    "V2_ID_MAX_LENGTH",
    "answer_schema",
    "column_schema",
    "infer_request_schema",
    "infer_response_schema",
    "mlflow_request_schema",
    "record_schema",
]

_NUMBERS = ("FP64", "FP32", "FP16")
_INTEGERS = ("INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32", "UINT16", "UINT8")

# The Open Inference Protocol datatypes a contract column accepts; the first is the one the
# model metadata advertises.
# A V2 request's ``id`` keys its rows in the prediction log (64 characters, with a row suffix).
V2_ID_MAX_LENGTH = 48
V2_DATATYPES: dict[str, tuple[str, ...]] = {
    "number": (*_NUMBERS, *_INTEGERS),
    "integer": _INTEGERS,
    "string": ("BYTES",),
    "text": ("BYTES",),
    "boolean": ("BOOL",),
}


def column_schema(column: ColumnContract) -> dict[str, Any]:
    """JSON Schema of one field's value, as the record validator checks it."""
    if column.type in ("string", "text"):
        schema: dict[str, Any] = {"type": "string"}
        if column.categories is not None:
            schema = {"enum": list(column.categories)}
    elif column.type == "boolean":
        schema = {"anyOf": [{"type": "boolean"}, {"enum": [0, 1]}]}  # 0 and 1 count as booleans
    else:
        schema = {
            "type": "integer" if column.type == "integer" else "number",
            # Numbers past float64's range are refused even without a contract bound.
            "minimum": column.min if column.min is not None else -FLOAT64_MAX,
            "maximum": column.max if column.max is not None else FLOAT64_MAX,
        }
    if column.nullable:
        return {"anyOf": [schema, {"type": "null"}]}
    return schema


def record_schema(contract: Contract, unknown_fields: str = "reject") -> dict[str, Any]:
    """JSON Schema of one request record."""
    properties = {column.name: column_schema(column) for column in contract.columns}
    # The target and ignored columns are tolerated in a record (a row of the training file).
    for name in (*(c.name for c in contract.target_columns), *contract.ignored):
        properties.setdefault(name, {})
    return {
        "type": "object",
        "properties": properties,
        "required": [column.name for column in contract.columns if not column.nullable],
        "additionalProperties": unknown_fields != "reject",
    }


def v2_output_names(classes: Sequence[Any]) -> list[str]:
    """Return a model's Open Inference Protocol outputs: label and probabilities, or prediction.

    A model with classes answers a label and probabilities; one without, a number per row.
    """
    return ["label", "probabilities"] if classes else ["prediction"]


def answer_schema(task: str, classes: list[Any]) -> dict[str, Any]:
    """JSON Schema of one prediction (``/predict``'s answer for one record)."""
    properties: dict[str, Any] = {
        "prediction": {"type": "number"} if task == "regression" else {"enum": classes},
        "request_id": {"type": "string", "description": "Send it back with feedback."},
    }
    if task != "regression":
        properties["probabilities"] = {
            "type": "object",
            "additionalProperties": {"type": "number"},
        }
    return {"type": "object", "required": ["prediction"], "properties": properties}


def _tensor_schema(column: ColumnContract) -> dict[str, Any]:
    one_row = {"type": "integer", "const": 1}
    return {
        "type": "object",
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"const": column.name},
            "shape": {
                "type": "array",
                "prefixItems": [one_row, one_row],
                "items": False,
                "minItems": 1,
            },
            "datatype": {"enum": list(V2_DATATYPES[column.type])},
            "data": {
                "type": "array",
                "items": {
                    "anyOf": [
                        column_schema(column),
                        {
                            "type": "array",
                            "items": column_schema(column),
                            "minItems": 1,
                            "maxItems": 1,
                        },
                    ]
                },
                "minItems": 1,
                "maxItems": 1,
            },
            "parameters": {
                "type": "object",
                "not": {"required": ["binary_data_size"]},
                "description": "binary_data_size needs the Inference-Header-Content-Length "
                "header (the binary tensor extension).",
            },
        },
    }


def infer_request_schema(contract: Contract, output_names: list[str]) -> dict[str, Any]:
    """JSON Schema of a V2 inference request, shown for one row (shape ``[1]``)."""
    columns = list(contract.columns)
    # Trailing nullable columns may be left out; the rest hold their place in the list.
    needed = max(
        (index + 1 for index, column in enumerate(columns) if not column.nullable), default=0
    )
    return {
        "type": "object",
        "required": ["inputs"],
        "description": "One tensor per contract column, in any order; N rows send shape [N] "
        "(or [N, 1]) and N values per tensor. The schema shows one row, every column in "
        "contract order.",
        "properties": {
            "id": {"type": "string", "minLength": 1, "maxLength": V2_ID_MAX_LENGTH},
            "parameters": {"type": "object"},
            "inputs": {
                "type": "array",
                "prefixItems": [_tensor_schema(column) for column in columns],
                "items": False,
                "minItems": max(needed, 1),
            },
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"enum": output_names},
                        "parameters": {"type": "object"},
                    },
                },
            },
        },
    }


def infer_response_schema(output_names: list[str]) -> dict[str, Any]:
    """JSON Schema of a V2 inference answer."""
    return {
        "type": "object",
        "required": ["model_name", "model_version", "outputs"],
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "datatype", "shape", "data"],
                    "properties": {
                        "name": {"enum": output_names},
                        "datatype": {"enum": ["BYTES", "FP64"]},
                        "shape": {"type": "array", "items": {"type": "integer"}},
                        "data": {"type": "array"},
                    },
                },
            },
        },
    }


def mlflow_request_schema(contract: Contract, max_records: int) -> dict[str, Any]:
    """JSON Schema of an ``/invocations`` body: exactly one of MLflow's four formats."""
    columns = list(contract.columns)
    records = {
        "type": "array",
        "items": {"$ref": "#/components/schemas/Record"},
        "minItems": 1,
        "maxItems": max_records,
    }
    one_of = {
        "records": records,
        "record": {"$ref": "#/components/schemas/Record"},
    }
    split = {
        "type": "object",
        "required": ["columns", "data"],
        "description": "Shown with every contract column, in contract order; any order works.",
        "properties": {
            "columns": {"const": [column.name for column in columns]},
            "data": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_records,
                "items": {
                    "type": "array",
                    "prefixItems": [column_schema(column) for column in columns],
                    "items": False,
                    "minItems": len(columns),
                },
            },
            "index": {"type": "array"},
        },
    }
    tensors = {"oneOf": [one_of["records"], one_of["record"]]}
    formats = {
        "dataframe_split": split,
        "dataframe_records": records,
        "inputs": tensors,
        "instances": tensors,
    }
    return {
        "description": "Exactly one of dataframe_split, dataframe_records, inputs, instances "
        "(MLflow's scoring formats). 'inputs' and 'instances' also take a mapping of column "
        "to a list of values, all of one length.",
        "oneOf": [
            {
                "type": "object",
                "required": [key],
                "properties": {key: schema},
                # One format per body: the other format keys must be absent.
                "propertyNames": {"not": {"enum": [other for other in formats if other != key]}},
            }
            for key, schema in formats.items()
        ],
    }
