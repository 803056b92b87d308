"""Clustering and anomaly models end to end: train, register, serve over a socket, monitor.

The common checks (``tests/tasks/test_common.py``) train each task's small config; these
tests train the other settings (k-means on principal components with the report, anomaly
detection without labels) and check what the answers, the report and the monitoring say.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from shipyard import datasets
from shipyard.config import PipelineConfig, ServingConfig, load_config_dict
from shipyard.errors import ConfigError, DataError, TrainingError
from shipyard.pipeline import TrainRun, train
from shipyard.pipeline.monitor import monitor
from shipyard.pipeline.scoring import score_file
from shipyard.registry.store import Registry
from shipyard.serving import build_app, running_server
from shipyard.tasks.base import task_for_config

ROWS = 24


@pytest.fixture(scope="module")
def adult_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("adult") / "adult.csv"
    datasets.load("adult").train.sample(n=1200, random_state=2).to_csv(path, index=False)
    return path


def _config(home: Path, source: Path, **keys: Any) -> PipelineConfig:
    raw = {
        "data": {"source": str(source), "drop": ["income"]},
        "registry": {"home": str(home)},
        "evaluation": {"bootstrap_samples": 100, "report": False},
        **keys,
    }
    return load_config_dict(raw)


@pytest.fixture(scope="module")
def segments(tmp_path_factory: pytest.TempPathFactory, adult_csv: Path) -> tuple[Any, TrainRun]:
    home = tmp_path_factory.mktemp("segments")
    config = _config(
        home,
        adult_csv,
        name="segments",
        task="clustering",
        clustering={
            "methods": ["kmeans"],
            "k_values": [3, 4],
            "pca_components": 2,
            "seeds": 2,
            "sample_rows": 400,
        },
        evaluation={"bootstrap_samples": 100, "report": True},
    )
    return config, train(config)


@pytest.fixture(scope="module")
def outliers(tmp_path_factory: pytest.TempPathFactory, adult_csv: Path) -> tuple[Any, TrainRun]:
    home = tmp_path_factory.mktemp("outliers")
    config = _config(
        home,
        adult_csv,
        name="outliers",
        task="anomaly_detection",
        anomaly={"trees": 30, "reference_rows": 300},
    )
    return config, train(config)


def _records(config: PipelineConfig) -> list[dict[str, Any]]:
    frame = datasets.load("adult").test.head(ROWS).drop(columns=["income"])
    records: list[dict[str, Any]] = json.loads(frame.to_json(orient="records"))
    return records


def _serve_and_monitor(config: PipelineConfig) -> tuple[list[dict[str, Any]], Any]:
    """Serve ROWS test records one by one over a socket; return the answers and the monitor."""
    registry = Registry.from_config(config.registry)
    app = build_app(registry, config.name, ServingConfig(auth=False, log_predictions=True))
    records = _records(config)
    with running_server(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        answers = [
            client.post(f"/v1/models/{config.name}/predict", json=record).json()
            for record in records
        ]
        answer_schema = client.get("/openapi.json").json()["components"]["schemas"]["Answer"]
        assert set(answer_schema["required"]) <= set(answers[0])
        bad = client.post(f"/v1/models/{config.name}/predict", json={**records[0], "age": "old"})
        assert bad.status_code == 422
        assert "age" in bad.json()["message"]
    result = monitor(registry, config.name, window_size=ROWS)
    expected = registry.load_predictor(config.name).predict_records(records)
    for answer, alone in zip(answers, expected, strict=True):
        assert {key: answer[key] for key in alone} == alone  # served = in-process
    return answers, result


def test_a_clustering_model_is_served_as_cluster_and_distance(segments):
    config, run = segments
    assert run.best in {"kmeans_k3", "kmeans_k4"}
    assert run.metric == "silhouette"
    assert set(run.test_metrics) == {"silhouette", "noise_share"}
    answers, result = _serve_and_monitor(config)
    clusters = {answer["cluster"] for answer in answers}
    assert clusters <= set(range(4))
    assert all(answer["distance"] >= 0 for answer in answers)
    signals = result.signals[0]
    assert sum(signals["cluster_proportions"].values()) == pytest.approx(1.0)
    assert sum(signals["reference_proportions"].values()) == pytest.approx(1.0)
    assert 0 <= signals["proportion_distance"] <= 1
    assert any(row["column"] == "__prediction__" for row in result.windows[0].report)

    bundle = Path(run.version.bundle_path)
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["target"] is None
    assert len(manifest["clustering"]["view"]["explained"]) == 2
    report = (bundle / "report.html").read_text()
    assert "How the clustering was chosen" in report
    assert "no target (learnt without labels)" in report
    assert "pca_2d_view" in report
    assert "data:image/png;base64," in report


def test_an_anomaly_model_without_labels_serves_score_and_decision(outliers, tmp_path: Path):
    config, run = outliers
    assert run.best == "isolation_forest"  # no labels: the first family of anomaly.methods
    assert set(run.test_metrics) == {"anomaly_rate"}
    answers, result = _serve_and_monitor(config)
    for answer in answers:
        assert answer["anomaly"] == (answer["score"] > answer["threshold"])
    assert answers[0]["threshold"] == pytest.approx(0.5)  # contamination 'auto': the paper's
    signals = result.signals[0]
    assert signals["anomaly_rate"] == pytest.approx(
        sum(answer["anomaly"] for answer in answers) / ROWS
    )
    assert 0 <= signals["reference_anomaly_rate"] <= 1
    scored = tmp_path / "scored.csv"  # batch scoring of a file adds score and anomaly
    predictor = Registry.from_config(config.registry).load_predictor(config.name)
    score_file(predictor, str(config.data.source), scored)
    written = pd.read_csv(scored)
    expected = predictor.score_frame(pd.read_csv(config.data.source))
    np.testing.assert_allclose(written["score"], expected[:, 0], rtol=1e-12)
    assert (written["anomaly"] == (expected[:, 1] == 1.0)).all()
    with pytest.raises(DataError, match="feedback cannot retrain"):
        task_for_config(config).retrain_steps().extend(config, [], Path("unused"))


def test_the_target_is_required_optional_or_refused_as_the_task_says(adult_csv: Path):
    raw = {"name": "m", "data": {"source": str(adult_csv)}}
    with pytest.raises(ConfigError, match=r"needs data\.target, the column to predict"):
        task_for_config(load_config_dict(raw))
    labelled = {**raw, "data": {"source": str(adult_csv), "target": "income"}}
    with pytest.raises(ConfigError, match=r"learns without labels, but data\.target is set"):
        task_for_config(load_config_dict({**labelled, "task": "clustering"}))
    task_for_config(load_config_dict({**labelled, "task": "anomaly_detection"}))  # optional


def test_bad_unsupervised_settings_get_clear_errors(adult_csv: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match=r"anomaly.contamination must be 'auto' or a share"):
        load_config_dict(
            {"name": "m", "data": {"source": "a.csv"}, "anomaly": {"contamination": 0.9}}
        )
    labelled = _config(
        tmp_path,
        adult_csv,
        name="m",
        task="anomaly_detection",
        data={"source": str(adult_csv), "target": "income"},
    )
    with pytest.raises(ConfigError, match="Set positive_class to the label value"):
        train(labelled)
    words = tmp_path / "words.csv"
    words.write_text("colour\n" + "\n".join(["red", "blue"] * 20))
    with pytest.raises(DataError, match="No numeric column to learn from"):
        train(_config(tmp_path, words, name="m", task="clustering", data={"source": str(words)}))
    one_blob = _config(
        tmp_path,
        adult_csv,
        name="m",
        task="clustering",
        clustering={"methods": ["hdbscan"], "min_cluster_sizes": [5000], "sample_rows": 200},
    )
    with pytest.raises(TrainingError, match="No clustering candidate found two clusters"):
        train(one_blob)
