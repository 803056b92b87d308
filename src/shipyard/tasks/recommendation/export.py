"""Write a trained recommender as code-free bundle files: JSON and numpy ``.npy`` arrays.

The runtime (:mod:`shipyard.runtime.recommend`) reads them with ``allow_pickle=False``, so a
bundle can never run code when it is loaded.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from shipyard.tasks.recommendation.training import RecommenderRun

__all__ = ["RECOMMENDER_FILES", "export_recommender", "npy_bytes"]

RECOMMENDER_FILES = {
    "mappings": "recommender/mappings.json",
    "popularity": "recommender/popularity.npy",
    "user_factors": "recommender/user_factors.npy",
    "item_factors": "recommender/item_factors.npy",
    "seen_indptr": "recommender/seen_indptr.npy",
    "seen_indices": "recommender/seen_indices.npy",
    "item_details": "recommender/items.json",
}


def npy_bytes(array: npt.NDArray[Any]) -> bytes:
    """Encode an array in the ``.npy`` format (never as a pickle)."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def export_recommender(
    run: RecommenderRun, item_details: Mapping[Any, Mapping[str, Any]] | None = None
) -> tuple[dict[str, bytes], dict[str, Any]]:
    """Return the bundle files and the manifest's ``model`` entry.

    Parameters
    ----------
    run
        The training run (its model was refitted on every interaction).
    item_details
        Optional display fields per item id (for example a wine's name), served with each
        recommendation.
    """
    matrix = run.interactions.matrix()
    assert run.popularity.popularity_ is not None
    files = {
        RECOMMENDER_FILES["mappings"]: json.dumps(
            {"users": run.interactions.users, "items": run.interactions.items},
            allow_nan=False,
        ).encode(),
        RECOMMENDER_FILES["popularity"]: npy_bytes(run.popularity.popularity_),
        RECOMMENDER_FILES["seen_indptr"]: npy_bytes(matrix.indptr.astype(np.int64)),
        RECOMMENDER_FILES["seen_indices"]: npy_bytes(matrix.indices.astype(np.int32)),
    }
    user_factors, item_factors = run.model.user_factors_, run.model.item_factors_
    if user_factors is not None and item_factors is not None:
        files[RECOMMENDER_FILES["user_factors"]] = npy_bytes(user_factors.astype(np.float32))
        files[RECOMMENDER_FILES["item_factors"]] = npy_bytes(item_factors.astype(np.float32))
    if item_details is not None:
        details = [dict(item_details.get(item, {})) for item in run.interactions.items]
        files[RECOMMENDER_FILES["item_details"]] = json.dumps(
            details, allow_nan=False, ensure_ascii=False
        ).encode()
    entry = {
        "format": "factors-npy" if user_factors is not None else "popularity-npy",
        "family": run.family,
        "files": {role: path for role, path in RECOMMENDER_FILES.items() if path in files},
    }
    return files, entry
