"""The OpenAPI document against the app: same routes, same statuses, same content types."""

from __future__ import annotations

import json

import httpx
import pytest

from shipyard.config import ServingConfig
from shipyard.serving import KeyStore, build_app, running_server
from shipyard.serving.app import mounted_operations


def _documented(document: dict) -> set[tuple[str, str]]:
    return {(path, method) for path, item in document["paths"].items() for method in item}


@pytest.mark.parametrize("log_predictions", [True, False])
def test_the_document_lists_exactly_the_routes_the_app_mounts(fitted_adult, log_predictions):
    settings = ServingConfig(auth=False, poll_seconds=0, log_predictions=log_predictions)
    app = build_app(fitted_adult.registry, "adult:1", settings)
    with running_server(app) as url:
        document = httpx.get(f"{url}/openapi.json").json()
    mounted = mounted_operations(app.routes, "adult", 1)
    assert _documented(document) == mounted
    # The routes the conformance report found missing, and the feedback route only with a log.
    for path in ("/v1/models/adult/explain", "/v1/models/adult/card", "/metrics", "/ping"):
        assert path in document["paths"]
    assert ("/v1/models/adult/feedback" in document["paths"]) is log_predictions
    metrics = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
    assert "security" not in document  # auth is off


def test_with_keys_every_private_operation_documents_401_and_429(fitted_adult, tmp_path):
    keys = KeyStore(tmp_path / "keys.json")
    settings = ServingConfig(poll_seconds=0, log_predictions=False)
    app = build_app(fitted_adult.registry, "adult:1", settings, keys)
    with running_server(app) as url:
        document = httpx.get(f"{url}/openapi.json").json()
    assert document["security"] == [{"bearer": []}, {"apiKey": []}]
    for path, item in document["paths"].items():
        for operation in item.values():
            public = operation.get("security") == []
            assert ("401" in operation["responses"]) is not public, path
            assert ("429" in operation["responses"]) is not public, path
    assert document["paths"]["/health"]["get"]["security"] == []


def test_wrong_methods_get_405_with_allow(fitted_adult):
    app = build_app(fitted_adult.registry, "adult:1", ServingConfig(auth=False, poll_seconds=0))
    with running_server(app) as url:
        refused = httpx.request("TRACE", f"{url}/health")
        posted = httpx.post(f"{url}/v1/models/adult")
        fetched = httpx.get(f"{url}/v1/models/adult/predict")
    assert refused.status_code == posted.status_code == fetched.status_code == 405
    assert set(refused.headers["allow"].split(", ")) == {"GET", "HEAD"}
    assert fetched.headers["allow"] == "POST"
    assert refused.json()["error"] == "http_error"


def test_every_body_route_refuses_a_body_that_is_not_json_alike(fitted_adult):
    settings = ServingConfig(auth=False, poll_seconds=0)
    app = build_app(fitted_adult.registry, "adult:1", settings)
    record = fitted_adult.records[0]
    routes = {
        "/v1/models/adult/predict": record,
        "/v1/models/adult/explain": record,
        "/v1/models/adult/feedback": {"request_id": "x", "label": ">50K"},
        "/invocations": {"dataframe_records": [record]},
        "/v2/models/adult/infer": {
            "inputs": [
                {"name": name, "shape": [1], "datatype": "BYTES", "data": [value]}
                for name, value in record.items()
            ]
        },
    }
    with running_server(app) as url:
        for path, body in routes.items():
            text = httpx.post(
                f"{url}{path}", content=str(body), headers={"Content-Type": "text/plain"}
            )
            assert text.status_code == 415, (path, text.text)
            assert text.json()["error"] == "unsupported_media_type"
        # With a JSON content type (with parameters) or none, the same body is read.
        typed = httpx.post(
            f"{url}/v1/models/adult/predict",
            json=record,
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        untyped = httpx.post(  # raw bytes: httpx sends no Content-Type
            f"{url}/v1/models/adult/predict", content=json.dumps(record).encode()
        )
    assert "content-type" not in untyped.request.headers
    assert typed.status_code == untyped.status_code == 200


def test_v2_refuses_what_its_schema_refuses(fitted_adult):
    app = build_app(fitted_adult.registry, "adult:1", ServingConfig(auth=False, poll_seconds=0))
    record = fitted_adult.records[0]
    metadata_types = {}
    with running_server(app) as url:
        for item in httpx.get(f"{url}/v2/models/adult").json()["inputs"]:
            metadata_types[item["name"]] = item["datatype"]

        def tensors(**changes: object) -> list[dict[str, object]]:
            return [
                {"name": name, "shape": [1], "datatype": metadata_types[name], "data": [value]}
                | (changes if name == "age" else {})
                for name, value in record.items()
            ]

        infer = f"{url}/v2/models/adult/infer"
        assert httpx.post(infer, json={"inputs": tensors()}).status_code == 200
        assert httpx.post(infer, json={"inputs": tensors(shape=[1, 1])}).status_code == 200
        refused = {
            "datatype": {"inputs": tensors(datatype="BYTES")},
            "shape": {"inputs": tensors(shape=[1, 1, 1])},
            "nested": {"inputs": tensors(data=[[1, 2]])},
            "outputs": {"inputs": tensors(), "outputs": [{"name": "nope"}]},
            "id": {"inputs": tensors(), "id": 5},
        }
        for case, body in refused.items():
            answer = httpx.post(infer, json=body)
            assert answer.status_code == 400, (case, answer.text)
        chosen = httpx.post(infer, json={"inputs": tensors(), "outputs": [{"name": "label"}]})
    assert [output["name"] for output in chosen.json()["outputs"]] == ["label"]
