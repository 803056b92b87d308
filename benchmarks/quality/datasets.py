"""The benchmark's train/test splits, read from the shared datasets folder.

Adult uses its official split; California housing and COMPAS get a seeded 80/20 split
(stratified for COMPAS). Every tool sees the same CSV files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

ADULT_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
    "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
    "hours-per-week", "native-country", "income",
]  # fmt: skip
COMPAS_FEATURES = [
    "sex", "age", "age_cat", "race", "juv_fel_count", "juv_misd_count", "juv_other_count",
    "priors_count", "c_charge_degree",
]  # fmt: skip


@dataclass
class Split:
    name: str
    task: str  # "binary" or "regression"
    target: str
    metric: str  # "roc_auc" or "rmse"
    train: pd.DataFrame
    test: pd.DataFrame

    def write(self, folder: Path) -> tuple[Path, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        train, test = folder / f"{self.name}-train.csv", folder / f"{self.name}-test.csv"
        self.train.to_csv(train, index=False)
        self.test.to_csv(test, index=False)
        return train, test


def adult(root: Path) -> Split:
    options = {"header": None, "names": ADULT_COLUMNS, "skipinitialspace": True, "na_values": "?"}
    train = pd.read_csv(root / "adult" / "adult.data", **options)
    test = pd.read_csv(root / "adult" / "adult.test", skiprows=1, **options)
    test["income"] = test["income"].str.rstrip(".")
    train, test = (frame.drop(columns=["fnlwgt"]) for frame in (train, test))
    return Split("adult", "binary", "income", "roc_auc", train, test)


def california(root: Path) -> Split:
    frame = pd.read_csv(root / "california_housing" / "housing.csv")
    train, test = train_test_split(frame, test_size=0.2, random_state=0)
    return Split("california", "regression", "median_house_value", "rmse", train, test)


def compas(root: Path) -> Split:
    frame = pd.read_csv(root / "compas" / "compas-scores-two-years.csv")
    frame = frame[[*COMPAS_FEATURES, "two_year_recid"]]
    train, test = train_test_split(
        frame, test_size=0.2, random_state=0, stratify=frame["two_year_recid"]
    )
    return Split("compas", "binary", "two_year_recid", "roc_auc", train, test)


LOADERS = {"adult": adult, "california": california, "compas": compas}
