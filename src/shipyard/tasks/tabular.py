"""Tabular candidates: scikit-learn pipelines whose preprocessing the exporter can compile.

Each candidate fits on the training part (LightGBM early-stops on the validation part) and then
offers an unfitted copy with the settings it chose, for cross-validation. Preprocessing uses
only the transformers that :mod:`shipyard.tasks.export` knows how to compile.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, NamedTuple

from shipyard.runtime.preprocess import MISSING_CATEGORY

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from shipyard.data.contract import Contract

__all__ = ["CANDIDATES", "FeatureSet", "LightGBMCandidate", "LinearCandidate", "feature_set"]


class FeatureSet(NamedTuple):
    """Feature columns by how they are encoded."""

    numeric: list[str]
    categorical: list[str]

    @property
    def all(self) -> list[str]:
        """Every feature column, numeric first (the order the pipelines read them)."""
        return [*self.numeric, *self.categorical]


def feature_set(contract: Contract) -> FeatureSet:
    """Split the contract's feature columns into numeric and categorical ones."""
    return FeatureSet(
        numeric=[column.name for column in contract.columns if not column.is_categorical],
        categorical=[column.name for column in contract.columns if column.is_categorical],
    )


class LinearCandidate:
    """Regularised logistic (classification) or ridge (regression) regression.

    Numeric columns are median-imputed and standardised; categorical columns get a
    ``(missing)`` level and are one-hot encoded, with categories seen fewer than
    ``min_frequency`` times grouped.
    """

    name = "linear"

    def __init__(self, features: FeatureSet, task: str, seed: int, min_frequency: int = 5) -> None:
        self.features = features
        self.task = task
        self.seed = seed
        self.min_frequency = min_frequency

    def pipeline(self) -> Pipeline:
        """Return the unfitted pipeline."""
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression, Ridge
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        numeric = Pipeline(
            [
                ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                ("scale", StandardScaler()),
            ]
        )
        categorical = Pipeline(
            [
                (
                    "impute",
                    SimpleImputer(
                        strategy="constant", fill_value=MISSING_CATEGORY, keep_empty_features=True
                    ),
                ),
                (
                    "encode",
                    OneHotEncoder(
                        handle_unknown="infrequent_if_exist",
                        min_frequency=self.min_frequency,
                        sparse_output=False,
                    ),
                ),
            ]
        )
        preprocess = ColumnTransformer(
            [
                ("numeric", numeric, self.features.numeric),
                ("categorical", categorical, self.features.categorical),
            ]
        )
        model: Any = (
            Ridge(alpha=1.0)
            if self.task == "regression"
            else LogisticRegression(C=1.0, max_iter=2000)
        )
        return Pipeline([("preprocess", preprocess), ("model", model)])

    def fit(
        self, train_x: pd.DataFrame, train_y: Any, validation_x: pd.DataFrame, validation_y: Any
    ) -> Pipeline:
        """Fit on the training part."""
        return self.pipeline().fit(train_x, train_y)

    def cv_pipeline(self) -> Pipeline:
        """Return an unfitted copy for cross-validation."""
        return self.pipeline()

    def fit_params(self) -> dict[str, Any]:
        """Extra keyword arguments for ``Pipeline.fit``."""
        return {}

    def params(self) -> dict[str, Any]:
        """Return the settings worth recording in the registry."""
        return {"min_frequency": self.min_frequency, "regularisation": 1.0}


class LightGBMCandidate:
    """Gradient-boosted trees with native categorical splits and missing-value handling.

    The number of trees is chosen by early stopping on the validation part.
    """

    name = "lightgbm"

    def __init__(
        self,
        features: FeatureSet,
        task: str,
        seed: int,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        max_trees: int = 2000,
        n_jobs: int = 2,
    ) -> None:
        self.features = features
        self.task = task
        self.seed = seed
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.max_trees = max_trees
        self.n_jobs = n_jobs
        self.best_trees_: int | None = None

    def _preprocess(self) -> Any:
        import numpy as np
        from sklearn.compose import ColumnTransformer
        from sklearn.preprocessing import OrdinalEncoder

        encoder = OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan
        )
        return ColumnTransformer(
            [
                ("numeric", "passthrough", self.features.numeric),
                ("categorical", encoder, self.features.categorical),
            ]
        )

    def _model(self, n_estimators: int) -> Any:
        import lightgbm

        cls = lightgbm.LGBMRegressor if self.task == "regression" else lightgbm.LGBMClassifier
        return cls(
            n_estimators=n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.8,
            random_state=self.seed,
            n_jobs=self.n_jobs,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
        )

    def fit_params(self) -> dict[str, Any]:
        """Tell LightGBM which encoded columns are categorical."""
        first = len(self.features.numeric)
        indices = list(range(first, first + len(self.features.categorical)))
        return {"model__categorical_feature": indices}

    def fit(
        self, train_x: pd.DataFrame, train_y: Any, validation_x: pd.DataFrame, validation_y: Any
    ) -> Pipeline:
        """Fit on the training part, early-stopping on the validation part."""
        import lightgbm
        from sklearn.pipeline import Pipeline

        preprocess = self._preprocess().fit(train_x)
        model = self._model(self.max_trees)
        validation = (preprocess.transform(validation_x), validation_y)
        # LightGBM 4.7 renamed eval_set to eval_X/eval_y and warns on the old name.
        accepts_eval_x = "eval_X" in inspect.signature(model.fit).parameters
        evaluation = (
            {"eval_X": (validation[0],), "eval_y": (validation[1],)}
            if accepts_eval_x
            else {"eval_set": [validation]}
        )
        model.fit(
            preprocess.transform(train_x),
            train_y,
            **evaluation,
            categorical_feature=self.fit_params()["model__categorical_feature"],
            callbacks=[lightgbm.early_stopping(50, verbose=False)],
        )
        self.best_trees_ = int(model.best_iteration_ or self.max_trees)
        return Pipeline([("preprocess", preprocess), ("model", model)])

    def cv_pipeline(self) -> Pipeline:
        """Return an unfitted copy with the tree count that early stopping chose."""
        from sklearn.pipeline import Pipeline

        return Pipeline(
            [
                ("preprocess", self._preprocess()),
                ("model", self._model(self.best_trees_ or self.max_trees)),
            ]
        )

    def params(self) -> dict[str, Any]:
        """Return the settings worth recording in the registry."""
        return {
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "n_estimators": self.best_trees_,
            "subsample": 0.8,
            "colsample_bytree": 0.8,
        }


CANDIDATES: dict[str, type[LinearCandidate] | type[LightGBMCandidate]] = {
    "linear": LinearCandidate,
    "lightgbm": LightGBMCandidate,
}
