from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_iris

from shipyard.config import load_config_dict
from shipyard.evaluation.explain import (
    UnsupportedModelError,
    contribution_summary,
    explain_frame,
    explain_records,
    permutation_importance,
)
from shipyard.pipeline import train
from shipyard.registry.bundle import load_predictor
from shipyard.runtime.models import LightGBMScorer, LinearScorer
from shipyard.runtime.predictor import Predictor
from shipyard.runtime.validate import RecordValidationError
from shipyard.training.export import frame_to_records


def independent_raw_output(predictor: Predictor, frame: pd.DataFrame, rows: np.ndarray):
    """The model's own raw score, computed without the explainer."""
    from shipyard.evaluation.suite import _encode

    features = _encode(predictor, frame)
    scorer = predictor.scorer
    if isinstance(scorer, LightGBMScorer):
        raw = np.asarray(scorer.booster.predict(features, raw_score=True))
    else:
        raw = features @ scorer.coefficients.T + scorer.intercepts
    if raw.ndim == 2 and raw.shape[1] > 1:
        return raw[np.arange(len(raw)), rows]
    return raw.reshape(len(raw))


@pytest.mark.parametrize("family", ["lightgbm", "linear"])
def test_contributions_add_up_to_the_raw_output(evaluated, family):
    registry = evaluated.registry
    predictor = registry.load_predictor(f"adult-{family}:1")
    test = pd.read_csv(evaluated.test_csv, skipinitialspace=True).head(300)
    frame = test[predictor.contract.feature_names]
    explanation = explain_frame(predictor, frame)

    total = explanation.base_value + explanation.contributions.sum(axis=1)
    raw = independent_raw_output(predictor, frame, explanation.class_index)
    assert np.max(np.abs(total - raw)) <= 1e-6
    # The raw output is the log-odds behind the served probability.
    probability = predictor.score_frame(frame)[:, 1]
    assert np.max(np.abs(1.0 / (1.0 + np.exp(-total)) - probability)) <= 1e-6
    assert explanation.columns == predictor.preprocessor.input_columns
    assert explanation.output_name == "log-odds of '>50K'"

    # Per record, through the served path: the same numbers, largest contribution first.
    records = frame_to_records(frame.head(20))
    answers = explain_records(predictor, records)
    for index, answer in enumerate(answers):
        values = list(answer["contributions"].values())
        assert abs(answer["base_value"] + sum(values) - raw[index]) <= 1e-6
        assert abs(values[0]) == max(abs(value) for value in values)
        assert answer["prediction"] in ("<=50K", ">50K")
    summary = contribution_summary(explanation)
    assert list(summary.values()) == sorted(summary.values(), reverse=True)


def test_linear_contribution_is_coefficient_times_encoded_value(evaluated):
    predictor = evaluated.registry.load_predictor("adult-linear:1")
    assert isinstance(predictor.scorer, LinearScorer)
    test = pd.read_csv(evaluated.test_csv, skipinitialspace=True).head(5)
    explanation = explain_frame(predictor, test)
    from shipyard.evaluation.suite import _encode

    features = _encode(predictor, test)
    age = predictor.preprocessor.input_columns.index("age")
    offset = sum(
        1 if e["kind"] != "onehot" else len(e["categories"]) + bool(e.get("infrequent"))
        for e in predictor.preprocessor.encoders[:age]
    )
    expected = features[:, offset] * predictor.scorer.coefficients[0, offset]
    assert np.allclose(explanation.contributions[:, age], expected, atol=1e-12)


@pytest.mark.parametrize(
    ("family", "loader", "task"),
    [
        ("lightgbm", load_iris, "multiclass"),
        ("linear", load_iris, "multiclass"),
        ("lightgbm", load_diabetes, "regression"),
        ("linear", load_diabetes, "regression"),
    ],
)
def test_multiclass_and_regression_explanations_add_up(tmp_path, family, loader, task):
    data = loader(as_frame=True).frame
    source = tmp_path / "data.csv"
    data.to_csv(source, index=False)
    config = load_config_dict(
        {
            "name": "m",
            "task": task,
            "data": {"source": str(source), "target": "target"},
            "training": {"cv_folds": 2, "models": [family], "n_trials": 2},
            "evaluation": {"bootstrap_samples": 100, "report": False},
            "registry": {"home": str(tmp_path / "home")},
        }
    )
    run = train(config)
    assert "report.html" not in {p.name for p in run.version.bundle_path.iterdir()}
    predictor = load_predictor(run.version.bundle_path, run.version.manifest_sha256)
    frame = data.drop(columns=["target"]).head(50)
    explanation = explain_frame(predictor, frame)
    total = explanation.base_value + explanation.contributions.sum(axis=1)
    raw = independent_raw_output(predictor, frame, explanation.class_index)
    assert np.max(np.abs(total - raw)) <= 1e-6
    if task == "regression":
        assert np.max(np.abs(total - predictor.score_frame(frame))) <= 1e-6
    else:
        # The explained class is the predicted one.
        assert np.array_equal(explanation.class_index, predictor.score_frame(frame).argmax(1))


class ConstantScorer:
    def score(self, features):
        return np.full((len(features), 2), 0.5)


def test_other_model_families_fail_with_a_clear_message(evaluated):
    served = evaluated.registry.load_predictor("adult-linear:1")
    predictor = Predictor(
        served.contract, served.preprocessor, ConstantScorer(), "binary", served.classes
    )
    test = pd.read_csv(evaluated.test_csv, skipinitialspace=True).head(3)
    with pytest.raises(UnsupportedModelError, match=r"LightGBM, XGBoost.*ConstantScorer"):
        explain_frame(predictor, test)


def test_explaining_a_bad_record_names_the_field(evaluated):
    predictor = evaluated.registry.load_predictor("adult-lightgbm:1")
    test = pd.read_csv(evaluated.test_csv, skipinitialspace=True)
    record = frame_to_records(test.drop(columns=["income"]).head(1))[0]
    record["sex"] = 7  # a number where text is expected (an unknown category is scored)
    with pytest.raises(RecordValidationError, match="sex"):
        explain_records(predictor, [record])
    # An unknown category is explained as it is predicted: settled by the model's policy.
    record["sex"] = "Unknown"
    explained = explain_records(predictor, [record])[0]
    assert explained["probabilities"] == predictor.predict_records([record])[0]["probabilities"]


def test_permutation_importance_ranks_informative_columns_first(evaluated):
    predictor = evaluated.registry.load_predictor("adult-lightgbm:1")
    test = pd.read_csv(evaluated.test_csv, skipinitialspace=True).head(600)
    y = (test["income"] == ">50K").to_numpy().astype(int)
    importance = permutation_importance(predictor, test, y, "roc_auc", repeats=2, seed=0)
    assert set(importance) == set(predictor.preprocessor.input_columns)
    top = list(importance)[:4]
    assert {
        "relationship",
        "marital-status",
        "capital-gain",
        "age",
        "education-num",
        "occupation",
    } & set(top)
    assert importance[top[0]]["mean"] > 0.01
