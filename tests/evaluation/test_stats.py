"""The corrected resampled t-test and interval, on cases whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from shipyard.evaluation.stats import corrected_interval, corrected_paired_ttest


def test_statistic_matches_the_nadeau_bengio_formula() -> None:
    a = [0.84, 0.86, 0.85, 0.83, 0.87]
    b = [0.82, 0.85, 0.83, 0.83, 0.84]
    result = corrected_paired_ttest(a, b, test_train_ratio=0.25)
    differences = np.subtract(a, b)
    expected = differences.mean() / math.sqrt((1 / 5 + 0.25) * differences.var(ddof=1))
    assert result.statistic == pytest.approx(expected)
    # The uncorrected test would call this significant; the correction is more careful.
    naive = differences.mean() / math.sqrt(differences.var(ddof=1) / 5)
    assert naive > result.statistic


def test_lower_is_better_metrics_flip_the_direction() -> None:
    errors_a = [1.0, 1.1, 0.9, 1.0, 1.05]
    errors_b = [2.0, 2.1, 1.9, 2.2, 2.0]
    assert corrected_paired_ttest(
        errors_a, errors_b, test_train_ratio=0.25, greater_is_better=False
    ).significant
    assert not corrected_paired_ttest(
        errors_b, errors_a, test_train_ratio=0.25, greater_is_better=False
    ).significant


def test_mismatched_folds_are_refused() -> None:
    with pytest.raises(ValueError, match="same two or more folds"):
        corrected_paired_ttest([0.1, 0.2], [0.1], test_train_ratio=0.25)


def fold_aucs(model: object, x: np.ndarray, y: np.ndarray, seed: int) -> list[float]:
    from sklearn.base import clone

    scores = []
    for fit_rows, score_rows in StratifiedKFold(5, shuffle=True, random_state=seed).split(x, y):
        fitted = clone(model).fit(x[fit_rows], y[fit_rows])
        scores.append(roc_auc_score(y[score_rows], fitted.predict_proba(x[score_rows])[:, 1]))
    return scores


def test_verdict_on_synthetic_data_with_a_known_answer() -> None:
    x, y = make_classification(
        n_samples=1200, n_features=8, n_informative=4, class_sep=1.0, random_state=0
    )
    informed = fold_aucs(LogisticRegression(), x, y, seed=1)
    constant = fold_aucs(DummyClassifier(strategy="prior"), x, y, seed=1)
    # A model that uses the signal beats one that predicts the prior, clearly.
    clearly = corrected_paired_ttest(informed, constant, test_train_ratio=0.25)
    assert clearly.significant
    assert clearly.p_value < 1e-3
    # The same model with a different penalty is not significantly better (nor worse).
    twin = fold_aucs(LogisticRegression(C=0.9), x, y, seed=1)
    assert not corrected_paired_ttest(twin, informed, test_train_ratio=0.25).significant
    assert not corrected_paired_ttest(informed, twin, test_train_ratio=0.25).significant
    # The noise-only side never wins.
    assert not corrected_paired_ttest(constant, informed, test_train_ratio=0.25).significant


def test_corrected_interval_is_wider_than_the_naive_one_and_holds_the_mean() -> None:
    scores = [0.91, 0.93, 0.92, 0.90, 0.94]
    mean, low, high = corrected_interval(scores, test_train_ratio=0.25)
    assert low < mean < high
    assert mean == pytest.approx(0.92)
    naive_half = 2.776 * np.std(scores, ddof=1) / math.sqrt(5)
    assert (high - low) / 2 > naive_half
    assert corrected_interval([0.5, 0.5, 0.5], test_train_ratio=0.5) == (0.5, 0.5, 0.5)
