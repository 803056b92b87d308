"""The Open Inference Protocol (KServe V2 REST), as Triton, KServe and MLServer speak it.

Each contract column is one input tensor of shape ``[N]`` (or ``[N, 1]``), named after the
column: ``FP64``/``FP32`` for numbers, ``INT64``/``INT32`` for integers, ``BYTES`` for strings,
``BOOL`` for booleans. Tensor data may be JSON (``data``) or appended to the body in the binary
extension (``Inference-Header-Content-Length`` and ``binary_data_size``), which is what
``tritonclient`` sends by default. Outputs are JSON: ``label`` (``BYTES``, ``[N]``) and
``probabilities`` (``FP64``, ``[N, classes]``) for classifiers, ``prediction`` (``FP64``,
``[N]``) for regressors.

When the server logs predictions, each row is logged under the request's ``id`` (one row) or
``id-0``, ``id-1``, ... (a batch), the ids feedback takes; a request without an ``id`` gets
one, returned in the answer's ``id``.
"""

from __future__ import annotations

import struct
import time
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shipyard.serving.context import (
    JSONResponse,
    RequestError,
    ServingContext,
    decode_json,
    new_request_id,
    request_ids,
)

__all__ = ["decode_infer_request", "protocol_routes"]

_NUMPY_TYPES = {
    "BOOL": np.bool_,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}
_CONTRACT_TYPES = {"number": "FP64", "integer": "INT64", "string": "BYTES", "boolean": "BOOL"}
# The log keys a row by its request id (64 characters at most), a batch's with a suffix.
_MAX_ID_LENGTH = 48


def _bad(message: str) -> RequestError:
    return RequestError(400, "bad_request", message)


def _decode_bytes(raw: bytes) -> list[str]:
    values, position = [], 0
    while position < len(raw):
        if position + 4 > len(raw):
            raise _bad("A BYTES tensor's binary data is truncated.")
        (length,) = struct.unpack_from("<I", raw, position)
        position += 4
        values.append(raw[position : position + length].decode("utf-8", "replace"))
        position += length
    return values


def _tensor_values(tensor: dict[str, Any], binary: bytes | None) -> list[Any]:
    datatype = tensor.get("datatype")
    if binary is not None:
        if datatype == "BYTES":
            return _decode_bytes(binary)
        dtype = _NUMPY_TYPES.get(str(datatype))
        if dtype is None:
            raise _bad(f"Input '{tensor.get('name')}' has unknown datatype {datatype!r}.")
        width = np.dtype(dtype).itemsize
        if len(binary) % width:
            raise _bad(f"Input '{tensor.get('name')}' has binary data of a wrong length.")
        values: list[Any] = np.frombuffer(binary, dtype=dtype).tolist()
        return values
    data = tensor.get("data")
    if not isinstance(data, list):
        raise _bad(f"Input '{tensor.get('name')}' needs 'data' (a list) or binary data.")
    flat: list[Any] = []
    for item in data:
        if isinstance(item, list):
            flat.extend(item)
        else:
            flat.append(item)
    return flat


def decode_infer_request(
    body: bytes, header_length: int | None
) -> tuple[dict[str, Any], list[Any]]:
    """Decode an inference request into its JSON header and one record per row.

    Raises
    ------
    RequestError
        400 when the body breaks the protocol, with what is wrong.
    """
    head = body if header_length is None else body[:header_length]
    request = decode_json(head)
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise _bad("An inference request is a JSON object with an 'inputs' list of tensors.")
    position = header_length or 0
    columns: dict[str, list[Any]] = {}
    for tensor in request["inputs"]:
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise _bad("Each input needs a 'name', a 'shape', a 'datatype' and data.")
        shape = tensor.get("shape")
        if not isinstance(shape, list) or not all(isinstance(size, int) for size in shape):
            raise _bad(f"Input '{tensor['name']}' needs a 'shape' (a list of integers).")
        parameters = tensor.get("parameters") or {}
        size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
        binary = None
        if size is not None:
            if header_length is None or not isinstance(size, int) or size < 0:
                raise _bad(
                    f"Input '{tensor['name']}' declares binary data but the request has no "
                    "Inference-Header-Content-Length header."
                )
            binary = body[position : position + size]
            if len(binary) != size:
                raise _bad(f"Input '{tensor['name']}' has less binary data than declared.")
            position += size
        values = _tensor_values(tensor, binary)
        rows = shape[0] if shape else 1
        if len(values) != rows or any(size != 1 for size in shape[1:]):
            raise _bad(
                f"Input '{tensor['name']}' must hold one value per row (shape [N] or [N, 1]); "
                f"got shape {shape} with {len(values)} values."
            )
        columns[tensor["name"]] = values
    if not columns:
        raise _bad("The request has no inputs; send one tensor per model input.")
    lengths = {len(values) for values in columns.values()}
    if len(lengths) != 1:
        raise _bad(f"All inputs need the same number of rows; got {sorted(lengths)}.")
    names = list(columns)
    records = [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    return request, records


def _request_id(inference: dict[str, Any], logged: bool) -> str | None:
    """Return the request's ``id`` (one is made up when predictions are logged).

    Raises
    ------
    RequestError
        400 when ``id`` is not a string, or too long to key the prediction log.
    """
    given = inference.get("id")
    if given is None:
        return new_request_id() if logged else None
    if not isinstance(given, str):
        raise _bad(f"The request's 'id' must be a string; got {type(given).__name__}.")
    if logged and not 0 < len(given) <= _MAX_ID_LENGTH:
        raise _bad(
            f"The request's 'id' must have 1 to {_MAX_ID_LENGTH} characters (it keys the "
            f"prediction log); got {len(given)}."
        )
    return given


def protocol_routes(context: ServingContext) -> list[Route]:
    """Return the Open Inference Protocol routes."""

    def model_metadata_document() -> dict[str, Any]:
        model = context.state.primary.model
        predictor = model.predictor
        inputs = [
            {"name": column.name, "datatype": _CONTRACT_TYPES[column.type], "shape": [-1]}
            for column in predictor.contract.columns
        ]
        if predictor.task == "regression":
            outputs = [{"name": "prediction", "datatype": "FP64", "shape": [-1]}]
        else:
            outputs = [
                {"name": "label", "datatype": "BYTES", "shape": [-1]},
                {
                    "name": "probabilities",
                    "datatype": "FP64",
                    "shape": [-1, len(predictor.classes)],
                },
            ]
        return {
            "name": model.name,
            "versions": [str(model.version)],
            "platform": "shipyard",
            "inputs": inputs,
            "outputs": outputs,
        }

    def check(request: Request) -> None:
        context.check_name(request.path_params["name"])
        version = request.path_params.get("version")
        current = str(context.state.primary.model.version)
        if version is not None and version != current:
            raise RequestError(
                404,
                "model_not_found",
                f"This server serves version {current} of '{context.name}', not {version}.",
            )

    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> Response:
        return JSONResponse({"ready": True})

    async def server_metadata(request: Request) -> Response:
        from shipyard import __version__

        return JSONResponse(
            {"name": "shipyard", "version": __version__, "extensions": ["binary_tensor_data"]}
        )

    async def model_metadata(request: Request) -> Response:
        check(request)
        return JSONResponse(model_metadata_document())

    async def model_ready(request: Request) -> Response:
        check(request)
        return JSONResponse({"name": context.name, "ready": True})

    async def infer(request: Request) -> Response:
        started = time.perf_counter()
        check(request)
        body = await context.read_body(request)
        header = request.headers.get("inference-header-content-length")
        header_length = None
        if header is not None:
            if not header.isdigit() or int(header) > len(body):
                raise _bad("Inference-Header-Content-Length must be the JSON header's size.")
            header_length = int(header)
        inference, records = decode_infer_request(body, header_length)
        request_id = _request_id(inference, context.prediction_log is not None)
        scored = await context.score(records)
        if context.prediction_log is not None and request_id is not None:
            answers = context.answers(scored, records)
            ids = request_ids(request_id, len(records))
            await context.log_answers(scored, records, answers, ids, started)
        slot = scored.slot
        rows = len(records)
        if slot.labels:
            classes = slot.model.predictor.classes
            labels = [
                str(classes[max(range(len(row)), key=row.__getitem__)]) for row in scored.outputs
            ]
            outputs = [
                {"name": "label", "datatype": "BYTES", "shape": [rows], "data": labels},
                {
                    "name": "probabilities",
                    "datatype": "FP64",
                    "shape": [rows, len(classes)],
                    "data": [value for row in scored.outputs for value in row],
                },
            ]
        else:
            outputs = [
                {
                    "name": "prediction",
                    "datatype": "FP64",
                    "shape": [rows],
                    "data": [row[0] for row in scored.outputs],
                }
            ]
        wanted = inference.get("outputs")
        if isinstance(wanted, list) and wanted:
            names = {item.get("name") for item in wanted if isinstance(item, dict)}
            outputs = [output for output in outputs if output["name"] in names]
        answer: dict[str, Any] = {
            "model_name": slot.model.name,
            "model_version": str(slot.model.version),
            "outputs": outputs,
        }
        if request_id is not None:
            answer["id"] = request_id
        return JSONResponse(answer, background=context.shadow_task(records, scored))

    return [
        Route("/v2", server_metadata, methods=["GET"]),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route("/v2/models/{name}", model_metadata, methods=["GET"]),
        Route("/v2/models/{name}/ready", model_ready, methods=["GET"]),
        Route("/v2/models/{name}/infer", infer, methods=["POST"]),
        Route("/v2/models/{name}/versions/{version}", model_metadata, methods=["GET"]),
        Route("/v2/models/{name}/versions/{version}/ready", model_ready, methods=["GET"]),
        Route("/v2/models/{name}/versions/{version}/infer", infer, methods=["POST"]),
    ]
