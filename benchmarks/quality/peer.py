"""Run one peer AutoML tool on one split; print a JSON line with the test metric and time.

Run with the Python of the environment where the tool is installed (FLAML and AutoGluon may
need their own virtual environment), e.g.:

    peer-venv/bin/python benchmarks/quality/peer.py flaml train.csv test.csv income binary 60
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pandas as pd
from sklearn.metrics import mean_squared_error, roc_auc_score


def metric(task: str, y: pd.Series, predicted: np.ndarray, positive: str | None) -> float:
    if task == "regression":
        return float(np.sqrt(mean_squared_error(y, predicted)))
    return float(roc_auc_score((y.astype(str) == positive).astype(int), predicted))


def positive_label(y: pd.Series) -> str:
    # The same rule shipyard applies: the less frequent label is the positive class.
    counts = y.astype(str).value_counts()
    return str(counts.index[-1])


def run_flaml(train: pd.DataFrame, test: pd.DataFrame, target: str, task: str, budget: float):
    from flaml import AutoML

    automl = AutoML()
    x, y = train.drop(columns=[target]), train[target]
    positive = None if task == "regression" else positive_label(y)
    if positive is not None:
        y = (y.astype(str) == positive).astype(int)
    automl.fit(
        x,
        y,
        task="regression" if task == "regression" else "classification",
        metric="rmse" if task == "regression" else "roc_auc",
        time_budget=budget,
        n_jobs=2,
        seed=0,
        verbose=0,
    )
    test_x = test.drop(columns=[target])
    if task == "regression":
        return metric(task, test[target], automl.predict(test_x), None), automl.best_estimator
    predicted = automl.predict_proba(test_x)[:, 1]
    return metric(task, test[target], predicted, positive), automl.best_estimator


def run_autogluon(train: pd.DataFrame, test: pd.DataFrame, target: str, task: str, budget: float):
    import tempfile

    from autogluon.tabular import TabularPredictor

    positive = None if task == "regression" else positive_label(train[target])
    with tempfile.TemporaryDirectory() as folder:
        predictor = TabularPredictor(
            label=target,
            eval_metric="root_mean_squared_error" if task == "regression" else "roc_auc",
            path=folder,
            verbosity=0,
        ).fit(train, time_limit=budget, presets="best_quality", num_cpus=2)
        if task == "regression":
            predicted = predictor.predict(test.drop(columns=[target])).to_numpy()
        else:
            probabilities = predictor.predict_proba(test.drop(columns=[target]))
            columns = [str(column) for column in probabilities.columns]
            predicted = probabilities.iloc[:, columns.index(positive)].to_numpy()
        return metric(task, test[target], predicted, positive), predictor.model_best


def main() -> None:
    tool, train_path, test_path, target, task, budget = sys.argv[1:7]
    train, test = pd.read_csv(train_path), pd.read_csv(test_path)
    runner = {"flaml": run_flaml, "autogluon": run_autogluon}[tool]
    started = time.perf_counter()
    value, best = runner(train, test, target, task, float(budget))
    seconds = time.perf_counter() - started
    print(json.dumps({"metric": value, "seconds": seconds, "best": str(best)}))


if __name__ == "__main__":
    main()
