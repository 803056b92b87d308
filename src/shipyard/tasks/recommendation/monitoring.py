"""Monitoring a recommender: popularity drift and click/purchase feedback on served lists.

Every item gets a popularity bucket from the training interactions: items are ranked by how
many users had them, and ``p01`` holds the most popular items that together take the first
10% of interactions, ``p10`` the long tail that takes the last 10%. Buckets make lists of any
catalogue comparable with a few bins:

- ``recommended_popularity``: the buckets of the items in served lists of known users, against
  the lists the model gave a sample of training users. A shift towards ``p01`` means the model
  now pushes the head of the catalogue (or the traffic comes from users with mainstream taste).
- ``cold_start``: the share of requests from unknown users (served the popularity list),
  against the share of new users in the test period.
- ``clicked_popularity``: the buckets of the items users took (feedback), against the training
  interactions; computed per window from the labelled rows.

All three use the shared chi-square test and PSI (:mod:`shipyard.monitoring.drift`); each window
also reports its catalogue coverage (distinct listed items over the catalogue) and hit rate.
The references are computed at training time and stored in the bundle
(``drift_reference.json``).

Two checks on plain lists remain for ad-hoc use:

- :func:`popularity_drift` compares which items users interact with in a window against the
  training period (the most popular ``top`` items, plus one bin for all others), with the
  shared chi-square test and PSI (:mod:`shipyard.monitoring.drift`). A large shift means the
  popularity baseline, the cold-start fallback and the factors were learnt on a different taste.
- :func:`feedback_metrics` scores served lists against later clicks or purchases: the hit rate
  (share of lists with at least one item the user then took) and precision, each with a
  bootstrap interval over lists.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from shipyard.evaluation.metrics import MetricValue
from shipyard.monitoring.adapters import TaskMonitoring
from shipyard.monitoring.drift import ColumnDrift, DriftThresholds, column_drift
from shipyard.monitoring.sketch import CategoricalSketch, Sketch, sketch_from_json
from shipyard.runtime.bundle_files import bundle_file
from shipyard.tasks.recommendation.evaluation import bootstrap_over_users, top_k
from shipyard.tasks.recommendation.feedback import feedback_items, list_metrics

if TYPE_CHECKING:
    from shipyard.tasks.recommendation.training import RecommenderRun

__all__ = [
    "BUCKETS",
    "feedback_metrics",
    "popularity_buckets",
    "popularity_drift",
    "recommendation_monitoring",
    "recommendation_reference",
]

BUCKETS = 10
REFERENCE_USERS = 2000
NEW_ITEM = "new"
MIN_FEEDBACK_LISTS = 30
"""Windows with fewer labelled lists report no hit rate."""


def popularity_buckets(popularity: npt.NDArray[np.float64], buckets: int = BUCKETS) -> list[str]:
    """Label each item with its popularity bucket, ``p01`` (head) to ``p10`` (tail).

    Examples
    --------
    >>> popularity_buckets(np.array([1.0, 10.0, 5.0, 4.0]), buckets=2)
    ['p02', 'p01', 'p02', 'p02']
    """
    values = np.asarray(popularity, dtype=np.float64)
    order = np.argsort(-values, kind="stable")
    total = float(values.sum()) or 1.0
    before = (np.cumsum(values[order]) - values[order]) / total
    ranks = np.minimum((before * buckets).astype(np.int64), buckets - 1)
    labels = [""] * len(values)
    for item, rank in zip(order.tolist(), ranks.tolist(), strict=True):
        labels[item] = f"p{rank + 1:02d}"
    return labels


def _bucket_sketch(values: Iterable[Any], buckets: int = BUCKETS) -> CategoricalSketch:
    """Sketch bucket labels over every bucket, even those the reference never saw."""
    sketch = CategoricalSketch(
        categories=[f"p{rank:02d}" for rank in range(1, buckets + 1)], counts=[0] * (buckets + 1)
    )
    sketch.update(values)
    return sketch


def recommendation_reference(
    run: RecommenderRun, k: int, *, users: int = REFERENCE_USERS, seed: int = 0
) -> dict[str, Sketch]:
    """Sketch what the served model lists and users take, at training time.

    ``recommended_popularity`` comes from the served model's top ``k`` for a seeded sample of
    known users (what it recommends, already-had items excluded, as served);
    ``clicked_popularity`` from every training interaction; ``cold_start`` from the test
    period's users (new ones would have been served the popularity list).
    """
    assert run.popularity.popularity_ is not None
    labels = np.asarray(popularity_buckets(run.popularity.popularity_), dtype=object)
    data = run.interactions
    matrix = data.matrix()
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(data.n_users, min(users, data.n_users), replace=False))
    listed: list[Any] = []
    for start in range(0, len(chosen), 500):
        block = chosen[start : start + 500]
        seen = [matrix.indices[matrix.indptr[u] : matrix.indptr[u + 1]] for u in block.tolist()]
        listed += labels[top_k(run.model.score_users(block), seen, k).ravel()].tolist()
    cold = run.cold_start
    cold_sketch = CategoricalSketch(categories=["false", "true"], counts=[0, 0, 0])
    cold_sketch.update(
        ["true"] * int(cold.get("users", 0))
        + ["false"] * int(cold.get("test_users", 0) - cold.get("users", 0))
    )
    return {
        "recommended_popularity": _bucket_sketch(listed),
        "cold_start": cold_sketch,
        "clicked_popularity": _bucket_sketch(labels[data.item_index].tolist()),
    }


def recommendation_monitoring(
    directory: Path, manifest: Mapping[str, Any], reference: Mapping[str, Any]
) -> TaskMonitoring:
    """Describe how a recommender's logged lists and feedback are monitored."""
    files = manifest["model"]["files"]
    mappings = json.loads(bundle_file(directory, files["mappings"]).read_bytes())
    popularity = np.load(bundle_file(directory, files["popularity"]), allow_pickle=False)
    bucket_of = dict(
        zip(
            (str(item) for item in mappings["items"]),
            popularity_buckets(popularity),
            strict=True,
        )
    )
    catalogue = len(mappings["items"])
    sketches = {name: sketch_from_json(value) for name, value in reference.items()}
    clicked_reference = sketches.pop("clicked_popularity")
    thresholds = DriftThresholds()

    def values(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
        cold, listed = [], []
        for row in rows:
            output = row["output"]
            is_cold = bool(output.get("cold_start"))
            cold.append("true" if is_cold else "false")
            if not is_cold:  # a cold list is the popularity list: it says nothing of the model
                listed += [bucket_of.get(str(item), NEW_ITEM) for item in output.get("items", [])]
        return {"recommended_popularity": listed, "cold_start": cold}

    def performance(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
        if len(rows) < MIN_FEEDBACK_LISTS:
            return None
        metrics = list_metrics(rows, n_samples=300)
        return {
            "metric": "hit_rate",
            "labels": len(rows),
            **metrics["hit_rate"].as_dict(),
            "precision": metrics["precision"].value,
        }

    def signals(logged: list[dict[str, Any]], labelled: list[dict[str, Any]]) -> dict[str, Any]:
        listed = {str(item) for row in logged for item in row["output"].get("items", [])}
        found: dict[str, Any] = {
            "lists": len(logged),
            "coverage": len(listed) / catalogue if catalogue else 0.0,
            "cold_start_share": float(
                np.mean([bool(row["output"].get("cold_start")) for row in logged])
            ),
        }
        # Items outside the training catalogue count in the sketch's "other" bin.
        taken = [
            bucket_of.get(str(item), NEW_ITEM)
            for row in labelled
            for item in feedback_items(row["label"])
        ]
        if taken:
            window = clicked_reference.empty()
            window.update(taken)
            drift = column_drift("clicked_popularity", clicked_reference, window, thresholds)
            found.update(
                {
                    "clicked_items": drift.samples,
                    "clicked_popularity_psi": drift.psi,
                    "clicked_popularity_drifted": drift.drifted,
                }
            )
        return found

    return TaskMonitoring(
        sketches,
        "recommendation",
        [],
        values=values,
        performance=performance,
        signals=signals,
    )


def popularity_drift(
    reference_items: Iterable[Any],
    window_items: Iterable[Any],
    *,
    top: int = 100,
    thresholds: DriftThresholds | None = None,
) -> ColumnDrift:
    """Drift of the item distribution of a window of interactions against the reference."""
    reference = CategoricalSketch.from_values(reference_items, max_categories=top)
    window = reference.empty()
    window.update(window_items)
    return column_drift("item_popularity", reference, window, thresholds or DriftThresholds())


def feedback_metrics(
    served: Sequence[tuple[Any, Sequence[Any]]],
    events: Iterable[tuple[Any, Any]],
    *,
    n_samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, MetricValue]:
    """Hit rate and precision of served lists, judged by later (user, item) events.

    Parameters
    ----------
    served
        ``(user, recommended items)`` for each served list.
    events
        ``(user, item)`` clicks or purchases that followed.
    """
    taken: dict[str, set[str]] = {}
    for user, item in events:
        taken.setdefault(str(user), set()).add(str(item))
    hits = np.zeros(len(served))
    precision = np.zeros(len(served))
    for row, (user, items) in enumerate(served):
        chosen = taken.get(str(user), set())
        matched = sum(str(item) in chosen for item in items)
        hits[row] = float(matched > 0)
        precision[row] = matched / len(items) if items else 0.0
    per_list: Mapping[str, Any] = {"hit_rate": hits, "precision": precision}
    return bootstrap_over_users(
        dict(per_list), n_samples=n_samples, confidence=confidence, seed=seed
    )
