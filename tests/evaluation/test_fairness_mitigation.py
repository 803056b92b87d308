"""``shipyard train --fairness-mitigation threshold``: a mitigated child version that serves.

One small Adult run (3,000 training rows, a linear model, one trial) through the CLI; the
served answers, batch scoring and ``shipyard evaluate`` are checked against decisions computed
here from the base version's probabilities and the bundle's thresholds.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from shipyard import datasets
from shipyard.cli import app
from shipyard.config import ServingConfig
from shipyard.errors import BundleIntegrityError
from shipyard.registry.store import Registry
from shipyard.serving import build_app, running_server
from shipyard.training.export import frame_to_records

GATE = 0.1  # fairness.thresholds.demographic_parity_difference
CLASSES = ["<=50K", ">50K"]


@dataclass
class Shipped:
    registry: Registry
    run: dict[str, Any]
    test: pd.DataFrame
    test_csv: Path
    home: Path


def _train(folder: Path, *extra: str) -> dict[str, Any]:
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--data",
            str(folder / "adult.csv"),
            "--test-data",
            str(folder / "adult-test.csv"),
            "--target",
            "income",
            "--name",
            "adult",
            "--sensitive",
            "sex",
            "--model",
            "linear",
            "--n-trials",
            "1",
            "--cv-folds",
            "2",
            "--fairness-mitigation",
            "threshold",
            "--set",
            f"fairness.thresholds.demographic_parity_difference={GATE}",
            "--set",
            "split.validation_size=0.3",
            "--set",
            "evaluation.bootstrap_samples=100",
            "--home",
            str(folder / "home"),
            "--json",
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout[result.stdout.index("{") :])
    return document


def _write_data(folder: Path) -> pd.DataFrame:
    adult = datasets.load("adult")
    adult.train.sample(n=3000, random_state=0).to_csv(folder / "adult.csv", index=False)
    test = adult.test.sample(n=1000, random_state=0).reset_index(drop=True)
    test.to_csv(folder / "adult-test.csv", index=False)
    return pd.read_csv(folder / "adult-test.csv", skipinitialspace=True)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Shipped:
    folder = tmp_path_factory.mktemp("mitigation")
    test = _write_data(folder)
    run = _train(folder)
    registry = Registry(
        f"sqlite:///{folder / 'home' / 'registry.db'}", folder / "home" / "artifacts"
    )
    return Shipped(registry, run, test, folder / "adult-test.csv", folder / "home")


def _expected_labels(shipped: Shipped) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Decisions computed here: the base version's probabilities, the bundle's thresholds."""
    bundle = shipped.registry.get("adult", 2).bundle_path
    thresholds = json.loads((bundle / "group_thresholds.json").read_text())["thresholds"]
    base = shipped.registry.load_predictor("adult:1")
    frame = base.clean_frame(shipped.test)
    probabilities = base.score_frame(frame[base.contract.feature_names])
    cuts = frame["sex"].map(thresholds).to_numpy(dtype=float)
    labels = np.where(probabilities[:, 1] >= cuts, CLASSES[1], CLASSES[0])
    return labels, probabilities, thresholds


def _parity(labels: np.ndarray, sex: pd.Series) -> float:
    rates = pd.Series(labels == CLASSES[1]).groupby(sex.to_numpy()).mean()
    return float(rates.max() - rates.min())


def test_train_registers_the_mitigated_version_as_a_child_and_promotes_it(shipped):
    run, registry = shipped.run, shipped.registry
    assert run["version"] == 2
    assert run["mitigation"]["base_version"] == 1
    assert registry.get("adult", 2).parent_version == 1
    assert registry.resolve("adult@champion").version == 2
    assert "champion" not in registry.get("adult", 1).aliases

    base, child = registry.manifest("adult:1"), registry.manifest("adult:2")
    assert "group_thresholds" not in base
    assert child["group_thresholds"] == "group_thresholds.json"
    assert "group_thresholds.json" in child["files"]  # hashed like every bundle file
    document = json.loads(
        (registry.get("adult", 2).bundle_path / "group_thresholds.json").read_text()
    )
    assert document["columns"] == ["sex"]
    assert set(document["thresholds"]) == {"Female", "Male"}
    # Women get the lower threshold: the base model selects them far less often.
    assert document["thresholds"]["Female"] < document["thresholds"]["Male"]

    # The gate judged the mitigated decisions; the base breached it.
    assert not base["fairness"]["gate"]["passed"]
    assert child["fairness"]["gate"]["passed"]
    applied = child["fairness"]["applied"]
    parity = applied["test"]["demographic_parity_difference"]
    assert parity["after"] <= GATE < parity["before"]
    assert applied["validation"]["demographic_parity_difference"] <= GATE / 2 + 1e-12
    # Probabilities are shared, so ROC AUC is too; accuracy is the mitigated decisions'.
    assert child["metrics"]["test"]["roc_auc"] == base["metrics"]["test"]["roc_auc"]
    assert child["metrics"]["test"]["accuracy"]["value"] == pytest.approx(
        applied["test"]["accuracy"]["after"]
    )
    card = (registry.get("adult", 2).bundle_path / "model_card.md").read_text()
    assert "Served with a decision threshold per sex group" in card
    assert "Parent version: 1" in card


def test_served_answers_apply_the_group_thresholds(shipped):
    expected, probabilities, thresholds = _expected_labels(shipped)
    records = frame_to_records(shipped.test.drop(columns=["income"]))
    served = build_app(shipped.registry, "adult", ServingConfig(auth=False))
    with running_server(served) as url, httpx.Client(base_url=url, timeout=60) as client:
        batch = client.post("/v1/models/adult/predict", json=records).json()
        singles = [
            client.post("/v1/models/adult/predict", json=record).json() for record in records[:40]
        ]
        invocations = client.post("/invocations", json={"dataframe_records": records[:200]})
        missing = client.post(
            "/v1/models/adult/predict",
            json={key: value for key, value in records[0].items() if key != "sex"},
        )
    answers = batch["predictions"]
    assert batch["version"] == 2
    assert [answer["prediction"] for answer in answers] == expected.tolist()
    assert [answer["prediction"] for answer in singles] == expected[:40].tolist()
    assert invocations.json()["predictions"] == expected[:200].tolist()
    served_probabilities = np.array(
        [[answer["probabilities"][label] for label in CLASSES] for answer in answers]
    )
    np.testing.assert_allclose(served_probabilities, probabilities, atol=1e-12)
    first = answers[0]["threshold"]
    assert first == {"group": records[0]["sex"], "value": thresholds[records[0]["sex"]]}
    served_labels = np.array([answer["prediction"] for answer in answers])
    assert _parity(served_labels, shipped.test["sex"]) <= GATE
    assert missing.status_code == 422
    assert "sex" in missing.json()["message"]


def test_batch_scoring_and_evaluate_apply_the_group_thresholds(shipped, tmp_path):
    expected, _, thresholds = _expected_labels(shipped)
    output = tmp_path / "scored.csv"
    result = CliRunner().invoke(
        app,
        [
            "predict",
            "adult:2",
            "--data",
            str(shipped.test_csv),
            "--output",
            str(output),
            "--home",
            str(shipped.home),
        ],
    )
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(output)
    assert scored["prediction"].tolist() == expected.tolist()
    np.testing.assert_allclose(
        scored["threshold"], shipped.test["sex"].map(thresholds).to_numpy(dtype=float)
    )

    from shipyard.pipeline.evaluation import evaluate

    evaluation = evaluate(shipped.registry, "adult:2", str(shipped.test_csv), bootstrap_samples=50)
    accuracy = float(np.mean(expected == shipped.test["income"].to_numpy()))
    assert evaluation.metrics["accuracy"].value == pytest.approx(accuracy)


def test_a_tampered_thresholds_file_fails_the_hash_check(shipped, tmp_path):
    home = tmp_path / "copy"
    shutil.copytree(shipped.home, home)
    registry = Registry(f"sqlite:///{home / 'registry.db'}", home / "artifacts")
    path = registry.get("adult", 2).bundle_path / "group_thresholds.json"
    document = json.loads(path.read_text())
    document["thresholds"]["Female"] = 0.0  # everyone female selected: a quiet, harmful edit
    path.write_text(json.dumps(document))
    with pytest.raises(BundleIntegrityError, match=r"group_thresholds\.json"):
        registry.load_predictor("adult:2")
    with pytest.raises(BundleIntegrityError, match=r"group_thresholds\.json"):
        build_app(registry, "adult", ServingConfig(auth=False))


def test_a_sensitive_column_that_is_not_a_feature_must_still_be_sent(tmp_path):
    _write_data(tmp_path)
    run = _train(tmp_path, "--drop", "sex", "--set", "evaluation.report=false")
    registry = Registry(
        f"sqlite:///{tmp_path / 'home' / 'registry.db'}", tmp_path / "home" / "artifacts"
    )
    predictor = registry.load_predictor(f"adult:{run['version']}")
    assert "sex" not in predictor.contract.feature_names
    test = pd.read_csv(tmp_path / "adult-test.csv", skipinitialspace=True)
    record = frame_to_records(test.drop(columns=["income"]).head(1))[0]
    answer = predictor.predict_records([record])[0]
    assert answer["threshold"]["group"] == record["sex"]
    served = build_app(registry, "adult", ServingConfig(auth=False))
    with running_server(served) as url:
        response = httpx.post(
            f"{url}/v1/models/adult/predict",
            json={key: value for key, value in record.items() if key != "sex"},
        )
    assert response.status_code == 422
    body = response.json()
    assert "no 'sex'" in body["message"]
    assert body["violations"][0]["field"] == "sex"
