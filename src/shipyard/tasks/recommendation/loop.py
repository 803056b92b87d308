"""The loop's recommendation steps: feedback becomes interactions; the gate ranks users.

- :func:`extend_interactions`: every item a user clicked or bought after a served list (the
  feedback label, :mod:`shipyard.tasks.recommendation.feedback`) becomes one interaction row
  of the champion's data: user, item, a rating at the positive threshold (explicit feedback),
  and the time the list was served.
- :func:`ranking_gate`: both versions rank items for every user of the held-out (most recent)
  feedback, as they would serve them; the items each user then took, minus those the
  challenger already trained on, are the relevant ones. NDCG@k per user, paired over users,
  goes to :func:`~shipyard.monitoring.gate.compare_paired_values`.

The held-out clicks happened on lists the champion served, which favours the champion (exposure
bias): a challenger that passes is better despite that handicap.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.errors import DataError
from shipyard.monitoring.gate import GateResult, compare_paired_values
from shipyard.tasks.base import RetrainSteps
from shipyard.tasks.recommendation.evaluation import ranking_metrics_per_user
from shipyard.tasks.recommendation.feedback import check_label, feedback_items

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.config import PipelineConfig
    from shipyard.manifest import Manifest

__all__ = ["RECOMMENDATION_STEPS", "extend_interactions", "ranking_gate"]


def _like(values: list[Any], column: pd.Series) -> Any:
    """Cast new ids to the reference column's type; text for both when they cannot be."""
    import pandas as pd

    new = pd.Series(values, dtype=object)
    if pd.api.types.is_integer_dtype(column.dtype):
        try:
            return new.astype(column.dtype), column
        except (TypeError, ValueError):
            pass  # an id that is not a number: compare everything as text
    return new.astype(str), column.astype(str)


def _moments(values: list[Any], column: pd.Series) -> Any:
    """Convert serving times to the reference time column's form (naive, aware, number or text)."""
    import pandas as pd

    moments = pd.to_datetime(pd.Series(values), utc=True)
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return moments.dt.tz_convert(column.dtype.tz)
    if pd.api.types.is_datetime64_dtype(column.dtype):
        return moments.dt.tz_localize(None).astype(column.dtype)
    if pd.api.types.is_numeric_dtype(column.dtype):
        epoch = pd.Timestamp(0, tz="UTC")
        return (moments - epoch) // pd.Timedelta(seconds=1)  # seconds since the epoch
    return moments.dt.strftime("%Y-%m-%dT%H:%M:%S")


def extend_interactions(
    config: PipelineConfig, learn: list[dict[str, Any]], path: Path
) -> tuple[int, int]:
    """Append the feedback of ``learn`` as interactions to the champion's data, at ``path``.

    Returns the number of rows written and of new interactions.

    Raises
    ------
    DataError
        When a label is not recommendation feedback.
    """
    import pandas as pd

    from shipyard.data.sources import ReadOptions, read_table

    settings = config.recommendation
    assert settings is not None  # the config validator requires it for this task
    frame = read_table(config.data.source, ReadOptions(config.data.encoding, config.data.header))
    users, items, moments = [], [], []
    for row in learn:
        try:
            check_label(row["label"])
        except DataError as error:
            raise DataError(f"Feedback for request {row['request_id']}: {error}") from None
        for item in feedback_items(row["label"]):
            users.append(row["inputs"]["user"])
            items.append(item)
            moments.append(row["at"])
    new = pd.DataFrame(index=range(len(items)))
    new[settings.user], frame[settings.user] = _like(users, frame[settings.user])
    new[settings.item], frame[settings.item] = _like(items, frame[settings.item])
    if settings.rating is not None:
        new[settings.rating] = settings.positive_threshold  # a click or a purchase is a positive
    if settings.time is not None and settings.time in frame.columns:
        new[settings.time] = _moments(moments, frame[settings.time]).to_numpy()
    combined = pd.concat([frame, new], ignore_index=True)
    combined.to_parquet(path, index=False)
    return len(combined), len(new)


def _ranked(scorer: Any, users: Sequence[Any], k: int, codes: dict[str, int]) -> Any:
    """Each user's served top ``k`` as item codes (-1 pads short lists)."""
    ranked = np.full((len(users), k), -1, dtype=np.int64)
    for row, user in enumerate(users):
        listed = [str(entry["item"]) for entry in scorer.recommend(user, k)["items"]]
        for column, item in enumerate(listed[:k]):
            ranked[row, column] = codes.setdefault(item, len(codes))
    return ranked


def ranking_gate(
    champion_scorer: Any,
    challenger_scorer: Any,
    manifest: Manifest,
    rows: list[dict[str, Any]],
    min_rows: int,
    min_improvement: float,
) -> GateResult:
    """Compare NDCG@k of both versions on the held-out feedback, paired over users."""
    k = int(manifest.section("recommendation", {}).get("k", 10))
    taken: dict[str, tuple[Any, set[str]]] = {}
    for row in rows:
        user = row["inputs"]["user"]
        entry = taken.setdefault(str(user), (user, set()))
        entry[1].update(str(item) for item in feedback_items(row["label"]))
    users, wanted = [], []
    for user, items in taken.values():
        # What the challenger already trained on is never recommended, so it cannot count.
        fresh = items - {str(item) for item in challenger_scorer.seen(user)}
        if fresh:
            users.append(user)
            wanted.append(fresh)
    codes: dict[str, int] = {}
    relevant = [{codes.setdefault(item, len(codes)) for item in items} for items in wanted]
    scores = [
        ranking_metrics_per_user(_ranked(scorer, users, k, codes), relevant, k)["ndcg"]
        for scorer in (challenger_scorer, champion_scorer)
    ]
    return compare_paired_values(
        scores[0],
        scores[1],
        f"ndcg@{k}",
        min_samples=min_rows,
        min_improvement=min_improvement,
    )


RECOMMENDATION_STEPS = RetrainSteps(extend_interactions, ranking_gate)
