"""Forecasting endpoints: a forecast with intervals, and the actuals that followed.

``POST /v1/models/{name}/forecast`` takes ``{"horizon": 14, "series": ID, "covariates": {name:
[values]}}`` (all optional but the covariates a model needs) and answers the future stamps,
point forecasts and conformal intervals from a
:class:`~shipyard.tasks.forecasting.served.ServedForecaster`. A horizon beyond the trained one,
an unknown series or missing covariates get a 422 naming the fix.

With a prediction log, every forecast gets a ``request_id`` and is logged, and ``POST
/v1/models/{name}/actuals`` takes ``[{"series": ID, "timestamp": STAMP, "value": NUMBER}]``:
each actual is stored as feedback of every logged forecast that covered its stamp, which is
what monitoring scores (forecast error, interval coverage, level).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shipyard.config import ServingConfig
from shipyard.errors import DataError, PredictionLogError
from shipyard.serving.app import JSONResponse, ServedModel
from shipyard.serving.context import RequestError, new_request_id, read_json
from shipyard.serving.single_model import create_single_model_app, error_response, wrong_model
from shipyard.tasks.forecasting.monitoring import merge_actuals, parse_actuals, resolve_series
from shipyard.tasks.forecasting.served import ServedForecaster

if TYPE_CHECKING:
    from shipyard.monitoring.log import PredictionLogger

__all__ = ["create_forecast_app", "forecast_routes"]

logger = logging.getLogger("shipyard.serving")
LOG_PAGE = 10_000


def forecast_routes(
    model: ServedModel,
    prediction_log: PredictionLogger | None = None,
    settings: ServingConfig | None = None,
) -> list[Route]:
    """Build the ``forecast`` route (and ``actuals`` with a log)."""
    forecaster = model.predictor
    if not isinstance(forecaster, ServedForecaster):
        raise TypeError(f"Model '{model.name}' is not a forecaster; it cannot serve /forecast.")
    settings = settings or ServingConfig()

    async def forecast(request: Request) -> Response:
        wrong = wrong_model(model, request)
        if wrong is not None:
            return wrong
        started = time.perf_counter()
        try:
            body = await read_json(request, settings)
            if not isinstance(body, dict):
                raise DataError(
                    'Send an object such as {"horizon": 14}, with "series" and "covariates" '
                    "when the model needs them."
                )
            unknown = sorted(set(body) - {"horizon", "series", "covariates"})
            if unknown:
                raise DataError(
                    f"Unknown field(s) {', '.join(unknown)}; a forecast request takes "
                    "horizon, series and covariates."
                )
            answer = forecaster.forecast(
                body.get("series"), body.get("horizon"), body.get("covariates")
            )
        except RequestError as error:
            return error_response(error.status, error.error, error.message)
        except DataError as error:
            return error_response(422, "validation_error", str(error))
        if prediction_log is not None:
            answer["request_id"] = new_request_id()
            inputs = {key: body[key] for key in ("series", "horizon", "covariates") if key in body}
            record = model.log_record(
                answer["request_id"], inputs, answer, 1000.0 * (time.perf_counter() - started)
            )
            try:
                await prediction_log.record([record])
            except PredictionLogError as error:
                return error_response(503, "log_unavailable", str(error))
        return JSONResponse({"model": model.name, "version": model.version, **answer})

    routes = [Route("/v1/models/{name}/forecast", forecast, methods=["POST"])]
    if prediction_log is not None:
        routes.append(_actuals_route(model, forecaster, prediction_log, settings))
    return routes


def _store_actuals(log: PredictionLogger, name: str, actuals: list[tuple[str, str, float]]) -> int:
    """Join actuals to the logged forecasts that covered them; commit; return how many."""
    if not log.durable:
        log.flush()  # an actual may follow its forecast faster than the log writes it
    store = log.store
    labels = {row["request_id"]: row["label"] for row in store.labelled(name)}
    changed: dict[str, Any] = {}
    after = 0
    while True:
        page = store.predictions(name, after, LOG_PAGE)
        if not page:
            break
        changed.update(merge_actuals(page, {**labels, **changed}, actuals))
        after = page[-1]["id"]
    if not changed:
        raise RequestError(
            404,
            "no_forecast_covers",
            "No logged forecast covers these series and stamps; send actuals for stamps "
            "a served forecast named.",
        )
    return store.add_feedback(name, list(changed.items()))


def _actuals_route(
    model: ServedModel,
    forecaster: ServedForecaster,
    log: PredictionLogger,
    settings: ServingConfig,
) -> Route:
    """``POST /v1/models/{name}/actuals``: observed values by series and timestamp."""

    async def actuals(request: Request) -> Response:
        wrong = wrong_model(model, request)
        if wrong is not None:
            return wrong
        try:
            triples = parse_actuals(await read_json(request, settings))
            if len(triples) > settings.max_records:
                return error_response(
                    413,
                    "too_many_records",
                    f"{len(triples)} actuals exceed the limit of {settings.max_records} per "
                    "request; split the batch.",
                )
            resolved = [
                (resolve_series(forecaster, series), stamp, value)
                for series, stamp, value in triples
            ]
            stored = await run_in_threadpool(_store_actuals, log, model.name, resolved)
        except RequestError as error:
            return error_response(error.status, error.error, error.message)
        except DataError as error:
            return error_response(422, "validation_error", str(error))
        return JSONResponse({"model": model.name, "actuals": len(resolved), "forecasts": stored})

    return Route("/v1/models/{name}/actuals", actuals, methods=["POST"])


def create_forecast_app(
    model: ServedModel,
    verify_key: Callable[[str | None], bool] | None = None,
    prediction_log: PredictionLogger | None = None,
    settings: ServingConfig | None = None,
) -> Starlette:
    """Build the ASGI app serving one forecaster version (forecast, metadata, card, health)."""
    manifest = model.manifest
    section = manifest.get("forecasting", {})
    metadata = {
        "name": model.name,
        "version": model.version,
        "task": manifest["task"],
        "model_family": manifest.get("model", {}).get("family"),
        "metrics": manifest.get("metrics", {}).get("test", {}),
        "forecasting": {
            key: section.get(key)
            for key in ("horizon", "frequency", "level", "covariates", "data_window", "verdict")
        },
    }
    return create_single_model_app(
        model,
        forecast_routes(model, prediction_log, settings),
        metadata,
        verify_key=verify_key,
        prediction_log=prediction_log,
        settings=settings,
    )
