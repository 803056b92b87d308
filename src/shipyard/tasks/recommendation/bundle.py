"""The recommender's export check and the rows of its bundle: items, metrics, leaderboard."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.config import RecommendationConfig
from shipyard.data.sources import read_table
from shipyard.errors import DataError, ExportError
from shipyard.evaluation.metrics import MetricValue
from shipyard.tasks.recommendation.training import RecommenderRun
from shipyard.training.trainer import CandidateResult

__all__ = [
    "check_recommender_parity",
    "item_details",
    "recommender_leaderboard",
    "recommender_metrics",
]

PARITY_USERS = 500


def item_details(settings: RecommendationConfig) -> dict[Any, dict[str, Any]] | None:
    """Read the display fields of each item from ``items_source``, keyed by item id.

    Raises
    ------
    DataError
        When the table lacks the item column or a listed field.
    """
    if settings.items_source is None:
        return None
    table = read_table(settings.items_source)
    for column in (settings.item, *settings.item_fields):
        if column not in table.columns:
            raise DataError(
                f"The items table '{settings.items_source}' has no column '{column}' "
                "(recommendation.item / recommendation.item_fields)."
            )
    fields = list(settings.item_fields)
    details: dict[Any, dict[str, Any]] = {}
    for row in table[[settings.item, *fields]].itertuples(index=False):
        key = row[0].item() if hasattr(row[0], "item") else row[0]
        details[key] = {
            name: (value.item() if hasattr(value, "item") else value)
            for name, value in zip(fields, row[1:], strict=True)
        }
    return details


def check_recommender_parity(run: RecommenderRun, files: dict[str, bytes], manifest: Any) -> float:
    """Largest gap between the trained model's scores and the served scorer's, over users.

    Raises
    ------
    ExportError
        When the gap exceeds 1e-6.
    """
    from shipyard.runtime.recommend import RecommenderScorer

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "bundle"
        for relative, data in files.items():
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            (folder / relative).write_bytes(data)
        scorer = RecommenderScorer(folder, manifest)
        users = np.arange(min(PARITY_USERS, run.interactions.n_users), dtype=np.int64)
        expected = run.model.score_users(users)
        gap = 0.0
        for index in users.tolist():
            answer = scorer.recommend(run.interactions.users[index], k=10)
            for entry in answer["items"]:
                column = scorer._item_index[str(entry["item"])]
                gap = max(gap, abs(entry["score"] - float(expected[index, column])))
    if gap > 1e-6:
        raise ExportError(
            f"The served recommender's scores differ from the trained model's by {gap:.2e} "
            "(more than 1e-6); the bundle was not registered."
        )
    return gap


def recommender_metrics(run: RecommenderRun) -> dict[str, MetricValue]:
    """Return the test metrics at k, popularity's NDCG and the paired gain over it."""
    k = run.test.metrics
    metrics = {f"{name}@k": value for name, value in k.items()}
    metrics["popularity_ndcg@k"] = run.baseline.metrics["ndcg"]
    metrics["ndcg_gain@k"] = run.ndcg_gain
    return metrics


def recommender_leaderboard(run: RecommenderRun) -> list[CandidateResult]:
    """List the families compared on the validation period, best first, as leaderboard rows."""
    return [
        CandidateResult(
            name=row["name"],
            status="ok",
            cv_scores=[row["validation_ndcg"]],
            cv_mean=row["validation_ndcg"],
            cv_low=row["validation_low"],
            cv_high=row["validation_high"],
            fit_seconds=row["seconds"],
            params={} if row["name"] == "popularity" else run.params,
            message="shipped" if row["name"] == run.family else "",
        )
        for row in sorted(run.leaderboard, key=lambda row: -row["validation_ndcg"])
    ]
