"""Serving text classifiers from JSON: TF-IDF n-grams and a linear model in plain Python.

The exported spec holds, for each vectorizer, its analyzer settings, vocabulary and idf
weights, and then the linear model's coefficients. :class:`TextFeaturizer` rebuilds scikit-
learn's ``TfidfVectorizer`` arithmetic (lower-casing, the token pattern, word n-grams,
``char_wb`` n-grams, sublinear tf, idf, L2 norm) so that scores agree with the trained
pipeline within 1e-6 (the exporter checks it before a bundle is written). Nothing but JSON is
read and no scikit-learn is imported.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from shipyard.runtime.validate import RecordValidator

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.data.contract import Contract

__all__ = ["TextFeaturizer", "TextPredictor", "char_wb_ngrams", "word_ngrams"]

FloatArray = npt.NDArray[np.float64]
_WHITE_SPACES = re.compile(r"\s\s+")


def word_ngrams(tokens: Sequence[str], low: int, high: int) -> list[str]:
    """Word n-grams of ``tokens`` from ``low`` to ``high`` words, in scikit-learn's order."""
    grams = list(tokens) if low == 1 else []
    for n in range(max(low, 2), min(high + 1, len(tokens) + 1)):
        grams.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return grams


def char_wb_ngrams(text: str, low: int, high: int) -> list[str]:
    """Character n-grams inside word boundaries, padded with a space, as ``char_wb`` does."""
    grams = []
    for word in _WHITE_SPACES.sub(" ", text).split():
        padded = f" {word} "
        for n in range(low, high + 1):
            offset = 0
            grams.append(padded[offset : offset + n])
            while offset + n < len(padded):
                offset += 1
                grams.append(padded[offset : offset + n])
            if offset == 0:  # a word shorter than n is counted once, as scikit-learn does
                break
    return grams


class _Vectorizer:
    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.analyzer = str(spec["analyzer"])
        self.low, self.high = (int(value) for value in spec["ngram_range"])
        self.lowercase = bool(spec["lowercase"])
        self.sublinear_tf = bool(spec["sublinear_tf"])
        self.pattern = re.compile(spec["token_pattern"]) if spec.get("token_pattern") else None
        self.terms: list[str] = list(spec["terms"])
        self.vocabulary = {term: index for index, term in enumerate(self.terms)}
        self.idf = np.asarray(spec["idf"], dtype=np.float64)

    def terms_of(self, text: str) -> list[str]:
        if self.lowercase:
            text = text.lower()
        if self.analyzer == "char_wb":
            return char_wb_ngrams(text, self.low, self.high)
        assert self.pattern is not None
        return word_ngrams(self.pattern.findall(text), self.low, self.high)

    def transform(self, text: str) -> dict[int, float]:
        counts = Counter(
            self.vocabulary[term] for term in self.terms_of(text) if term in self.vocabulary
        )
        weights = {
            index: (1.0 + math.log(count) if self.sublinear_tf else float(count))
            * float(self.idf[index])
            for index, count in counts.items()
        }
        norm = math.sqrt(sum(value * value for value in weights.values()))
        if norm > 0:
            weights = {index: value / norm for index, value in weights.items()}
        return weights


class TextFeaturizer:
    """Sparse TF-IDF features of a text, as ``{feature index: weight}``.

    Parameters
    ----------
    spec
        The ``vectorizers`` list of an exported text model.
    """

    def __init__(self, spec: Sequence[Mapping[str, Any]]) -> None:
        self.vectorizers = [_Vectorizer(part) for part in spec]
        self.offsets = np.cumsum([0] + [len(part.terms) for part in self.vectorizers]).tolist()

    @property
    def n_features(self) -> int:
        """Total number of features (all vectorizers side by side)."""
        return int(self.offsets[-1])

    def transform(self, text: str) -> dict[int, float]:
        """Features of one text."""
        features: dict[int, float] = {}
        for offset, vectorizer in zip(self.offsets, self.vectorizers, strict=False):
            for index, value in vectorizer.transform(text).items():
                features[offset + index] = value
        return features

    def feature_name(self, index: int) -> tuple[str, str]:
        """Return the term and the analyzer (``word`` or ``char_wb``) of a feature index."""
        for position, vectorizer in enumerate(self.vectorizers):
            if index < self.offsets[position + 1]:
                return vectorizer.terms[index - self.offsets[position]], vectorizer.analyzer
        raise IndexError(index)


class TextPredictor:
    """Turn records holding text into class predictions with token explanations.

    Parameters
    ----------
    contract
        The model's data contract (its text columns are the features).
    spec
        The exported model: ``vectorizers`` (TF-IDF) or ``embedding`` (sentence embeddings),
        ``coefficients`` (classes or 1 x features), ``intercept`` and ``text_columns``.
    task
        ``binary`` or ``multiclass``.
    classes
        Class labels in output order (for binary, the positive class last).
    unknown_fields
        Passed to :class:`RecordValidator`.
    explain_tokens
        How many top contributing word tokens each answer lists.
    """

    def __init__(
        self,
        contract: Contract,
        spec: Mapping[str, Any],
        task: str,
        classes: Sequence[Any],
        unknown_fields: str = "reject",
        explain_tokens: int = 5,
    ) -> None:
        self.contract = contract
        self.task = task
        self.classes = list(classes)
        self.text_columns: list[str] = list(spec["text_columns"])
        self.featurizer = TextFeaturizer(spec["vectorizers"]) if "vectorizers" in spec else None
        self.embedder: Any = None
        if "embedding" in spec:
            from shipyard.runtime.embedding import SentenceEmbedder

            self.embedder = SentenceEmbedder()
        self.coefficients = np.asarray(spec["coefficients"], dtype=np.float64)
        self.intercept = np.asarray(spec["intercept"], dtype=np.float64)
        self.validator = RecordValidator(contract, unknown_fields)
        self.explain_tokens = explain_tokens

    def _text(self, record: Mapping[str, Any]) -> str:
        # Several text columns are read as one document, joined by a newline.
        values = (record.get(name) for name in self.text_columns)
        return "\n".join(value if isinstance(value, str) else "" for value in values)

    def _decision(self, texts: Sequence[str]) -> FloatArray:
        if self.embedder is not None:
            dense: FloatArray = self.embedder.encode(texts) @ self.coefficients.T
            return dense
        assert self.featurizer is not None
        decision = np.zeros((len(texts), self.coefficients.shape[0]), dtype=np.float64)
        for row, text in enumerate(texts):
            weights = self.featurizer.transform(text)
            if weights:
                indices = np.fromiter(weights.keys(), dtype=np.int64, count=len(weights))
                values = np.fromiter(weights.values(), dtype=np.float64, count=len(weights))
                decision[row] = self.coefficients[:, indices] @ values
        return decision

    def _probabilities(self, texts: Sequence[str]) -> FloatArray:
        decision = self._decision(texts) + self.intercept
        if self.coefficients.shape[0] == 1:
            positive = 1.0 / (1.0 + np.exp(-decision[:, 0]))
            return np.column_stack([1.0 - positive, positive])
        shifted = np.exp(decision - decision.max(axis=1, keepdims=True))
        return np.asarray(shifted / shifted.sum(axis=1, keepdims=True), dtype=np.float64)

    def score_texts(self, texts: Sequence[str]) -> FloatArray:
        """Class probabilities for raw texts (no validation)."""
        return self._probabilities(list(texts))

    def score_records(self, records: Sequence[Mapping[str, Any]]) -> FloatArray:
        """Validate records and return class probabilities."""
        self.validator.check_records(list(records))
        return self.score_texts([self._text(record) for record in records])

    def explain(self, text: str, class_index: int) -> list[dict[str, Any]]:
        """Word tokens that pushed ``text`` most towards ``class_index``, largest first.

        Embedding models have no per-token weights, so their explanation is empty.
        """
        if self.featurizer is None:
            return []
        weights = self.featurizer.transform(text)
        row = 0 if self.coefficients.shape[0] == 1 else class_index
        sign = -1.0 if self.coefficients.shape[0] == 1 and class_index == 0 else 1.0
        contributions = []
        for index, value in weights.items():
            term, analyzer = self.featurizer.feature_name(index)
            if analyzer == "word":
                contributions.append((sign * value * self.coefficients[row, index], term))
        contributions.sort(key=lambda pair: (-pair[0], pair[1]))
        return [
            {"token": term, "contribution": round(float(value), 6)}
            for value, term in contributions[: self.explain_tokens]
            if value > 0
        ]

    def predict_records(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Validate and predict; each answer has the class, probabilities and top tokens."""
        outputs = self.score_records(records)
        labels = [str(label) for label in self.classes]
        answers = []
        for record, row in zip(records, outputs.tolist(), strict=True):
            best = max(range(len(row)), key=row.__getitem__)
            answers.append(
                {
                    "prediction": self.classes[best],
                    "probabilities": dict(zip(labels, row, strict=True)),
                    "explanation": self.explain(self._text(record), best),
                }
            )
        return answers

    def answer_extras(
        self, record: Mapping[str, Any], answer: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Add the top tokens to a served answer (the server formats the rest)."""
        best = [str(label) for label in self.classes].index(str(answer["prediction"]))
        return {"explanation": self.explain(self._text(record), best)}

    def clean_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return ``frame`` unchanged: a text model has no fitted cleaning."""
        return frame

    def score_frame(self, frame: pd.DataFrame) -> FloatArray:
        """Score a whole frame of text columns."""
        records = frame[self.text_columns].to_dict("records")
        return self.score_texts([self._text(record) for record in records])

    def labels_from_outputs(self, outputs: FloatArray) -> list[Any]:
        """Return the predicted label of each row of probabilities."""
        return [self.classes[index] for index in np.argmax(outputs, axis=1)]
