"""Monitoring a text classifier from the prediction log.

Each logged request is reduced to its text signals (length, words, out-of-vocabulary rate,
centroid cosine; see :mod:`shipyard.tasks.text.drift`) and each answer to its output (the
positive-class probability, or the predicted class), and both are sketched with the bins of
the bundle's ``drift_reference.json``. Realised and estimated performance per window work as
for a tabular classifier, since a text answer carries the same probabilities.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.monitoring.adapters import TaskMonitoring
from shipyard.monitoring.reference import reference_from_json
from shipyard.runtime.bundle_files import bundle_file
from shipyard.tasks.text.drift import TextDriftReference

if TYPE_CHECKING:
    from shipyard.runtime.text import TextFeaturizer

__all__ = ["text_monitoring", "word_featurizer"]


def word_featurizer(spec: Mapping[str, Any]) -> TextFeaturizer | None:
    """Return the model's word TF-IDF vectorizer alone (None for embedding models)."""
    from shipyard.runtime.text import TextFeaturizer

    words = [part for part in spec.get("vectorizers", []) if part["analyzer"] == "word"]
    return TextFeaturizer(words[:1]) if words else None


def document(record: Mapping[str, Any], columns: list[str]) -> str:
    """Return the text of a record as the model reads it (text columns joined by newlines)."""
    return "\n".join(
        value if isinstance(value, str) else "" for value in (record.get(name) for name in columns)
    )


def text_monitoring(
    directory: Path, manifest: Mapping[str, Any], reference: Mapping[str, Any]
) -> TaskMonitoring:
    """Describe how a text classifier's logged requests are turned into drift windows."""
    spec = json.loads(bundle_file(directory, manifest["model"]["path"]).read_bytes())
    text_reference = TextDriftReference.from_json(
        json.loads(bundle_file(directory, manifest["text_reference"]).read_bytes())
    )
    featurizer = word_featurizer(spec)
    columns = list(spec["text_columns"])
    embeds = "embedding" in spec

    def prepare(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        texts = [document(record, columns) for record in records]
        embeddings = None
        if embeds:
            from shipyard.runtime.embedding import SentenceEmbedder

            embeddings = SentenceEmbedder().encode(texts)
        signals = text_reference.signals(texts, embeddings, featurizer)
        return [
            {name: float(values[row]) for name, values in signals.items()}
            for row in range(len(texts))
        ]

    return TaskMonitoring(
        reference_from_json(reference),
        str(manifest["classification"]),
        list(manifest.get("classes", [])),
        prepare=prepare,
    )
