"""Compile a fitted text pipeline to the JSON spec :mod:`shipyard.runtime.text` serves.

:func:`check_text_parity` scores the same rows with the scikit-learn pipeline and with the
runtime, one record at a time and as a batch, and refuses gaps above 1e-6.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from shipyard.errors import ExportError
from shipyard.runtime.text import TextPredictor

__all__ = [
    "PARITY_TOLERANCE",
    "check_text_parity",
    "export_embedding_classifier",
    "export_text_pipeline",
]

PARITY_TOLERANCE = 1e-6


def _vectorizer_spec(vectorizer: Any) -> dict[str, Any]:
    if vectorizer.preprocessor is not None or vectorizer.tokenizer is not None:
        raise ExportError("Custom preprocessors and tokenizers cannot be exported to JSON.")
    if vectorizer.strip_accents or vectorizer.stop_words or vectorizer.norm != "l2":
        raise ExportError(
            "Only TfidfVectorizer without accent stripping or stop words, with L2 norm, "
            "can be exported."
        )
    if vectorizer.analyzer not in ("word", "char_wb"):
        raise ExportError(f"Analyzer {vectorizer.analyzer!r} cannot be exported.")
    terms = [""] * len(vectorizer.vocabulary_)
    for term, index in vectorizer.vocabulary_.items():
        terms[index] = term
    return {
        "analyzer": vectorizer.analyzer,
        "ngram_range": list(vectorizer.ngram_range),
        "lowercase": bool(vectorizer.lowercase),
        "token_pattern": vectorizer.token_pattern if vectorizer.analyzer == "word" else None,
        "sublinear_tf": bool(vectorizer.sublinear_tf),
        "terms": terms,
        "idf": vectorizer.idf_.tolist(),
    }


def export_text_pipeline(pipeline: Any, text_columns: Sequence[str]) -> dict[str, Any]:
    """Return the JSON-ready spec of a fitted TF-IDF + logistic regression pipeline."""
    union = pipeline.named_steps["features"]
    model = pipeline.named_steps["model"]
    return {
        "format": "tfidf-linear-json",
        "text_columns": list(text_columns),
        "vectorizers": [_vectorizer_spec(part) for _, part in union.transformer_list],
        "coefficients": np.asarray(model.coef_, dtype=np.float64).tolist(),
        "intercept": np.asarray(model.intercept_, dtype=np.float64).tolist(),
    }


def export_embedding_classifier(model: Any, text_columns: Sequence[str]) -> dict[str, Any]:
    """Return the JSON-ready spec of a logistic regression fitted on sentence embeddings."""
    from shipyard.runtime.embedding import EMBEDDING_PACKAGE, SentenceEmbedder

    return {
        "format": "embedding-linear-json",
        "text_columns": list(text_columns),
        "embedding": {
            "package": EMBEDDING_PACKAGE,
            "version": SentenceEmbedder.package_version(),
            "normalize": True,
        },
        "coefficients": np.asarray(model.coef_, dtype=np.float64).tolist(),
        "intercept": np.asarray(model.intercept_, dtype=np.float64).tolist(),
    }


def check_text_parity(
    pipeline: Any, predictor: TextPredictor, texts: Sequence[str], records: Sequence[Any]
) -> dict[str, float]:
    """Compare scikit-learn's probabilities with the runtime's, single and batched.

    Raises
    ------
    ExportError
        When either gap exceeds :data:`PARITY_TOLERANCE`.
    """
    expected = pipeline.predict_proba(np.asarray(texts, dtype=object))
    batched = float(np.max(np.abs(predictor.score_texts(list(texts)) - expected)))
    single = max(
        float(np.max(np.abs(predictor.score_records([record])[0] - expected[row])))
        for row, record in enumerate(records[:200])
    )
    if max(batched, single) > PARITY_TOLERANCE:
        raise ExportError(
            f"The exported text model differs from the trained one by {max(batched, single):.2e}"
            f" (tolerance {PARITY_TOLERANCE:g}); the bundle was not registered."
        )
    return {"rows": float(len(texts)), "single": single, "batched": batched}
