from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shipyard.errors import DataError, TrainingError
from shipyard.tasks.recommendation.interactions import (
    build_interactions,
    positive_events,
    time_split,
)
from shipyard.tasks.recommendation.models import MatrixFactorisation, PopularityRecommender


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user": ["a", "a", "b", "b", "c", "c", "c"],
            "item": [1, 2, 2, 3, 1, 2, 3],
            "rating": [5, 2, 4, 4.5, 4, 5, 1],
            "when": pd.to_datetime(["2020-01-07", *(f"2020-01-0{day}" for day in range(1, 7))]),
        }
    )


def test_explicit_ratings_keep_positives_and_split_by_time():
    events = positive_events(_frame(), "user", "item", "rating", "explicit", 4.0)
    assert len(events) == 5
    train, test = time_split(events, "when", 0.2)
    assert train["when"].max() < test["when"].min()
    assert test["user"].tolist() == ["a"]


def test_errors_name_the_problem():
    with pytest.raises(DataError, match="user column 'who'"):
        positive_events(_frame(), "who", "item", None, "implicit", 4.0)
    with pytest.raises(DataError, match="rating is not set"):
        positive_events(_frame(), "user", "item", None, "explicit", 4.0)
    with pytest.raises(DataError, match="positive_threshold"):
        positive_events(_frame(), "user", "item", "rating", "explicit", 9.0)
    with pytest.raises(DataError, match="leaves a part empty"):
        time_split(_frame().head(1), "when", 0.2)


def test_interactions_index_test_rows_with_training_mappings():
    train = build_interactions(_frame().head(4), "user", "item")
    assert train.users == ["a", "b"]
    assert train.items == [1, 2, 3]
    later = build_interactions(_frame(), "user", "item", train.users, train.items)
    assert later.n_users == 2
    assert len(later.user_index) == 4
    assert train.matrix().toarray().tolist() == [[1, 1, 0], [0, 1, 1]]


def test_popularity_counts_users_and_factorisations_fit():
    matrix = build_interactions(_frame(), "user", "item").matrix()
    popularity = PopularityRecommender().fit(matrix)
    assert popularity.popularity_ is not None
    assert popularity.popularity_.tolist() == [2, 3, 2]
    for algorithm in ("als", "bpr"):
        model = MatrixFactorisation(algorithm, factors=4, iterations=3, seed=0).fit(matrix)
        assert model.user_factors_.shape[0] == 3
        scores = model.score_users(np.array([0, 2]))
        assert scores.shape == (2, 3)
        assert np.isfinite(scores).all()


def test_fit_is_reproducible_and_validates_parameters():
    matrix = build_interactions(_frame(), "user", "item").matrix()
    first = MatrixFactorisation("als", factors=4, iterations=3, seed=7).fit(matrix)
    second = MatrixFactorisation("als", factors=4, iterations=3, seed=7).fit(matrix)
    np.testing.assert_array_equal(first.item_factors_, second.item_factors_)
    with pytest.raises(TrainingError, match=r"must be one of als, bpr\. Got 'svd'"):
        MatrixFactorisation("svd").fit(matrix)
    with pytest.raises(TrainingError, match="not fitted"):
        PopularityRecommender().score_users(np.array([0]))
