"""The text classifier through the whole loop: train -> register -> serve (real socket) -> retrain.

There is no feedback-driven retraining for text yet, so retraining is tested by training again
on the data extended with newly labelled messages, as a feedback job would.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from shipyard import datasets
from shipyard.config import ServingConfig, load_config_dict
from shipyard.errors import DataError
from shipyard.pipeline import TrainRun, train
from shipyard.registry.store import Registry
from shipyard.runtime.text import TextPredictor
from shipyard.serving import build_app, running_server
from shipyard.tasks.text.drift import TextDriftReference
from shipyard.tasks.text.monitoring import word_featurizer

SAMPLE = 1500


@dataclass
class Trained:
    registry: Registry
    run: TrainRun
    raw: dict[str, Any]
    sample: pd.DataFrame


def _raw(source: Path, home: Path) -> dict[str, Any]:
    return {
        "name": "spam",
        "task": "text_classification",
        "metric": "f1",
        "positive_class": "spam",
        "data": {"source": str(source), "target": "label"},
        "training": {"cv_folds": 2, "cv_repeats": 1, "n_trials": 1},
        "text": {"candidates": ["tfidf_word_char"], "regularization": [100.0]},
        "evaluation": {"bootstrap_samples": 200},
        "registry": {"home": str(home)},
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    folder = tmp_path_factory.mktemp("text")
    sample = datasets.load("sms_spam").train.sample(SAMPLE, random_state=0)
    source = folder / "sms.parquet"
    sample.to_parquet(source)
    raw = _raw(source, folder / "home")
    config = load_config_dict(raw)
    registry = Registry.from_config(config.registry)
    return Trained(registry, train(config, registry=registry), raw, sample)


def _post(url: str, payload: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_text_model_is_registered_like_any_model(trained: Trained):
    run = trained.run
    assert run.version.task == "text_classification"
    assert run.version.aliases == ("champion",)
    assert run.parity["single"] <= 1e-6
    assert run.parity["batched"] <= 1e-6
    f1 = run.test_metrics["f1"]
    assert f1.low <= f1.value <= f1.high
    assert f1.value > 0.8
    predictor = trained.registry.load_predictor(run.version.reference)
    assert isinstance(predictor, TextPredictor)
    assert predictor.classes == ["ham", "spam"]
    assert predictor.contract.column("text").type == "text"
    # The bundle carries a drift reference for the text signals, built from held-out texts.
    bundle = run.version.bundle_path
    reference = TextDriftReference.from_json(
        json.loads((bundle / "text_reference.json").read_bytes())
    )
    assert set(reference.sketches) == {"length", "words", "oov_rate", "tfidf_centroid_cosine"}
    spec = json.loads((bundle / "text_model.json").read_bytes())
    # Fresh messages of the same collection do not drift (messages the model trained on
    # would: every word is known and they sit close to the centroid).
    fresh = datasets.load("sms_spam").train.drop(trained.sample.index).sample(300, random_state=0)
    same = reference.compare(fresh["text"].tolist(), featurizer=word_featurizer(spec))
    assert not any(row.drifted for row in same)


def test_served_predict_classifies_real_messages(trained: Trained):
    app = build_app(trained.registry, trained.run.version.reference, ServingConfig(auth=False))
    spam = "WINNER!! You have won a £1000 cash prize. Call 09061701461 now to claim. T&C apply"
    ham = "Sorry I'm running late, see you at lunch"
    with running_server(app) as url:
        endpoint = f"{url}/v1/models/spam/predict"
        status, answer = _post(endpoint, {"text": spam})
        assert status == 200
        assert answer["prediction"] == "spam"
        assert answer["probabilities"]["spam"] > 0.5
        assert answer["explanation"]
        assert all(token["contribution"] > 0 for token in answer["explanation"])
        status, batch = _post(endpoint, [{"text": ham}, {"text": spam}])
        assert status == 200
        assert [row["prediction"] for row in batch["predictions"]] == ["ham", "spam"]
        status, problem = _post(endpoint, {"text": 12})
        assert status == 422
        assert "expected text" in problem["message"]
        assert _post(endpoint, {"message": spam})[0] == 422


def test_retraining_on_extended_data_registers_a_child_version(trained: Trained, tmp_path):
    new = pd.DataFrame(
        {
            "label": ["spam"] * 30 + ["ham"] * 30,
            "text": [f"URGENT crypto bonus {i} claim at bit.ly/x{i} now" for i in range(30)]
            + [f"Can we move the meeting to {i} pm tomorrow" for i in range(30)],
        }
    )
    source = tmp_path / "extended.parquet"
    pd.concat([trained.sample, new], ignore_index=True).to_parquet(source)
    raw = {**trained.raw, "data": {"source": str(source), "target": "label"}}
    second = train(load_config_dict(raw), registry=trained.registry)
    assert second.version.version == trained.run.version.version + 1
    assert second.version.parent_version == trained.run.version.version
    predictor = trained.registry.load_predictor(second.version.reference)
    answer = predictor.predict_records([{"text": "URGENT crypto bonus 99 claim now"}])[0]
    assert answer["prediction"] == "spam"


def test_no_text_column_is_a_clear_error(tmp_path):
    source = tmp_path / "short.csv"
    pd.DataFrame({"code": ["a", "b"] * 20, "label": ["x", "y"] * 20}).to_csv(source, index=False)
    raw = _raw(source, tmp_path / "home")
    raw["text"] = {}
    raw.pop("positive_class")
    with pytest.raises(DataError, match="No text column was found"):
        train(load_config_dict(raw))
