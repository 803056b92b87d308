"""Model card and report sections of the task adapters: text classification, recommendation.

Both the card (:mod:`shipyard.evaluation.card`) and the report
(:mod:`shipyard.evaluation.report`) call these, so the two documents always agree. Every block
reads only the bundle manifest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shipyard.evaluation.report import Document, metric_text

__all__ = [
    "leaderboard_blocks",
    "recommendation_blocks",
    "recommendation_limitations",
    "task_blocks",
    "text_blocks",
    "text_limitations",
]


def _number(value: Any, digits: int = 4) -> str:
    return "-" if value is None else f"{float(value):.{digits}f}"


def leaderboard_blocks(document: Document, manifest: Mapping[str, Any]) -> None:
    """Add the candidates compared during training, with their intervals and the verdict."""
    document.heading("Model selection")
    rows = manifest.get("leaderboard", [])
    if not rows:
        document.paragraph("No leaderboard was recorded.")
        return
    recommender = manifest.get("task") == "recommendation"
    score = "validation NDCG@k [CI]" if recommender else f"CV {manifest.get('metric')} [CI]"
    table = []
    for row in rows:
        value = (
            f"{_number(row['cv_mean'])} [{_number(row['cv_low'])}, {_number(row['cv_high'])}]"
            if row.get("cv_mean") is not None
            else "-"
        )
        p_value = row.get("p_value_vs_best")
        table.append(
            [
                row["name"],
                row["status"],
                value,
                row.get("trials") or "-",
                "-" if p_value is None else f"{p_value:.3g}",
                row.get("message") or "",
            ]
        )
    document.table(["candidate", "status", score, "trials", "p vs best", "note"], table)
    verdict = manifest.get("verdict") or {}
    if verdict.get("summary"):
        test = verdict.get("test", "paired test")
        document.paragraph(f"Verdict ({test}): {verdict['summary']}.")
    elif recommender:
        document.paragraph(
            "The factorisation with the best validation NDCG@k is shipped; its gain over "
            "popularity on the test period is measured with a paired bootstrap over users."
        )


def text_blocks(document: Document, manifest: Mapping[str, Any]) -> None:
    """Add the words that weigh most towards each class and the test confusion matrix."""
    evaluation = manifest.get("evaluation", {})
    document.heading("Top tokens")
    tokens = evaluation.get("top_tokens") or {}
    if tokens:
        document.paragraph(
            "Word n-grams with the largest logistic-regression weight towards each class "
            "(a global explanation; each served answer lists its own top tokens)."
        )
        document.table(
            ["class", "tokens (weight)"],
            [
                [label, ", ".join(f"{item['token']} ({item['weight']:.2f})" for item in items)]
                for label, items in tokens.items()
            ],
        )
    else:
        document.paragraph(
            evaluation.get("top_tokens_note") or "No per-word weights were recorded."
        )
    matrix = evaluation.get("confusion")
    if matrix:
        document.heading("Confusion matrix (test split)")
        labels = matrix["labels"]
        document.table(
            ["actual \\ predicted", *labels],
            [[label, *counts] for label, counts in zip(labels, matrix["counts"], strict=True)],
        )


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
        f"{_number(details.get('coverage'), 3)}, popularity "
        f"{_number(details.get('popularity_coverage'), 3)}."
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


def task_blocks(document: Document, manifest: Mapping[str, Any]) -> bool:
    """Add the task adapter's sections; return False for tabular manifests (none added)."""
    task = manifest.get("task")
    if task == "text_classification":
        text_blocks(document, manifest)
    elif task == "recommendation":
        recommendation_blocks(document, manifest)
    else:
        return False
    leaderboard_blocks(document, manifest)
    return True


def text_limitations(manifest: Mapping[str, Any]) -> list[str]:
    """Limitations of a text classifier, from what training measured."""
    found = [
        "Trained on messages of one collection: other languages, channels or writing styles "
        "raise the out-of-vocabulary rate, which monitoring tracks (oov_rate).",
    ]
    evaluation = manifest.get("evaluation", {})
    matrix = evaluation.get("confusion")
    if matrix:
        labels, counts = matrix["labels"], matrix["counts"]
        for row, label in enumerate(labels):
            total = sum(counts[row])
            missed = total - counts[row][row]
            if total and missed:
                found.append(
                    f"{missed} of {total} test messages of class '{label}' were misclassified "
                    f"({missed / total:.1%})."
                )
    return found


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
