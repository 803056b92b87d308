"""A spam detector through the closed loop: register -> serve (real socket) -> feedback ->
monitor -> retrain with the gate -> card and report, on real SMS messages."""

from __future__ import annotations

import json

import httpx
import pytest
from typer.testing import CliRunner

from shipyard import datasets
from shipyard.cli import app as cli
from shipyard.config import ServingConfig, load_config_dict
from shipyard.monitoring.log import MonitoringStore
from shipyard.pipeline import train
from shipyard.pipeline.documents import card_for_version
from shipyard.pipeline.retrain import retrain
from shipyard.registry.store import Registry
from shipyard.serving import build_app, running_server

TRAINING_MESSAGES = 1200
SERVED_MESSAGES = 600
WINDOW = 300


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """A champion trained on 1,200 messages that then served 600 unseen ones, all labelled,
    and 300 wine names (another kind of text), unlabelled."""
    folder = tmp_path_factory.mktemp("spam-loop")
    messages = datasets.load("sms_spam").train
    sample = messages.sample(TRAINING_MESSAGES, random_state=0)
    sample.to_parquet(folder / "sms.parquet")
    home = folder / "home"
    config = load_config_dict(
        {
            "name": "spam",
            "task": "text_classification",
            "metric": "f1",
            "positive_class": "spam",
            "data": {"source": str(folder / "sms.parquet"), "target": "label"},
            "training": {"cv_folds": 2, "cv_repeats": 1, "n_trials": 2},
            "text": {"candidates": ["tfidf_word", "tfidf_word_char"], "regularization": [30.0]},
            "evaluation": {"bootstrap_samples": 200},
            "registry": {"home": str(home)},
        }
    )
    registry = Registry.from_config(config.registry)
    run = train(config, registry=registry)
    fresh = messages.drop(sample.index).sample(SERVED_MESSAGES, random_state=1)
    wines = datasets.load("xwines").split("items")
    names = (wines["WineName"] + " by " + wines["WineryName"]).head(WINDOW).tolist()
    app = build_app(registry, "spam", ServingConfig(auth=False))
    with running_server(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        answers = client.post(
            "/v1/models/spam/predict", json=[{"text": text} for text in fresh["text"]]
        ).json()["predictions"]
        labels = [
            {"request_id": answer["request_id"], "label": label}
            for answer, label in zip(answers, fresh["label"], strict=True)
        ]
        stored = client.post("/v1/models/spam/feedback", json=labels)
        assert stored.status_code == 200, stored.text
        assert stored.json()["stored"] == SERVED_MESSAGES
        other = client.post("/v1/models/spam/predict", json=[{"text": name} for name in names])
        assert other.status_code == 200
        card = client.get("/v1/models/spam/card")
        assert card.status_code == 200
        assert "## Top tokens" in card.text
    return registry, home, run, answers, fresh


def test_served_text_predictions_are_logged_with_their_request_ids(served):
    registry, _, run, answers, fresh = served
    store = MonitoringStore(registry.url)
    try:
        assert store.count("spam") == {
            "predictions": SERVED_MESSAGES + WINDOW,
            "labelled": SERVED_MESSAGES,
        }
        labelled = store.labelled("spam")
    finally:
        store.close()
    assert [row["request_id"] for row in labelled] == [a["request_id"] for a in answers]
    assert labelled[0]["inputs"] == {"text": fresh["text"].iloc[0]}
    assert labelled[0]["output"]["prediction"] == answers[0]["prediction"]
    assert labelled[0]["version"] == run.version.version


def test_monitor_finds_text_drift_and_live_f1(served, tmp_path):
    _, home, _, _, _ = served
    page = tmp_path / "spam.html"
    outcome = CliRunner().invoke(
        cli,
        [
            *("monitor", "spam", "--window-size", str(WINDOW)),
            *("--home", str(home), "-o", str(page), "--json"),
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    summary = json.loads(outcome.stdout)
    first, second, third = summary["windows"][:3]
    assert [window["count"] for window in (first, second, third)] == [WINDOW] * 3
    columns = {row["column"] for row in first["report"]}
    assert columns == {"length", "words", "oov_rate", "tfidf_centroid_cosine", "__prediction__"}
    # Unseen messages of the same collection: no text signal drifts.
    assert first["drifted"] == []
    assert second["drifted"] == []
    # Wine names are another kind of text: unknown words, shorter, off the centroid.
    assert {"oov_rate", "tfidf_centroid_cosine"} <= set(third["drifted"])
    assert first["performance"]["metric"] == "f1"
    assert first["performance"]["labels"] == WINDOW
    assert first["performance"]["low"] <= first["performance"]["value"] <= 1.0
    assert first["performance"]["value"] > 0.7
    assert third["performance"] is None  # no labels in that window
    assert 0.5 < first["estimated"]["accuracy"] <= 1.0
    assert page.read_text(encoding="utf-8").count("<svg") >= 3


def test_retrain_gates_a_text_challenger_on_held_out_labels(served):
    registry, _, run, _, _ = served
    result = retrain(registry, "spam", min_gate_rows=100)
    assert result.champion.version == run.version.version
    assert result.challenger.version.parent_version == run.version.version
    assert result.challenger.task == "text_classification"
    assert (result.new_rows, result.gate_rows) == (420, 180)
    # The challenger learnt from the champion's data plus the 420 labelled messages.
    assert result.challenger.rows["train"] + result.challenger.rows["test"] == (
        TRAINING_MESSAGES + 420
    )
    gate = result.gate
    assert (gate.metric, gate.samples) == ("f1", 180)
    assert gate.low <= gate.improvement <= gate.high
    assert gate.passed == (gate.low > 0)
    assert result.promoted == gate.passed
    champion = registry.resolve("spam").version
    assert champion == (result.challenger.version.version if result.promoted else 1)
    events = [event for event in registry.events("spam") if event["action"] == "gate"]
    assert events[-1]["detail"]["samples"] == 180
    # The challenger went through the same search and leaderboard as the champion.
    assert {row.name for row in result.challenger.leaderboard} == {"tfidf_word", "tfidf_word_char"}
    assert result.challenger.verdict["chosen"] == result.challenger.best


def test_text_card_and_report_like_tabular_ones(served, tmp_path):
    registry, home, run, _, _ = served
    markdown = card_for_version(registry, "spam:1").to_markdown()
    for section in (
        "Model details",
        "Intended use",
        "Training data",
        "Metrics (test split, bootstrap intervals)",
        "Top tokens",
        "Confusion matrix (test split)",
        "Model selection",
        "Limitations",
        "Ethical considerations",
        "Versions and hashes",
    ):
        assert f"## {section}\n" in markdown
    f1 = run.test_metrics["f1"]
    assert f"| f1 | {f1.value:.4f} [{f1.low:.4f}, {f1.high:.4f}] |" in markdown
    spam_row = next(line for line in markdown.splitlines() if line.startswith("| spam |"))
    assert any(word in spam_row for word in ("call", "txt", "free", "text"))
    assert "| text | text |" in markdown  # the contract
    outcome = CliRunner().invoke(
        cli, ["report", "spam:1", "--home", str(home), "-o", str(tmp_path / "r.html")]
    )
    assert outcome.exit_code == 0, outcome.output
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<h2>Top tokens</h2>" in page
    assert "<h2>Model selection</h2>" in page
