"""Fit per-group decision thresholds that bound demographic parity difference.

The mitigated model keeps the base model's probabilities; only the decision changes: a row is
positive when its positive-class probability reaches the threshold of its sensitive group
(:class:`shipyard.runtime.group_thresholds.GroupThresholds`). :func:`fit_group_thresholds`
chooses one threshold per group on labelled validation rows, exactly and deterministically:
the thresholds that maximise accuracy over all groups subject to every group's selection rate
lying within ``max_difference`` of every other's (demographic parity difference at most
``max_difference`` on those rows).

How: per group, every distinct cut of its scores gives a selection rate and a count of correct
decisions; rates rise as the cut falls. For each candidate lowest rate ``L`` (every rate some
group can reach), each group takes its most accurate cut whose rate lies in
``[L, L + max_difference]`` (a range maximum, answered from a sparse table); the ``L`` with
the most correct decisions in total wins. Selecting nobody is always possible, so a solution
always exists. Unlike Fairlearn's ``ThresholdOptimizer``, nothing is randomised: the same
record always gets the same label.

Examples
--------
>>> import numpy as np
>>> scores = np.array([0.9, 0.8, 0.4, 0.3, 0.6, 0.2, 0.1, 0.05])
>>> y = np.array([1, 1, 0, 0, 1, 1, 0, 0])
>>> groups = ["a"] * 4 + ["b"] * 4
>>> cuts = fit_group_thresholds(scores, y, groups, max_difference=0.0, min_group_size=1)
>>> sorted(cuts)
['a', 'b']
>>> [float(np.mean(scores[:4] >= cuts["a"])), float(np.mean(scores[4:] >= cuts["b"]))]
[0.5, 0.5]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from shipyard.errors import DataError

__all__ = ["GroupCuts", "fit_group_thresholds"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
# Rates are ratios of counts: compare them with a little room for floating-point error.
_RATE_SLACK = 1e-12


@dataclass
class GroupCuts:
    """Every distinct decision threshold of one group, with its selection rate and accuracy.

    ``thresholds`` fall as ``rates`` rise: index 0 selects nobody, the last selects everyone.
    """

    thresholds: FloatArray
    rates: FloatArray
    correct: IntArray

    @classmethod
    def of(cls, scores: FloatArray, y: IntArray) -> GroupCuts:
        """Build the cuts of one group's positive-class scores and labels (1 positive)."""
        ascending = np.sort(scores)
        distinct = np.unique(scores)[::-1]
        top = distinct[0]
        # Above every score (nobody selected); between each pair of neighbours; below all.
        none = (top + 1.0) / 2.0 if top < 1.0 else float(np.nextafter(top, np.inf))
        middles = (distinct[:-1] + distinct[1:]) / 2.0
        thresholds = np.concatenate([[none], middles, [distinct[-1] / 2.0]])
        # Count exactly what ``score >= threshold`` selects, so a rounded midpoint cannot lie.
        order = np.argsort(scores, kind="mergesort")
        positives_below = np.concatenate([[0], np.cumsum(y[order])])
        below = np.searchsorted(ascending, thresholds, side="left")
        n, positives = len(scores), int(y.sum())
        selected_positives = positives - positives_below[below]
        selected = n - below
        negatives_left = (n - positives) - (selected - selected_positives)
        return cls(
            thresholds.astype(np.float64),
            (selected / n).astype(np.float64),
            (selected_positives + negatives_left).astype(np.int64),
        )


def _sparse_max(values: IntArray) -> list[IntArray]:
    """Return the sparse table of range maxima: level j holds max(values[i : i + 2**j])."""
    levels = [values]
    width = 1
    while 2 * width <= len(values):
        previous = levels[-1]
        levels.append(np.maximum(previous[:-width], previous[width:]))
        width *= 2
    return levels


def _range_max(levels: list[IntArray], low: IntArray, high: IntArray) -> IntArray:
    """Return max(values[low:high]) per query (-1 where the range is empty)."""
    length = high - low
    found = np.full(len(low), -1, dtype=np.int64)
    valid = length > 0
    level = np.zeros(len(low), dtype=np.int64)
    level[valid] = np.floor(np.log2(length[valid])).astype(np.int64)
    for j in np.unique(level[valid]):
        rows = valid & (level == j)
        table = levels[int(j)]
        found[rows] = np.maximum(table[low[rows]], table[high[rows] - (1 << int(j))])
    return found


def fit_group_thresholds(
    scores: Any,
    y: Any,
    groups: Sequence[str],
    *,
    max_difference: float,
    min_group_size: int = 30,
) -> dict[str, float]:
    """Return the most accurate per-group thresholds within a demographic parity bound.

    On these rows, the fitted groups' selection rates differ by at most ``max_difference``.

    Parameters
    ----------
    scores
        The base model's positive-class probability of each validation row.
    y
        The true labels, 1 for the positive class.
    groups
        Each row's sensitive group.
    max_difference
        The largest demographic parity difference allowed between the fitted groups.
    min_group_size
        Groups with fewer rows get no threshold of their own (they keep the base model's):
        a threshold fitted on a handful of rows would be noise.

    Raises
    ------
    DataError
        When fewer than two groups have ``min_group_size`` rows: there is nothing to equalise.
    """
    scores = np.asarray(scores, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    labels = np.asarray(list(groups), dtype=object)
    names, counts = np.unique(labels, return_counts=True)
    kept = [
        str(name) for name, count in zip(names, counts, strict=True) if count >= min_group_size
    ]
    if len(kept) < 2:
        raise DataError(
            f"Fitting group thresholds needs at least two sensitive groups with "
            f"{min_group_size} or more validation rows (fairness.min_group_size); found "
            f"{dict(zip(map(str, names), map(int, counts), strict=True))}. Use more data, a "
            "larger split.validation_size, or a smaller fairness.min_group_size."
        )
    cuts = {name: GroupCuts.of(scores[labels == name], y[labels == name]) for name in kept}
    lows = np.unique(np.concatenate([cut.rates for cut in cuts.values()]))
    total = np.zeros(len(lows), dtype=np.int64)
    for cut in cuts.values():
        start = np.searchsorted(cut.rates, lows - _RATE_SLACK, side="left")
        stop = np.searchsorted(cut.rates, lows + max_difference + _RATE_SLACK, side="right")
        best = _range_max(_sparse_max(cut.correct), start, stop)
        total = np.where((best < 0) | (total < 0), -1, total + best)
    chosen = float(lows[int(np.argmax(total))])  # the first best: the lowest rates, ties aside
    thresholds = {}
    for name, cut in cuts.items():
        inside = (cut.rates >= chosen - _RATE_SLACK) & (
            cut.rates <= chosen + max_difference + _RATE_SLACK
        )
        candidates = np.flatnonzero(inside)
        thresholds[name] = float(cut.thresholds[candidates[np.argmax(cut.correct[candidates])]])
    return thresholds
