"""``shipyard export onnx``: one graph, within 1e-5 of the served answers, served by ORT too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from tests.deploy.helpers import held_out_records, live_server, post_json
from typer.testing import CliRunner

from shipyard import datasets
from shipyard.cli import app
from shipyard.config import load_config_dict
from shipyard.deploy import onnx_export
from shipyard.deploy.onnx_graph import build_graph
from shipyard.errors import ExportError
from shipyard.runtime.onnx_graph import OnnxGraph, OnnxPredictor
from shipyard.runtime.preprocess import MISSING_CATEGORY

ROWS = 1000


@pytest.fixture(scope="module")
def exported(registry_copy, tmp_path_factory) -> Path:
    """adult:1 exported to a file from 1,000 held-out Adult rows, and registered as adult:2."""
    folder = tmp_path_factory.mktemp("onnx")
    data = folder / "held-out.csv"
    datasets.load("adult").test.drop(columns="income").head(ROWS).to_csv(data, index=False)
    target = folder / "adult.onnx"
    result = CliRunner().invoke(
        app,
        [
            *("export", "onnx", "adult:1", "--data", str(data), "-o", str(target)),
            *("--register", "--home", str(registry_copy.artifacts.parent)),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "registered adult:2" in result.output
    return target


def _plain_session_answers(path: Path, predictor, records) -> np.ndarray:
    """Run the file in a bare ONNX Runtime session, fed the cleaned, settled records."""
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    records = predictor.settle_records(predictor.cleaner.clean_records(records))
    feed = {}
    for graph_input in session.get_inputs():
        values = [record.get(graph_input.name) for record in records]
        if graph_input.type == "tensor(string)":
            column = np.array([MISSING_CATEGORY if v is None else str(v) for v in values], object)
        else:
            column = np.array([np.nan if v is None else float(v) for v in values], np.float64)
        feed[graph_input.name] = column.reshape(-1, 1)
    return session.run(["outputs"], feed)[0]


def test_the_graph_uses_standard_operators_only(exported: Path) -> None:
    model = onnx.load(str(exported))
    onnx.checker.check_model(model, full_check=True)
    assert {node.domain or "ai.onnx" for node in model.graph.node} <= {"ai.onnx", "ai.onnx.ml"}
    assert {"TreeEnsemble", "LabelEncoder", "Concat"} <= {
        node.op_type for node in model.graph.node
    }


def test_the_onnx_file_answers_like_the_server_on_1000_records(registry_copy, exported):
    records = held_out_records(ROWS)
    with live_server(registry_copy, "adult:1") as url:
        served = []
        for start in range(0, ROWS, 250):  # under the request size limit
            answer = post_json(f"{url}/v1/models/adult/predict", records[start : start + 250])
            served += answer["predictions"]
    predictor = registry_copy.load_predictor("adult:1")
    found = _plain_session_answers(exported, predictor, records)
    labels = [str(label) for label in predictor.classes]
    expected = np.array(
        [[answer["probabilities"][label] for label in labels] for answer in served]
    )
    assert found.shape == (ROWS, 2)
    assert np.max(np.abs(found - expected)) <= 1e-5


def test_the_registered_graph_serves_through_onnx_runtime(registry_copy, exported):
    graph_version = registry_copy.resolve("adult:2")
    assert graph_version.parent_version == 1
    assert "champion" not in graph_version.aliases  # an export never moves an alias
    predictor = registry_copy.load_predictor("adult:2")
    assert isinstance(predictor, OnnxPredictor)
    records = held_out_records(200)
    with live_server(registry_copy, "adult:2") as graph_url:
        batch = post_json(f"{graph_url}/v1/models/adult/predict", records)["predictions"]
        single = post_json(f"{graph_url}/v1/models/adult/predict", records[0])
    native = registry_copy.load_predictor("adult:1").predict_records(records)
    assert [a["prediction"] for a in batch] == [a["prediction"] for a in native]
    for got, want in zip(batch, native, strict=True):
        assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-5)
    assert single["probabilities"] == pytest.approx(batch[0]["probabilities"], abs=1e-12)


def test_a_linear_model_converts_too(adult, tmp_path: Path) -> None:
    from shipyard.pipeline import train
    from shipyard.registry.store import Registry

    source = tmp_path / "adult.csv"
    adult.train.sample(n=1000, random_state=1).to_csv(source, index=False)
    config = {
        "name": "linear",
        "data": {"source": str(source), "target": "income"},
        "training": {"cv_folds": 2, "models": ["linear"], "n_trials": 1, "model_threads": 1},
        "evaluation": {"bootstrap_samples": 100},
        "registry": {"home": str(tmp_path / "home")},
    }
    registry = Registry(f"sqlite:///{tmp_path / 'home' / 'registry.db'}", tmp_path / "home" / "a")
    try:
        train(load_config_dict(config), registry=registry)
        done = onnx_export.export_onnx(
            registry, "linear", held_out_records(300), tmp_path / "linear.onnx"
        )
    finally:
        registry.close()
    assert done.rows == 300
    assert done.max_gap <= 1e-5
    assert (tmp_path / "linear.onnx").stat().st_size > 0


def test_a_gap_past_the_tolerance_writes_nothing(registry_copy, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(onnx_export, "TOLERANCE", -1.0)  # any gap at all now fails
    target = tmp_path / "refused.onnx"
    with pytest.raises(ExportError, match="nothing was written"):
        onnx_export.export_onnx(registry_copy, "adult:1", held_out_records(20), target)
    assert not target.exists()


def test_a_family_without_a_converter_is_refused_with_the_families_that_convert(tmp_path):
    manifest = {"task": "binary", "model": {"format": "xgboost-json", "family": "xgboost"}}
    with pytest.raises(ExportError, match="lightgbm, linear"):
        build_graph(tmp_path, manifest)


def test_the_graph_scores_a_frame_like_records(registry_copy, exported) -> None:
    import pandas as pd

    predictor = registry_copy.load_predictor("adult:1")
    graph = OnnxGraph(exported.read_bytes(), predictor.preprocessor)
    records = predictor.settle_records(predictor.cleaner.clean_records(held_out_records(50)))
    frame = pd.DataFrame.from_records(records)
    columns = {column: frame[column].tolist() for column in graph.numeric}
    assert np.array_equal(graph.run_columns(columns), graph.run_records(records))
    onnx_predictor = OnnxPredictor(graph, predictor)
    assert np.array_equal(onnx_predictor.score_frame(frame), graph.run_records(records))
