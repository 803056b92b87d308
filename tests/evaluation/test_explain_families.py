"""Per-prediction explanations for every family that can ship, served over a real socket.

Each family is trained once, small, on Adult rows with blanked numeric values, so cleaning
derives ``__missing`` indicators that clients never send.
"""

from __future__ import annotations

import json

import httpx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from shipyard import datasets
from shipyard.cli import app
from shipyard.config import ServingConfig, load_config_dict
from shipyard.evaluation.explain import explain_frame, explain_records
from shipyard.pipeline import train
from shipyard.registry.store import Registry
from shipyard.runtime.models import LinearScorer
from shipyard.runtime.predictor import Predictor
from shipyard.runtime.preprocess import CompiledPreprocessor
from shipyard.runtime.scorers import (
    CatBoostScorer,
    CompositeScorer,
    ForestScorer,
    MLPScorer,
    XGBoostScorer,
)
from shipyard.serving import build_app, running_server
from shipyard.training.export import frame_to_records

FAMILIES = ("xgboost", "catboost", "random_forest", "extra_trees", "mlp", "linear")
BLANKED = ("age", "hours-per-week")


def _with_blanks(frame: pd.DataFrame) -> pd.DataFrame:
    blanked = frame.copy()
    rng = np.random.default_rng(5)
    for column in BLANKED:
        blanked[column] = blanked[column].astype("float64")
        blanked.loc[rng.random(len(blanked)) < 0.15, column] = np.nan
    return blanked


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    home = tmp_path_factory.mktemp("explain-families")
    adult = datasets.load("adult")
    source = home / "adult.csv"
    _with_blanks(adult.train.sample(500, random_state=11)).to_csv(source, index=False)
    registry = None
    names = {}
    settings = {family: {"models": [family]} for family in FAMILIES}
    settings["calibrated"] = {"models": ["lightgbm"], "calibration": "platt"}
    for name, training in settings.items():
        config = load_config_dict(
            {
                "name": f"explain-{name.replace('_', '-')}",
                "data": {"source": str(source), "target": "income"},
                "training": {"cv_folds": 2, "n_trials": 1, "ensemble": False, **training},
                "evaluation": {"bootstrap_samples": 100, "report": False},
                "registry": {"home": str(home / ".shipyard")},
            }
        )
        run = train(config)
        names[name] = f"{run.version.name}:{run.version.version}"
        registry = registry or Registry.from_config(config.registry)
    return registry, names, source, home


SCORERS = {
    "xgboost": XGBoostScorer,
    "catboost": CatBoostScorer,
    "random_forest": ForestScorer,
    "extra_trees": ForestScorer,
    "mlp": MLPScorer,
    "linear": LinearScorer,
    "calibrated": CompositeScorer,
}


def _raw_records(source, rows=6):
    frame = pd.read_csv(source, skipinitialspace=True).drop(columns=["income"])
    blanked = frame[frame[list(BLANKED)].isna().any(axis=1)].head(rows // 2)
    return frame_to_records(pd.concat([blanked, frame.head(rows - len(blanked))]))


def _margin(scorer, features, class_index):
    """The family's own explained score, computed without the explainer."""
    if isinstance(scorer, XGBoostScorer):
        import xgboost

        matrix = xgboost.DMatrix(features, missing=np.nan)
        return np.asarray(scorer.booster.predict(matrix, output_margin=True), dtype=np.float64)
    if isinstance(scorer, CatBoostScorer):
        return np.asarray(scorer.model.predict(features, prediction_type="RawFormulaVal"))
    if isinstance(scorer, ForestScorer):
        return scorer.score(features)[np.arange(len(features)), class_index]
    probability = scorer.score(features)[:, 1]
    return np.log(probability) - np.log1p(-probability)


@pytest.mark.parametrize("family", [*FAMILIES, "calibrated"])
def test_every_family_adds_up_to_its_explained_score(trained, family):
    registry, names, source, _ = trained
    predictor = registry.load_predictor(names[family])
    scorer = predictor.scorer
    assert isinstance(scorer, SCORERS[family])
    records = _raw_records(source)
    cleaned = predictor.cleaner.clean_records(records)
    assert any(name.endswith("__missing") for name in predictor.contract.feature_names)
    features = np.array([predictor.preprocessor.transform_record(r) for r in cleaned])
    answers = explain_records(predictor, records)
    explanation = explain_frame(
        predictor, pd.DataFrame(cleaned)[predictor.preprocessor.input_columns]
    )
    if family == "calibrated":
        member = scorer.members[0][0]
        expected = np.asarray(member.booster.predict(features, raw_score=True))
        assert "before calibration" in answers[0]["space"]
        assert answers[0]["members"][0]["model"] == "lightgbm"
    elif family == "mlp":
        # Against the all-zero encoded row, the sum is the margin gap whatever the sample.
        expected = _margin(scorer, features, explanation.class_index)
        assert all(answer["standard_error"] < 0.05 for answer in answers)
    else:
        expected = _margin(scorer, features, explanation.class_index)
    total = explanation.base_value + explanation.contributions.sum(axis=1)
    assert np.all(np.abs(total - expected) <= explanation.tolerance)
    assert np.all(np.abs(explanation.raw_output - expected) <= explanation.tolerance)
    for index, answer in enumerate(answers):
        summed = answer["base_value"] + sum(answer["contributions"].values())
        assert abs(summed - expected[index]) <= answer["tolerance"]
        assert answer["space"].endswith("'>50K'") or "member 0" in answer["space"]
        assert set(answer["contributions"]) == set(_unique(predictor))


def _unique(predictor: Predictor) -> list[str]:
    return list(dict.fromkeys(predictor.preprocessor.input_columns))


def test_forest_contributions_are_in_probability_space(trained):
    registry, names, source, _ = trained
    predictor = registry.load_predictor(names["random_forest"])
    answers = explain_records(predictor, _raw_records(source))
    for answer in answers:
        assert answer["space"] == "probability of '>50K'"
        assert abs(answer["raw_output"] - answer["probabilities"][">50K"]) <= 1e-6
        assert "TreeSHAP" in answer["method"]


def test_an_ensemble_explains_each_member_and_adds_up_in_probability(trained):
    registry, names, source, _ = trained
    forest = registry.load_predictor(names["random_forest"])
    extra = registry.load_predictor(names["extra_trees"])
    width = forest.preprocessor.n_outputs
    preprocessor = CompiledPreprocessor(
        {
            **forest.preprocessor.spec,
            "encoders": [*forest.preprocessor.encoders, *extra.preprocessor.encoders],
        }
    )
    composite = CompositeScorer(
        [
            (forest.scorer, 0, width, 0.7),
            (extra.scorer, width, preprocessor.n_outputs, 0.3),
        ],
        "binary",
    )
    predictor = Predictor(
        forest.contract, preprocessor, composite, "binary", forest.classes, cleaner=forest.cleaner
    )
    answers = explain_records(predictor, _raw_records(source))
    for answer in answers:
        assert answer["space"] == "probability of '>50K' (ensemble weights)"
        assert abs(answer["raw_output"] - answer["probabilities"][">50K"]) <= 1e-6
        summed = answer["base_value"] + sum(answer["contributions"].values())
        assert abs(summed - answer["probabilities"][">50K"]) <= 1e-6
        weights = [member["weight"] for member in answer["members"]]
        assert weights == [0.7, 0.3]
        combined = sum(member["weight"] * member["raw_output"] for member in answer["members"])
        assert abs(combined - answer["raw_output"]) <= 1e-9


@pytest.mark.parametrize("family", [*FAMILIES, "calibrated"])
def test_the_route_answers_every_family_over_a_real_socket(trained, family):
    registry, names, source, _ = trained
    reference = names[family]
    name = reference.split(":")[0]
    application = build_app(registry, reference, ServingConfig(auth=False))
    records = _raw_records(source, rows=4)
    with running_server(application) as url, httpx.Client(base_url=url) as client:
        single = client.post(f"/v1/models/{name}/explain", json=records[0])
        assert single.status_code == 200, single.text
        body = single.json()
        summed = body["base_value"] + sum(body["contributions"].values())
        assert abs(summed - body["raw_output"]) <= body["tolerance"]
        assert not any(column.endswith("__missing") for column in records[0])
        batch = client.post(f"/v1/models/{name}/explain", json=records)
        assert batch.status_code == 200, batch.text
        assert len(batch.json()["explanations"]) == len(records)


def test_cli_explains_rows_with_missing_values_from_a_file(trained, tmp_path):
    _, names, source, home = trained
    frame = pd.read_csv(source, skipinitialspace=True).drop(columns=["income"])
    data = tmp_path / "new.csv"
    frame[frame["age"].isna()].head(3).to_csv(data, index=False)
    result = CliRunner().invoke(
        app,
        [
            "explain",
            names["random_forest"],
            "--data",
            str(data),
            "--limit",
            "3",
            "--home",
            str(home / ".shipyard"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    explanations = json.loads(result.stdout)["explanations"]
    assert len(explanations) == 3
    assert all("age__missing" in item["contributions"] for item in explanations)


def _exported(model, task: str, data: pd.DataFrame, target: np.ndarray):
    """Fit ``model`` behind a passthrough preprocessor and load it as serving would."""
    from types import SimpleNamespace

    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    from shipyard.training.export import export_pipeline

    pipeline = Pipeline(
        [
            ("preprocess", ColumnTransformer([("numbers", "passthrough", list(data.columns))])),
            ("model", model),
        ]
    ).fit(data, target)
    exported = export_pipeline(pipeline, task)
    classes = list(np.unique(target)) if task != "regression" else []
    served = SimpleNamespace(
        preprocessor=CompiledPreprocessor(exported.preprocessing),
        scorer=exported.scorer(task),
        task=task,
        classes=classes,
    )
    return pipeline, served


def _models(task: str):
    from catboost import CatBoostClassifier, CatBoostRegressor
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from xgboost import XGBClassifier, XGBRegressor

    regression = task == "regression"
    tree = {"n_estimators": 20, "random_state": 0}
    return {
        "xgboost": (XGBRegressor if regression else XGBClassifier)(n_estimators=20, max_depth=3),
        "catboost": (CatBoostRegressor if regression else CatBoostClassifier)(
            iterations=20,
            depth=3,
            verbose=False,
            thread_count=1,
            random_seed=0,
            allow_writing_files=False,
        ),
        "random_forest": (RandomForestRegressor if regression else RandomForestClassifier)(**tree),
        "extra_trees": (ExtraTreesRegressor if regression else ExtraTreesClassifier)(**tree),
        "mlp": (MLPRegressor if regression else MLPClassifier)(
            hidden_layer_sizes=(8,), max_iter=300, random_state=0
        ),
    }


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_multiclass_and_regression_explanations_add_up_for_every_family(task):
    from sklearn.datasets import load_diabetes, load_iris

    loaded = (load_iris if task == "multiclass" else load_diabetes)(as_frame=True)
    data, target = loaded.data.copy(), loaded.target.to_numpy()
    data.iloc[::7, 0] = np.nan  # the trees send missing values where training did
    for family, model in _models(task).items():
        if family == "mlp":
            data = data.fillna(0.0)
        pipeline, served = _exported(model, task, data, target)
        explanation = explain_frame(served, data.head(25))
        total = explanation.base_value + explanation.contributions.sum(axis=1)
        assert np.max(np.abs(total - explanation.raw_output)) <= 1e-9, family
        features = served.preprocessor.transform_columns(
            {name: data.head(25)[name].to_numpy() for name in data.columns}
        )
        scorer = served.scorer
        if task == "regression" and family != "xgboost":
            expected = pipeline.predict(data.head(25))
        elif task == "regression":
            expected = _margin(scorer, features, explanation.class_index)
        elif isinstance(scorer, ForestScorer):
            expected = scorer.score(features)[np.arange(25), explanation.class_index]
        else:
            expected = _multiclass_margin(scorer, features, explanation.class_index)
        assert np.all(np.abs(total - expected) <= explanation.tolerance), family
        if task == "multiclass":
            predicted = np.argmax(scorer.score(features), axis=1)
            assert np.array_equal(explanation.class_index, predicted), family


def _multiclass_margin(scorer, features, class_index):
    """The chosen class's softmax input, computed without the explainer."""
    rows = np.arange(len(features))
    if isinstance(scorer, XGBoostScorer):
        import xgboost

        matrix = xgboost.DMatrix(features, missing=np.nan)
        return scorer.booster.predict(matrix, output_margin=True)[rows, class_index]
    if isinstance(scorer, CatBoostScorer):
        raw = scorer.model.predict(features, prediction_type="RawFormulaVal")
        return np.asarray(raw)[rows, class_index]
    activation = features
    for layer, (weights, bias) in enumerate(zip(scorer.weights, scorer.biases, strict=True)):
        activation = activation @ weights + bias
        if layer < len(scorer.weights) - 1:
            activation = np.maximum(activation, 0.0)
    return activation[rows, class_index]


def _expected_given(tree, row, known):
    """E[tree(x) | x_known], following the covers where a feature is unknown (by recursion)."""

    def walk(node):
        if tree["left"][node] < 0:
            return np.asarray(tree["value"][node])
        feature = tree["feature"][node]
        left, right, cover = tree["left"][node], tree["right"][node], tree["cover"]
        if feature in known:
            value = np.float32(row[feature])
            if np.isnan(value):
                go_left = tree["missing_left"][node]
            else:
                go_left = value <= tree["threshold"][node]
            return walk(left if go_left else right)
        return (cover[left] * walk(left) + cover[right] * walk(right)) / cover[node]

    return walk(0)


def test_forest_treeshap_equals_shapley_values_by_enumeration():
    from itertools import combinations
    from math import factorial

    from sklearn.ensemble import RandomForestClassifier

    from shipyard.evaluation.treeshap import ForestPaths, forest_contributions
    from shipyard.training.export import _forest_document

    rng = np.random.default_rng(0)
    rows = rng.normal(size=(300, 5))
    rows[rng.random(rows.shape) < 0.1] = np.nan
    clean = np.nan_to_num(rows)
    target = (clean[:, 0] + clean[:, 1] * clean[:, 2] > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=4, max_depth=5, random_state=0)
    document = _forest_document(forest.fit(rows, target), "binary")
    contributions, base = forest_contributions(ForestPaths.from_document(document), rows[:3], 5)
    for index, row in enumerate(rows[:3]):
        exact = np.zeros(5)
        for feature in range(5):
            others = [other for other in range(5) if other != feature]
            for size in range(5):
                share = factorial(size) * factorial(4 - size) / factorial(5)
                for known in combinations(others, size):
                    for tree in document["trees"]:
                        gain = _expected_given(tree, row, {*known, feature})
                        gain = gain - _expected_given(tree, row, set(known))
                        exact[feature] += share * gain[1] / len(document["trees"])
        assert np.allclose(contributions[index, :, 1], exact, atol=1e-12)
        served = ForestScorer(document, "binary").score(row[None])[0, 1]
        assert abs(base[1] + contributions[index, :, 1].sum() - served) <= 1e-12


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_regression_ensemble_adds_up_in_predicted_values():
    from types import SimpleNamespace

    from sklearn.datasets import load_diabetes

    loaded = load_diabetes(as_frame=True)
    data, target = loaded.data, loaded.target.to_numpy()
    models = _models("regression")
    forest_pipeline, forest = _exported(models["random_forest"], "regression", data, target)
    network_pipeline, network = _exported(models["mlp"], "regression", data, target)
    width = forest.preprocessor.n_outputs
    encoders = [*forest.preprocessor.encoders, *network.preprocessor.encoders]
    preprocessor = CompiledPreprocessor({**forest.preprocessor.spec, "encoders": encoders})
    composite = CompositeScorer(
        [(forest.scorer, 0, width, 0.5), (network.scorer, width, preprocessor.n_outputs, 0.5)],
        "regression",
    )
    served = SimpleNamespace(
        preprocessor=preprocessor, scorer=composite, task="regression", classes=[]
    )
    explanation = explain_frame(served, data.head(10))
    expected = 0.5 * forest_pipeline.predict(data.head(10))
    expected += 0.5 * network_pipeline.predict(data.head(10))
    total = explanation.base_value + explanation.contributions.sum(axis=1)
    assert np.all(np.abs(total - expected) <= explanation.tolerance)
    assert explanation.output_name == "predicted value (ensemble weights)"
    assert explanation.columns == list(data.columns)
    assert explanation.standard_error is not None
    assert [member.model for member in explanation.members] == ["forest", "mlp"]
