"""Click and purchase feedback on served recommendation lists.

A served list (``GET .../recommend``) carries a ``request_id``; the client later posts what the
user took to ``POST /v1/models/{name}/feedback`` as that request's label, in one of these forms:

- ``{"items": [ID, ...], "event": "click"}`` or ``"purchase"`` (the full form);
- ``[ID, ...]`` or a single ``ID``: clicks.

Items need not come from the list (a user may buy something else after seeing it); every item
becomes a new interaction when the model is retrained, and hit rates count only listed items.
Posting feedback for the same request again replaces the earlier label, so send every item
taken from that list so far.

Examples
--------
>>> feedback_items({"items": [3, 5], "event": "purchase"}), feedback_event([3])
([3, 5], 'click')
>>> feedback_items(7)
[7]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from shipyard.errors import DataError
from shipyard.evaluation.metrics import MetricValue
from shipyard.tasks.recommendation.evaluation import bootstrap_over_users

__all__ = ["EVENTS", "check_label", "feedback_event", "feedback_items", "list_metrics"]

EVENTS = ("click", "purchase")


def _is_id(value: Any) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool) and value != ""


def check_label(label: Any) -> Any:
    """Return ``label`` when it is a valid recommendation feedback label.

    Raises
    ------
    DataError
        Naming what was wrong and the accepted forms.
    """
    forms = (
        'send {"items": [ID, ...], "event": "click" or "purchase"}, a list of item ids, or '
        "one item id"
    )
    if isinstance(label, Mapping):
        unknown = sorted(set(label) - {"items", "event"})
        if unknown:
            raise DataError(f"Unknown keys {unknown} in a recommendation label; {forms}.")
        if label.get("event", "click") not in EVENTS:
            raise DataError(
                f"event must be one of {', '.join(EVENTS)}; got {label.get('event')!r}."
            )
        items = label.get("items")
    else:
        items = label if isinstance(label, list) else [label]
    if not isinstance(items, list) or not items or not all(_is_id(item) for item in items):
        raise DataError(f"A recommendation label needs one or more item ids; {forms}.")
    return label


def feedback_items(label: Any) -> list[Any]:
    """Return the item ids a feedback label names."""
    if isinstance(label, Mapping):
        return list(label.get("items", []))
    return list(label) if isinstance(label, list) else [label]


def feedback_event(label: Any) -> str:
    """Return the event of a feedback label (``click`` unless it says ``purchase``)."""
    return str(label.get("event", "click")) if isinstance(label, Mapping) else "click"


def list_metrics(
    rows: Sequence[Mapping[str, Any]],
    *,
    n_samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, MetricValue]:
    """Hit rate and precision of served lists, each judged by its own feedback label.

    ``rows`` are labelled log rows: ``output["items"]`` is the served list and ``label`` the
    feedback. Intervals are bootstraps over lists.
    """
    hits = np.zeros(len(rows))
    precision = np.zeros(len(rows))
    for row, entry in enumerate(rows):
        listed = [str(item) for item in entry["output"].get("items", [])]
        taken = {str(item) for item in feedback_items(entry["label"])}
        matched = sum(item in taken for item in listed)
        hits[row] = float(matched > 0)
        precision[row] = matched / len(listed) if listed else 0.0
    return bootstrap_over_users(
        {"hit_rate": hits, "precision": precision},
        n_samples=n_samples,
        confidence=confidence,
        seed=seed,
    )
