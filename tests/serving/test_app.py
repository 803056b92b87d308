from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import httpx
import numpy as np
import pandas as pd
import pytest

from shipyard.config import ServingConfig
from shipyard.errors import BundleIntegrityError
from shipyard.registry.store import Registry
from shipyard.serving import build_app, running_server
from shipyard.training.export import frame_to_records


@pytest.fixture(scope="module")
def test_records(trained_adult):
    frame = pd.read_csv(trained_adult.test_csv, skipinitialspace=True)
    return frame, frame_to_records(frame.drop(columns=["income"]))


@pytest.fixture(scope="module")
def server(trained_adult):
    app = build_app(
        trained_adult.registry,
        "adult",
        ServingConfig(max_body_bytes=64_000, max_records=100, auth=False),
    )
    with running_server(app) as url:
        yield url


def test_end_to_end_over_a_real_socket(server, trained_adult, test_records):
    frame, records = test_records
    with httpx.Client(base_url=server) as client:
        single = [
            client.post("/v1/models/adult/predict", json=record).json() for record in records[:50]
        ]
        batch = client.post("/v1/models/adult/predict", json=records[:50]).json()
    predictor = trained_adult.registry.load_predictor("adult")
    expected = predictor.score_frame(frame.head(50))
    served = np.array(
        [[answer["probabilities"][label] for label in ("<=50K", ">50K")] for answer in single]
    )
    np.testing.assert_allclose(served, expected, atol=1e-12)
    assert [answer["prediction"] for answer in batch["predictions"]] == [
        answer["prediction"] for answer in single
    ]
    assert all(answer["version"] == trained_adult.run.version.version for answer in single)
    accuracy = np.mean(
        [
            answer["prediction"] == actual
            for answer, actual in zip(single, frame["income"].head(50), strict=True)
        ]
    )
    assert accuracy > 0.7


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"age": None}, "age", "must not be null"),
        ({"age": "forty"}, "age", "expected a number"),
        ({"age": True}, "age", "expected a number"),
        ({"age": -3}, "age", "below the minimum"),
        ({"hours_per_week": 40}, "hours_per_week", "did you mean 'hours-per-week'"),
    ],
)
def test_bad_record_gets_422_naming_the_field(server, test_records, change, field, words):
    record = {**test_records[1][0], **change}
    response = httpx.post(f"{server}/v1/models/adult/predict", json=record)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "validation_error"
    assert f"'{field}'" in body["message"]
    assert any(v["field"] == field and words in v["error"] for v in body["violations"])


def test_unknown_category_is_scored_under_the_default_policy_and_counted(server, test_records):
    # data.unknown_categories defaults to as_rare: 'Mal' is scored (sex has no rare bucket, so
    # as a missing value) and counted; 'error' would refuse it with "did you mean 'Male'?".
    record = {**test_records[1][0], "sex": "Mal"}
    response = httpx.post(f"{server}/v1/models/adult/predict", json=record)
    assert response.status_code == 200, response.text
    metrics = httpx.get(f"{server}/metrics").text
    counted = [
        line
        for line in metrics.splitlines()
        if line.startswith("shipyard_unknown_categories_total{") and 'column="sex"' in line
    ]
    assert counted
    assert float(counted[0].split()[-1]) >= 1


def test_missing_field_is_named(server, test_records):
    record = dict(test_records[1][0])
    del record["education"]
    response = httpx.post(f"{server}/v1/models/adult/predict", json=record)
    assert response.status_code == 422
    assert "'education'" in response.json()["message"]
    assert "required" in response.json()["message"]


def test_protocol_errors_are_4xx_with_a_message(server, test_records):
    post = f"{server}/v1/models/adult/predict"
    not_json = httpx.post(post, content=b"{not json", headers={"content-type": "application/json"})
    assert not_json.status_code == 400
    assert "not valid JSON" in not_json.json()["message"]
    assert httpx.post(post, json=[]).status_code == 422
    assert (
        httpx.post(post, json=[1, 2])
        .json()["violations"][0]["error"]
        .startswith("each record must be a JSON object")
    )
    too_large = httpx.post(post, content=b"[" + b" " * 70_000 + b"]")
    assert too_large.status_code == 413
    too_many = httpx.post(post, json=[test_records[1][0]] * 101)
    assert too_many.status_code == 413
    unknown = httpx.post(f"{server}/v1/models/other/predict", json=test_records[1][0])
    assert unknown.status_code == 404
    assert "adult" in unknown.json()["message"]
    assert httpx.get(f"{server}/v1/models/adult/predict").status_code == 405


def test_health_ready_metadata_and_openapi(server, trained_adult):
    assert httpx.get(f"{server}/health").json() == {"status": "ok"}
    ready = httpx.get(f"{server}/ready").json()
    assert ready["version"] == trained_adult.run.version.version
    metadata = httpx.get(f"{server}/v1/models/adult").json()
    assert metadata["classes"] == ["<=50K", ">50K"]
    assert "roc_auc" in metadata["metrics"]
    document = httpx.get(f"{server}/openapi.json").json()
    record = document["components"]["schemas"]["Record"]
    # Under the default unknown-categories policy (as_rare) any string is scored, so the
    # schema allows any string rather than an enum of the training categories.
    assert record["properties"]["sex"] == {"type": "string"}
    assert "age" in record["required"]
    assert "workclass" not in record["required"]  # it has missing values in Adult
    assert "/v1/models/adult/predict" in document["paths"]


def test_tampered_bundle_is_refused(trained_adult, tmp_path):
    copy_home = tmp_path / "copy"
    shutil.copytree(trained_adult.home / ".shipyard", copy_home)
    registry = Registry(f"sqlite:///{copy_home / 'registry.db'}", copy_home / "artifacts")
    version = registry.resolve("adult")
    model_file = next(version.bundle_path.glob("model.*"))
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0x01
    model_file.write_bytes(bytes(data))
    with pytest.raises(BundleIntegrityError, match=model_file.name):
        build_app(registry, "adult", ServingConfig(auth=False))


def test_serving_works_with_pickle_disabled(trained_adult, test_records):
    home = trained_adult.home / ".shipyard"
    record = test_records[1][0]
    script = textwrap.dedent(f"""
        import json, pickle, urllib.request

        def refuse(*args, **kwargs):
            raise RuntimeError("pickle is disabled in this test")

        pickle.load = pickle.loads = refuse
        class NoUnpickler:
            def __init__(self, *args, **kwargs):
                refuse()
        pickle.Unpickler = NoUnpickler

        from shipyard.config import ServingConfig
        from shipyard.registry.store import Registry
        from shipyard.serving import build_app, running_server

        registry = Registry({f"sqlite:///{home / 'registry.db'}"!r}, {str(home / "artifacts")!r})
        app = build_app(registry, "adult", ServingConfig(auth=False))
        with running_server(app) as url:
            request = urllib.request.Request(
                url + "/v1/models/adult/predict", data=json.dumps({record!r}).encode(),
                headers={{"Content-Type": "application/json"}})
            print(urllib.request.urlopen(request).read().decode())
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    expected = trained_adult.registry.load_predictor("adult").predict_records([record])[0]
    assert answer["prediction"] == expected["prediction"]
    assert answer["probabilities"] == pytest.approx(expected["probabilities"], abs=1e-12)


def test_a_model_linked_to_an_identical_file_outside_is_refused(trained_adult, tmp_path):
    copy_home = tmp_path / "copy"
    shutil.copytree(trained_adult.home / ".shipyard", copy_home)
    registry = Registry(f"sqlite:///{copy_home / 'registry.db'}", copy_home / "artifacts")
    model_file = next(registry.resolve("adult").bundle_path.glob("model.*"))
    outside = tmp_path / model_file.name
    shutil.move(model_file, outside)
    model_file.symlink_to(outside)  # same bytes, so the manifest's hash would still match
    with pytest.raises(BundleIntegrityError, match="symbolic link"):
        build_app(registry, "adult", ServingConfig(auth=False))
