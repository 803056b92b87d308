"""Drift on text: length, word count, out-of-vocabulary rate and embedding drift.

Free text has no bins of its own, so each message is summarised by numbers whose distribution
can be sketched and compared with the shared drift statistics
(:mod:`shipyard.monitoring.drift`): its length in characters, its number of words, the share of
its words the model's vocabulary does not know, and, for embedding models, the cosine between
its embedding and the mean reference embedding. The reference is built from held-out texts
(training texts would understate the out-of-vocabulary rate, since the vocabulary was learnt
from them) and stored in the bundle (``text_reference.json``); a window of served texts is
compared with it.

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
from typing import Any

import numpy as np
import numpy.typing as npt

from shipyard.monitoring.drift import ColumnDrift, DriftThresholds, drift_report
from shipyard.monitoring.sketch import NumericSketch, sketch_from_json

__all__ = ["TextDriftReference", "text_signals"]

TOKEN_PATTERN = re.compile(r"(?u)\b\w\w+\b")


def text_signals(
    texts: Sequence[str],
    vocabulary: Iterable[str],
    embeddings: npt.NDArray[np.float64] | None = None,
    centroid: Sequence[float] | None = None,
) -> dict[str, npt.NDArray[np.float64]]:
    """Per-text numbers that drift can be measured on.

    Parameters
    ----------
    texts
        The messages.
    vocabulary
        Known words (lower-case); the OOV rate is the share of a text's words not in it.
    embeddings, centroid
        For embedding models: each text's embedding and the mean training embedding.
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
    if embeddings is not None and centroid is not None:
        center = np.asarray(centroid, dtype=np.float64)
        norms = np.linalg.norm(embeddings, axis=1) * max(float(np.linalg.norm(center)), 1e-12)
        signals["centroid_cosine"] = (embeddings @ center) / np.maximum(norms, 1e-12)
    return signals


@dataclass
class TextDriftReference:
    """Reference sketches of the text signals, and what is needed to compute them again."""

    sketches: dict[str, NumericSketch]
    vocabulary: list[str]
    centroid: list[float] | None = None
    thresholds: DriftThresholds = field(default_factory=DriftThresholds)

    @classmethod
    def from_texts(
        cls,
        texts: Sequence[str],
        vocabulary: Iterable[str],
        embeddings: npt.NDArray[np.float64] | None = None,
        bins: int = 20,
    ) -> TextDriftReference:
        """Build the reference from held-out texts (and their embeddings, if any)."""
        words = sorted(set(vocabulary))
        centroid = None if embeddings is None else embeddings.mean(axis=0).tolist()
        signals = text_signals(texts, words, embeddings, centroid)
        sketches = {
            name: NumericSketch.from_values(values, bins) for name, values in signals.items()
        }
        return cls(sketches, words, centroid)

    def compare(
        self, texts: Sequence[str], embeddings: npt.NDArray[np.float64] | None = None
    ) -> list[ColumnDrift]:
        """Drift of each signal in a window of texts against the reference."""
        signals = text_signals(texts, self.vocabulary, embeddings, self.centroid)
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
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TextDriftReference:
        """Rebuild a reference written by :meth:`to_json`."""
        sketches = {}
        for name, value in data["sketches"].items():
            sketch = sketch_from_json(value)
            assert isinstance(sketch, NumericSketch)
            sketches[name] = sketch
        return cls(sketches, list(data["vocabulary"]), data.get("centroid"))
