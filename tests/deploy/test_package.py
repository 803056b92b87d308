"""``shipyard package``: the build context, its manifests, and its entry point in a fresh venv."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from tests.deploy.helpers import held_out_records
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.deploy.entrypoint import serve_arguments, workers_for
from shipyard.errors import ConfigError

KEY = "a-deployment-secret-of-32-chars!"
K8S_VERSION = kubernetes_validate.latest_version()


@pytest.fixture(scope="module")
def context(adult_model, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("package") / "context"
    result = CliRunner().invoke(
        app,
        [
            *("package", "adult:1", "-o", str(folder), "--k8s", "--cpu", "2"),
            *("--image", "r/adult:1", "--home", str(adult_model.home)),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return folder


def _free_port() -> int:
    with socket.socket() as handle:
        handle.bind(("127.0.0.1", 0))
        return int(handle.getsockname()[1])


def test_the_dockerfile_pins_the_wheels_runs_as_a_user_and_checks_ready(context: Path) -> None:
    dockerfile = (context / "Dockerfile").read_text()
    requirements = (context / "requirements.txt").read_text().splitlines()[1:]
    assert requirements
    assert all("==" in line for line in requirements)
    names = {line.split("==")[0] for line in requirements}
    assert {"lightgbm", "numpy", "starlette", "uvicorn"} <= names
    # Exactly what serving this LightGBM bundle needs: no training-only or other-family extras.
    assert not names & {"xgboost", "xgboost-cpu", "catboost", "torch", "fairlearn", "dask"}
    parts = (
        "USER shipyard",
        "HEALTHCHECK",
        "/ready",
        "--no-deps",
        "entrypoint --check",
        "libgomp1",
    )
    for part in parts:
        assert part in dockerfile
    recorded = json.loads((context / "context.json").read_text())
    assert recorded["reference"] == "adult:1"
    assert recorded["manifest_sha256"] in dockerfile
    assert (context / "wheels" / recorded["wheel"]).is_file()


@pytest.mark.parametrize("name", ["deployment.yaml", "service.yaml", "hpa.yaml"])
def test_the_manifests_validate_against_the_kubernetes_schemas(context: Path, name: str) -> None:
    document = yaml.safe_load((context / "k8s" / name).read_text())
    kubernetes_validate.validate(document, K8S_VERSION, strict=True)


def test_the_deployment_has_probes_limits_and_the_secret(context: Path) -> None:
    deployment = yaml.safe_load((context / "k8s" / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["resources"]["limits"]["cpu"] == "2"
    assert container["image"] == "r/adult:1"
    assert pod["volumes"][0]["secret"]["secretName"] == "adult-api-key"


def test_the_inference_service_runs_a_valid_container_with_the_v2_protocol(
    context: Path,
) -> None:
    service = yaml.safe_load((context / "k8s" / "inferenceservice.yaml").read_text())
    assert service["apiVersion"] == "serving.kserve.io/v1beta1"
    assert service["kind"] == "InferenceService"
    predictor = service["spec"]["predictor"]
    assert {"name": "PROTOCOL", "value": "v2"} in predictor["containers"][0]["env"]
    # KServe's schema is a CRD that kubernetes-validate does not ship: its predictor is a pod
    # spec, validated as one.
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "predictor"},
        "spec": {key: predictor[key] for key in ("containers", "volumes", "securityContext")},
    }
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)


def test_package_refuses_a_folder_that_is_not_empty(adult_model, tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    result = CliRunner().invoke(
        app, ["package", "adult", "-o", str(tmp_path), "--home", str(adult_model.home)]
    )
    assert result.exit_code != 0
    assert "not an empty folder" in result.output
    assert [path.name for path in tmp_path.iterdir()] == ["keep.txt"]


def test_workers_follow_the_cpu_limit_and_the_key_is_required(tmp_path: Path) -> None:
    assert workers_for(2.5, 16) == 2
    assert workers_for(0.5, 16) == 1
    assert workers_for(None, 3) == 3
    with pytest.raises(ConfigError, match="SHIPYARD_MODEL"):
        serve_arguments({"SHIPYARD_HOME": "x"}, tmp_path / "keys.json")
    run = subprocess.run(
        [sys.executable, "-m", "shipyard.deploy.entrypoint"],
        env={**os.environ, "SHIPYARD_API_KEY_FILE": str(tmp_path / "none")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert "No API key" in run.stderr


@pytest.fixture(scope="module")
def fresh_venv(context: Path, tmp_path_factory) -> Path:
    """A new virtual environment holding only the context's pinned requirements and wheel.

    uv installs them (from its cache after the first run: seconds, where pip takes minutes to
    unpack the same wheels); the image's Dockerfile installs the same list with pip.
    """
    from uv import find_uv_bin

    uv = find_uv_bin()
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    wheels = [str(path) for path in sorted((context / "wheels").glob("shipyard-*.whl"))]
    install = [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python")]
    requirements = str(context / "requirements.txt")
    subprocess.run(
        [*install, "--no-deps", "--only-binary=:all:", "-r", requirements, *wheels],
        check=True,
        timeout=900,
    )
    return venv


def test_the_entry_point_serves_the_model_from_a_fresh_venv(
    context: Path, fresh_venv: Path, tmp_path: Path
) -> None:
    home = tmp_path / "registry"
    shutil.copytree(context / "registry", home)
    key_file = tmp_path / "api-key"
    key_file.write_text(KEY + "\n")
    port = _free_port()
    environment = {
        "PATH": f"{fresh_venv / 'bin'}:{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path),
        "SHIPYARD_MODEL": "adult:1",
        "SHIPYARD_HOME": str(home),
        "SHIPYARD_API_KEY_FILE": str(key_file),
        "SHIPYARD_CACHE_DIR": str(tmp_path / "cache"),
        "SHIPYARD_WORKERS": "1",
        "PORT": str(port),
        "HOST": "127.0.0.1",
    }
    python = str(fresh_venv / "bin" / "python")
    check = subprocess.run(
        [python, "-m", "shipyard.deploy.entrypoint", "--check"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert check.returncode == 0, check.stderr
    assert "Verified adult:1" in check.stdout
    log = tmp_path / "server.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [python, "-m", "shipyard.deploy.entrypoint"],
            env=environment,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300
        while True:
            try:
                with urllib.request.urlopen(f"{base}/ready", timeout=5) as answer:
                    assert json.loads(answer.read())["version"] == 1
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.5)
        records = held_out_records(5)
        body = json.dumps(records).encode()
        request = urllib.request.Request(
            f"{base}/v1/models/adult/predict",
            data=body,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            served = json.loads(answer.read())["predictions"]
        from shipyard.registry.store import Registry

        registry = Registry(f"sqlite:///{home / 'registry.db'}", home / "artifacts")
        expected = registry.load_predictor("adult:1").predict_records(records)
        registry.close()
        assert [answer["prediction"] for answer in served] == [
            answer["prediction"] for answer in expected
        ]
        for got, want in zip(served, expected, strict=True):
            assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-12)
        unauthorised = urllib.request.Request(
            f"{base}/v1/models/adult/predict", data=body, headers={"Authorization": "Bearer no"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(unauthorised, timeout=30)
        assert refused.value.code == 401
        refused.value.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
