"""The exported serving path must reproduce the trained pipeline to 1e-6, on every row shape."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pytest
from sklearn import datasets as sk_datasets

from shipyard import datasets
from shipyard.data.contract import Contract, infer_contract
from shipyard.errors import ExportError
from shipyard.runtime.predictor import Predictor
from shipyard.runtime.preprocess import CompiledPreprocessor
from shipyard.tasks.detect import class_order
from shipyard.tasks.tabular import CANDIDATES, feature_set
from shipyard.training.export import (
    PARITY_TOLERANCE,
    ExportedModel,
    check_parity,
    export_pipeline,
    frame_to_records,
)


class Case(NamedTuple):
    """A task: the contract (from all rows), training rows, and rows to check parity on."""

    task: str
    contract: Contract
    train: pd.DataFrame
    validation: pd.DataFrame
    parity: pd.DataFrame
    classes: list[Any]


def punch_holes(frame: pd.DataFrame, columns: list[str], share: float, seed: int) -> pd.DataFrame:
    """Set a share of each column's values to missing."""
    rng = np.random.default_rng(seed)
    frame = frame.copy()
    for column in columns:
        frame[column] = frame[column].astype(
            "float64" if frame[column].dtype.kind in "iuf" else object
        )
        frame.loc[rng.random(len(frame)) < share, column] = np.nan
    return frame


def make_case(task: str, frame: pd.DataFrame, target: str, unseen: pd.Series) -> Case:
    """Infer the contract from every row, but train only on rows where ``unseen`` is False.

    Parity rows then hold categories the fitted pipeline never saw (yet the contract allows)
    and missing values.
    """
    contract = infer_contract(frame, target)
    rng = np.random.default_rng(0)
    seen = frame[~unseen.to_numpy()]
    is_validation = rng.random(len(seen)) < 0.2
    train, validation = seen[~is_validation], seen[is_validation]
    parity = pd.concat([frame[unseen.to_numpy()], validation]).head(400)
    classes = [] if task == "regression" else class_order(frame[target])
    return Case(task, contract, train, validation, parity, classes)


def adult_case() -> Case:
    adult = datasets.load("adult").train.sample(n=3000, random_state=0).reset_index(drop=True)
    frame = punch_holes(adult, ["age", "hours-per-week", "education", "sex"], 0.05, seed=1)
    unseen = frame["native-country"].isin(["Mexico", "Philippines", "Germany"]) | frame[
        "occupation"
    ].isin(["Armed-Forces", "Priv-house-serv", "Protective-serv"])
    return make_case("binary", frame, "income", unseen)


def wine_case() -> Case:
    wine = sk_datasets.load_wine(as_frame=True).frame
    bands = pd.cut(wine["alcohol"], 4, labels=["low", "mid", "high", "top"]).astype(object)
    frame = wine.assign(band=bands, colour=np.where(wine["hue"] > 1.0, "pale", "deep"))
    frame = punch_holes(frame, ["magnesium", "band", "colour"], 0.08, seed=2)
    frame["target"] = frame["target"].map({0: "cultivar-a", 1: "cultivar-b", 2: "cultivar-c"})
    return make_case("multiclass", frame, "target", frame["band"] == "top")


def diabetes_case() -> Case:
    diabetes = sk_datasets.load_diabetes(as_frame=True, scaled=False).frame
    frame = diabetes.assign(
        sex=diabetes["sex"].map({1.0: "F", 2.0: "M"}),
        age_group=pd.cut(
            diabetes["age"], [0, 30, 45, 60, 70, 100], labels=["<30", "30s", "50s", "60s", "70+"]
        ).astype(object),
    )
    frame = punch_holes(frame, ["bmi", "s5", "sex", "age_group"], 0.06, seed=3)
    return make_case("regression", frame, "target", frame["age_group"] == "70+")


CASES = {"binary": adult_case, "multiclass": wine_case, "regression": diabetes_case}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> Case:
    return CASES[request.param]()


def encode(case: Case, labels: pd.Series) -> Any:
    if case.task == "regression":
        return labels.to_numpy(dtype=np.float64)
    return labels.map({label: index for index, label in enumerate(case.classes)}).to_numpy()


def fit(case: Case, candidate_name: str) -> Any:
    columns = case.contract.feature_names
    candidate = CANDIDATES[candidate_name](feature_set(case.contract), case.task, 0)
    target = case.contract.target.name
    return candidate.fit(
        case.train[columns],
        encode(case, case.train[target]),
        case.validation[columns],
        encode(case, case.validation[target]),
    )


def predictor_for(case: Case, exported: ExportedModel) -> Predictor:
    return Predictor(
        case.contract,
        CompiledPreprocessor(exported.preprocessing),
        exported.scorer(case.task),
        case.task,
        case.classes,
    )


@pytest.mark.parametrize("candidate_name", sorted(CANDIDATES))
def test_exported_model_matches_the_trained_pipeline(case: Case, candidate_name: str) -> None:
    parity = case.parity
    columns = case.contract.feature_names
    assert parity[columns].isna().any().any(), "parity rows must include missing values"
    unseen = {
        (column.name, value)
        for column in case.contract.columns
        if column.categories
        for value in set(parity[column.name].dropna()) - set(case.train[column.name])
    }
    assert unseen, "parity rows must include categories the pipeline never saw"

    pipeline = fit(case, candidate_name)
    exported = export_pipeline(pipeline, case.task)
    assert (
        exported.model_format
        == {
            "linear": "linear-json",
            "lightgbm": "lightgbm-text",
            "xgboost": "xgboost-json",
            "catboost": "catboost-json",
            "random_forest": "forest-json",
            "extra_trees": "forest-json",
            "mlp": "mlp-json",
        }[candidate_name]
    )
    json.dumps(exported.preprocessing, allow_nan=False)  # plain JSON, nothing executable

    gaps = check_parity(pipeline, predictor_for(case, exported), parity, case.task)
    assert gaps["rows"] == len(parity)
    for path in ("single", "batched", "columns"):
        assert gaps[path] <= PARITY_TOLERANCE, path


def test_parity_catches_a_perturbed_coefficient(case: Case) -> None:
    pipeline = fit(case, "linear")
    exported = export_pipeline(pipeline, case.task)
    payload = json.loads(exported.model_payload)
    payload["coefficients"][0][0] += 1e-3
    tampered = dataclasses.replace(exported, model_payload=json.dumps(payload))
    with pytest.raises(ExportError, match="disagrees with the trained one"):
        check_parity(pipeline, predictor_for(case, tampered), case.parity, case.task)


def test_parity_catches_a_perturbed_preprocessing_spec(case: Case) -> None:
    pipeline = fit(case, "linear")
    exported = export_pipeline(pipeline, case.task)
    spec = json.loads(json.dumps(exported.preprocessing))
    numeric = next(e for e in spec["encoders"] if e["kind"] == "numeric")
    numeric["scale"] *= 1.01
    tampered = dataclasses.replace(exported, preprocessing=spec)
    with pytest.raises(ExportError, match="The bundle was not written"):
        check_parity(pipeline, predictor_for(case, tampered), case.parity, case.task)


def test_unknown_model_is_refused() -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.tree import DecisionTreeClassifier

    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    pipeline = Pipeline(
        [
            ("preprocess", ColumnTransformer([("numeric", "passthrough", ["x"])])),
            ("model", DecisionTreeClassifier()),
        ]
    ).fit(frame, [0, 1, 0, 1])
    with pytest.raises(ExportError, match="Cannot export a DecisionTreeClassifier"):
        export_pipeline(pipeline, "binary")


def test_unknown_preprocessing_is_refused() -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler

    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    pipeline = Pipeline(
        [
            ("preprocess", ColumnTransformer([("numeric", MinMaxScaler(), ["x"])])),
            ("model", LogisticRegression()),
        ]
    ).fit(frame, [0, 1, 0, 1])
    with pytest.raises(ExportError, match=r"Cannot compile the preprocessing steps \['MinMax"):
        export_pipeline(pipeline, "binary")


def test_frame_to_records_gives_plain_values_and_none_for_missing() -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": [0.5, np.nan], "c": ["x", None]})
    records = frame_to_records(frame)
    assert records == [{"a": 1, "b": 0.5, "c": "x"}, {"a": 2, "b": None, "c": None}]
    assert type(records[0]["a"]) is int
    assert type(records[0]["b"]) is float
