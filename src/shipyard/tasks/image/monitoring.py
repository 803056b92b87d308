"""Monitoring an image classifier: image statistics and embedding drift per window.

Each image is reduced to a few numbers: brightness (mean pixel), contrast (pixel standard
deviation), width and height, and its embedding (the network's penultimate activations)
projected on the first principal components of the held-out images' embeddings, plus its
cosine distance to their centroid. The numbers are sketched with the bins of the bundle's
``drift_reference.json``, window by window, like any column; the answers' outputs as for any
classifier, so feedback labels give the realised AUC.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from shipyard.monitoring.adapters import TaskMonitoring
from shipyard.monitoring.reference import reference_from_json
from shipyard.runtime.bundle_files import bundle_file

__all__ = ["EmbeddingReference", "image_monitoring", "image_signals"]

COMPONENTS = 3


class EmbeddingReference:
    """The centroid and principal directions of reference embeddings (JSON-ready)."""

    def __init__(self, centroid: list[float], components: list[list[float]]) -> None:
        self.centroid = np.asarray(centroid, dtype=np.float64)
        self.components = np.asarray(components, dtype=np.float64)

    @classmethod
    def fit(cls, embeddings: npt.NDArray[np.float64]) -> EmbeddingReference:
        """Centroid and the first :data:`COMPONENTS` principal directions (by SVD)."""
        centroid = embeddings.mean(axis=0)
        _, _, directions = np.linalg.svd(embeddings - centroid, full_matrices=False)
        return cls(centroid.tolist(), directions[:COMPONENTS].tolist())

    def signals(self, embeddings: npt.NDArray[np.float64]) -> dict[str, npt.NDArray[Any]]:
        """Projections on the principal directions and cosine distance to the centroid."""
        centred = embeddings - self.centroid
        found = {
            f"embedding_pc{index + 1}": centred @ direction
            for index, direction in enumerate(self.components)
        }
        norms = np.linalg.norm(embeddings, axis=1) * max(np.linalg.norm(self.centroid), 1e-12)
        cosine = (embeddings @ self.centroid) / np.maximum(norms, 1e-12)
        found["embedding_centroid_distance"] = 1.0 - cosine
        return found

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (``image_reference.json``)."""
        return {"centroid": self.centroid.tolist(), "components": self.components.tolist()}


def image_signals(
    images: Sequence[npt.NDArray[np.uint8]],
    embeddings: npt.NDArray[np.float64],
    reference: EmbeddingReference,
) -> dict[str, npt.NDArray[Any]]:
    """Return the monitored numbers of each image, by name."""
    signals: dict[str, npt.NDArray[Any]] = {
        "brightness": np.array([float(image.mean()) for image in images]),
        "contrast": np.array([float(image.std()) for image in images]),
        "width": np.array([float(image.shape[1]) for image in images]),
        "height": np.array([float(image.shape[0]) for image in images]),
    }
    signals.update(reference.signals(embeddings))
    return signals


def image_monitoring(
    directory: Path, manifest: Mapping[str, Any], reference: Mapping[str, Any], predictor: Any
) -> TaskMonitoring:
    """Describe how an image classifier's logged requests become drift windows."""
    embedding_reference = EmbeddingReference(
        **json.loads(bundle_file(directory, manifest["image_reference"]).read_bytes())
    )
    field = predictor.image_contract.field

    def prepare(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from shipyard.errors import DataError
        from shipyard.tasks.image.sources import decode_image, image_bytes

        rows: list[dict[str, Any]] = [{} for _ in records]
        images, positions = [], []
        for position, record in enumerate(records):
            try:
                name = f"logged record {position}"
                pixels, _ = decode_image(image_bytes(record.get(field), name), name)
            except DataError:
                continue  # refused when served; nothing to sketch
            images.append(pixels)
            positions.append(position)
        if images:
            signals = image_signals(images, predictor.embeddings(images), embedding_reference)
            for row, position in enumerate(positions):
                rows[position] = {name: float(values[row]) for name, values in signals.items()}
        return rows

    return TaskMonitoring(
        reference_from_json(reference),
        str(manifest["classification"]),
        list(manifest.get("classes", [])),
        prepare=prepare,
    )
