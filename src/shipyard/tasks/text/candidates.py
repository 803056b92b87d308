"""Text classification candidates: TF-IDF n-grams and a logistic regression.

``tfidf_word`` uses word n-grams; ``tfidf_word_char`` adds character n-grams inside word
boundaries, which catch misspellings and obfuscations ("fr33", "txt") that spam relies on.
``minilm_embedding`` fits the logistic regression on all-MiniLM-L6-v2 sentence embeddings
(extra ``text``); the embedder has no fitted state, so embeddings are computed once per text
and the search cross-validates only the classifier.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from shipyard.config import TextConfig

__all__ = ["EMBEDDING_CANDIDATE", "TEXT_CANDIDATES", "embedding_classifier", "text_pipeline"]

TEXT_CANDIDATES = ("tfidf_word", "tfidf_word_char", "minilm_embedding")
EMBEDDING_CANDIDATE = "minilm_embedding"


def text_pipeline(candidate: str, settings: TextConfig, regularization: float, seed: int) -> Any:
    """Build the unfitted scikit-learn pipeline of a candidate; it takes a 1-D array of texts."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline

    parts = [
        (
            "word",
            TfidfVectorizer(
                analyzer="word",
                ngram_range=settings.word_ngrams,
                min_df=settings.min_df,
                max_features=settings.max_features,
                sublinear_tf=True,
                dtype=np.float64,
            ),
        )
    ]
    if candidate == "tfidf_word_char":
        parts.append(
            (
                "char",
                TfidfVectorizer(
                    analyzer="char_wb",
                    ngram_range=settings.char_ngrams,
                    min_df=settings.min_df,
                    max_features=settings.max_features,
                    sublinear_tf=True,
                    dtype=np.float64,
                ),
            )
        )
    pipeline: Pipeline = Pipeline(
        [
            ("features", FeatureUnion(parts)),
            (
                "model",
                LogisticRegression(C=regularization, max_iter=2000, random_state=seed),
            ),
        ]
    )
    return pipeline


def embedding_classifier(regularization: float, seed: int) -> Any:
    """Build the unfitted logistic regression that sits on sentence embeddings."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=regularization, max_iter=2000, random_state=seed)
