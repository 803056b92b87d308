"""The text classifier's sections of the model card and the evaluation report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shipyard.evaluation.report import Document, DocumentSections
from shipyard.evaluation.sections import leaderboard_blocks

__all__ = ["TEXT_SECTIONS", "text_blocks", "text_limitations"]


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
    leaderboard_blocks(document, manifest)


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


TEXT_SECTIONS = DocumentSections(blocks=text_blocks, limitations=text_limitations)
