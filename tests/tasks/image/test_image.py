"""The image task end to end on real X-rays: sources, contract, ONNX parity, serving, tampering.

One tiny model (a small CNN and the linear baseline, 1 epoch, 16 pixels, 160 PneumoniaMNIST
images) is trained once for the module; the real driver runs, and a spy keeps the PyTorch
network the driver exported, so that served answers can be compared with it.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from shipyard.config import ServingConfig, load_config_dict
from shipyard.datasets.pneumoniamnist import load_pneumoniamnist
from shipyard.errors import BundleIntegrityError, DataError, ExportError
from shipyard.pipeline import train
from shipyard.registry.store import Registry
from shipyard.serving import build_app, running_server
from shipyard.tasks.base import task_by_name
from shipyard.tasks.image.export import check_image_parity, torch_probabilities
from shipyard.tasks.image.pixels import model_input
from shipyard.tasks.image.sources import encode_png, read_images

MAX_BYTES = 5_000


def _png(pixels: np.ndarray) -> str:
    return base64.b64encode(
        encode_png(pixels[:, :, None] if pixels.ndim == 2 else pixels)
    ).decode()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("image")
    task = task_by_name("image_classification")
    raw = task.small_config(folder)
    raw["registry"] = {"home": str(folder / "home")}
    raw["image"] = {
        "candidates": ["small_cnn", "linear_pixels"],
        "epochs": 1,
        "size": 16,
        "max_bytes": MAX_BYTES,
    }
    config = load_config_dict(raw)
    captured: dict[str, Any] = {}
    original = task.fit

    def spy(*arguments: Any) -> Any:
        captured["fitted"] = original(*arguments)
        return captured["fitted"]

    task.fit = spy  # type: ignore[method-assign]
    try:
        run = train(config)
    finally:
        del task.fit
    registry = Registry.from_config(config.registry)
    return {"config": config, "run": run, "registry": registry, "fitted": captured["fitted"]}


@pytest.fixture(scope="module")
def server(trained: dict[str, Any]) -> Any:
    app = build_app(trained["registry"], trained["config"].name, ServingConfig(auth=False))
    with running_server(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def test_parity_single_and_batched_is_recorded_within_the_tolerance(trained):
    parity = trained["run"].parity
    assert parity["single"] <= 1e-4
    assert parity["batched"] <= 1e-4
    assert parity["rows"] > 0


def test_parity_check_fails_when_the_export_differs(trained):
    fitted = trained["fitted"]
    pixels = model_input(list(load_pneumoniamnist().test_images[:8, :, :, None]), 16)
    assert max(check_image_parity(fitted.payload["network"], fitted.predictor, pixels).values())
    wrong = type(fitted.predictor).__new__(type(fitted.predictor))
    wrong.__dict__.update(fitted.predictor.__dict__)
    real_run = fitted.predictor.run
    wrong.run = lambda batch: {"probabilities": real_run(batch)["probabilities"][:, ::-1]}
    with pytest.raises(ExportError, match="differs from the trained network"):
        check_image_parity(fitted.payload["network"], wrong, pixels)


def test_served_answers_for_50_images_equal_the_training_time_model(trained, server):
    images = load_pneumoniamnist().test_images[:50]
    name = trained["config"].name
    answer = server.post(f"/v1/models/{name}/predict", json=[{"image": _png(p)} for p in images])
    assert answer.status_code == 200, answer.text
    served = np.array(
        [
            [row["probabilities"][label] for label in ("normal", "pneumonia")]
            for row in answer.json()["predictions"]
        ]
    )
    expected = torch_probabilities(
        trained["fitted"].payload["network"], model_input(list(images[:, :, :, None]), 16)
    )
    assert np.max(np.abs(served - expected)) <= 1e-4
    threshold = trained["run"].decision_threshold["value"]
    for row in answer.json()["predictions"]:
        assert row["threshold"] == pytest.approx(threshold)
        assert row["prediction"] == (
            "pneumonia" if row["probabilities"]["pneumonia"] >= threshold else "normal"
        )


def test_multipart_upload_and_v2_tensor_answer_like_json(trained, server):
    image = load_pneumoniamnist().test_images[0]
    name = trained["config"].name
    as_json = server.post(f"/v1/models/{name}/predict", json={"image": _png(image)}).json()
    upload = server.post(
        f"/v1/models/{name}/predict",
        files={"image": ("xray.png", base64.b64decode(_png(image)), "image/png")},
    )
    assert upload.status_code == 200, upload.text
    assert upload.json()["probabilities"] == as_json["probabilities"]
    tensor = server.post(
        f"/v2/models/{name}/infer",
        json={
            "inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [_png(image)]}]
        },
    )
    assert tensor.status_code == 200, tensor.text
    probabilities = next(o for o in tensor.json()["outputs"] if o["name"] == "probabilities")
    assert probabilities["data"] == list(as_json["probabilities"].values())


def test_corrupt_and_wrong_size_images_get_422_naming_the_problem(trained, server):
    name = trained["config"].name
    corrupt = base64.b64encode(b"\x89PNG\r\n\x1a\n this is not a png").decode()
    answer = server.post(f"/v1/models/{name}/predict", json={"image": corrupt})
    assert answer.status_code == 422
    assert "cannot be read as an image" in answer.json()["message"]
    big = np.zeros((300, 300), dtype=np.uint8)
    answer = server.post(f"/v1/models/{name}/predict", json={"image": _png(big)})
    assert answer.status_code == 422
    assert "300 x 300 pixels" in answer.json()["message"]
    colour = np.zeros((28, 28, 3), dtype=np.uint8)
    answer = server.post(f"/v1/models/{name}/predict", json={"image": _png(colour)})
    assert answer.status_code == 422
    assert "channel" in answer.json()["message"]


def test_an_image_over_the_size_limit_gets_413(trained, server):
    noise = np.random.default_rng(0).integers(0, 256, (100, 100), dtype=np.uint8)
    assert len(base64.b64decode(_png(noise))) > MAX_BYTES
    answer = server.post(
        f"/v1/models/{trained['config'].name}/predict", json={"image": _png(noise)}
    )
    assert answer.status_code == 413
    assert f"over the limit of {MAX_BYTES}" in answer.json()["message"]


def test_explain_returns_a_saliency_png(trained, server):
    image = load_pneumoniamnist().test_images[1]
    answer = server.post(
        f"/v1/models/{trained['config'].name}/explain", json={"image": _png(image)}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"
    overlay = Image.open(io.BytesIO(answer.content))
    assert overlay.mode == "RGB"
    assert overlay.size[0] >= 28


def test_a_tampered_onnx_file_is_refused(trained, tmp_path):
    import shutil

    run = trained["run"]
    registry: Registry = trained["registry"]
    bundle = Path(run.version.bundle_path)
    backup = tmp_path / "model.onnx"
    shutil.copy(bundle / "model.onnx", backup)
    try:
        data = bytearray((bundle / "model.onnx").read_bytes())
        data[-20] ^= 0xFF
        (bundle / "model.onnx").write_bytes(bytes(data))
        with pytest.raises(BundleIntegrityError, match=r"model\.onnx"):
            registry.verify(run.version.reference)
    finally:
        shutil.copy(backup, bundle / "model.onnx")
    registry.verify(run.version.reference)


def test_the_manifest_states_limits_and_evaluation(trained):
    manifest = json.loads((Path(trained["run"].version.bundle_path) / "manifest.json").read_text())
    assert "Not a medical device" in manifest["intended_use"]
    evaluation = manifest["evaluation"]
    assert set(evaluation["at_threshold"]) == {"sensitivity", "specificity"}
    assert 0.0 <= evaluation["calibration"]["expected_calibration_error"] <= 1.0
    assert set(evaluation["robustness_flips"]) == {
        "noise",
        "brightness",
        "contrast",
        "blur",
        "rotation",
    }
    assert [row["name"] for row in manifest["leaderboard"]] != []


def test_the_card_and_report_show_the_limits_and_the_confident_errors(trained):
    from shipyard.evaluation.card import build_card
    from shipyard.evaluation.report import render_report
    from shipyard.registry.bundle import read_manifest
    from shipyard.tasks.image.documents import IMAGE_SECTIONS
    from shipyard.tasks.image.task import ImageClassificationTask

    manifest = read_manifest(Path(trained["run"].version.bundle_path))
    card = build_card(manifest, None, sections=IMAGE_SECTIONS).to_markdown()
    assert "Not a medical device" in card
    assert "Intended use" in card
    data = load_pneumoniamnist()
    images = list(data.test_images[:40, :, :, None])
    fitted = trained["fitted"]
    outputs = fitted.predictor.score_images(images)
    split = SimpleNamespace(test=SimpleNamespace(images=images), classes=["normal", "pneumonia"])
    grid = ImageClassificationTask._error_grid(fitted, split, data.test_labels[:40], outputs)
    errors = sum(
        fitted.predictor.class_index(row) != label
        for row, label in zip(outputs.tolist(), data.test_labels[:40], strict=True)
    )
    assert Image.open(io.BytesIO(grid)).size == (112 * max(1, min(8, errors)), 112 + 14)
    report = render_report(
        {**manifest, "name": "xrays"}, {"confident_errors": grid}, IMAGE_SECTIONS
    )
    assert "Robustness" in report
    assert "confident_errors" in report


def test_sources_folder_table_and_npz_read_the_same_images(tmp_path):
    data = load_pneumoniamnist()
    images, labels = data.test_images[:6], data.test_labels[:6]
    names = []
    for index, (pixels, label) in enumerate(zip(images, labels, strict=True)):
        folder = tmp_path / "folder" / ("pneumonia" if label else "normal")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{index}.png").write_bytes(encode_png(pixels[:, :, None]))
        names.append(str(folder / f"{index}.png"))
    from_folder, _ = read_images(str(tmp_path / "folder"), "label", "image")
    assert len(from_folder) == 6
    assert set(from_folder.labels) <= {"normal", "pneumonia"}
    table = tmp_path / "paths.csv"
    pd.DataFrame({"image": names, "label": labels}).to_csv(table, index=False)
    from_table, _ = read_images(str(table), "label", "image")
    assert [p.tolist() for p in from_table.images] == [p[:, :, None].tolist() for p in images]
    arrays = tmp_path / "arrays.npz"
    np.savez(arrays, images=images, labels=labels)
    from_npz, _ = read_images(str(arrays), "label", "image")
    assert from_npz.labels == labels.tolist()


def test_a_corrupt_training_file_is_named(tmp_path):
    folder = tmp_path / "normal"
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"broken\.png: cannot be read as an image"):
        read_images(str(tmp_path), "label", "image")


def test_the_command_line_fills_the_target_of_class_folders(tmp_path, monkeypatch):
    from shipyard.cli.commands import build_config
    from shipyard.errors import ConfigError
    from shipyard.tasks.base import task_for_config

    monkeypatch.chdir(tmp_path)
    flags = {"data": str(tmp_path), "task": "image_classification"}
    assert build_config(None, flags, []).data.target == "label"
    # A task with no default target still needs one: its config check says so.
    flags = {"data": "table.csv", "task": "binary", "target": None}
    config = build_config(None, flags, [])
    assert config.data.target is None
    with pytest.raises(ConfigError, match="target"):
        task_for_config(config)


def test_retraining_adds_labelled_requests_to_the_images(trained, tmp_path):
    from shipyard.tasks.image.retrain import extend_images

    config = trained["config"]
    image = load_pneumoniamnist().test_images[2]
    learn = [{"inputs": {"image": _png(image)}, "label": "pneumonia"}]
    rows, new = extend_images(config, learn, tmp_path / "more.parquet")
    assert (rows, new) == (161, 1)
    images, _ = read_images(str(tmp_path / "more.parquet"), "label", "image")
    assert len(images) == 161
    assert images.labels[-1] == "pneumonia"
    assert images.images[-1][:, :, 0].tolist() == image.tolist()


def test_a_stream_scores_raw_image_bytes_like_the_http_route(trained, server, tmp_path):
    """A stream event may be the image file itself: answered as ``/predict`` answers it."""
    import asyncio
    import shutil
    import uuid

    from tests.streams.conftest import NATS_URL, wait_for_async
    from tests.streams.test_nats_stream import publish, read_all, remove, stored

    from shipyard.config import MonitoringConfig, StreamConfig
    from shipyard.streams import serve_stream

    name = trained["config"].name
    shutil.copytree(trained["config"].registry.home, tmp_path / "home")
    registry = Registry(
        f"sqlite:///{tmp_path / 'home' / 'registry.db'}", tmp_path / "home" / "artifacts"
    )
    images = [_png(image) for image in load_pneumoniamnist().test_images[:3]]
    expected = server.post(f"/v1/models/{name}/predict", json=[{"image": i} for i in images])
    assert expected.status_code == 200, expected.text
    base = f"shipyard-test.{uuid.uuid4().hex[:10]}"
    source, to = f"{base}.in", f"{base}.out"
    ids = [f"xray-{index}" for index in range(len(images))]
    config = StreamConfig(source=NATS_URL, subject=source, to=to, dead_letter=f"{base}.dead")

    async def scenario() -> list[tuple[str, dict[str, Any]]]:
        files = [base64.b64decode(image) for image in images]
        await publish(NATS_URL, source, list(zip(ids, files, strict=True)))
        ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        run = asyncio.create_task(
            serve_stream(
                registry,
                name,
                config,
                ServingConfig(auth=False, poll_seconds=0),
                MonitoringConfig(drift_refresh_seconds=0),
                on_ready=ready.set_result,
                handle_signals=False,
            )
        )
        consumer = await asyncio.wait_for(ready, 60)

        async def answered() -> bool:
            return await stored(NATS_URL, to) >= len(ids)

        await wait_for_async(answered, 120, "the answers")
        consumer.stop()
        await run
        return await read_all(NATS_URL, to)

    try:
        answers = dict(asyncio.run(scenario()))
    finally:
        asyncio.run(remove(NATS_URL, source, to, f"{base}.dead"))
        registry.close()
    assert sorted(answers) == ids
    for event_id, http_answer in zip(ids, expected.json()["predictions"], strict=True):
        answer = dict(answers[event_id])
        assert answer.pop("id") == event_id
        http_answer.pop("request_id", None)  # the HTTP request's own id
        assert {key: answer[key] for key in http_answer} == http_answer
