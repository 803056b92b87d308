"""Conformal prediction intervals from the backtest's errors, and their measured coverage.

The calibration scores are the absolute backtest errors of the chosen family, divided by each
series' MASE scale so that series of different sizes pool. Step ``h`` of the horizon gets the
split-conformal quantile (``ceil((n + 1) * level)``-th smallest score) of the scores at steps
near ``h`` (widened until at least :data:`MIN_SCORES` are pooled), so intervals widen with the
horizon as errors do; the quantiles are then made non-decreasing over the horizon. An interval
is the forecast plus or minus that quantile times the series' scale.

Coverage is measured honestly, leaving one backtest window out: each window's actuals are
checked against intervals calibrated on the other windows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from shipyard.tasks.forecasting.runtime import Array

__all__ = ["MIN_SCORES", "conformal_quantiles", "leave_one_window_out_coverage"]

MIN_SCORES = 30


def _quantile(scores: Array, level: float) -> float:
    ordered = np.sort(scores)
    rank = math.ceil((len(ordered) + 1) * level)
    return float(ordered[min(rank, len(ordered)) - 1])


def conformal_quantiles(errors: Array, level: float) -> Array:
    """Per-step quantiles of scaled absolute errors (units x horizon).

    Examples
    --------
    >>> errors = np.tile(np.arange(1.0, 41.0)[:, None], (1, 3))
    >>> conformal_quantiles(errors, 0.9).tolist()
    [37.0, 37.0, 37.0]
    """
    horizon = errors.shape[1]
    quantiles = np.empty(horizon)
    for step in range(horizon):
        radius = 0
        while True:
            low, high = max(0, step - radius), min(horizon, step + radius + 1)
            pooled = errors[:, low:high].ravel()
            if len(pooled) >= MIN_SCORES or (low == 0 and high == horizon):
                break
            radius += 1
        quantiles[step] = _quantile(pooled, level)
    return _non_decreasing(quantiles)


def _non_decreasing(values: Array) -> Array:
    """Return the closest non-decreasing sequence (pool adjacent violators, equal weights).

    Errors grow with the horizon; a quantile that dips at one step is noise of a small pool.

    Examples
    --------
    >>> _non_decreasing(np.array([1.0, 3.0, 2.0, 4.0])).tolist()
    [1.0, 2.5, 2.5, 4.0]
    """
    blocks: list[list[float]] = []  # [mean, size]
    for value in values.tolist():
        blocks.append([value, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean, size = blocks.pop()
            blocks[-1] = [
                (blocks[-1][0] * blocks[-1][1] + mean * size) / (blocks[-1][1] + size),
                blocks[-1][1] + size,
            ]
    return np.concatenate([np.full(int(size), mean) for mean, size in blocks])


def leave_one_window_out_coverage(
    errors: Array, windows: Sequence[int], level: float
) -> dict[str, float]:
    """Share of backtest actuals inside intervals calibrated without their own window."""
    labels = np.asarray(windows)
    inside, total = 0, 0
    for window in np.unique(labels):
        held = labels == window
        if held.all():
            continue
        quantiles = conformal_quantiles(errors[~held], level)
        inside += int((errors[held] <= quantiles).sum())
        total += int(errors[held].size)
    coverage = inside / total if total else float("nan")
    return {"level": level, "coverage": coverage, "points": float(total)}
