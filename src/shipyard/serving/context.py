"""What every route shares: body reading with limits, errors as JSON, scoring with metrics.

Routes raise :class:`RequestError` for anything the client can fix; the app turns it into a
JSON answer ``{"error": CODE, "message": TEXT, ...}`` with the right status, and counts it.

Every prediction protocol (the own API, the Open Inference Protocol, ``/invocations``) scores
through :meth:`ServingContext.score`, which logs the requests the model failed (the live error
rate), and logs its answers through :meth:`ServingContext.log_answers`, which in durable mode
returns only once they are committed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from shipyard.errors import PredictionLogError
from shipyard.runtime.validate import RecordTooLargeError, RecordValidationError
from shipyard.serving.logs import log_event

if TYPE_CHECKING:
    from shipyard.config import ServingConfig
    from shipyard.monitoring.log import PredictionLogger
    from shipyard.serving.metrics import ServingMetrics
    from shipyard.serving.state import ModelSlot, ServingState

__all__ = [
    "JSONResponse",
    "RequestError",
    "Scored",
    "ServingContext",
    "check_media_type",
    "decode_json",
    "error_response",
    "new_request_id",
    "read_body",
    "read_json",
    "request_ids",
]

logger = logging.getLogger("shipyard.serving")


class JSONResponse(Response):
    """A JSON response encoded with orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Encode with orjson (numpy scalars and arrays included)."""
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


class RequestError(Exception):
    """A request the client can fix: answered with ``status`` and a JSON message."""

    def __init__(self, status: int, error: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.extra = extra


def error_response(status: int, error: str, message: str, **extra: Any) -> JSONResponse:
    """Return the JSON error answer."""
    return JSONResponse({"error": error, "message": message, **extra}, status_code=status)


class Scored:
    """The outcome of scoring: which slot answered, the raw output rows, and their groups.

    ``groups`` names each record's sensitive group when the slot's labels depend on it (a
    fairness-mitigated model), else it is ``None``.
    """

    __slots__ = ("groups", "outputs", "slot")

    def __init__(
        self, slot: ModelSlot, outputs: list[list[float]], groups: list[str] | None = None
    ) -> None:
        self.slot = slot
        self.outputs = outputs
        self.groups = groups

    def group(self, row: int) -> str | None:
        """Return the sensitive group of one record, or ``None``."""
        return None if self.groups is None else self.groups[row]

    def labels(self) -> list[Any]:
        """Return the predicted label of each classified row, as the slot decides."""
        classes = self.slot.model.predictor.classes
        return [
            classes[self.slot.path.class_index(row, self.group(position))]
            for position, row in enumerate(self.outputs)
        ]


class _RandomIds:
    """Random ids in ``uuid.uuid4().hex``'s form, read from the OS 256 at a time.

    ``uuid4`` reads 16 bytes per id: a system call that releases the GIL, and a thread that
    is busy meanwhile (the prediction log's) can keep the request waiting for up to the
    interpreter's switch interval before it gets the GIL back.
    """

    _BATCH = 256

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool = b""
        self._next = 0

    def __call__(self) -> str:
        with self._lock:
            if self._next >= len(self._pool):
                self._pool, self._next = os.urandom(16 * self._BATCH), 0
            start = self._next
            self._next = start + 16
            chunk = bytearray(self._pool[start : start + 16])
        chunk[6] = (chunk[6] & 0x0F) | 0x40  # version 4
        chunk[8] = (chunk[8] & 0x3F) | 0x80  # the RFC 4122 variant
        return chunk.hex()


new_request_id = _RandomIds()
"""Return a fresh request id (the key of a logged prediction, which feedback names)."""


def request_ids(base: str, count: int) -> list[str]:
    """Return one id per record of a request: ``base`` alone, else ``base-0``, ``base-1``, ...

    The protocols with one id per request (the Open Inference Protocol, ``/invocations``)
    log the records of a batch under these ids.
    """
    return [base] if count == 1 else [f"{base}-{index}" for index in range(count)]


def _too_large(limit: int) -> RequestError:
    return RequestError(
        413,
        "body_too_large",
        f"The request body exceeds {limit} bytes; send fewer records per request.",
    )


async def read_body(request: Request, settings: ServingConfig) -> bytes:
    """Read the body within ``settings``' size limit (else 413) and timeout (else 408)."""
    limit = settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(settings.request_timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
    except TimeoutError:
        raise RequestError(
            408,
            "request_timeout",
            f"The request body did not arrive within {settings.request_timeout:g} s.",
        ) from None
    return b"".join(chunks)


def decode_json(body: bytes) -> Any:
    """Decode a JSON body with orjson, else with Python's json (400 when it is not JSON)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        # Python's json module writes NaN for missing values (MLflow's client does) and reads
        # integers of any size: accept that dialect too, off the fast path. NaN is "missing";
        # infinities and integers past float64 fail validation with the field's name.
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise RequestError(
                400, "invalid_json", f"The request body is not valid JSON: {error}"
            ) from None


def check_media_type(request: Request, *also: str) -> None:
    """Refuse (415) a body declared as anything but JSON (or one of ``also``).

    Every route that reads a body answers the same way; a request without a Content-Type is
    read as JSON, as clients that send raw bytes expect.
    """
    declared = request.headers.get("content-type")
    if declared is None:
        return
    kind = declared.split(";")[0].strip().lower()
    if kind != "application/json" and kind not in also:
        raise RequestError(
            415,
            "unsupported_media_type",
            f"Content type '{kind}' is not supported; send 'Content-Type: application/json'.",
        )


async def read_json(request: Request, settings: ServingConfig) -> Any:
    """Read and decode a JSON body (400 when it is not JSON), within ``settings``' limits."""
    return decode_json(await read_body(request, settings))


class ServingContext:
    """The state, settings and metrics that routes share.

    Parameters
    ----------
    state
        The slots being served.
    settings
        Serving settings (limits, timeouts).
    metrics
        The server's metrics.
    prediction_log
        Where served predictions are logged; ``None`` logs nothing.
    auth
        Whether requests need an API key (the OpenAPI document says so).
    """

    def __init__(
        self,
        state: ServingState,
        settings: ServingConfig,
        metrics: ServingMetrics,
        prediction_log: PredictionLogger | None = None,
        auth: bool = False,
    ) -> None:
        self.state = state
        self.settings = settings
        self.metrics = metrics
        self.prediction_log = prediction_log
        self.auth = auth

    @property
    def name(self) -> str:
        """The served model's name."""
        return self.state.primary.model.name

    def check_name(self, name: str) -> None:
        """Refuse requests for another model with 404."""
        if name != self.name:
            raise RequestError(
                404, "model_not_found", f"This server serves model '{self.name}', not '{name}'."
            )

    async def read_body(self, request: Request) -> bytes:
        """Read the body within the size limit (else 413) and the timeout (else 408)."""
        return await read_body(request, self.settings)

    async def read_json(self, request: Request) -> Any:
        """Check the content type (else 415), read and decode the JSON body (else 400)."""
        check_media_type(request)
        return await read_json(request, self.settings)

    def check_count(self, records: list[Any]) -> None:
        """Refuse empty requests (422) and too many records (413)."""
        if not records:
            raise RequestError(422, "validation_error", "The request holds no records.")
        if len(records) > self.settings.max_records:
            raise RequestError(
                413,
                "too_many_records",
                f"{len(records)} records exceed the limit of {self.settings.max_records} "
                "per request; split the batch.",
            )

    async def score(self, records: list[Any], slot: ModelSlot | None = None) -> Scored:
        """Validate and score ``records`` on ``slot`` (default: the routed one); count them.

        A request the model fails (a 5xx, not a bad record) is logged as a failure of the
        slot's version: the live error rate counts it.

        Raises
        ------
        RequestError
            422 when a record breaks the contract, 503 when scoring timed out.
        """
        self.check_count(records)
        slot = slot or self.state.choose()
        try:
            outputs, groups = await self._outputs(records, slot)
        except RequestError as error:
            if error.status >= 500:  # the model failed, not the client
                self._log_failure(slot, error.error)
            raise
        except Exception as error:
            self._log_failure(slot, error.__class__.__name__)
            raise
        summaries = [
            slot.summary(row, None if groups is None else groups[position])
            for position, row in enumerate(outputs)
        ]
        self.metrics.observe_predictions(
            slot.model.version,
            [label for label, _ in summaries],
            [score for _, score in summaries],
        )
        return Scored(slot, outputs, groups)

    async def _outputs(
        self, records: list[Any], slot: ModelSlot
    ) -> tuple[list[list[float]], list[str] | None]:
        try:
            if slot.batcher is None:
                outputs = await slot.outputs(records)
                self.metrics.batch_size.observe(len(records))
            else:
                async with asyncio.timeout(self.settings.request_timeout):
                    outputs = await slot.outputs(records)
            groups = slot.path.groups(records)
        except RecordTooLargeError as error:
            raise RequestError(
                413, "value_too_large", str(error), violations=error.violations
            ) from None
        except RecordValidationError as error:
            raise RequestError(
                422, "validation_error", str(error), violations=error.violations
            ) from None
        except TimeoutError:
            raise RequestError(
                503, "timeout", "The model did not answer in time; retry later."
            ) from None
        return outputs, groups

    def _log_failure(self, slot: ModelSlot, error: str) -> None:
        """Queue a request the model failed to answer (never waits: nothing is acknowledged)."""
        from shipyard.monitoring.log import PredictionFailure

        if self.prediction_log is not None:
            model = slot.model
            self.prediction_log.log(PredictionFailure(model.name, model.version, error))

    def answers(self, scored: Scored, records: list[Any]) -> list[dict[str, Any]]:
        """Return the own API's answer for each record: what every protocol logs as output."""
        slot = scored.slot
        answers = [
            slot.path.answer(row, scored.group(position))
            for position, row in enumerate(scored.outputs)
        ]
        # Some predictors add to each answer (a text model its top tokens).
        extras = getattr(slot.model.predictor, "answer_extras", None)
        if extras is not None:
            for record, answer in zip(records, answers, strict=True):
                answer.update(extras(record, answer))
        return answers

    async def log_answers(
        self,
        scored: Scored,
        records: list[Any],
        answers: list[dict[str, Any]],
        ids: Sequence[str],
        started: float,
    ) -> None:
        """Log each record's answer under its request id; durably, return after the commit.

        ``started`` is the request's ``time.perf_counter()`` at arrival (for the latency).
        The rows come from :meth:`ServedModel.log_record`, which masks the personal fields.
        Does nothing when the server logs no predictions.

        Raises
        ------
        RequestError
            503 when the durable log did not commit the rows (failed, full or too slow): the
            prediction is not acknowledged then.
        """
        log = self.prediction_log
        if log is None:
            return
        model = scored.slot.model
        latency_ms = 1000.0 * (time.perf_counter() - started) / len(records)
        rows = [
            # A copy: the route may add to its answer while the log thread encodes this one.
            model.log_record(key, record, dict(answer), latency_ms)
            for key, record, answer in zip(ids, records, answers, strict=True)
        ]
        try:
            await log.record(rows)
        except PredictionLogError as error:
            raise RequestError(503, "log_unavailable", str(error)) from None

    def shadow_task(self, records: list[Any], scored: Scored) -> BackgroundTask | None:
        """Return a task (run after the answer is sent) that scores a copy on the shadow."""
        shadow = self.state.shadow
        if shadow is None:
            return None
        return BackgroundTask(self._run_shadow, shadow, records, scored)

    async def _run_shadow(self, shadow: ModelSlot, records: list[Any], scored: Scored) -> None:
        try:
            outputs = shadow.score_valid(records)
            shadow_groups = shadow.path.groups(records)
        except Exception as error:
            log_event(logger, "shadow failed", logging.WARNING, event="shadow", error=str(error))
            return
        served = [
            scored.slot.summary(row, scored.group(position))[0]
            for position, row in enumerate(scored.outputs)
        ]
        shadowed = [
            shadow.summary(row, None if shadow_groups is None else shadow_groups[position])[0]
            for position, row in enumerate(outputs)
        ]
        agreed = sum(a == b for a, b in zip(served, shadowed, strict=True))
        self.metrics.shadow.labels("yes").inc(agreed)
        self.metrics.shadow.labels("no").inc(len(served) - agreed)
        log_event(
            logger,
            "shadow answer",
            event="shadow",
            served_version=scored.slot.model.version,
            shadow_version=shadow.model.version,
            served=served,
            shadow=shadowed,
            shadow_outputs=outputs,
        )
