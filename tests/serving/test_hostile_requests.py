"""Whatever a client sends, every route answers 4xx and no model failure is counted.

A real Adult model is served over a real socket. Requests carry huge integers (past float64's
range, which Python's json reads and ``float()`` overflows on), NaN, infinities, nested
objects and lists in every field of every route; the answers must be client errors (or
successes), never 5xx, and the failure log that feeds the live error rate must stay empty.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from typing import Any

import httpx
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.strategies import hostile_json_values, json_paths, replace_at

from shipyard.config import ServingConfig
from shipyard.monitoring.log import MonitoringStore
from shipyard.registry.store import Registry
from shipyard.serving import build_app, running_server
from shipyard.training.export import frame_to_records

_TENSOR_TYPES = {"number": "FP64", "integer": "INT64", "string": "BYTES", "boolean": "BOOL"}
_HUGE = 10**309


class Served:
    """A served Adult model with one valid body per route and counters of what went wrong."""

    def __init__(self, url: str, app: Any, registry: Registry, bodies: dict[str, Any]) -> None:
        self.url = url
        self.app = app
        self.registry = registry
        self.bodies = bodies

    def post(self, route: str, body: Any) -> httpx.Response:
        """Post ``body`` encoded by Python's json (NaN and infinities written as such)."""
        path = ROUTE_PATHS[route]
        return httpx.post(
            f"{self.url}{path}",
            content=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
            timeout=30,
        )

    def logged_failures(self) -> int:
        """Failures in the log the live error rate reads (after the queue is written)."""
        self.app.state.serving.prediction_log.flush()
        store = MonitoringStore(self.registry.url)
        version = self.app.state.serving.state.primary.model.version
        return store.activity("adult", version, datetime(2000, 1, 1, tzinfo=UTC))["failed"]

    def metric(self, line_start: str) -> float:
        """The value of the first exposition line starting with ``line_start`` (0 if none)."""
        text = httpx.get(f"{self.url}/metrics").text
        for line in text.splitlines():
            if line.startswith(line_start):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


ROUTE_PATHS = {
    "predict": "/v1/models/adult/predict",
    "predict_batch": "/v1/models/adult/predict",
    "explain": "/v1/models/adult/explain",
    "invocations_records": "/invocations",
    "invocations_split": "/invocations",
    "invocations_inputs": "/invocations",
    "infer": "/v2/models/adult/infer",
    "feedback": "/v1/models/adult/feedback",
}


def _bodies(records: list[dict[str, Any]], contract: Any, request_id: str) -> dict[str, Any]:
    first, second = records[0], records[1]
    columns = [column.name for column in contract.columns]
    return {
        "predict": first,
        "predict_batch": [first, second],
        "explain": first,
        "invocations_records": {"dataframe_records": [first]},
        "invocations_split": {
            "dataframe_split": {"columns": columns, "data": [[first[name] for name in columns]]}
        },
        "invocations_inputs": {"inputs": {name: [first[name]] for name in columns}},
        "infer": {
            "inputs": [
                {
                    "name": column.name,
                    "shape": [1],
                    "datatype": _TENSOR_TYPES[column.type],
                    "data": [first[column.name]],
                }
                for column in contract.columns
            ]
        },
        "feedback": {"request_id": request_id, "label": ">50K"},
    }


@pytest.fixture(scope="module")
def served(trained_adult, tmp_path_factory):
    home = tmp_path_factory.mktemp("hostile") / "home"
    shutil.copytree(trained_adult.home / ".shipyard", home)
    registry = Registry(f"sqlite:///{home / 'registry.db'}", home / "artifacts")
    frame = pd.read_csv(trained_adult.test_csv, skipinitialspace=True).head(5)
    records = frame_to_records(frame.drop(columns=["income"]))
    app = build_app(registry, "adult", ServingConfig(auth=False, poll_seconds=0))
    contract = app.state.serving.state.primary.model.predictor.contract
    with running_server(app) as url:
        answer = httpx.post(f"{url}/v1/models/adult/predict", json=records[0])
        assert answer.status_code == 200, answer.text
        bodies = _bodies(records, contract, answer.json()["request_id"])
        yield Served(url, app, registry, bodies)


def test_every_valid_body_is_answered(served):
    for route, body in served.bodies.items():
        assert served.post(route, body).status_code == 200, route


@pytest.mark.parametrize("route", sorted(set(ROUTE_PATHS) - {"feedback"}))
@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("age", _HUGE, id="age-huge"),
        pytest.param("capital-gain", -_HUGE, id="capital-gain-huge-negative"),
    ],
)
def test_a_number_past_float64_is_a_422_naming_the_field(served, route, field, value):
    body = served.bodies[route]
    paths = [path for path in json_paths(body) if _names(body, path, field)]
    assert paths, f"no path to '{field}' in the {route} body"
    for path in paths:
        body = replace_at(body, path, value)
    failures = served.logged_failures()
    response = served.post(route, body)
    assert response.status_code == 422, response.text
    message = response.json()["message"]
    assert f"'{field}'" in message
    assert "float64" in message
    assert "integer of 310 digits" in message
    assert served.logged_failures() == failures


def _names(body: Any, path: tuple[Any, ...], field: str) -> bool:
    """Whether ``path`` leads to the value of ``field`` in a route's body (any layout)."""
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if isinstance(parent, dict) and last == field:
        return not isinstance(parent[last], list)  # a value, not a column of values
    if isinstance(parent, list) and len(path) >= 2:
        # A column of values ("inputs": {field: [v]}) or a tensor's data.
        holder = body
        for key in path[:-2]:
            holder = holder[key]
        if path[-2] == field:
            return True
        if path[-2] == "data" and isinstance(holder, dict) and holder.get("name") == field:
            return True
        if path[-2] == 0 and len(path) >= 3 and path[-3] == "data":
            split = body["dataframe_split"]
            return split["columns"][last] == field
    return False


def test_a_huge_feedback_label_is_refused(served):
    body = {**served.bodies["feedback"], "label": _HUGE}
    response = served.post("feedback", body)
    assert response.status_code == 422
    assert "label" in response.json()["message"]


def test_client_errors_are_counted_apart_from_model_failures(served):
    before = served.metric('shipyard_client_errors_total{reason="validation_error"}')
    failures = served.logged_failures()
    response = served.post("predict", {**served.bodies["predict"], "age": _HUGE})
    assert response.status_code == 422
    after = served.metric('shipyard_client_errors_total{reason="validation_error"}')
    assert after == before + 1
    assert served.logged_failures() == failures


@st.composite
def hostile_requests(draw: st.DrawFn, bodies: dict[str, Any]) -> tuple[str, Any]:
    """A route and its valid body with one value (anywhere, the root included) replaced."""
    route = draw(st.sampled_from(sorted(bodies)))
    body = bodies[route]
    path = draw(st.sampled_from([(), *json_paths(body)]))
    return route, replace_at(body, path, draw(hostile_json_values()))


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_input_gets_a_5xx_or_counts_as_a_model_failure(served, data):
    route, body = data.draw(hostile_requests(served.bodies))
    response = served.post(route, body)
    assert response.status_code < 500, (route, body, response.text)
    assert served.logged_failures() == 0
    assert served.metric('shipyard_errors_total{error="internal_error"}') == 0
