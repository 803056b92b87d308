from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import ndcg_score

from shipyard.tasks.recommendation.evaluation import (
    bootstrap_over_users,
    catalogue_coverage,
    paired_difference,
    ranking_metrics_per_user,
    top_k,
)


def test_metrics_by_hand():
    recommended = np.array([[3, 1, 2], [0, 4, 5]])
    per_user = ranking_metrics_per_user(recommended, [{1, 4}, {0, 5, 7}], k=3)
    assert per_user["precision"].tolist() == pytest.approx([1 / 3, 2 / 3])
    assert per_user["recall"].tolist() == pytest.approx([1 / 2, 2 / 3])
    ideal_second = 1 + 1 / np.log2(3) + 1 / np.log2(4)
    assert per_user["ndcg"][1] == pytest.approx((1 + 1 / np.log2(4)) / ideal_second)
    # Average precision: hits at ranks 1 and 3 -> (1/1 + 2/3) / min(3, 3).
    assert per_user["map"][1] == pytest.approx((1 + 2 / 3) / 3)


def test_ndcg_matches_scikit_learn_on_binary_relevance():
    rng = np.random.default_rng(0)
    n_users, n_items, k = 50, 40, 10
    scores = rng.normal(size=(n_users, n_items))
    relevance = rng.random((n_users, n_items)) < 0.1
    relevance[:, 0] = True  # every user has something relevant
    recommended = top_k(scores, [np.array([], dtype=np.int64)] * n_users, k)
    relevant = [set(np.flatnonzero(row).tolist()) for row in relevance]
    ours = ranking_metrics_per_user(recommended, relevant, k)["ndcg"]
    theirs = [ndcg_score(relevance[[u]].astype(float), scores[[u]], k=k) for u in range(n_users)]
    np.testing.assert_allclose(ours, theirs, atol=1e-12)


def test_top_k_skips_seen_items_and_orders_best_first():
    scores = np.array([[0.9, 0.1, 0.8, 0.5], [0.2, 0.3, 0.4, 0.1]])
    best = top_k(scores, [np.array([0]), np.array([], dtype=np.int64)], 2)
    assert best.tolist() == [[2, 3], [2, 1]]


def test_paired_difference_excludes_zero_only_when_one_model_is_better():
    rng = np.random.default_rng(1)
    baseline = rng.random(400)
    better = paired_difference(baseline + 0.05, baseline, n_samples=300)
    assert better.low > 0
    same = paired_difference(baseline + rng.normal(0, 0.01, 400), baseline, n_samples=300)
    assert same.low < 0 < same.high


def test_bootstrap_interval_brackets_mean_and_coverage():
    values = {"ndcg": np.linspace(0, 1, 101)}
    result = bootstrap_over_users(values, n_samples=200)["ndcg"]
    assert result.value == pytest.approx(0.5)
    assert result.low < result.value < result.high
    assert catalogue_coverage(np.array([[0, 1], [1, 2]]), 10) == pytest.approx(0.3)
