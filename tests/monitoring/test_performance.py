from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from shipyard.monitoring.performance import (
    estimated_metrics,
    outputs_from_log,
    realised_metrics,
)


def calibrated_window(n, seed):
    rng = np.random.default_rng(seed)
    positive = rng.beta(0.7, 1.4, n)
    y = (rng.random(n) < positive).astype(int)
    return y, np.column_stack([1 - positive, positive])


def test_estimates_match_realised_metrics_for_a_calibrated_model():
    y, outputs = calibrated_window(40_000, seed=1)
    estimate = estimated_metrics(outputs, "binary")
    assert estimate["accuracy"] == pytest.approx(accuracy_score(y, outputs[:, 1] > 0.5), abs=0.01)
    assert estimate["roc_auc"] == pytest.approx(roc_auc_score(y, outputs[:, 1]), abs=0.01)
    assert estimate["f1"] == pytest.approx(f1_score(y, outputs[:, 1] > 0.5), abs=0.01)


def test_estimates_are_wrong_for_an_overconfident_model():
    """The estimate trusts calibration: an overconfident model looks better than it is."""
    y, outputs = calibrated_window(20_000, seed=2)
    sharpened = outputs**4 / (outputs**4).sum(axis=1, keepdims=True)
    realised = accuracy_score(y, sharpened[:, 1] > 0.5)
    assert estimated_metrics(sharpened, "binary")["accuracy"] > realised + 0.05


def test_realised_metrics_from_log_rows():
    y, outputs = calibrated_window(2000, seed=3)
    classes = ["no", "yes"]
    rows = [
        {
            "label": classes[label],
            "output": {
                "prediction": classes[int(p[1] > 0.5)],
                "probabilities": {"no": p[0], "yes": p[1]},
            },
        }
        for label, p in zip(y, outputs, strict=True)
    ]
    metrics = realised_metrics(rows, "binary", classes, n_samples=200)
    assert metrics["roc_auc"].value == pytest.approx(roc_auc_score(y, outputs[:, 1]))
    assert metrics["roc_auc"].low < metrics["roc_auc"].value < metrics["roc_auc"].high
    with pytest.raises(ValueError, match="'maybe' is not a class"):
        outputs_from_log([{**rows[0], "label": "maybe"}], "binary", classes)


def test_regression_rows_and_no_estimate():
    rows = [
        {"label": 2.0, "output": {"prediction": 1.5}},
        {"label": 1.0, "output": {"prediction": 1.0}},
    ]
    y, outputs = outputs_from_log(rows, "regression", [])
    assert y.tolist() == [2.0, 1.0]
    assert outputs.tolist() == [1.5, 1.0]
    assert estimated_metrics(outputs, "regression") == {}


def test_realised_label_metrics_use_the_threshold_each_answer_logged():
    # A fairness-mitigated model logs the group threshold that decided each answer.
    rows = [
        {"label": "yes", "output": {"probabilities": {"no": 0.7, "yes": 0.3}}},
        {"label": "no", "output": {"probabilities": {"no": 0.6, "yes": 0.4}}},
    ]
    assert realised_metrics(rows, "binary", ["no", "yes"], n_samples=20)["accuracy"].value == 0.5
    for row, cut in zip(rows, (0.25, 0.5), strict=True):
        row["output"]["threshold"] = {"group": "g", "value": cut}
    assert realised_metrics(rows, "binary", ["no", "yes"], n_samples=20)["accuracy"].value == 1.0
