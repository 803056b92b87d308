"""Tabular candidates: model families with search spaces, known-good defaults and pipelines.

Every family builds a scikit-learn ``Pipeline([("preprocess", ...), ("model", ...)])`` whose
preprocessing uses only transformers that :mod:`shipyard.training.export` can compile, and whose
model the exporter can write to a format that loads no pickle. A family offers:

- ``portfolio(task)``: known-good settings, tried first by the search;
- ``suggest(trial, task)``: its Optuna search space;
- ``fit(train_x, train_y, validation_x, validation_y)``: a fitted pipeline (the boosters
  early-stop on the validation part and remember how many trees that chose);
- ``cv_pipeline()``: an unfitted copy with the chosen settings.

Heavy libraries (XGBoost, CatBoost) are imported inside methods and belong to extras.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, ClassVar

from shipyard.runtime.preprocess import MISSING_CATEGORY
from shipyard.training.candidates import Candidate, FeatureSet

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline


__all__ = [
    "CANDIDATES",
    "CatBoostCandidate",
    "ExtraTreesCandidate",
    "FeatureSet",
    "LightGBMCandidate",
    "LinearCandidate",
    "MLPCandidate",
    "RandomForestCandidate",
    "TabularCandidate",
    "XGBoostCandidate",
]


def _onehot_preprocess(features: FeatureSet, min_frequency: int) -> Any:
    """Median-impute and standardise numbers; one-hot categories with a ``(missing)`` level."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
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
                    min_frequency=min_frequency,
                    sparse_output=False,
                ),
            ),
        ]
    )
    return ColumnTransformer(
        [
            ("numeric", numeric, features.numeric),
            ("categorical", categorical, features.categorical),
        ]
    )


def _ordinal_preprocess(features: FeatureSet) -> Any:
    """Pass numbers through (missing stays NaN); code categories, unknown and missing as NaN."""
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OrdinalEncoder

    encoder = OrdinalEncoder(
        handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan
    )
    return ColumnTransformer(
        [
            ("numeric", "passthrough", features.numeric),
            ("categorical", encoder, features.categorical),
        ]
    )


class TabularCandidate(Candidate):
    """A family reading the table's columns: numbers as they are, categories as codes."""

    def _preprocess(self) -> Any:
        return _ordinal_preprocess(self.features)


class LinearCandidate(TabularCandidate):
    """Regularised logistic (classification) or ridge (regression) regression.

    Numeric columns are median-imputed and standardised; categorical columns get a
    ``(missing)`` level and are one-hot encoded, with rare categories grouped.
    """

    name = "linear"
    complexity = 0
    priority = 3
    defaults: ClassVar[dict[str, Any]] = {"regularisation": 1.0, "min_frequency": 5}

    @classmethod
    def suggest(cls, trial: Any, task: str) -> dict[str, Any]:
        """Inverse regularisation strength on a log scale."""
        return {
            "regularisation": trial.suggest_float("linear.regularisation", 1e-3, 100.0, log=True),
            "min_frequency": trial.suggest_categorical("linear.min_frequency", [1, 5, 20]),
        }

    def _preprocess(self) -> Any:
        return _onehot_preprocess(self.features, self.settings["min_frequency"])

    def _model(self, n_estimators: int | None = None) -> Any:
        from sklearn.linear_model import LogisticRegression, Ridge

        strength = float(self.settings["regularisation"])
        if self.task == "regression":
            return Ridge(alpha=1.0 / strength)
        return LogisticRegression(C=strength, max_iter=2000)


class LightGBMCandidate(TabularCandidate):
    """Gradient-boosted trees; the number of trees is chosen by early stopping."""

    name = "lightgbm"
    complexity = 3
    priority = 0
    uses_validation = True
    max_trees = 3000
    defaults: ClassVar[dict[str, Any]] = {
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_child_samples": 20,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "reg_lambda": 0.0,
        "native_categorical": True,
    }

    @classmethod
    def portfolio(cls, task: str) -> list[dict[str, Any]]:
        """Return small trees at a slow rate, the defaults, and a slower, wider setting.

        The small trees come first because they generalise best of the three: on Adult they
        have the best cross-validated AUC, and when a loaded machine leaves time for only one
        setting, it should be the safest one.
        """
        return [
            {
                **cls.defaults,
                "learning_rate": 0.03,
                "num_leaves": 15,
                "min_child_samples": 30,
                "colsample_bytree": 0.5,
                "reg_lambda": 1.0,
                "native_categorical": False,
            },
            dict(cls.defaults),
            {
                **cls.defaults,
                "learning_rate": 0.02,
                "num_leaves": 63,
                "min_child_samples": 50,
                "colsample_bytree": 0.6,
                "subsample": 0.7,
                "reg_lambda": 5.0,
            },
        ]

    @classmethod
    def suggest(cls, trial: Any, task: str) -> dict[str, Any]:
        """Learning rate, tree size, sampling and L2 regularisation."""
        return {
            "learning_rate": trial.suggest_float("lightgbm.learning_rate", 0.01, 0.2, log=True),
            "num_leaves": trial.suggest_int("lightgbm.num_leaves", 7, 255, log=True),
            "min_child_samples": trial.suggest_int("lightgbm.min_child_samples", 5, 100, log=True),
            "subsample": trial.suggest_float("lightgbm.subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("lightgbm.colsample_bytree", 0.3, 1.0),
            "reg_lambda": trial.suggest_float("lightgbm.reg_lambda", 1e-3, 10.0, log=True),
            "native_categorical": trial.suggest_categorical(
                "lightgbm.native_categorical", [True, False]
            ),
        }

    def _model(self, n_estimators: int | None = None) -> Any:
        import lightgbm

        cls = lightgbm.LGBMRegressor if self.task == "regression" else lightgbm.LGBMClassifier
        settings = {
            key: value for key, value in self.settings.items() if key != "native_categorical"
        }
        return cls(
            n_estimators=n_estimators or self.max_trees,
            subsample_freq=1,
            random_state=self.seed,
            n_jobs=self.n_jobs,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
            **settings,
        )

    def _categorical_indices(self) -> list[int]:
        if not self.settings["native_categorical"]:
            return []
        first = len(self.features.numeric)
        return list(range(first, first + len(self.features.categorical)))

    def fit_params(self, sample_weight: Any = None) -> dict[str, Any]:
        """Tell LightGBM which encoded columns are categorical, and when to stop."""
        clock = {} if self.stop_at is None else {"model__callbacks": [self._lightgbm_clock()]}
        return {
            **super().fit_params(sample_weight),
            "model__categorical_feature": self._categorical_indices(),
            **clock,
        }

    def fit(
        self,
        train_x: pd.DataFrame,
        train_y: Any,
        validation_x: pd.DataFrame,
        validation_y: Any,
        sample_weight: Any = None,
    ) -> Pipeline:
        """Fit on the training part, early-stopping on the validation part."""
        import lightgbm
        from sklearn.pipeline import Pipeline

        preprocess = self._preprocess().fit(train_x)
        model = self._model()
        validation = (preprocess.transform(validation_x), validation_y)
        # LightGBM 4.7 renamed eval_set to eval_X/eval_y and warns on the old name.
        accepts_eval_x = "eval_X" in inspect.signature(model.fit).parameters
        evaluation = (
            {"eval_X": (validation[0],), "eval_y": (validation[1],)}
            if accepts_eval_x
            else {"eval_set": [validation]}
        )
        stopper = lightgbm.early_stopping(50, verbose=False)
        model.fit(
            preprocess.transform(train_x),
            train_y,
            sample_weight=sample_weight,
            **evaluation,
            categorical_feature=self._categorical_indices(),
            callbacks=[stopper, self._lightgbm_clock(stopper)],
        )
        self.best_trees_ = int(model.best_iteration_ or self.max_trees)
        return Pipeline([("preprocess", preprocess), ("model", model)])

    def _lightgbm_clock(self, stopper: Any = None) -> Any:
        """Return a callback that ends training once :attr:`stop_at` has passed.

        With early stopping (``stopper``) the model keeps the best iteration so far rather
        than the last one; it runs after the early-stopping callback, which has then already
        looked at the iteration.
        """
        import lightgbm

        def stop_when_out_of_time(env: Any) -> None:
            if not self.out_of_time():
                return
            if stopper is not None and stopper.best_iter:
                raise lightgbm.callback.EarlyStopException(
                    stopper.best_iter[0], stopper.best_score_list[0]
                )
            raise lightgbm.callback.EarlyStopException(env.iteration, env.evaluation_result_list)

        stop_when_out_of_time.order = 40  # type: ignore[attr-defined]
        return stop_when_out_of_time


class XGBoostCandidate(TabularCandidate):
    """XGBoost histogram trees (extra ``xgboost``); trees chosen by early stopping."""

    name = "xgboost"
    complexity = 3
    priority = 2
    extra = "xgboost"
    module = "xgboost"
    uses_validation = True
    max_trees = 3000
    defaults: ClassVar[dict[str, Any]] = {
        "learning_rate": 0.05,
        "max_depth": 6,
        "min_child_weight": 1.0,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "reg_lambda": 1.0,
    }

    @classmethod
    def portfolio(cls, task: str) -> list[dict[str, Any]]:
        """Return the defaults and shallower trees with stronger column sampling."""
        return [
            dict(cls.defaults),
            {**cls.defaults, "learning_rate": 0.03, "max_depth": 4, "colsample_bytree": 0.5},
        ]

    @classmethod
    def suggest(cls, trial: Any, task: str) -> dict[str, Any]:
        """Learning rate, depth, child weight, sampling and L2 regularisation."""
        return {
            "learning_rate": trial.suggest_float("xgboost.learning_rate", 0.01, 0.2, log=True),
            "max_depth": trial.suggest_int("xgboost.max_depth", 2, 10),
            "min_child_weight": trial.suggest_float(
                "xgboost.min_child_weight", 0.5, 20.0, log=True
            ),
            "subsample": trial.suggest_float("xgboost.subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("xgboost.colsample_bytree", 0.3, 1.0),
            "reg_lambda": trial.suggest_float("xgboost.reg_lambda", 1e-2, 10.0, log=True),
        }

    def _model(self, n_estimators: int | None = None, early_stopping: bool = False) -> Any:
        import xgboost

        candidate = self

        class StopWhenOutOfTime(xgboost.callback.TrainingCallback):
            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                return candidate.out_of_time()

        cls = xgboost.XGBRegressor if self.task == "regression" else xgboost.XGBClassifier
        return cls(
            n_estimators=n_estimators or self.max_trees,
            tree_method="hist",
            random_state=self.seed,
            n_jobs=self.n_jobs,
            early_stopping_rounds=50 if early_stopping else None,
            callbacks=[StopWhenOutOfTime()]
            if early_stopping or self.stop_at is not None
            else None,
            **self.settings,
        )

    def fit(
        self,
        train_x: pd.DataFrame,
        train_y: Any,
        validation_x: pd.DataFrame,
        validation_y: Any,
        sample_weight: Any = None,
    ) -> Pipeline:
        """Fit on the training part, early-stopping on the validation part."""
        from sklearn.pipeline import Pipeline

        preprocess = self._preprocess().fit(train_x)
        model = self._model(early_stopping=True)
        model.fit(
            preprocess.transform(train_x),
            train_y,
            sample_weight=sample_weight,
            eval_set=[(preprocess.transform(validation_x), validation_y)],
            verbose=False,
        )
        try:
            self.best_trees_ = int(model.best_iteration) + 1
        except AttributeError:  # stopped by the clock before early stopping kept a best
            self.best_trees_ = int(model.get_booster().num_boosted_rounds())
        return Pipeline([("preprocess", preprocess), ("model", _without_clock(model))])

    def fit_all(
        self, x: pd.DataFrame, y: Any, trees: int | None = None, sample_weight: Any = None
    ) -> Pipeline:
        """Fit on every row with ``trees`` trees, stopping early at :attr:`stop_at`."""
        pipeline = super().fit_all(x, y, trees, sample_weight)
        _without_clock(pipeline.named_steps["model"])
        return pipeline


def _without_clock(model: Any) -> Any:
    """Drop the clock callback from a fitted XGBoost model: it refers to its candidate."""
    model.set_params(callbacks=None)
    return model


class CatBoostCandidate(TabularCandidate):
    """CatBoost oblivious trees (extra ``catboost``); trees chosen by early stopping.

    Categories reach CatBoost as ordinal codes (unknown and missing as NaN), like every other
    tree family here, so the exported model is a plain float-feature model that CatBoost's
    JSON format describes completely.
    """

    name = "catboost"
    complexity = 3
    priority = 1
    extra = "catboost"
    module = "catboost"
    uses_validation = True
    max_trees = 3000
    defaults: ClassVar[dict[str, Any]] = {
        "learning_rate": 0.08,
        "depth": 6,
        "l2_leaf_reg": 3.0,
        "random_strength": 1.0,
        "bagging_temperature": 1.0,
    }

    @classmethod
    def portfolio(cls, task: str) -> list[dict[str, Any]]:
        """Return the defaults and deeper, more regularised trees with a slower rate."""
        return [
            dict(cls.defaults),
            {**cls.defaults, "learning_rate": 0.05, "depth": 8, "l2_leaf_reg": 10.0},
        ]

    @classmethod
    def suggest(cls, trial: Any, task: str) -> dict[str, Any]:
        """Learning rate, depth, L2 regularisation, split noise and bagging strength."""
        return {
            "learning_rate": trial.suggest_float("catboost.learning_rate", 0.01, 0.3, log=True),
            "depth": trial.suggest_int("catboost.depth", 3, 10),
            "l2_leaf_reg": trial.suggest_float("catboost.l2_leaf_reg", 0.5, 30.0, log=True),
            "random_strength": trial.suggest_float(
                "catboost.random_strength", 0.1, 10.0, log=True
            ),
            "bagging_temperature": trial.suggest_float("catboost.bagging_temperature", 0.0, 1.0),
        }

    def _model(self, n_estimators: int | None = None) -> Any:
        import catboost

        cls = (
            catboost.CatBoostRegressor
            if self.task == "regression"
            else catboost.CatBoostClassifier
        )
        return cls(
            iterations=n_estimators or self.max_trees,
            random_seed=self.seed,
            thread_count=self.n_jobs,
            verbose=0,
            allow_writing_files=False,
            **self.settings,
        )

    def fit(
        self,
        train_x: pd.DataFrame,
        train_y: Any,
        validation_x: pd.DataFrame,
        validation_y: Any,
        sample_weight: Any = None,
    ) -> Pipeline:
        """Fit on the training part, early-stopping on the validation part."""
        from sklearn.pipeline import Pipeline

        preprocess = self._preprocess().fit(train_x)
        model = self._model()
        model.fit(
            preprocess.transform(train_x),
            train_y,
            sample_weight=sample_weight,
            eval_set=(preprocess.transform(validation_x), validation_y),
            early_stopping_rounds=50,
            use_best_model=True,
            callbacks=[_CatBoostClock(self)],
        )
        # use_best_model keeps only the trees up to the best iteration.
        self.best_trees_ = int(model.tree_count_)
        return Pipeline([("preprocess", preprocess), ("model", model)])

    def fit_params(self, sample_weight: Any = None) -> dict[str, Any]:
        """Stop at :attr:`~Candidate.stop_at` when one is set."""
        clock = {} if self.stop_at is None else {"model__callbacks": [_CatBoostClock(self)]}
        return {**super().fit_params(sample_weight), **clock}


class _CatBoostClock:
    """CatBoost callback: continue while the candidate's :attr:`~Candidate.stop_at` is ahead."""

    def __init__(self, candidate: Candidate) -> None:
        self.candidate = candidate

    def after_iteration(self, info: Any) -> bool:
        return not self.candidate.out_of_time()


class _ForestCandidate(TabularCandidate):
    """Shared code of the two bagged forests (they handle NaN natively)."""

    complexity = 2
    size_param = "n_estimators"
    defaults: ClassVar[dict[str, Any]] = {
        "n_estimators": 200,
        "max_features": 0.5,
        "min_samples_leaf": 3,
    }

    @classmethod
    def suggest(cls, trial: Any, task: str) -> dict[str, Any]:
        """Forest size, features per split and leaf size."""
        return {
            "n_estimators": trial.suggest_int(f"{cls.name}.n_estimators", 50, 300, step=50),
            "max_features": trial.suggest_float(f"{cls.name}.max_features", 0.1, 1.0),
            "min_samples_leaf": trial.suggest_int(f"{cls.name}.min_samples_leaf", 1, 30, log=True),
        }

    def _model(self, n_estimators: int | None = None) -> Any:
        from sklearn import ensemble

        kind = self.forest_classes[self.task == "regression"]
        return getattr(ensemble, kind)(random_state=self.seed, n_jobs=self.n_jobs, **self.settings)

    forest_classes: ClassVar[tuple[str, str]] = ("", "")


class RandomForestCandidate(_ForestCandidate):
    """A random forest of full-depth trees, bootstrapped."""

    name = "random_forest"
    priority = 5
    forest_classes = ("RandomForestClassifier", "RandomForestRegressor")


class ExtraTreesCandidate(_ForestCandidate):
    """Extremely randomised trees: random split thresholds, no bootstrap."""

    name = "extra_trees"
    priority = 4
    forest_classes = ("ExtraTreesClassifier", "ExtraTreesRegressor")


class MLPCandidate(TabularCandidate):
    """A small fully connected network (scikit-learn) with early stopping on a held-out tenth."""

    name = "mlp"
    complexity = 4
    priority = 6
    defaults: ClassVar[dict[str, Any]] = {
        "hidden": [64],
        "alpha": 1e-3,
        "learning_rate_init": 1e-3,
        "min_frequency": 5,
    }

    @classmethod
    def portfolio(cls, task: str) -> list[dict[str, Any]]:
        """Return one and two hidden layers."""
        return [dict(cls.defaults), {**cls.defaults, "hidden": [128, 64], "alpha": 1e-2}]

    @classmethod
    def suggest(cls, trial: Any, task: str) -> dict[str, Any]:
        """Width, depth, L2 penalty and step size."""
        width = trial.suggest_int("mlp.width", 16, 256, log=True)
        depth = trial.suggest_int("mlp.depth", 1, 3)
        return {
            "hidden": [width] * depth,
            "alpha": trial.suggest_float("mlp.alpha", 1e-5, 1.0, log=True),
            "learning_rate_init": trial.suggest_float(
                "mlp.learning_rate_init", 1e-4, 1e-2, log=True
            ),
            "min_frequency": 5,
        }

    def _preprocess(self) -> Any:
        return _onehot_preprocess(self.features, self.settings["min_frequency"])

    def _model(self, n_estimators: int | None = None) -> Any:
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        cls = MLPRegressor if self.task == "regression" else MLPClassifier
        return cls(
            hidden_layer_sizes=tuple(self.settings["hidden"]),
            alpha=self.settings["alpha"],
            learning_rate_init=self.settings["learning_rate_init"],
            early_stopping=True,
            max_iter=200,
            random_state=self.seed,
        )


CANDIDATES: dict[str, type[Candidate]] = {
    family.name: family
    for family in (
        LinearCandidate,
        LightGBMCandidate,
        XGBoostCandidate,
        CatBoostCandidate,
        RandomForestCandidate,
        ExtraTreesCandidate,
        MLPCandidate,
    )
}
