"""Drift on text: length, word count, out-of-vocabulary rate and centroid drift.

Free text has no bins of its own, so each message is summarised by numbers whose distribution
can be sketched and compared with the shared drift statistics
(:mod:`shipyard.monitoring.drift`): its length in characters, its number of words, the share of
its words the model's vocabulary does not know, and its cosine with the reference centroid:
the mean word TF-IDF vector for TF-IDF models (``tfidf_centroid_cosine``), the mean embedding
for embedding models (``centroid_cosine``). A shift in what people write about moves the
centroid cosine even when lengths and vocabulary stay put. The centroids come from the
training texts and the sketches from held-out texts: training texts would understate the
out-of-vocabulary rate (the vocabulary was learnt from them), and texts that built the centroid
would sit closer to it than new ones. The reference is stored in the bundle
(``text_reference.json``);
monitoring turns each logged request into these numbers and sketches them window by window.

Examples
--------
>>> reference = TextDriftReference.from_texts(["see you at lunch", "call me later"] * 60,
...                                           vocabulary={"see", "you", "at", "lunch", "call"})
>>> report = reference.compare(["see you at lunch", "call me later"] * 60)
>>> [(row.column, row.drifted) for row in report]
[('length', False), ('words', False), ('oov_rate', False)]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from shipyard.monitoring.drift import ColumnDrift, DriftThresholds, drift_report
from shipyard.monitoring.sketch import NumericSketch, sketch_from_json

if TYPE_CHECKING:
    from shipyard.runtime.text import TextFeaturizer

__all__ = ["CENTROID_TERMS", "TextDriftReference", "term_centroid", "text_signals"]

TOKEN_PATTERN = re.compile(r"(?u)\b\w\w+\b")
CENTROID_TERMS = 1000
"""Terms kept in the TF-IDF centroid (the heaviest); the rest add little to a cosine."""


def term_centroid(
    texts: Sequence[str], featurizer: TextFeaturizer, keep: int = CENTROID_TERMS
) -> dict[int, float]:
    """Mean L2-normalised TF-IDF vector of ``texts``, restricted to its ``keep`` heaviest terms."""
    total: dict[int, float] = {}
    for text in texts:
        for index, value in featurizer.transform(text).items():
            total[index] = total.get(index, 0.0) + value
    count = max(len(texts), 1)
    heaviest = sorted(total.items(), key=lambda pair: (-pair[1], pair[0]))[:keep]
    return {index: value / count for index, value in heaviest}


def _centroid_cosines(
    texts: Sequence[str], featurizer: TextFeaturizer, centroid: Mapping[int, float]
) -> npt.NDArray[np.float64]:
    norm = max(float(np.sqrt(sum(value * value for value in centroid.values()))), 1e-12)
    cosines = np.zeros(len(texts), dtype=np.float64)
    for row, text in enumerate(texts):
        # The featurizer's vectors have unit length, so the dot product over the norm is a cosine.
        weights = featurizer.transform(text)
        cosines[row] = sum(value * centroid.get(index, 0.0) for index, value in weights.items())
    return cosines / norm


def text_signals(
    texts: Sequence[str],
    vocabulary: Iterable[str],
    embeddings: npt.NDArray[np.float64] | None = None,
    centroid: Sequence[float] | None = None,
    featurizer: TextFeaturizer | None = None,
    terms: Mapping[int, float] | None = None,
) -> dict[str, npt.NDArray[np.float64]]:
    """Per-text numbers that drift can be measured on.

    Parameters
    ----------
    texts
        The messages.
    vocabulary
        Known words (lower-case); the OOV rate is the share of a text's words not in it.
    embeddings, centroid
        For embedding models: each text's embedding and the mean reference embedding.
    featurizer, terms
        For TF-IDF models: the model's word vectorizer and the reference TF-IDF centroid.
    """
    known = set(vocabulary)
    lengths, words, oov = [], [], []
    for text in texts:
        tokens = TOKEN_PATTERN.findall(text.lower())
        lengths.append(len(text))
        words.append(len(tokens))
        oov.append(sum(token not in known for token in tokens) / len(tokens) if tokens else 0.0)
    signals = {
        "length": np.asarray(lengths, dtype=np.float64),
        "words": np.asarray(words, dtype=np.float64),
        "oov_rate": np.asarray(oov, dtype=np.float64),
    }
    if featurizer is not None and terms is not None:
        signals["tfidf_centroid_cosine"] = _centroid_cosines(texts, featurizer, terms)
    if embeddings is not None and centroid is not None:
        center = np.asarray(centroid, dtype=np.float64)
        norms = np.linalg.norm(embeddings, axis=1) * max(float(np.linalg.norm(center)), 1e-12)
        signals["centroid_cosine"] = (embeddings @ center) / np.maximum(norms, 1e-12)
    return signals


@dataclass
class TextDriftReference:
    """Reference sketches of the text signals, and what is needed to compute them again.

    Parameters
    ----------
    sketches
        One numeric sketch per signal.
    vocabulary
        The words the model knows.
    centroid
        Mean reference embedding (embedding models).
    terms
        Reference TF-IDF centroid as ``{feature index of the word vectorizer: weight}``
        (TF-IDF models).
    """

    sketches: dict[str, NumericSketch]
    vocabulary: list[str]
    centroid: list[float] | None = None
    terms: dict[int, float] | None = None
    thresholds: DriftThresholds = field(default_factory=DriftThresholds)

    @classmethod
    def from_texts(
        cls,
        texts: Sequence[str],
        vocabulary: Iterable[str],
        embeddings: npt.NDArray[np.float64] | None = None,
        bins: int = 20,
        featurizer: TextFeaturizer | None = None,
        centroid_texts: Sequence[str] | None = None,
        centroid_embeddings: npt.NDArray[np.float64] | None = None,
    ) -> TextDriftReference:
        """Build the reference from held-out texts (and their embeddings, if any).

        ``centroid_texts`` and ``centroid_embeddings`` (the training texts) give the
        centroids; without them the held-out texts do, which biases their cosines upwards.
        """
        words = sorted(set(vocabulary))
        center = embeddings if centroid_embeddings is None else centroid_embeddings
        centroid = None if center is None else center.mean(axis=0).tolist()
        terms = (
            None
            if featurizer is None
            else term_centroid(texts if centroid_texts is None else centroid_texts, featurizer)
        )
        signals = text_signals(texts, words, embeddings, centroid, featurizer, terms)
        sketches = {
            name: NumericSketch.from_values(values, bins) for name, values in signals.items()
        }
        return cls(sketches, words, centroid, terms)

    def signals(
        self,
        texts: Sequence[str],
        embeddings: npt.NDArray[np.float64] | None = None,
        featurizer: TextFeaturizer | None = None,
    ) -> dict[str, npt.NDArray[np.float64]]:
        """Compute the signals of ``texts`` as the reference's were."""
        return text_signals(
            texts, self.vocabulary, embeddings, self.centroid, featurizer, self.terms
        )

    def compare(
        self,
        texts: Sequence[str],
        embeddings: npt.NDArray[np.float64] | None = None,
        featurizer: TextFeaturizer | None = None,
    ) -> list[ColumnDrift]:
        """Drift of each signal in a window of texts against the reference."""
        signals = self.signals(texts, embeddings, featurizer)
        window = {}
        for name, reference in self.sketches.items():
            sketch = reference.empty()
            sketch.update(signals[name])
            window[name] = sketch
        return drift_report(dict(self.sketches), window, self.thresholds)

    def to_json(self) -> dict[str, Any]:
        """Plain dict for the bundle (``text_reference.json``)."""
        return {
            "sketches": {name: sketch.to_json() for name, sketch in self.sketches.items()},
            "vocabulary": self.vocabulary,
            "centroid": self.centroid,
            "terms": None
            if self.terms is None
            else {"indices": list(self.terms), "weights": list(self.terms.values())},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TextDriftReference:
        """Rebuild a reference written by :meth:`to_json`."""
        sketches = {}
        for name, value in data["sketches"].items():
            sketch = sketch_from_json(value)
            assert isinstance(sketch, NumericSketch)
            sketches[name] = sketch
        terms = data.get("terms")
        return cls(
            sketches,
            list(data["vocabulary"]),
            data.get("centroid"),
            None
            if terms is None
            else {
                int(index): float(weight)
                for index, weight in zip(terms["indices"], terms["weights"], strict=True)
            },
        )
