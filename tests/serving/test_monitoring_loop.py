"""Serve -> log -> feedback -> monitor, end to end on real Adult records."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta

import httpx
import pytest
from typer.testing import CliRunner

from shipyard import datasets
from shipyard.cli import app as cli
from shipyard.config import ServingConfig
from shipyard.errors import DataError
from shipyard.monitoring.log import MonitoringStore
from shipyard.pipeline.monitor import monitor, open_row_sketcher, open_timeline
from shipyard.pipeline.retrain import retrain
from shipyard.registry.store import Registry
from shipyard.serving import build_app, running_server
from shipyard.training.export import frame_to_records


def test_monitor_finds_the_drift_that_was_served(trained_adult, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(trained_adult.home / ".shipyard", home)
    registry = Registry(f"sqlite:///{home / 'registry.db'}", home / "artifacts")
    store = MonitoringStore(registry.url)
    store.purge(timedelta(seconds=-1))  # earlier tests served (and logged) the same registry
    store.close()
    adult = datasets.load("adult")
    # Keep test rows the small model's contract accepts (4,000 training rows miss rare values).
    validator = registry.load_predictor("adult").validator
    records = frame_to_records(adult.test.drop(columns=["income"]))
    valid = adult.test[[not validator.problems(record) for record in records]]
    steady = valid.sample(300, random_state=3)
    older = valid[valid["age"] >= 55].sample(300, random_state=3)
    app = build_app(registry, "adult", ServingConfig(auth=False))
    with running_server(app) as url, httpx.Client(base_url=url) as client:
        for frame in (steady, older):
            records = frame_to_records(frame.drop(columns=["income"]))
            answers = client.post("/v1/models/adult/predict", json=records).json()["predictions"]
            labels = [
                {"request_id": answer["request_id"], "label": label}
                for answer, label in zip(answers, frame["income"], strict=True)
            ]
            assert client.post("/v1/models/adult/feedback", json=labels).status_code == 200

    result = CliRunner().invoke(
        cli,
        [
            "monitor",
            "adult",
            "--window-size",
            "300",
            "--home",
            str(home),
            "-o",
            str(tmp_path / "m.html"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["counts"] == {"predictions": 600, "labelled": 600}
    first, second = summary["windows"][:2]
    assert (first["count"], second["count"]) == (300, 300)
    assert "age" not in first["drifted"]
    assert "age" in second["drifted"]
    assert first["performance"]["metric"] == "roc_auc"
    assert first["performance"]["value"] > 0.8
    assert 0.5 < first["estimated"]["accuracy"] <= 1.0
    page = (tmp_path / "m.html").read_text(encoding="utf-8")
    assert page.count("<svg") == 3  # input drift, prediction drift, realised metric

    # A second call reads nothing twice.
    again = monitor(registry, "adult", window_size=300)
    assert [window.count for window in again.windows][:2] == [300, 300]

    # The server sketched every answered request as it logged it: the stored sketches equal
    # the sketch of the logged rows read back, and drift over the whole range comes from them.
    store = MonitoringStore(registry.url)
    timeline = open_timeline(registry, "adult", store)
    sketcher = open_row_sketcher(registry, "adult")
    logged = store.predictions("adult", limit=1000)
    direct = sketcher.empty()
    sketcher.add(direct, [row["inputs"] for row in logged], [row["output"] for row in logged])
    stored = timeline.buckets()
    assert int(stored.predictions.sum()) == 600
    assert stored.counts.sum(axis=0).tolist() == timeline.layout.flatten(direct).tolist()
    assert timeline.between().count == 600
    store.close()
    result = CliRunner().invoke(
        cli, ["drift", "adult", "--since", "1h", "--every", "1d", "--home", str(home), "--json"]
    )
    assert result.exit_code == 0, result.output
    ranged = json.loads(result.stdout)
    assert ranged["range"]["count"] == 600
    assert [period["count"] for period in ranged["periods"]] == [600]
    assert {row["column"] for row in ranged["range"]["report"]} >= {"age", "__prediction__"}
    result = CliRunner().invoke(cli, ["drift", "adult", "--every", "soon", "--home", str(home)])
    assert result.exit_code == 2
    assert "90s, 15m, 1h or 7d" in result.output


def test_monitor_explains_a_bundle_without_reference(fitted_adult):
    # fitted_adult's versions are registered from an exported pipeline, without sketches.
    with pytest.raises(DataError, match="no drift reference"):
        monitor(fitted_adult.registry, "adult:1")


def _labelled_registry(trained_adult, tmp_path, rows=600):
    """A private registry copy whose champion served ``rows`` real records, all labelled."""
    home = tmp_path / "home"
    shutil.copytree(trained_adult.home / ".shipyard", home)
    registry = Registry(f"sqlite:///{home / 'registry.db'}", home / "artifacts")
    store = MonitoringStore(registry.url)
    store.purge(timedelta(seconds=-1))
    store.close()
    adult = datasets.load("adult")
    validator = registry.load_predictor("adult").validator
    records = frame_to_records(adult.test.drop(columns=["income"]))
    valid = adult.test[[not validator.problems(record) for record in records]]
    frame = valid.sample(rows, random_state=4)
    app = build_app(registry, "adult", ServingConfig(auth=False))
    with running_server(app) as url, httpx.Client(base_url=url) as client:
        answers = client.post(
            "/v1/models/adult/predict", json=frame_to_records(frame.drop(columns=["income"]))
        ).json()["predictions"]
        labels = [
            {"request_id": answer["request_id"], "label": label}
            for answer, label in zip(answers, frame["income"], strict=True)
        ]
        assert client.post("/v1/models/adult/feedback", json=labels).status_code == 200
    return registry, home


def test_retrain_gates_the_challenger_on_held_out_labels(trained_adult, tmp_path):
    registry, home = _labelled_registry(trained_adult, tmp_path)
    result = CliRunner().invoke(
        cli, ["retrain", "adult", "--min-gate-rows", "100", "--home", str(home), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["champion"], summary["challenger"]) == ("adult:1", "adult:2")
    assert (summary["new_training_rows"], summary["gate_rows"]) == (420, 180)
    gate = summary["gate"]
    assert gate["samples"] == 180
    assert gate["low"] <= gate["improvement"] <= gate["high"]
    assert gate["passed"] == (gate["low"] > 0)
    assert summary["promoted"] == gate["passed"]
    assert registry.resolve("adult").version == (2 if summary["promoted"] else 1)
    assert registry.get("adult", 2).parent_version == 1
    events = [event for event in registry.events("adult") if event["action"] == "gate"]
    assert events[-1]["version"] == 2
    assert events[-1]["detail"]["samples"] == 180


def test_retrain_never_promotes_on_too_few_labels(trained_adult, tmp_path):
    registry, _ = _labelled_registry(trained_adult, tmp_path, rows=300)
    run = retrain(registry, "adult", min_gate_rows=1000)
    assert not run.promoted
    assert "at least 1000" in run.message
    assert registry.resolve("adult").version == 1


def test_retrain_needs_labels(trained_adult, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(trained_adult.home / ".shipyard", home)
    registry = Registry(f"sqlite:///{home / 'registry.db'}", home / "artifacts")
    store = MonitoringStore(registry.url)
    store.purge(timedelta(seconds=-1))
    store.close()
    with pytest.raises(DataError, match="feedback before retraining"):
        retrain(registry, "adult")
