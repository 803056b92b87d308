"""User-item interactions: id mappings, a sparse matrix, and a time-ordered split.

Explicit ratings become implicit confidence by keeping ratings at or above a threshold (a
rating below it says the user did not like the item, so it must not count as a positive);
implicit events (clicks, purchases) are counted, repeats adding confidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from shipyard.errors import DataError

if TYPE_CHECKING:
    import pandas as pd
    from scipy.sparse import csr_matrix

__all__ = ["Interactions", "build_interactions", "positive_events", "time_split"]


@dataclass(frozen=True)
class Interactions:
    """Interactions with integer indices for users and items.

    Parameters
    ----------
    users
        External user ids; position = user index.
    items
        External item ids; position = item index.
    user_index
        User index of each interaction.
    item_index
        Item index of each interaction.
    weight
        Confidence of each interaction (repeats summed).
    """

    users: list[Any]
    items: list[Any]
    user_index: npt.NDArray[np.int64]
    item_index: npt.NDArray[np.int64]
    weight: npt.NDArray[np.float64]

    @property
    def n_users(self) -> int:
        """Number of users."""
        return len(self.users)

    @property
    def n_items(self) -> int:
        """Number of items."""
        return len(self.items)

    def matrix(self) -> csr_matrix:
        """Users x items sparse matrix of confidences (duplicates summed)."""
        from scipy.sparse import csr_matrix

        matrix = csr_matrix(
            (self.weight, (self.user_index, self.item_index)),
            shape=(self.n_users, self.n_items),
            dtype=np.float32,
        )
        matrix.sum_duplicates()
        matrix.sort_indices()
        return matrix


def _plain(value: Any) -> Any:
    """Numpy scalars to plain Python, so ids survive a JSON round trip."""
    return value.item() if hasattr(value, "item") else value


def positive_events(
    frame: pd.DataFrame,
    user: str,
    item: str,
    rating: str | None,
    feedback: str,
    threshold: float,
) -> pd.DataFrame:
    """Keep the rows that count as positive feedback; check the columns exist.

    Raises
    ------
    DataError
        When a named column is missing or no positive interaction remains.
    """
    for role, column in (("user", user), ("item", item), ("rating", rating)):
        if column is not None and column not in frame.columns:
            raise DataError(
                f"The {role} column '{column}' (recommendation.{role}) is not in the data; "
                f"columns are {', '.join(map(str, frame.columns))}."
            )
    kept = frame[frame[user].notna() & frame[item].notna()]
    if feedback == "explicit":
        if rating is None:
            raise DataError(
                "recommendation.feedback is 'explicit' but recommendation.rating is not set; "
                "name the rating column or use feedback 'implicit'."
            )
        kept = kept[kept[rating] >= threshold]
    if kept.empty:
        raise DataError(
            "No positive interaction remains"
            + (f" with {rating} >= {threshold}" if feedback == "explicit" else "")
            + "; lower recommendation.positive_threshold or check the data."
        )
    return kept


def build_interactions(
    frame: pd.DataFrame,
    user: str,
    item: str,
    users: list[Any] | None = None,
    items: list[Any] | None = None,
) -> Interactions:
    """Index a frame of positive events; known ``users``/``items`` fix the index order.

    Rows whose user or item is not in the given lists are dropped (used to index test data
    with the training mappings).
    """
    import pandas as pd

    if users is None:
        users = [_plain(value) for value in pd.unique(frame[user])]
    if items is None:
        items = [_plain(value) for value in pd.unique(frame[item])]
    user_codes = pd.Index(users).get_indexer(frame[user])
    item_codes = pd.Index(items).get_indexer(frame[item])
    known = (user_codes >= 0) & (item_codes >= 0)
    return Interactions(
        users=list(users),
        items=list(items),
        user_index=user_codes[known].astype(np.int64),
        item_index=item_codes[known].astype(np.int64),
        weight=np.ones(int(known.sum()), dtype=np.float64),
    )


def time_split(
    frame: pd.DataFrame, time: str | None, test_fraction: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split into the earliest ``1 - test_fraction`` of rows and the latest rest.

    Without a time column the frame's row order is taken as time order.

    Raises
    ------
    DataError
        When the time column is missing or a part would be empty.
    """
    if time is not None:
        if time not in frame.columns:
            raise DataError(f"The time column '{time}' (recommendation.time) is not in the data.")
        frame = frame.sort_values(time, kind="mergesort")
    cut = round(len(frame) * (1.0 - test_fraction))
    if cut <= 0 or cut >= len(frame):
        raise DataError(
            f"A time split of {len(frame)} rows with test_fraction {test_fraction} leaves "
            "a part empty; use more data or another recommendation.test_fraction."
        )
    return frame.iloc[:cut], frame.iloc[cut:]
