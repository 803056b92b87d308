"""The text families through the shared search, and the helpers the text task's steps share.

Text columns are joined into one document per row (:func:`documents`); the text families
(:mod:`shipyard.tasks.text.candidates`) go through the same search as tabular families
(portfolio, Optuna, shared folds, leaderboard with corrected CV intervals, significance
verdict).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shipyard.config import PipelineConfig, TextConfig
from shipyard.tasks.text.candidates import (
    DOCUMENT_COLUMN,
    EMBEDDING_CANDIDATE,
    EMBEDDING_PREFIX,
    TEXT_FAMILIES,
    family_settings,
)
from shipyard.tasks.text.drift import TOKEN_PATTERN
from shipyard.training.candidates import FeatureSet
from shipyard.training.search import SearchSettings
from shipyard.training.trainer import SelectionSettings, TrainingResult, train_candidates

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["documents", "search_frame", "search_text_families", "vocabulary"]

CLASSIFICATION_METRICS = ("roc_auc", "f1", "accuracy", "log_loss")


def documents(frame: pd.DataFrame, columns: list[str]) -> Any:
    """One document per row: the text columns joined by a newline (missing text is empty)."""
    parts = [
        frame[name].where(frame[name].map(lambda v: isinstance(v, str)), "") for name in columns
    ]
    joined = parts[0].astype(str)
    for part in parts[1:]:
        joined = joined + "\n" + part.astype(str)
    return joined.to_numpy(dtype=object)


def search_frame(texts: Any, embeddings: Any = None) -> pd.DataFrame:
    """Build the frame the shared search hands to text candidates: documents (and embeddings)."""
    import pandas as pd

    frame = pd.DataFrame({DOCUMENT_COLUMN: texts})
    if embeddings is not None:
        names = [f"{EMBEDDING_PREFIX}{index}" for index in range(embeddings.shape[1])]
        frame = pd.concat([frame, pd.DataFrame(embeddings, columns=names)], axis=1)
    return frame


def search_text_families(
    texts: Any,
    y: Any,
    settings: TextConfig,
    task: str,
    metric: str,
    config: PipelineConfig,
    report: Callable[[str], None],
) -> tuple[TrainingResult, Any]:
    """Run the text families through the shared search; return its result and embeddings."""
    families = list(dict.fromkeys(settings.candidates))
    embeddings = None
    if EMBEDDING_CANDIDATE in families and TEXT_FAMILIES[EMBEDDING_CANDIDATE].available():
        from shipyard.runtime.embedding import SentenceEmbedder

        report(f"embedding {len(texts)} texts with all-MiniLM-L6-v2")
        embeddings = SentenceEmbedder().encode(list(texts))
    x = search_frame(texts, embeddings)
    fixed, portfolio = family_settings(settings)
    training = config.training
    result = train_candidates(
        x,
        y,
        x.iloc[:0],
        y[:0],
        features=FeatureSet(numeric=[], categorical=[DOCUMENT_COLUMN]),
        task=task,
        metric=metric,
        models=families,
        cv_folds=training.cv_folds,
        time_budget=training.time_budget,
        seed=config.seed,
        report=report,
        search=SearchSettings(
            families=TEXT_FAMILIES,
            models=families,
            time_budget=training.time_budget,
            search_share=training.search_share,
            n_trials=training.n_trials,
            cv_folds=training.cv_folds,
            cv_repeats=training.cv_repeats,
            seed=config.seed,
            backend=training.backend,
            n_jobs=training.n_jobs,
            class_weight=None if training.class_weight == "none" else training.class_weight,
            fixed_params=dict.fromkeys(families, fixed),
            portfolios=dict.fromkeys(families, portfolio),
        ),
        # One linear model is exported per bundle, so no ensemble, calibration or threshold.
        selection=SelectionSettings(
            ensemble=False,
            prefer_simpler=training.prefer_simpler,
            final_fit=training.final_fit,
            alpha=training.alpha,
            confidence=config.evaluation.confidence,
        ),
    )
    return result, embeddings


def vocabulary(spec: dict[str, Any], texts: Any, min_df: int) -> list[str]:
    """Words the model knows: its word unigrams, or (embeddings) frequent training words."""
    for vectorizer in spec.get("vectorizers", []):
        if vectorizer["analyzer"] == "word":
            return [term for term in vectorizer["terms"] if " " not in term]
    from collections import Counter

    counts = Counter(
        token for text in texts for token in set(TOKEN_PATTERN.findall(str(text).lower()))
    )
    return sorted(token for token, count in counts.items() if count >= min_df)


class EmbeddingPipeline:
    """The trained side of the parity check: embed with the packaged model, then classify."""

    def __init__(self, classifier: Any) -> None:
        self.classifier = classifier

    def predict_proba(self, texts: Any) -> Any:
        from shipyard.runtime.embedding import SentenceEmbedder

        return self.classifier.predict_proba(SentenceEmbedder().encode(list(texts)))
