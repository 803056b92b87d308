"""Train, compare and evaluate recommenders on a time-ordered split.

The latest ``test_fraction`` of positive interactions is the test period. Candidates are
compared on a validation period cut the same way from the end of the training period, the best
is refitted on the whole training period and evaluated on the test period beside the popularity
baseline (a paired bootstrap over users gives the interval of the NDCG difference), and the
served model is finally refitted on all interactions, so that it knows every user.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from shipyard.errors import TrainingError
from shipyard.evaluation.metrics import MetricValue
from shipyard.tasks.recommendation.evaluation import (
    bootstrap_over_users,
    catalogue_coverage,
    paired_difference,
    ranking_metrics_per_user,
    top_k,
)
from shipyard.tasks.recommendation.interactions import (
    Interactions,
    build_interactions,
    positive_events,
    time_split,
)
from shipyard.tasks.recommendation.models import (
    MatrixFactorisation,
    PopularityRecommender,
    make_recommender,
)

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.config import RecommendationConfig

__all__ = ["Evaluation", "RecommenderRun", "evaluate_recommender", "train_recommender"]

Recommender = PopularityRecommender | MatrixFactorisation
Reporter = Callable[[str], None]


@dataclass
class Evaluation:
    """Ranking metrics of one model on one period, per user and aggregated."""

    per_user: dict[str, npt.NDArray[np.float64]]
    metrics: dict[str, MetricValue]
    coverage: float
    users: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "users": self.users,
            "coverage": round(self.coverage, 4),
            **{name: value.as_dict() for name, value in self.metrics.items()},
        }


@dataclass
class RecommenderRun:
    """What a recommendation training run produced."""

    family: str
    params: dict[str, Any]
    model: Recommender
    popularity: PopularityRecommender
    interactions: Interactions
    test: Evaluation
    baseline: Evaluation
    ndcg_gain: MetricValue
    leaderboard: list[dict[str, Any]]
    rows: dict[str, int]
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    cold_start: dict[str, Any] = field(default_factory=dict)
    """Test-period users unseen in training (``users``) of all test users (``test_users``)."""


def evaluate_recommender(
    model: Recommender,
    train: Interactions,
    test_frame: pd.DataFrame,
    user: str,
    item: str,
    k: int,
    *,
    bootstrap_samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Evaluation:
    """Score every warm test user (known from training) and compute metrics at ``k``."""
    test = build_interactions(test_frame, user, item, train.users, train.items)
    matrix = train.matrix()
    relevant: dict[int, set[int]] = {}
    for user_index, item_index in zip(
        test.user_index.tolist(), test.item_index.tolist(), strict=True
    ):
        relevant.setdefault(user_index, set()).add(item_index)
    users = np.array(sorted(relevant), dtype=np.int64)
    seen = [matrix.indices[matrix.indptr[u] : matrix.indptr[u + 1]] for u in users.tolist()]
    # Items a user already had are never recommended, so they cannot count as relevant.
    wanted = [relevant[u] - set(items.tolist()) for u, items in zip(users, seen, strict=True)]
    keep = np.array([bool(items) for items in wanted], dtype=bool)
    users = users[keep]
    seen = [items for items, kept in zip(seen, keep, strict=True) if kept]
    wanted = [items for items in wanted if items]
    if len(users) == 0:
        raise TrainingError(
            "No test-period user was also seen in training, so nothing can be evaluated; "
            "use more data or a smaller recommendation.test_fraction."
        )
    recommended = np.zeros((len(users), min(k, train.n_items)), dtype=np.int64)
    for start in range(0, len(users), 2048):
        block = users[start : start + 2048]
        recommended[start : start + len(block)] = top_k(
            model.score_users(block), seen[start : start + len(block)], k
        )
    per_user = ranking_metrics_per_user(recommended, wanted, k)
    return Evaluation(
        per_user=per_user,
        metrics=bootstrap_over_users(
            per_user, n_samples=bootstrap_samples, confidence=confidence, seed=seed
        ),
        coverage=catalogue_coverage(recommended, train.n_items),
        users=len(users),
    )


def _fit(family: str, params: dict[str, Any], data: Interactions) -> tuple[Recommender, float]:
    started = time.perf_counter()
    model = make_recommender(family, **params).fit(data.matrix())
    return model, time.perf_counter() - started


def train_recommender(
    frame: pd.DataFrame,
    settings: RecommendationConfig,
    *,
    seed: int = 42,
    bootstrap_samples: int = 1000,
    confidence: float = 0.95,
    report: Reporter | None = None,
) -> RecommenderRun:
    """Run the whole recommendation search on a frame of interactions.

    Raises
    ------
    DataError
        When the columns are missing or the split leaves a part empty.
    TrainingError
        When no test user can be evaluated.
    """
    report = report or (lambda message: None)
    user, item, k = settings.user, settings.item, settings.k
    events = positive_events(
        frame, user, item, settings.rating, settings.feedback, settings.positive_threshold
    )
    notes = []
    if len(events) < len(frame):
        notes.append(
            f"kept {len(events)} of {len(frame)} rows as positive feedback"
            + (
                f" ({settings.rating} >= {settings.positive_threshold:g})"
                if settings.feedback == "explicit"
                else ""
            )
        )
    train_frame, test_frame = time_split(events, settings.time, settings.test_fraction)
    fit_frame, validation_frame = time_split(train_frame, settings.time, settings.test_fraction)
    shared = {"factors": settings.factors, "regularization": settings.regularization, "seed": seed}
    family_params: dict[str, dict[str, Any]] = {
        "popularity": {},
        "als": {**shared, "iterations": settings.iterations, "alpha": settings.alpha},
        # BPR takes one sampled step per positive per epoch, so it needs many more epochs.
        "bpr": {
            **shared,
            "iterations": settings.bpr_iterations,
            "learning_rate": settings.learning_rate,
        },
    }
    fit_data = build_interactions(fit_frame, user, item)
    leaderboard: list[dict[str, Any]] = []
    for family in ("popularity", *settings.models):
        model, seconds = _fit(family, family_params[family], fit_data)
        scored = evaluate_recommender(
            model, fit_data, validation_frame, user, item, k, bootstrap_samples=100, seed=seed
        )
        ndcg = scored.metrics["ndcg"]
        report(f"{family}: validation NDCG@{k} {ndcg} ({seconds:.1f} s)")
        leaderboard.append(
            {
                "name": family,
                "validation_ndcg": ndcg.value,
                "validation_low": ndcg.low,
                "validation_high": ndcg.high,
                "seconds": round(seconds, 3),
            }
        )
    best = str(
        max(
            (row for row in leaderboard if row["name"] != "popularity"),
            key=lambda row: float(row["validation_ndcg"]),
        )["name"]
    )
    best_params = family_params[best]

    train_data = build_interactions(train_frame, user, item)
    report(f"refitting {best} on the training period; testing on the latest {len(test_frame)}")
    model, train_seconds = _fit(best, best_params, train_data)
    popularity, popularity_seconds = _fit("popularity", {}, train_data)
    options: dict[str, Any] = {
        "bootstrap_samples": bootstrap_samples,
        "confidence": confidence,
        "seed": seed,
    }
    tested = evaluate_recommender(model, train_data, test_frame, user, item, k, **options)
    baseline = evaluate_recommender(popularity, train_data, test_frame, user, item, k, **options)
    gain = paired_difference(
        tested.per_user["ndcg"],
        baseline.per_user["ndcg"],
        n_samples=bootstrap_samples,
        confidence=confidence,
        seed=seed,
    )
    test_users = set(test_frame[user])
    cold = len(test_users - set(train_frame[user]))
    if cold:
        notes.append(
            f"{cold} test-period users were unseen in training; served, they get the "
            "popularity list (cold start)"
        )

    report(f"refitting {best} on all {len(events)} interactions for serving")
    everything = build_interactions(events, user, item)
    final, _ = _fit(best, best_params, everything)
    popularity_final, _ = _fit("popularity", {}, everything)
    assert isinstance(popularity_final, PopularityRecommender)
    assert isinstance(popularity, PopularityRecommender)
    return RecommenderRun(
        family=best,
        params=best_params,
        model=final,
        popularity=popularity_final,
        interactions=everything,
        test=tested,
        baseline=baseline,
        ndcg_gain=gain,
        leaderboard=leaderboard,
        rows={
            "train": len(train_frame),
            "validation": len(validation_frame),
            "test": len(test_frame),
            "users": everything.n_users,
            "items": everything.n_items,
        },
        notes=notes,
        seconds={"train": round(train_seconds, 3), "popularity": round(popularity_seconds, 3)},
        cold_start={
            "users": cold,
            "test_users": len(test_users),
            "share": cold / len(test_users) if test_users else 0.0,
        },
    )
