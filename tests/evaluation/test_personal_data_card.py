"""The model card lists the personal data a model reads and what its prediction log keeps."""

from __future__ import annotations

import pytest

from shipyard.errors import ConfigError
from shipyard.evaluation.card import personal_data_items
from shipyard.manifest import Manifest
from shipyard.pipeline import train
from shipyard.pipeline.documents import card_for_version


def test_card_items_name_tagged_sensitive_and_detected_columns():
    manifest = {
        "personal_data": {"columns": ["email", "sex"], "log_policy": "hash"},
        "sensitive": ["sex", "race"],
        "data": {"profile": {"personal": {"email": {"values": {"email": 0.98}, "hint": None}}}},
    }
    items = personal_data_items(manifest)
    assert "email, sex" in items[0]
    assert "keyed hash" in items[0]
    assert "hash)" in items[0]
    assert items[1].startswith("Sensitive for fairness, also personal data: sex, race")
    assert "logged in clear unless tagged" in items[1]
    assert "'email' likely personal (email in 98% of sampled values): tagged." in items[2]
    assert "No column is tagged" in personal_data_items({})[0]


def test_manifests_without_the_entry_still_load():
    old = Manifest.from_document(
        {"task": "binary", "target": "y", "metric": "roc_auc", "model": {"format": "x"}}
    )
    assert old.personal_data.columns == []
    assert old.personal_data.log_policy == "keep"
    assert "personal_data" not in old.to_document()


def test_training_records_the_policy_and_the_card_shows_it(small_adult_config):
    config = small_adult_config(
        **{
            "data.personal": ["age", "sex"],
            "monitoring.personal_data": "drop",
            "training.models": ["linear"],
            "training.n_trials": 1,
            "training.cv_folds": 2,
            "evaluation.bootstrap_samples": 100,
        }
    )
    run = train(config)
    from shipyard.registry.store import Registry

    registry = Registry.from_config(config.registry)
    manifest = registry.manifest(run.version.reference)
    assert manifest["personal_data"] == {"columns": ["age", "sex"], "log_policy": "drop"}
    card = card_for_version(registry, run.version.reference).to_markdown()
    assert "## Personal data" in card
    assert "age, sex; left out of the prediction log" in card
    assert "Sensitive for fairness, also personal data: sex, race; logged in clear" in card
    with pytest.raises(ConfigError, match=r"data\.personal names column"):
        train(small_adult_config(**{"data.personal": ["e-mail"]}))
