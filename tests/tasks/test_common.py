"""The common checks: the same tests run on every registered task.

Like scikit-learn's ``check_estimator``, this module knows no task by name: it asks the task
registry for every task (the built-in ones, and the example plugin task in ``example_plugin/``,
registered through the ``shipyard.tasks`` entry-point group exactly as an installed package
would be), trains each from its own ``small_config``, and checks export parity,
reproducibility from the seed, the manifest, bad requests over a real socket, and the
monitoring round trip (serve, log, sketch).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.config import PipelineConfig, ServingConfig, load_config_dict
from shipyard.data.sources import read_table
from shipyard.pipeline import TrainRun, train
from shipyard.pipeline.monitor import monitor
from shipyard.registry.bundle import MANIFEST, read_manifest
from shipyard.registry.store import Registry
from shipyard.serving import build_app, running_server
from shipyard.tasks import base
from shipyard.tasks.base import Task, available_tasks, task_by_name, task_for_config

PLUGIN_FOLDER = Path(__file__).parent / "example_plugin"
BUILT_IN = list(base.BUILTIN_TASKS)
PLUGIN_TASK = "nearest_centroid"
REQUESTS = 24


@pytest.fixture(scope="module", autouse=True)
def plugin_installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Install the example task as pip would: importable, with a dist-info entry point."""
    site = tmp_path_factory.mktemp("site-packages")
    info = site / "shipyard_centroid-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: shipyard-centroid\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(
        f"[{base.ENTRY_POINT_GROUP}]\n{PLUGIN_TASK} = shipyard_centroid:NearestCentroidTask\n"
    )
    sys.path[:0] = [str(site), str(PLUGIN_FOLDER)]
    try:
        yield
    finally:
        for entry in (str(site), str(PLUGIN_FOLDER)):
            sys.path.remove(entry)
        base._loaded.pop(PLUGIN_TASK, None)
        sys.modules.pop("shipyard_centroid", None)


@dataclass
class Trained:
    task: Task
    config: PipelineConfig
    run: TrainRun
    registry: Registry
    folder: Path


def _train(task: Task, folder: Path) -> tuple[PipelineConfig, TrainRun]:
    raw = task.small_config(folder)
    raw["registry"] = {"home": str(folder / "home")}
    config = load_config_dict(raw)
    return config, train(config)


@pytest.fixture(scope="module", params=[*BUILT_IN, PLUGIN_TASK])
def trained(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    task = task_by_name(request.param)
    folder = tmp_path_factory.mktemp(request.param)
    config, run = _train(task, folder)
    return Trained(task, config, run, Registry.from_config(config.registry), folder)


def _model_files(manifest: dict[str, Any]) -> dict[str, str]:
    """The hashes of the files that hold the model itself."""
    model = manifest["model"]
    paths = [model["path"]] if model.get("path") else list(model.get("files", {}).values())
    return {path: manifest["files"][path] for path in paths}


def test_the_plugin_is_registered_through_its_entry_point():
    names = [task.name for task in available_tasks()]
    assert names[: len(BUILT_IN)] == BUILT_IN  # built-in tasks first, never replaced
    assert PLUGIN_TASK in names
    assert type(task_by_name(PLUGIN_TASK)).__module__ == "shipyard_centroid"


def test_the_task_is_found_from_its_config_and_from_its_bundle(trained: Trained):
    assert task_for_config(trained.config) is trained.task
    manifest = trained.registry.verify(trained.run.version.reference)
    assert base.task_for_manifest(manifest) is trained.task
    assert trained.run.version.aliases == ("champion",)


def test_the_exported_model_answers_like_the_trained_one(trained: Trained):
    gaps = {key: value for key, value in trained.run.parity.items() if key != "rows"}
    assert gaps, "the task reported no parity measurement"
    assert max(gaps.values()) <= 1e-6
    assert trained.run.parity["rows"] > 0


def test_the_same_seed_gives_the_same_model(trained: Trained, tmp_path: Path):
    _, again = _train(trained.task, tmp_path)
    first = trained.registry.verify(trained.run.version.reference)
    second = Registry.from_config(
        load_config_dict(
            {**trained.task.small_config(tmp_path), "registry": {"home": str(tmp_path / "home")}}
        ).registry
    ).verify(again.version.reference)
    assert _model_files(first) == _model_files(second)


def test_the_manifest_round_trips_and_names_every_file(trained: Trained):
    bundle = Path(trained.run.version.bundle_path)
    manifest = read_manifest(bundle)
    assert json.loads(json.dumps(manifest)) == manifest
    on_disk = {str(path.relative_to(bundle)) for path in bundle.rglob("*") if path.is_file()}
    assert on_disk - {MANIFEST} == set(manifest["files"])
    for key in ("task", "target", "metric", "model", "metrics", "leaderboard", "parity", "rows"):
        assert key in manifest, key
    assert manifest["metrics"]["test"], "no test metric was recorded"
    assert manifest["code_version"]


def _requests(trained: Trained, count: int) -> list[Any]:
    """Real inputs from the training source: records, users, forecasts or questions."""
    frame = read_table(trained.config.data.source).head(count)
    if "forecast" in trained.task.capabilities.protocols:
        assert trained.config.forecasting is not None
        covariates = {name: [0] * 7 for name in trained.config.forecasting.covariates}
        return [{"horizon": 1 + index % 7, "covariates": covariates} for index in range(count)]
    if "ask" in trained.task.capabilities.protocols:
        assert trained.config.notes is not None
        return [{"question": text} for text in frame[trained.config.notes.question_column]]
    if "recommend" in trained.task.capabilities.protocols:
        assert trained.config.recommendation is not None
        return list(frame[trained.config.recommendation.user].tolist())
    data = trained.config.data
    labels = [data.target] if data.target is not None else []  # unsupervised tasks have none
    inputs = frame.drop(columns=[*labels, *data.drop])
    return json.loads(inputs.to_json(orient="records"))


def _ask(client: httpx.Client, trained: Trained, request: Any) -> httpx.Response:
    name = trained.config.name
    if "forecast" in trained.task.capabilities.protocols:
        return client.post(f"/v1/models/{name}/forecast", json=request)
    if "recommend" in trained.task.capabilities.protocols:
        return client.get(f"/v1/models/{name}/recommend", params={"user": request})
    if "ask" in trained.task.capabilities.protocols:
        return client.post(f"/v1/models/{name}/ask", json=request)
    return client.post(f"/v1/models/{name}/predict", json=request)


def _serve(trained: Trained, **settings: Any) -> Any:
    return build_app(trained.registry, trained.config.name, ServingConfig(auth=False, **settings))


def test_bad_requests_get_a_4xx_that_names_the_problem(trained: Trained):
    name = trained.config.name
    with running_server(_serve(trained)) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert client.get("/health").status_code == 200
        if "forecast" in trained.task.capabilities.protocols:
            answer = client.post(f"/v1/models/{name}/forecast", json={"horizon": "many"})
        elif "recommend" in trained.task.capabilities.protocols:
            answer = client.get(f"/v1/models/{name}/recommend", params={"k": "many"})
        elif "ask" in trained.task.capabilities.protocols:
            answer = client.post(f"/v1/models/{name}/ask", json={"question": 42})
        else:
            answer = client.post(f"/v1/models/{name}/predict", json={"no_such_field": 1})
        assert 400 <= answer.status_code < 500, answer.text
        assert answer.json()["message"]
        unknown = client.post("/v1/models/no-such-model/predict", json={})
        assert 400 <= unknown.status_code < 500


def test_every_route_the_task_adds_is_served(trained: Trained):
    app = _serve(trained)
    served = {getattr(route, "path", None) for route in app.routes}
    for builder in trained.task.route_builders():
        with running_server(app) as url, httpx.Client(base_url=url, timeout=60) as client:
            for route in builder(None):  # the paths only: the routes are not called here
                assert route.path in served
                path = route.path.replace("{name}", trained.config.name)
                assert client.get(path).status_code == 200, path


def test_served_answers_are_logged_and_sketched_by_monitoring(trained: Trained):
    requests = _requests(trained, REQUESTS)
    app = _serve(trained, log_predictions=True)
    with running_server(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        for request in requests:
            answer = _ask(client, trained, request)
            assert answer.status_code == 200, answer.text
            assert answer.json()["request_id"]
    result = monitor(trained.registry, trained.config.name, window_size=len(requests))
    assert result.counts["predictions"] == len(requests)
    first = result.windows[0]
    assert first.count == len(requests)
    assert first.closed
    assert first.report, "no column was sketched"
    assert all(row["samples"] > 0 for row in first.report)


def test_the_try_it_form_answers_one_record_or_says_why_not(trained: Trained):
    from shipyard.ui.try_it import TryItService

    version = trained.run.version
    service = TryItService(trained.registry)
    form = service.form(version.name, version.version)
    if not form.available:
        assert form.message  # the front doors show it in the form's place
        return
    # The form's defaults, a sentence where a text field starts empty, a small PNG to upload.
    values = {
        field.name: field.default
        or ("a short message to classify" if field.kind in ("text", "textarea") else "")
        for field in form.fields
    }
    for field in form.fields:
        if field.kind == "image":
            values[field.name] = _small_png()
    answer = service.answer(version.name, version.version, values)
    assert answer.prediction is not None
    if answer.probabilities:
        assert sum(answer.probabilities.values()) == pytest.approx(1.0)


def _small_png() -> str:
    """A 28 x 28 grey gradient as a base64 PNG, what an upload field sends."""
    import base64
    import io

    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    pixels = np.tile(np.arange(0, 252, 9, dtype=np.uint8), (28, 1))
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
