"""The recommender's sections of the model card and the evaluation report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shipyard.evaluation.report import Document, DocumentSections, metric_text
from shipyard.evaluation.sections import leaderboard_blocks, number_text

__all__ = [
    "RECOMMENDATION_SECTIONS",
    "interaction_columns",
    "recommendation_blocks",
    "recommendation_limitations",
]


def recommendation_blocks(document: Document, manifest: Mapping[str, Any]) -> None:
    """Add ranking quality against popularity, catalogue coverage and cold start."""
    details = manifest.get("recommendation", {})
    test = manifest.get("metrics", {}).get("test", {})
    k = details.get("k", 10)
    document.heading("Ranking quality against the popularity baseline")
    document.paragraph(
        f"Evaluated on the latest {details.get('test_fraction', 0.2):.0%} of positive "
        f"interactions (time-ordered split), for {details.get('evaluated_users')} test users "
        f"seen in training; items a user already had are never recommended. Intervals are "
        f"percentile bootstraps over users; the gain is a paired bootstrap (the same users "
        f"resampled for both models)."
    )
    document.table(
        ["measure", "value [CI]"],
        [
            [f"NDCG@{k} of the model", metric_text(test.get("ndcg@k"))],
            [f"NDCG@{k} of popularity", metric_text(test.get("popularity_ndcg@k"))],
            [f"NDCG@{k} gain over popularity", metric_text(test.get("ndcg_gain@k"))],
        ],
    )
    document.heading("Catalogue coverage")
    document.paragraph(
        f"Share of the catalogue in at least one test user's top {k}: model "
        f"{number_text(details.get('coverage'), 3)}, popularity "
        f"{number_text(details.get('popularity_coverage'), 3)}."
    )
    cold = details.get("cold_start") or {}
    document.heading("Cold start")
    document.paragraph(
        "Users unseen in training get the most popular items (served with cold_start true)."
        + (
            f" In the test period {cold['users']} of {cold['test_users']} users "
            f"({cold['share']:.1%}) were new, so they would have been served the popularity list."
            if cold.get("test_users")
            else ""
        )
    )
    leaderboard_blocks(
        document,
        manifest,
        score_label="validation NDCG@k [CI]",
        no_verdict=(
            "The factorisation with the best validation NDCG@k is shipped; its gain over "
            "popularity on the test period is measured with a paired bootstrap over users."
        ),
    )


def recommendation_limitations(manifest: Mapping[str, Any]) -> list[str]:
    """Limitations of a recommender, from what training measured."""
    details = manifest.get("recommendation", {})
    found = [
        "New users get the popularity list until the model is retrained with their "
        "interactions (cold start); new items are never recommended before a retraining.",
    ]
    coverage = details.get("coverage")
    if coverage is not None and coverage < 0.5:
        found.append(
            f"Lists concentrate on {coverage:.1%} of the catalogue (test users' top "
            f"{details.get('k', 10)}); long-tail items are rarely shown."
        )
    found.append(
        "Feedback gathered on served lists favours the model that produced them (exposure "
        "bias): the retraining gate compares models on clicks the champion's lists led to."
    )
    return found


def interaction_columns(manifest: Mapping[str, Any]) -> list[str]:
    """Describe the interaction columns and what counts as a positive."""
    settings = manifest.get("recommendation") or {}
    feedback = settings.get("feedback")
    positive = (
        f"ratings >= {settings.get('positive_threshold')} in '{settings.get('rating')}'"
        if feedback == "explicit"
        else "every row (clicks, purchases)"
    )
    return [
        f"Interactions: user '{settings.get('user')}', item '{settings.get('item')}', time "
        f"'{settings.get('time') or 'row order'}'; {feedback} feedback, positives: {positive}",
    ]


RECOMMENDATION_SECTIONS = DocumentSections(
    blocks=recommendation_blocks,
    limitations=recommendation_limitations,
    data_items=interaction_columns,
)
