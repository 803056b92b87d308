"""Cleaning logged requests one column at a time, for the drift windows.

The drift windows sketch logged request records after the bundle's fitted cleaning, as the
reference was. :meth:`Cleaner.clean_records` cleans record by record, value by value, which
dominates the drift update on large logs. :func:`column_cleaner` returns a function that
cleans one column of a batch to the same values (as a sketch counts them), taking the fast
path where the cleaning step is known not to change a value, and cleaning each distinct text
once.

Examples
--------
>>> from shipyard.runtime.clean import Cleaner
>>> cleaner = Cleaner({"version": 1, "missing_tokens": ["?"],
...                    "columns": {"sex": {"kind": "category", "canonical": {"f": "F"}}}})
>>> clean = column_cleaner(cleaner, ["sex", "age"])
>>> clean("sex", [" f", "?", "M", None])
['F', None, 'M', None]
>>> clean("age", [30, 41])
[30, 41]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from shipyard.runtime.clean import Cleaner

__all__ = ["ColumnCleaner", "column_cleaner"]

ColumnCleaner = Callable[[str, list[Any]], Sequence[Any] | np.ndarray]
"""``clean(name, values) -> values``: one column of a batch of records, cleaned."""

_NUMBERS = frozenset({int, float, type(None)})


def column_cleaner(cleaner: Cleaner, names: Iterable[str]) -> ColumnCleaner | None:
    """Return ``clean(name, values)`` for the columns ``names``, or None when it cannot.

    ``clean(name, [record.get(name) for record in records])`` gives the values of
    ``[record.get(name) for record in cleaner.clean_records(records)]``, as numbers where
    they are numbers. It returns None when a name is a missing-value indicator the cleaning
    adds (those depend on whole records; clean record by record then).
    """
    from shipyard.runtime.clean import INDICATOR_SUFFIX

    indicators = {name + INDICATOR_SUFFIX for name in cleaner.indicators}
    if any(name in indicators for name in names):
        return None
    kinds = {name: rule["kind"] for name, rule in cleaner.spec.get("columns", {}).items()}

    def clean(name: str, values: list[Any]) -> Sequence[Any] | np.ndarray:
        if name in cleaner.drop:  # the cleaned record has no such key
            return [None] * len(values)
        step = cleaner.steps.get(name)
        if step is None:
            return values
        types = set(map(type, values))
        if types <= _NUMBERS:
            # Every step returns None and non-text values as they are, except that a number
            # step clips numbers when it has limits.
            low, high = cleaner.numeric_columns.get(name, (None, None))
            if kinds.get(name) != "number" or (low is None and high is None):
                return values
            if type(None) not in types:
                clipped: np.ndarray = np.clip(np.asarray(values, dtype=float), low, high)
                return clipped
        elif types == {str}:
            # Steps are functions of the value alone: clean each distinct text once.
            cleaned = {text: step(text) for text in set(values)}
            return [cleaned[text] for text in values]
        return [step(value) for value in values]

    return clean
