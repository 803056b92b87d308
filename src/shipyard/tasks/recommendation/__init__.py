"""The recommendation task: interactions, recommenders, ranking evaluation, export.

Heavy pieces (``implicit``) load only when a matrix factorisation is fitted.
"""

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
from shipyard.tasks.recommendation.models import MatrixFactorisation, PopularityRecommender
from shipyard.tasks.recommendation.training import (
    Evaluation,
    RecommenderRun,
    evaluate_recommender,
    train_recommender,
)

__all__ = [
    "Evaluation",
    "Interactions",
    "MatrixFactorisation",
    "PopularityRecommender",
    "RecommenderRun",
    "bootstrap_over_users",
    "build_interactions",
    "catalogue_coverage",
    "evaluate_recommender",
    "paired_difference",
    "positive_events",
    "ranking_metrics_per_user",
    "time_split",
    "top_k",
    "train_recommender",
]
