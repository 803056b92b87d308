"""MLflow's scoring protocol: ``POST /invocations`` and ``GET /ping``, as ``mlflow models serve``.

Accepted JSON bodies, as MLflow's clients send them:

- ``{"dataframe_split": {"columns": [...], "data": [[...], ...], "index": [...]}}``
  (``DataFrame.to_dict(orient="split")``);
- ``{"dataframe_records": [{...}, ...]}`` (``orient="records"``);
- ``{"inputs": {column: [values]}}``, ``{"inputs": [{...}, ...]}`` or ``{"instances": ...}``
  (the tensor-style forms; a dict of scalars is one record).

The answer is ``{"predictions": [label, ...]}``, what an MLflow scikit-learn model returns.
When the server logs predictions, the ``X-Request-ID`` header of the answer carries the
request's id: a single record is logged under it, the records of a batch under ``ID-0``,
``ID-1``, ... (the ids feedback takes).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shipyard.serving.context import (
    JSONResponse,
    RequestError,
    ServingContext,
    new_request_id,
    request_ids,
)

__all__ = ["mlflow_routes", "records_from_mlflow"]

_FORMATS = ("dataframe_split", "dataframe_records", "inputs", "instances")


def _bad(message: str) -> RequestError:
    return RequestError(400, "bad_payload", message)


def _from_columns(columns: dict[str, Any]) -> list[dict[str, Any]]:
    if all(not isinstance(value, list) for value in columns.values()):
        return [columns]
    if not all(isinstance(value, list) for value in columns.values()):
        raise _bad("'inputs' as a mapping needs a list of values for every column.")
    lengths = {len(value) for value in columns.values()}
    if len(lengths) != 1:
        raise _bad(f"'inputs' columns have different lengths: {sorted(lengths)}.")
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def records_from_mlflow(payload: Any) -> list[Any]:
    """Turn an MLflow scoring payload into records.

    Raises
    ------
    RequestError
        400 when the payload is not one of MLflow's formats, naming the formats.
    """
    if not isinstance(payload, dict) or sum(key in payload for key in _FORMATS) != 1:
        raise _bad(
            "The body must be a JSON object with exactly one of the keys "
            + ", ".join(f"'{key}'" for key in _FORMATS)
            + " (MLflow's scoring formats)."
        )
    if "dataframe_split" in payload:
        split = payload["dataframe_split"]
        if not isinstance(split, dict) or not isinstance(split.get("data"), list):
            raise _bad("'dataframe_split' needs 'columns' and 'data' (a list of rows).")
        columns = split.get("columns")
        if not isinstance(columns, list) or not all(isinstance(name, str) for name in columns):
            raise _bad("'dataframe_split.columns' must be a list of column names.")
        records = []
        for row in split["data"]:
            if not isinstance(row, list) or len(row) != len(columns):
                raise _bad(f"Each row of 'dataframe_split.data' needs {len(columns)} values.")
            records.append(dict(zip(columns, row, strict=True)))
        return records
    if "dataframe_records" in payload:
        rows = payload["dataframe_records"]
        if not isinstance(rows, list):
            raise _bad("'dataframe_records' must be a list of records.")
        return rows
    data = payload.get("inputs", payload.get("instances"))
    if isinstance(data, dict):
        return _from_columns(data)
    if isinstance(data, list):
        return data
    raise _bad("'inputs' must be a list of records or a mapping of column to values.")


def mlflow_routes(context: ServingContext) -> list[Route]:
    """Return MLflow's scoring routes."""

    async def invocations(request: Request) -> Response:
        started = time.perf_counter()
        records = records_from_mlflow(await context.read_json(request))
        scored = await context.score(records)
        headers = {}
        if context.prediction_log is not None:
            request_id = new_request_id()
            ids = request_ids(request_id, len(records))
            await context.log_answers(
                scored, records, context.answers(scored, records), ids, started
            )
            headers["X-Request-ID"] = request_id
        labels = scored.labels() if scored.slot.labels else [row[0] for row in scored.outputs]
        return JSONResponse(
            {"predictions": labels},
            headers=headers,
            background=context.shadow_task(records, scored),
        )

    async def ping(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return [
        Route("/invocations", invocations, methods=["POST"]),
        Route("/ping", ping, methods=["GET"]),
    ]
