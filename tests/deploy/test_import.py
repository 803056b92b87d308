"""``shipyard import``: models trained elsewhere join the registry and serve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.deploy.helpers import get_json, live_server, post_json
from typer.testing import CliRunner

from shipyard import datasets
from shipyard.cli import app
from shipyard.deploy.imports import import_model
from shipyard.errors import DataError
from shipyard.registry.store import Registry

NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]


@pytest.fixture(scope="module")
def outside(tmp_path_factory) -> dict[str, Path]:
    """A LightGBM text model trained here as a user would elsewhere, and a labelled sample."""
    import lightgbm

    folder = tmp_path_factory.mktemp("outside")
    adult = datasets.load("adult")
    train = adult.train.head(2000)
    booster = lightgbm.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 15, "num_threads": 1},
        lightgbm.Dataset(train[NUMERIC], (train["income"] == ">50K").astype(int)),
        20,
    )
    booster.save_model(folder / "model.txt")
    adult.test.head(300)[[*NUMERIC, "income"]].to_csv(folder / "sample.csv", index=False)
    return {"model": folder / "model.txt", "sample": folder / "sample.csv", "home": folder / "h"}


def test_an_imported_lightgbm_text_model_serves(outside) -> None:
    import lightgbm

    result = CliRunner().invoke(
        app,
        [
            *("import", "external", "--model", str(outside["model"]), "--kind", "lightgbm"),
            *("--sample", str(outside["sample"]), "--target", "income"),
            *("--home", str(outside["home"])),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "external:1 (champion)" in result.output
    home = outside["home"]
    registry = Registry(f"sqlite:///{home / 'registry.db'}", home / "artifacts")
    try:
        frame = datasets.load("adult").test.iloc[300:340][NUMERIC]
        records = frame.to_dict(orient="records")
        with live_server(registry, "external") as url:
            served = post_json(f"{url}/v1/models/external/predict", records)["predictions"]
            described = get_json(f"{url}/v1/models/external")
        own = lightgbm.Booster(model_file=str(outside["model"])).predict(frame)
        assert [answer["probabilities"][">50K"] for answer in served] == pytest.approx(
            own, abs=1e-12
        )
        assert described["model_family"] == "lightgbm"
    finally:
        registry.close()


def test_a_feature_missing_from_the_sample_is_named(outside, tmp_path) -> None:
    import pandas as pd

    sample = pd.read_csv(outside["sample"]).drop(columns="fnlwgt")
    registry = Registry(f"sqlite:///{tmp_path / 'registry.db'}", tmp_path / "artifacts")
    try:
        with pytest.raises(DataError, match="'fnlwgt'"):
            import_model(registry, "bad", outside["model"], "lightgbm", sample, "income")
        assert registry.models() == []  # nothing was registered
    finally:
        registry.close()


def test_an_xgboost_json_model_imports_with_its_classes(outside, tmp_path) -> None:
    import pandas as pd
    import xgboost

    train = datasets.load("adult").train.head(1500)
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 3, "nthread": 1},
        xgboost.DMatrix(train[NUMERIC], (train["income"] == ">50K").astype(int)),
        10,
    )
    booster.save_model(tmp_path / "model.json")
    sample = pd.read_csv(outside["sample"])
    registry = Registry(f"sqlite:///{tmp_path / 'registry.db'}", tmp_path / "artifacts")
    try:
        done = import_model(registry, "xgb", tmp_path / "model.json", "xgboost", sample, "income")
        predictor = registry.load_predictor("xgb")
    finally:
        registry.close()
    assert done.version.task == "binary"
    assert done.max_gap <= 1e-6
    answers = predictor.predict_records(sample[NUMERIC].head(5).to_dict(orient="records"))
    assert {answer["prediction"] for answer in answers} <= {"<=50K", ">50K"}


def test_a_scikit_learn_onnx_model_imports(outside, tmp_path) -> None:
    import pandas as pd
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    train = datasets.load("adult").train.head(1500)
    model = LogisticRegression(max_iter=500).fit(
        train[NUMERIC].to_numpy(np.float32), train["income"]
    )
    onnx_model = to_onnx(model, train[NUMERIC].to_numpy(np.float32)[:1])
    (tmp_path / "model.onnx").write_bytes(onnx_model.SerializeToString())
    sample = pd.read_csv(outside["sample"])
    registry = Registry(f"sqlite:///{tmp_path / 'registry.db'}", tmp_path / "artifacts")
    try:
        import_model(registry, "sk", tmp_path / "model.onnx", "onnx", sample, "income")
        predictor = registry.load_predictor("sk")
    finally:
        registry.close()
    outputs = predictor.score_records(sample[NUMERIC].head(20).to_dict(orient="records"))
    expected = model.predict_proba(sample[NUMERIC].head(20).to_numpy(np.float32))
    assert np.max(np.abs(outputs - expected)) <= 1e-5
