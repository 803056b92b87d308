"""The data steps inside training: cleaning in the bundle, the data section, leakage stops."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shipyard import datasets
from shipyard.config import PipelineConfig, apply_overrides, load_config_dict
from shipyard.errors import DataError
from shipyard.pipeline import evaluate, train
from shipyard.registry.bundle import load_predictor, read_manifest
from shipyard.registry.store import Registry


def _messy_adult(adult: datasets.Dataset, rows: int = 2500) -> pd.DataFrame:
    frame = adult.train.sample(n=rows, random_state=3).reset_index(drop=True)
    generator = np.random.default_rng(0)
    # Messy like data exported by hand: stray spaces, shouting, a row number, holes in a number.
    frame["sex"] = frame["sex"].where(generator.random(rows) > 0.1, " " + frame["sex"].str.upper())
    frame["row_number"] = np.arange(rows)
    hours = frame["hours-per-week"].astype(float)
    frame["hours-per-week"] = hours.where(generator.random(rows) > 0.05)
    return frame


def _config(source: Path, home: Path, **overrides: object) -> PipelineConfig:
    raw = {
        "name": "messy",
        "sensitive": ["sex"],
        "data": {"source": str(source), "target": "income"},
        "training": {"cv_folds": 2, "models": ["linear"], "n_trials": 2},
        "evaluation": {"bootstrap_samples": 100},
        "registry": {"home": str(home)},
    }
    return load_config_dict(apply_overrides(raw, dict(overrides)))


@pytest.fixture(scope="module")
def messy_run(adult: datasets.Dataset, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("messy")
    source = folder / "adult.csv"
    _messy_adult(adult).to_csv(source, index=False, na_rep="?")
    config = _config(source, folder / "home")
    return config, train(config)


def test_cleaning_travels_in_the_bundle_and_is_reported(messy_run) -> None:
    _, run = messy_run
    data = run.as_dict()["data"]
    actions = "\n".join(data["cleaning"]["actions"])
    assert "dropped 'row_number': identifier" in actions
    assert "'workclass': " in actions  # '?' placeholders became missing
    assert "added 'hours-per-week__missing'" in actions
    assert "'sex': merged 'FEMALE' into 'Female' (case)" in actions
    assert data["profile"]["rows"] == 2500
    assert "row_number" in data["profile"]["semantic_types"]["identifier"]
    assert data["contract"]["features"] == 15  # 14 + the missing indicator
    assert data["leakage"] == [] or all(f["level"] == "warning" for f in data["leakage"])

    manifest = read_manifest(run.version.bundle_path)
    assert manifest["cleaning"] == "cleaning.json"
    assert manifest["data"] == json.loads(json.dumps(data))
    spec = json.loads((run.version.bundle_path / "cleaning.json").read_text())
    assert spec["drop"] == ["row_number"]
    assert run.test_metrics["roc_auc"].value > 0.85


def test_serving_cleans_raw_records_like_training(messy_run, adult: datasets.Dataset) -> None:
    _, run = messy_run
    predictor = load_predictor(run.version.bundle_path, run.version.manifest_sha256)
    assert predictor.cleaner is not None
    clean = adult.test.iloc[0].to_dict()
    clean = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in clean.items()}
    clean["hours-per-week"] = float(clean["hours-per-week"])
    raw = {
        **clean,
        "sex": f"  {str(clean['sex']).upper()} ",
        "hours-per-week": f" {clean['hours-per-week']:g} ",
        "row_number": 12345,
    }
    assert predictor.score_records([raw]).tolist() == predictor.score_records([clean]).tolist()
    # The batch path agrees with the record path on raw rows.
    frame = pd.DataFrame([raw, clean])
    batch = predictor.score_frame(predictor.clean_frame(frame)[predictor.contract.feature_names])
    np.testing.assert_allclose(batch[0], predictor.score_records([raw])[0], atol=1e-9)


def test_evaluate_cleans_raw_files(messy_run, adult: datasets.Dataset, tmp_path: Path) -> None:
    config, _ = messy_run
    source = tmp_path / "test.csv"
    raw = adult.test.head(400).copy()
    raw["sex"] = " " + raw["sex"].str.lower() + " "
    raw.to_csv(source, index=False, na_rep="?")
    result = evaluate(Registry.from_config(config.registry), "messy", str(source))
    assert result.rows == 400
    assert result.metrics["roc_auc"].value > 0.8


def test_target_derived_columns_stop_training(tmp_path: Path) -> None:
    generator = np.random.default_rng(2)
    rows = 600
    casual = generator.poisson(20, rows)
    registered = generator.poisson(100, rows)
    frame = pd.DataFrame(
        {
            "temp": generator.uniform(0, 1, rows),
            "hr": generator.integers(0, 24, rows),
            "casual": casual,
            "registered": registered,
            "cnt": casual + registered,
        }
    )
    source = tmp_path / "bikes.csv"
    frame.to_csv(source, index=False)
    config = _config(source, tmp_path / "home", **{"data.target": "cnt", "sensitive": []})
    with pytest.raises(DataError, match=r"(?s)target leakage.*'cnt' = 1·"):
        train(config)
    honest = _config(
        source,
        tmp_path / "home",
        **{"data.target": "cnt", "sensitive": [], "data.drop": ["casual", "registered"]},
    )
    assert train(honest).data["leakage"] == []


def test_time_ordered_training(adult: datasets.Dataset, tmp_path: Path) -> None:
    frame = adult.train.sample(n=1500, random_state=5).reset_index(drop=True)
    frame["day"] = pd.date_range("2020-01-01", periods=len(frame), freq="h").astype(str)
    source = tmp_path / "dated.csv"
    frame.to_csv(source, index=False)
    config = _config(source, tmp_path / "home", **{"split.time_column": "day"})
    run = train(config)
    assert run.rows == {"train": 1050, "validation": 150, "test": 300}
    assert "parsed 'day' as dates" in "\n".join(run.data["cleaning"]["actions"])
