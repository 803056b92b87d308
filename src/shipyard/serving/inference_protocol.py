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
from collections.abc import Collection, Mapping
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shipyard.serving.context import (
    JSONResponse,
    RequestError,
    ServingContext,
    check_media_type,
    decode_json,
    new_request_id,
    request_ids,
)
from shipyard.serving.openapi_schemas import V2_DATATYPES, V2_ID_MAX_LENGTH, v2_output_names

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
_ALL_DATATYPES = (*_NUMPY_TYPES, "BYTES")


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
        if isinstance(item, list):  # row-major [N, 1] data: one value per row
            if len(item) != 1:
                raise _bad(f"Input '{tensor.get('name')}' must hold one value per row.")
            flat.extend(item)
        else:
            flat.append(item)
    return flat


def _check_tensor(tensor: Any, accepted: Mapping[str, Collection[str]]) -> tuple[str, list[int]]:
    """Return a tensor's name and shape, or refuse (400) one that breaks the protocol."""
    if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
        raise _bad("Each input needs a 'name', a 'shape', a 'datatype' and data.")
    name: str = tensor["name"]
    shape = tensor.get("shape")
    if (
        not isinstance(shape, list)
        or not all(isinstance(size, int) and not isinstance(size, bool) for size in shape)
        or len(shape) not in (1, 2)
        or shape[0] < 0
        or shape[1:] not in ([], [1])
    ):
        raise _bad(f"Input '{name}' needs a 'shape' of [N] or [N, 1]; got {shape!r}.")
    datatype = tensor.get("datatype")
    allowed = accepted.get(name, _ALL_DATATYPES)
    if datatype not in allowed:
        raise _bad(f"Input '{name}' has datatype {datatype!r}; send one of {', '.join(allowed)}.")
    if not isinstance(tensor.get("parameters", {}), dict):
        raise _bad(f"Input '{name}' has 'parameters' that are not an object.")
    return name, shape


def decode_infer_request(
    body: bytes,
    header_length: int | None,
    accepted: Mapping[str, Collection[str]] | None = None,
) -> tuple[dict[str, Any], list[Any]]:
    """Decode an inference request into its JSON header and one record per row.

    ``accepted`` maps an input's name to the datatypes its column takes (others: any known).

    Raises
    ------
    RequestError
        400 when the body breaks the protocol, with what is wrong.
    """
    head = body if header_length is None else body[:header_length]
    request = decode_json(head)
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise _bad("An inference request is a JSON object with an 'inputs' list of tensors.")
    if not isinstance(request.get("id", ""), str):
        raise _bad("The request's 'id' must be a string.")
    if not isinstance(request.get("parameters", {}), dict):
        raise _bad("The request's 'parameters' must be an object.")
    position = header_length or 0
    columns: dict[str, list[Any]] = {}
    for tensor in request["inputs"]:
        name, shape = _check_tensor(tensor, accepted or {})
        if name in columns:
            raise _bad(f"Input '{name}' is sent twice; send one tensor per column.")
        size = (tensor.get("parameters") or {}).get("binary_data_size")
        binary = None
        if size is not None:
            if header_length is None or not isinstance(size, int) or size < 0:
                raise _bad(
                    f"Input '{name}' declares binary data but the request has no "
                    "Inference-Header-Content-Length header."
                )
            binary = body[position : position + size]
            if len(binary) != size:
                raise _bad(f"Input '{name}' has less binary data than declared.")
            position += size
        values = _tensor_values(tensor, binary)
        if len(values) != shape[0]:
            raise _bad(
                f"Input '{name}' must hold one value per row (shape [N] or [N, 1]); "
                f"got shape {shape} with {len(values)} values."
            )
        columns[name] = values
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
        400 when ``id`` is empty or longer than the prediction log's key allows.
    """
    given = inference.get("id")  # a string: decode_infer_request checked it
    if given is None:
        return new_request_id() if logged else None
    if not 0 < len(given) <= V2_ID_MAX_LENGTH:
        raise _bad(
            f"The request's 'id' must have 1 to {V2_ID_MAX_LENGTH} characters (it keys the "
            f"prediction log); got {len(given)}."
        )
    return str(given)


def _wanted_outputs(inference: dict[str, Any], available: list[str]) -> set[str] | None:
    """Return the outputs a request asks for (``None``: all); refuse (400) unknown ones."""
    wanted = inference.get("outputs")
    if wanted is None:
        return None
    if not isinstance(wanted, list) or not all(
        isinstance(item, dict) and item.get("name") in available for item in wanted
    ):
        raise _bad(
            "'outputs' must be a list of objects naming outputs of this model: "
            + ", ".join(available)
            + "."
        )
    return {item["name"] for item in wanted} or None


def protocol_routes(context: ServingContext) -> list[Route]:
    """Return the Open Inference Protocol routes."""

    def model_metadata_document() -> dict[str, Any]:
        model = context.state.primary.model
        predictor = model.predictor
        inputs = [
            {"name": column.name, "datatype": V2_DATATYPES[column.type][0], "shape": [-1]}
            for column in predictor.contract.columns
        ]
        if not predictor.classes:  # one number per row, as v2_output_names says
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
        header = request.headers.get("inference-header-content-length")
        # The binary tensor extension appends raw bytes after the JSON header.
        check_media_type(request, *(("application/octet-stream",) if header else ()))
        body = await context.read_body(request)
        header_length = None
        if header is not None:
            if not header.isdigit() or int(header) > len(body):
                raise _bad("Inference-Header-Content-Length must be the JSON header's size.")
            header_length = int(header)
        contract = context.state.primary.model.predictor.contract
        accepted = {column.name: V2_DATATYPES[column.type] for column in contract.columns}
        inference, records = decode_infer_request(body, header_length, accepted)
        available = v2_output_names(context.state.primary.labels)
        wanted = _wanted_outputs(inference, available)
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
            labels = [str(label) for label in scored.labels()]
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
        if wanted is not None:
            outputs = [output for output in outputs if output["name"] in wanted]
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
