from __future__ import annotations

import pytest

from shipyard import datasets
from shipyard.tasks.recommendation.monitoring import feedback_metrics, popularity_drift


def test_popularity_drift_on_real_ratings():
    ratings = datasets.load("xwines").train
    years = ratings["Date"].dt.year
    reference = ratings.loc[years <= 2019, "WineID"]
    same_period = popularity_drift(reference, reference.sample(3000, random_state=0))
    assert same_period.drifted is False
    # Taste moved by 2021 (the data's documented shift): the item mix differs significantly.
    later = ratings.loc[years == 2021, "WineID"].sample(3000, random_state=0)
    shifted = popularity_drift(reference, later)
    assert shifted.drifted is True
    assert shifted.psi > same_period.psi
    too_few = popularity_drift(reference, later.head(20))
    assert too_few.drifted is None  # no verdict below min_samples


def test_feedback_metrics_by_hand():
    served = [("a", [1, 2, 3]), ("b", [4, 5, 6]), ("c", [7, 8, 9]), ("a", [3, 10, 11])]
    events = [("a", 3), ("a", 2), ("b", 9), ("c", 7)]
    metrics = feedback_metrics(served, events, n_samples=200)
    assert metrics["hit_rate"].value == pytest.approx(3 / 4)
    assert metrics["precision"].value == pytest.approx((2 / 3 + 0 + 1 / 3 + 1 / 3) / 4)
    assert metrics["hit_rate"].low <= 0.75 <= metrics["hit_rate"].high
