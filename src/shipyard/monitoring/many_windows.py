"""The drift statistics of many windows at once, as arrays: same numbers, no Python loop.

:func:`shipyard.monitoring.drift.column_drift` compares one window's sketch with the
reference. Over a day of one-minute buckets that is 1,440 windows times every column, and the
per-call cost (numpy on 20 counts, scipy's distribution functions) dominates. :func:`columns_drift`
computes PSI, Jensen-Shannon distance, the KS or chi-square statistic and its p-value for a
matrix of windows (one row each) in a few array operations, and gives the same
:class:`~shipyard.monitoring.drift.ColumnDrift` rows as ``column_drift`` on each window (to
floating-point rounding; tests check both against each other and against scipy).

Examples
--------
>>> from shipyard.monitoring.sketch import NumericSketch
>>> reference = NumericSketch([1.0], [50, 50])
>>> rows = columns_drift("x", reference, np.array([[50, 50], [10, 90]]), np.array([0, 0]),
...                      DriftThresholds(min_samples=10), alpha=0.01)
>>> [(round(row.psi, 3), row.drifted) for row in rows]
[(0.0, False), (0.879, True)]
"""

from __future__ import annotations

import numpy as np

from shipyard.monitoring.drift import ColumnDrift, DriftThresholds, _ks_p_value
from shipyard.monitoring.sketch import NumericSketch, Sketch

__all__ = [
    "chi_square_many",
    "columns_drift",
    "js_many",
    "ks_bounds_many",
    "ks_many",
    "psi_many",
]


def _shares(counts: np.ndarray, epsilon: float = 0.0) -> np.ndarray:
    totals = counts.sum(axis=-1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts, dtype=float), where=totals > 0)
    if epsilon:
        shares = np.clip(shares, epsilon, None)
        shares = shares / shares.sum(axis=-1, keepdims=True)
    result: np.ndarray = shares
    return result


def psi_many(expected: np.ndarray, actual: np.ndarray, epsilon: float = 1e-4) -> np.ndarray:
    """PSI of each row of ``actual`` against the reference counts ``expected``."""
    reference = _shares(np.asarray(expected, float), epsilon)
    current = _shares(np.asarray(actual, float), epsilon)
    result: np.ndarray = np.sum((current - reference) * np.log(current / reference), axis=-1)
    return result


def js_many(expected: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance (base 2) of each row of ``actual`` to ``expected``."""
    p = np.broadcast_to(_shares(np.asarray(expected, float)), actual.shape)
    q = _shares(np.asarray(actual, float))
    middle = (p + q) / 2

    def kl(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ratio = np.divide(a, b, out=np.ones_like(a), where=a > 0)
        result: np.ndarray = np.sum(np.where(a > 0, a * np.log2(ratio), 0.0), axis=-1)
        return result

    divergence = (kl(p, middle) + kl(q, middle)) / 2
    distance: np.ndarray = np.sqrt(np.maximum(divergence, 0.0))
    return distance


def ks_many(expected: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Binned two-sample KS statistic and asymptotic p-value of each row against ``expected``.

    As :func:`shipyard.monitoring.drift.ks_binned`: 0 and 1 where either side is empty. The
    p-value is scipy's KS law, which scipy evaluates value by value in Python (up to a
    millisecond each): each distinct (statistic, sample size) pair is evaluated once, through
    the cache the one-window function uses.
    """
    reference = np.asarray(expected, float)
    current = np.asarray(actual, float)
    n, m = reference.sum(), current.sum(axis=-1)
    empty = (n == 0) | (m == 0)
    safe_m = np.where(empty, 1.0, m)
    reference_cdf = np.cumsum(reference) / (n if n else 1.0)
    current_cdf = np.cumsum(current, axis=-1) / safe_m[:, None]
    statistic = np.max(np.abs(reference_cdf - current_cdf), axis=-1)
    effective = np.maximum(np.round(n * safe_m / (n + safe_m)), 1).astype(int)
    pairs, positions = np.unique(
        np.column_stack([statistic, effective]), axis=0, return_inverse=True
    )
    distinct = np.array([_ks_p_value(float(d), int(size)) for d, size in pairs])
    p_value = distinct[positions.reshape(-1)] if len(pairs) else np.ones(len(statistic))
    return np.where(empty, 0.0, statistic), np.where(empty, 1.0, p_value)


def ks_bounds_many(expected: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """:func:`~shipyard.monitoring.drift.ks_binned_bounds` of each row: ``(windows, 2)``."""
    reference = np.asarray(expected, float)
    current = np.asarray(actual, float)
    n, m = reference.sum(), current.sum(axis=-1)
    empty = (n == 0) | (m == 0)
    f = np.concatenate([[0.0], np.cumsum(reference) / (n if n else 1.0)])
    safe_m = np.where(m > 0, m, 1.0)[:, None]
    g = np.hstack([np.zeros((len(current), 1)), np.cumsum(current, axis=-1) / safe_m])
    lower = np.max(np.abs(f[1:] - g[:, 1:]), axis=-1)
    upper = np.minimum(
        np.maximum(np.max(f[1:] - g[:, :-1], axis=-1), np.max(g[:, 1:] - f[:-1], axis=-1)), 1.0
    )
    return np.column_stack([np.where(empty, 0.0, lower), np.where(empty, 0.0, upper)])


def chi_square_many(expected: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Chi-square test of homogeneity of each row of ``actual`` with ``expected``.

    As :func:`shipyard.monitoring.drift.chi_square`: categories empty on both sides are left
    out, and a table with fewer than two categories or an empty side gives 0 and 1.
    """
    from scipy import stats

    reference = np.asarray(expected, float)
    current = np.asarray(actual, float)
    columns = reference + current  # (windows, categories)
    kept = columns > 0
    reference_total, current_total = reference.sum(), current.sum(axis=-1)
    total = reference_total + current_total
    safe_total = np.where(total > 0, total, 1.0)[:, None]
    expected_reference = reference_total * columns / safe_total
    expected_current = current_total[:, None] * columns / safe_total

    def term(observed: np.ndarray, expected_counts: np.ndarray) -> np.ndarray:
        ratio = np.divide(
            (observed - expected_counts) ** 2,
            expected_counts,
            out=np.zeros_like(expected_counts),
            where=kept & (expected_counts > 0),  # 0 only in windows refused below
        )
        result: np.ndarray = ratio
        return result

    statistic = np.sum(
        term(np.broadcast_to(reference, current.shape), expected_reference)
        + term(current, expected_current),
        axis=-1,
    )
    freedom = kept.sum(axis=-1) - 1
    invalid = (freedom < 1) | (reference_total == 0) | (current_total == 0)
    p_value = stats.chi2.sf(statistic, np.maximum(freedom, 1))
    return np.where(invalid, 0.0, statistic), np.where(invalid, 1.0, p_value)


def columns_drift(
    name: str,
    reference: Sketch,
    counts: np.ndarray,
    missing: np.ndarray,
    thresholds: DriftThresholds,
    alpha: float | None = None,
) -> list[ColumnDrift]:
    """Drift of one column in each window: ``counts`` has one row of bin counts per window.

    ``missing`` holds each window's missing values; ``alpha`` overrides the thresholds' level
    (:func:`~shipyard.monitoring.drift.drift_report` passes the Bonferroni-corrected one).
    """
    counts = np.asarray(counts, dtype=np.int64)
    expected = np.asarray(reference.counts, dtype=float)
    numeric = isinstance(reference, NumericSketch)
    test = "ks" if numeric else "chi_square"
    statistic, p_value = (ks_many if numeric else chi_square_many)(expected, counts)
    stability = psi_many(expected, counts)
    distance = js_many(expected, counts)
    samples = counts.sum(axis=-1)
    level = thresholds.alpha if alpha is None else alpha
    rows = []
    for index in range(len(counts)):
        present, absent = int(samples[index]), int(missing[index])
        seen = present + absent
        share = absent / seen if seen else 0.0
        if present == 0:  # nothing to compare yet: no effect, no verdict
            rows.append(ColumnDrift(name, test, 0.0, 1.0, 0.0, 0.0, 0, share, None))
            continue
        verdict: bool | None = None
        if present >= thresholds.min_samples:
            verdict = bool(p_value[index] < level and stability[index] >= thresholds.psi)
        rows.append(
            ColumnDrift(
                column=name,
                test=test,
                statistic=float(statistic[index]),
                p_value=float(p_value[index]),
                psi=float(stability[index]),
                js_distance=float(distance[index]),
                samples=present,
                missing_share=share,
                drifted=verdict,
            )
        )
    return rows
