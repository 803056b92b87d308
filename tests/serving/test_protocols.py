"""Answers, protocols and security of the server, over real sockets with a real LightGBM model."""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import pytest

from shipyard.config import ServingConfig
from shipyard.serving import KeyStore, build_app, running_server


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    store = KeyStore(tmp_path_factory.mktemp("keys") / "api-keys.json")
    _, key = store.create("tests")
    return store, key


@pytest.fixture(scope="module")
def server(fitted_adult, keys):
    store, key = keys
    settings = ServingConfig(max_body_bytes=200_000, max_records=1000, poll_seconds=0)
    app = build_app(fitted_adult.registry, "adult:1", settings, store)
    with running_server(app) as url:
        yield url, {"Authorization": f"Bearer {key}"}


def _probabilities(answers, classes):
    return np.array([[answer["probabilities"][label] for label in classes] for answer in answers])


def test_thousand_records_identical_alone_in_batches_and_from_the_training_model(
    server, fitted_adult
):
    url, headers = server
    records, classes = fitted_adult.records, fitted_adult.classes
    assert len(records) == 1000
    expected = fitted_adult.pipeline.predict_proba(fitted_adult.frame)
    with httpx.Client(base_url=url, headers=headers) as client:
        alone = [client.post("/v1/models/adult/predict", json=record).json() for record in records]
        batched = []
        for start in range(0, 1000, 100):
            response = client.post("/v1/models/adult/predict", json=records[start : start + 100])
            batched.extend(response.json()["predictions"])
    alone_probabilities = _probabilities(alone, classes)
    # Bit-for-bit: the one-row C API, the batch routine and the training-time pipeline agree.
    assert np.array_equal(alone_probabilities, _probabilities(batched, classes))
    assert np.array_equal(alone_probabilities, expected)
    assert [answer["prediction"] for answer in alone] == [
        classes[index] for index in expected.argmax(axis=1)
    ]


def test_micro_batched_answers_equal_unbatched_ones(fitted_adult):
    settings = ServingConfig(
        auth=False, batching="on", max_batch_size=16, max_batch_wait_ms=5, poll_seconds=0
    )
    app = build_app(fitted_adult.registry, "adult:1", settings)
    records = fitted_adult.records[:200]

    async def post_all(url):
        # 200 requests share 100 pooled connections: on a loaded machine the default 5 s pool
        # timeout can pass before a connection frees up, so wait as long as the test allows.
        async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(120.0)) as client:
            responses = await asyncio.gather(
                *(client.post("/v1/models/adult/predict", json=record) for record in records)
            )
            metrics = (await client.get("/metrics")).text
        return [response.json() for response in responses], metrics

    with running_server(app) as url:
        answers, metrics = asyncio.run(post_all(url))
    expected = fitted_adult.pipeline.predict_proba(fitted_adult.frame.head(200))
    assert np.array_equal(_probabilities(answers, fitted_adult.classes), expected)
    # Concurrent requests were really scored together.
    sizes = [line for line in metrics.splitlines() if line.startswith("shipyard_batch_size_count")]
    counts = [line for line in metrics.splitlines() if line.startswith("shipyard_batch_size_sum")]
    assert float(counts[0].split()[-1]) == 200
    assert float(sizes[0].split()[-1]) < 200


def test_missing_or_wrong_api_key_gets_401(server, fitted_adult, keys):
    url, headers = server
    record = fitted_adult.records[0]
    predict = f"{url}/v1/models/adult/predict"
    missing = httpx.post(predict, json=record)
    assert missing.status_code == 401
    assert "API key" in missing.json()["message"]
    assert httpx.post(predict, json=record, headers={"X-API-Key": "sy_wrong"}).status_code == 401
    assert (
        httpx.post(predict, json=record, headers={"Authorization": "Bearer nope"}).status_code
        == 401
    )
    assert httpx.post(f"{url}/invocations", json={"inputs": [record]}).status_code == 401
    assert httpx.post(f"{url}/v2/models/adult/infer", json={"inputs": []}).status_code == 401
    _, key = keys
    assert httpx.post(predict, json=record, headers={"X-API-Key": key}).status_code == 200
    assert httpx.post(predict, json=record, headers=headers).status_code == 200
    # Probes, metrics and the API description stay open.
    for path in ("/health", "/ready", "/v2/health/live", "/v2/health/ready", "/metrics"):
        assert httpx.get(f"{url}{path}").status_code == 200, path


def test_revoked_key_is_refused_without_restart(server, fitted_adult, keys):
    url, _ = server
    store, _ = keys
    record, temporary = store.create("temporary")
    predict = f"{url}/v1/models/adult/predict"
    first = fitted_adult.records[0]
    assert httpx.post(predict, json=first, headers={"X-API-Key": temporary}).status_code == 200
    store.revoke(record.id)
    import time

    time.sleep(1.1)  # the store re-reads its file at most once a second
    assert httpx.post(predict, json=first, headers={"X-API-Key": temporary}).status_code == 401


def test_keys_are_stored_hashed(keys):
    store, key = keys
    text = store.path.read_text()
    assert key not in text
    assert store.verify(key)
    assert not store.verify(key + "x")
    assert not store.verify(None)


def test_oversized_body_gets_413(server):
    url, headers = server
    body = b"[" + b",".join([b'{"age": 30}'] * 30_000) + b"]"
    response = httpx.post(
        f"{url}/v1/models/adult/predict",
        content=body,
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"
    invocations = httpx.post(
        f"{url}/invocations", content=body, headers={**headers, "Content-Type": "application/json"}
    )
    assert invocations.status_code == 413


def test_errors_carry_no_stack_trace(server):
    url, headers = server
    response = httpx.post(
        f"{url}/v2/models/adult/infer",
        content=b'{"inputs": [{"name": "age", "shape": "x"}]}',
        headers=headers,
    )
    assert response.status_code == 400
    assert "Traceback" not in response.text
    assert "shape" in response.json()["message"]


def _mlflow_payloads(frame):
    # The JSON bodies MLflow's client and docs send: DataFrame.to_dict orients, and tensors.
    head = frame.head(5)
    split = json.loads(head.to_json(orient="split"))
    records = json.loads(head.to_json(orient="records"))
    columns = {name: json.loads(head[name].to_json(orient="values")) for name in head.columns}
    return {
        "dataframe_split": {"dataframe_split": split},
        "dataframe_records": {"dataframe_records": records},
        "inputs_columns": {"inputs": columns},
        "inputs_records": {"inputs": records},
        "instances": {"instances": records},
    }


@pytest.mark.parametrize(
    "form",
    ["dataframe_split", "dataframe_records", "inputs_columns", "inputs_records", "instances"],
)
def test_mlflow_invocations_payloads(server, fitted_adult, form):
    url, headers = server
    payload = _mlflow_payloads(fitted_adult.frame)[form]
    response = httpx.post(f"{url}/invocations", json=payload, headers=headers)
    assert response.status_code == 200, response.text
    expected = fitted_adult.pipeline.predict_proba(fitted_adult.frame.head(5)).argmax(axis=1)
    assert response.json() == {"predictions": [fitted_adult.classes[i] for i in expected]}


def test_mlflow_bad_payload_is_400_naming_the_formats(server):
    url, headers = server
    response = httpx.post(f"{url}/invocations", json={"data": []}, headers=headers)
    assert response.status_code == 400
    assert "dataframe_split" in response.json()["message"]


def test_open_inference_protocol_with_tritonclient(server, fitted_adult):
    http = pytest.importorskip("tritonclient.http")
    url, shared_headers = server
    # tritonclient adds its own header to the dict it is given: pass a copy.
    headers = dict(shared_headers)
    frame = fitted_adult.frame.head(20)
    client = http.InferenceServerClient(url.removeprefix("http://"))
    try:
        assert client.is_server_live(headers=headers)
        assert client.is_server_ready(headers=headers)
        assert client.is_model_ready("adult", headers=headers)
        metadata = client.get_model_metadata("adult", headers=headers)
        names = [item["name"] for item in metadata["inputs"]]
        assert names == list(frame.columns)
        inputs = []
        for item in metadata["inputs"]:
            column = frame[item["name"]]
            if item["datatype"] == "BYTES":
                values = column.astype(object).to_numpy()
            else:
                values = column.to_numpy(
                    dtype=np.float64 if item["datatype"] == "FP64" else np.int64
                )
            tensor = http.InferInput(item["name"], [len(frame)], item["datatype"])
            tensor.set_data_from_numpy(values, binary_data=item["name"] != "age")
            inputs.append(tensor)
        result = client.infer("adult", inputs, headers=dict(shared_headers))
        probabilities = result.as_numpy("probabilities")
        labels = [
            label.decode() if isinstance(label, bytes) else label
            for label in result.as_numpy("label")
        ]
        with pytest.raises(Exception, match=r"401|nauthorized|API key"):
            client.infer("adult", inputs)
    finally:
        client.close()
    expected = fitted_adult.pipeline.predict_proba(frame)
    assert np.array_equal(probabilities, expected)
    assert labels == [fitted_adult.classes[i] for i in expected.argmax(axis=1)]


def test_open_inference_protocol_json(server, fitted_adult):
    url, headers = server
    metadata = httpx.get(f"{url}/v2/models/adult", headers=headers).json()
    frame = fitted_adult.frame.head(3)
    inputs = [
        {
            "name": item["name"],
            "shape": [3, 1],
            "datatype": item["datatype"],
            "data": json.loads(frame[item["name"]].to_json(orient="values")),
        }
        for item in metadata["inputs"]
    ]
    body = {"id": "r1", "inputs": inputs, "outputs": [{"name": "probabilities"}]}
    answer = httpx.post(f"{url}/v2/models/adult/versions/1/infer", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["id"] == "r1"
    assert result["model_version"] == "1"
    assert [output["name"] for output in result["outputs"]] == ["probabilities"]
    data = np.array(result["outputs"][0]["data"]).reshape(3, 2)
    assert np.array_equal(data, fitted_adult.pipeline.predict_proba(frame))
    wrong_version = httpx.post(
        f"{url}/v2/models/adult/versions/7/infer", json=body, headers=headers
    )
    assert wrong_version.status_code == 404


def test_metrics_report_requests_latency_errors_batches_model_and_predictions(server):
    url, _ = server
    text = httpx.get(f"{url}/metrics").text
    for name in (
        "shipyard_requests_total",
        "shipyard_request_seconds_bucket",
        "shipyard_errors_total",
        "shipyard_batch_size_bucket",
        'shipyard_model_info{name="adult",role="primary",version="1"} 1.0',
        "shipyard_predictions_total",
        "shipyard_prediction_score_bucket",
    ):
        assert name in text, name
    assert 'shipyard_errors_total{error="unauthorized"}' in text


def test_mlflow_client_json_with_nan_for_missing_values(server, fitted_adult):
    # MLflow's client serialises with Python's json module, which writes NaN for missing values.
    url, headers = server
    metadata = httpx.get(f"{url}/v1/models/adult", headers=headers).json()
    nullable = next(
        column["name"] for column in metadata["contract"]["columns"] if column.get("nullable")
    )
    frame = fitted_adult.frame.head(3).copy()
    frame[nullable] = np.array([np.nan] * 3, dtype=object)  # missing, as in the training data
    split = frame.to_dict(orient="split")
    body = json.dumps({"dataframe_split": {"columns": split["columns"], "data": split["data"]}})
    assert "NaN" in body
    response = httpx.post(
        f"{url}/invocations", content=body, headers={**headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    expected = fitted_adult.pipeline.predict_proba(frame).argmax(axis=1)
    assert response.json()["predictions"] == [fitted_adult.classes[i] for i in expected]
    infinite = body.replace("NaN", "Infinity", 1)
    refused = httpx.post(
        f"{url}/invocations",
        content=infinite,
        headers={**headers, "Content-Type": "application/json"},
    )
    assert refused.status_code == 422


def test_two_different_keys_are_refused_as_ambiguous(server, fitted_adult, keys):
    url, _ = server
    _, key = keys
    predict = f"{url}/v1/models/adult/predict"
    record = fitted_adult.records[0]
    mixed = httpx.post(
        predict, json=record, headers={"X-API-Key": key, "Authorization": "Bearer sy_wrong"}
    )
    assert mixed.status_code == 401
    assert mixed.json()["error"] == "ambiguous_credentials"
    assert "send one key" in mixed.json()["message"]
    swapped = httpx.post(
        predict, json=record, headers={"X-API-Key": "sy_wrong", "Authorization": f"Bearer {key}"}
    )
    assert swapped.status_code == 401
    twice = httpx.post(predict, json=record, headers=[("X-API-Key", key), ("X-API-Key", "x")])
    assert twice.status_code == 401
    same = httpx.post(
        predict, json=record, headers={"X-API-Key": key, "Authorization": f"Bearer {key}"}
    )
    assert same.status_code == 200
    metrics = httpx.get(f"{url}/metrics").text
    assert 'shipyard_client_errors_total{reason="ambiguous_credentials"} 3.0' in metrics


def test_the_keys_file_is_private_even_over_a_stale_partial_file(tmp_path):
    path = tmp_path / "keys" / "api-keys.json"
    path.parent.mkdir()
    stale = path.with_name(f".{path.name}.partial")
    stale.write_text("{}")
    stale.chmod(0o644)
    store = KeyStore(path)
    store.create("first")
    assert path.stat().st_mode & 0o777 == 0o600
