"""Sketches: fixed-size summaries of a column's distribution that can be added together.

A reference sketch is computed once, from the training data, and stored in the bundle. Its bins
(quantile cut points for numbers, the known categories for text) are then reused for every
monitoring window, so a window's sketch is built incrementally, record by record or batch by
batch, and two windows are merged by adding their counts: drift is never computed by rescanning
the prediction log.

Examples
--------
>>> import numpy as np
>>> reference = NumericSketch.from_values(np.arange(100.0), bins=4)
>>> reference.edges
[24.75, 49.5, 74.25]
>>> window = reference.empty()
>>> window.update([1.0, 80.0, None])
>>> window.counts, window.missing
([1, 0, 0, 1], 1)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["CategoricalSketch", "NumericSketch", "Sketch", "category_of", "sketch_from_json"]


def category_of(value: Any) -> str:
    """Return the category a value counts as: its text, a whole number without ".0".

    A number is the same category whether it arrives as ``1`` (JSON) or ``1.0`` (a column
    with missing values, read as floats).

    >>> [category_of(value) for value in (1, 1.0, 1.5, "1.0", True)]
    ['1', '1', '1.5', '1.0', 'True']
    """
    if isinstance(value, float | np.floating) and math.isfinite(value) and value == int(value):
        return str(int(value))
    return str(value)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _as_floats(values: Iterable[Any]) -> np.ndarray:
    """Values as floats, NaN for missing ones: ``float(value)`` each, vectorised when it can be.

    A list of plain numbers (or booleans) converts in one numpy call, to the same floats;
    anything else (None, text, mixed types) goes value by value.
    """
    array: np.ndarray | None = values if isinstance(values, np.ndarray) else None
    if array is None:
        values = list(values)
        try:
            array = np.asarray(values)
        except (TypeError, ValueError):  # ragged nested values: not numbers
            array = None
    if array is not None and array.ndim == 1 and array.dtype.kind in "biuf":
        return array.astype(float)
    return np.asarray(
        [np.nan if _is_missing(value) else float(value) for value in values], dtype=float
    )


@dataclass
class NumericSketch:
    """Counts of values per bin between ``edges`` (bin ``i`` holds edges[i-1] < x <= edges[i]).

    Parameters
    ----------
    edges
        Sorted interior cut points; ``len(edges) + 1`` bins.
    counts
        Values per bin.
    missing
        Missing values seen.
    """

    edges: list[float]
    counts: list[int]
    missing: int = 0
    kind: str = field(default="numeric", init=False)

    @classmethod
    def from_values(cls, values: Sequence[Any] | np.ndarray, bins: int = 20) -> NumericSketch:
        """Build a reference sketch whose bins are the quantiles of ``values``."""
        numbers = _as_floats(values)
        present = numbers[~np.isnan(numbers)]
        if len(present):
            quantiles = np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])
            edges = sorted({float(edge) for edge in quantiles})
        else:
            edges = []
        sketch = cls(edges=edges, counts=[0] * (len(edges) + 1))
        sketch.update(numbers)
        return sketch

    def empty(self) -> NumericSketch:
        """Return a sketch with the same bins and no counts, for a monitoring window."""
        return NumericSketch(edges=list(self.edges), counts=[0] * len(self.counts))

    def update(self, values: Iterable[Any]) -> None:
        """Add values (None or NaN count as missing)."""
        numbers = _as_floats(values)
        missing = np.isnan(numbers)
        self.missing += int(missing.sum())
        positions = np.searchsorted(np.asarray(self.edges), numbers[~missing], side="left")
        added = np.bincount(positions, minlength=len(self.counts)).tolist()
        for position, count in enumerate(added):
            self.counts[position] += count

    def merge(self, other: NumericSketch) -> NumericSketch:
        """Return the sum of two sketches with the same bins."""
        if other.edges != self.edges:
            raise ValueError("Cannot merge numeric sketches with different bins.")
        return NumericSketch(
            edges=list(self.edges),
            counts=[a + b for a, b in zip(self.counts, other.counts, strict=True)],
            missing=self.missing + other.missing,
        )

    @property
    def total(self) -> int:
        """Present (non-missing) values counted."""
        return sum(self.counts)

    def to_json(self) -> dict[str, Any]:
        """Plain dict for the bundle."""
        return {
            "kind": self.kind,
            "edges": self.edges,
            "counts": self.counts,
            "missing": self.missing,
        }


@dataclass
class CategoricalSketch:
    """Counts per known category, plus one count for categories the reference never had.

    Parameters
    ----------
    categories
        The reference's categories.
    counts
        One count per category, then the count of other (unseen) categories.
    missing
        Missing values seen.
    """

    categories: list[str]
    counts: list[int]
    missing: int = 0
    kind: str = field(default="categorical", init=False)

    def __post_init__(self) -> None:
        self.index = {category: position for position, category in enumerate(self.categories)}
        """Category -> its count's position (what :func:`category_of` values look up)."""
        # A whole number written as "1.0" by an earlier release also answers to "1".
        for position, category in enumerate(self.categories):
            whole = category[:-2] if category.endswith(".0") else ""
            if whole.lstrip("-").isdigit():
                self.index.setdefault(whole, position)

    @classmethod
    def from_values(cls, values: Iterable[Any], max_categories: int = 100) -> CategoricalSketch:
        """Build a reference sketch over the most frequent ``max_categories`` values."""
        present = [category_of(value) for value in values if not _is_missing(value)]
        unique, frequency = np.unique(np.asarray(present, dtype=object), return_counts=True)
        order = np.argsort(-frequency, kind="stable")[:max_categories]
        categories = sorted(str(unique[position]) for position in order)
        sketch = cls(categories=categories, counts=[0] * (len(categories) + 1))
        sketch.update(values)
        return sketch

    def empty(self) -> CategoricalSketch:
        """Return a sketch with the same categories and no counts."""
        return CategoricalSketch(categories=list(self.categories), counts=[0] * len(self.counts))

    def update(self, values: Iterable[Any]) -> None:
        """Add values; unseen categories go to the last ("other") count."""
        other = len(self.categories)
        if not isinstance(values, np.ndarray):
            values = list(values)
            # Count each distinct value once when every value is text (the usual case):
            # text never compares equal to another type, so the counts are the same.
            try:
                tally = Counter(values)
            except TypeError:  # unhashable values: one by one below
                tally = Counter()
            if tally and all(type(value) is str for value in tally):
                for value, count in tally.items():
                    self.counts[self.index.get(value, other)] += count
                return
        for value in values:
            if _is_missing(value):
                self.missing += 1
            else:
                self.counts[self.index.get(category_of(value), other)] += 1

    def merge(self, other: CategoricalSketch) -> CategoricalSketch:
        """Return the sum of two sketches with the same categories."""
        if other.categories != self.categories:
            raise ValueError("Cannot merge categorical sketches with different categories.")
        return CategoricalSketch(
            categories=list(self.categories),
            counts=[a + b for a, b in zip(self.counts, other.counts, strict=True)],
            missing=self.missing + other.missing,
        )

    @property
    def total(self) -> int:
        """Present (non-missing) values counted."""
        return sum(self.counts)

    def to_json(self) -> dict[str, Any]:
        """Plain dict for the bundle."""
        return {
            "kind": self.kind,
            "categories": self.categories,
            "counts": self.counts,
            "missing": self.missing,
        }


Sketch = NumericSketch | CategoricalSketch


def sketch_from_json(data: Mapping[str, Any]) -> Sketch:
    """Rebuild a sketch from :meth:`to_json` output."""
    if data["kind"] == "numeric":
        return NumericSketch(
            edges=[float(edge) for edge in data["edges"]],
            counts=[int(count) for count in data["counts"]],
            missing=int(data["missing"]),
        )
    if data["kind"] == "categorical":
        return CategoricalSketch(
            categories=[str(c) for c in data["categories"]],
            counts=[int(count) for count in data["counts"]],
            missing=int(data["missing"]),
        )
    raise ValueError(f"Unknown sketch kind {data['kind']!r}.")
