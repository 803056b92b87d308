"""Serving recommendations from plain arrays: top-k for a user and similar items by cosine.

A :class:`RecommenderScorer` reads a verified bundle's JSON and ``.npy`` files (with
``allow_pickle=False``) and needs only numpy. Known users get the items with the highest dot
product of user and item factors, minus the items they already have; unknown users (cold
start) get the most popular items. Similar items are ranked by the cosine of item factors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from shipyard.errors import DataError

__all__ = ["RecommenderScorer", "UnknownItemError"]

MAX_K = 1000


class UnknownItemError(DataError, LookupError):
    """An item id the model has never seen."""


class RecommenderScorer:
    """Answer recommendation and similarity queries from a recommender bundle.

    Parameters
    ----------
    directory
        The verified bundle folder.
    manifest
        Its manifest (``model.files`` names the arrays).
    """

    task = "recommendation"

    def __init__(self, directory: Path, manifest: Mapping[str, Any]) -> None:
        self.directory = Path(directory)
        self.manifest = dict(manifest)
        files: dict[str, str] = manifest["model"]["files"]
        mappings = json.loads(self._file(files["mappings"]).read_bytes())
        self.users: list[Any] = mappings["users"]
        self.items: list[Any] = mappings["items"]
        # Query strings arrive as text, so ids are looked up by their text form.
        self._user_index = {str(user): index for index, user in enumerate(self.users)}
        self._item_index = {str(item): index for index, item in enumerate(self.items)}
        self.popularity = self._array(files["popularity"]).astype(np.float64)
        self._seen_indptr = self._array(files["seen_indptr"])
        self._seen_indices = self._array(files["seen_indices"])
        self.user_factors: npt.NDArray[np.float32] | None = None
        self.item_factors: npt.NDArray[np.float32] | None = None
        if "user_factors" in files:
            self.user_factors = self._array(files["user_factors"])
            self.item_factors = self._array(files["item_factors"])
        self.details: list[dict[str, Any]] = (
            json.loads(self._file(files["item_details"]).read_bytes())
            if "item_details" in files
            else [{} for _ in self.items]
        )
        self.family = str(manifest["model"].get("family", ""))

    @property
    def contract(self) -> Any:
        """Refuse row-scoring paths: a recommender has no data contract.

        Raises
        ------
        DataError
            Always; batch scoring and ``shipyard evaluate`` apply to classifiers and
            regressors, so they stop here with a clear message instead of a crash.
        """
        raise DataError(
            f"Model version with family '{self.family}' is a recommender: it has no data "
            "contract and cannot score rows. Ask GET /v1/models/NAME/recommend?user=ID, or "
            "evaluate it with shipyard.tasks.recommendation.evaluate_recommender."
        )

    def _file(self, relative: str) -> Path:
        # Through the bundle's one safe resolver: no path out of the bundle, no links.
        from shipyard.runtime.bundle_files import bundle_file

        return bundle_file(self.directory, relative)

    def _array(self, relative: str) -> npt.NDArray[Any]:
        array: npt.NDArray[Any] = np.load(self._file(relative), allow_pickle=False)
        return array

    def _check_k(self, k: int) -> int:
        if not 1 <= k <= MAX_K:
            raise DataError(f"k must be between 1 and {MAX_K}; got {k}.")
        return min(k, len(self.items))

    def _answer(self, indices: npt.NDArray[Any], scores: npt.NDArray[Any]) -> list[dict[str, Any]]:
        return [
            {"item": self.items[index], "score": float(scores[index]), **self.details[index]}
            for index in indices.tolist()
        ]

    def seen(self, user: Any) -> list[Any]:
        """Items a known user already interacted with (empty for an unknown user)."""
        index = self._user_index.get(str(user))
        if index is None:
            return []
        row = self._seen_indices[self._seen_indptr[index] : self._seen_indptr[index + 1]]
        return [self.items[item] for item in row.tolist()]

    def recommend(self, user: Any, k: int = 10) -> dict[str, Any]:
        """Top ``k`` items for ``user``, excluding items the user already has.

        Returns a dict with ``user``, ``cold_start`` (true when the user is unknown and the
        popularity list was served) and ``items`` (each with ``item``, ``score`` and details).

        Raises
        ------
        DataError
            When ``k`` is out of range.
        """
        k = self._check_k(k)
        index = self._user_index.get(str(user))
        if index is None or self.user_factors is None or self.item_factors is None:
            scores = self.popularity.copy()
        else:
            scores = self.item_factors.astype(np.float64) @ self.user_factors[index].astype(
                np.float64
            )
        if index is not None:
            seen = self._seen_indices[self._seen_indptr[index] : self._seen_indptr[index + 1]]
            scores[seen] = -np.inf
        top = _best(scores, k)
        return {"user": user, "cold_start": index is None, "items": self._answer(top, scores)}

    def similar(self, item: Any, k: int = 10) -> dict[str, Any]:
        """Return the ``k`` items whose factors have the highest cosine with ``item``'s.

        Raises
        ------
        UnknownItemError
            When the item was never seen in training.
        DataError
            When the model has no item factors (the popularity baseline) or ``k`` is out of
            range.
        """
        k = self._check_k(k)
        index = self._item_index.get(str(item))
        if index is None:
            raise UnknownItemError(
                f"Item {item!r} is not in the model's catalogue of {len(self.items)} items; "
                "similar items exist only for items seen in training."
            )
        if self.item_factors is None:
            raise DataError(
                f"This model ({self.family}) has no item factors, so it cannot rank similar "
                "items; train a matrix factorisation model (als or bpr)."
            )
        factors = self.item_factors.astype(np.float64)
        norms = np.linalg.norm(factors, axis=1)
        norms[norms == 0] = 1.0
        scores = (factors @ factors[index]) / (norms * norms[index])
        scores[index] = -np.inf
        top = _best(scores, min(k, len(self.items) - 1))
        return {"item": item, **self.details[index], "similar": self._answer(top, scores)}


def _best(scores: npt.NDArray[np.float64], k: int) -> npt.NDArray[np.int64]:
    """Return the indices of the ``k`` highest finite scores, best first (ties by index)."""
    finite = np.flatnonzero(np.isfinite(scores))
    k = min(k, len(finite))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    chosen = finite[np.argpartition(-scores[finite], k - 1)[:k]]
    order = np.lexsort((chosen, -scores[chosen]))
    return np.asarray(chosen[order], dtype=np.int64)
