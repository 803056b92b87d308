"""Drift statistics between a reference sketch and a window sketch with the same bins.

Each column gets an effect size (population stability index, Jensen-Shannon distance) and a
test (two-sample Kolmogorov-Smirnov for numbers, chi-square for categories). A column is flagged
only when the test is significant *and* the effect is large enough: with millions of rows every
difference is significant, and with a few dozen rows no effect is trustworthy, so the verdict
needs both, and windows below ``min_samples`` get no verdict at all.

The KS statistic is computed from the binned distribution functions, so it is the exact KS
statistic evaluated at the bin edges (equal to scipy's when every distinct value has its own
bin, and a lower bound otherwise); :func:`ks_binned_bounds` also gives the upper bound the
bins allow.

Examples
--------
>>> psi([50, 50], [50, 50])
0.0
>>> round(js_distance([10, 0], [0, 10]), 6)
1.0
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from shipyard.monitoring.sketch import CategoricalSketch, NumericSketch, Sketch

__all__ = [
    "ColumnDrift",
    "DriftThresholds",
    "chi_square",
    "column_drift",
    "drift_report",
    "js_distance",
    "ks_binned",
    "ks_binned_bounds",
    "psi",
]


def _shares(counts: Sequence[float], epsilon: float = 0.0) -> np.ndarray:
    values = np.asarray(counts, dtype=float)
    total = values.sum()
    shares = values / total if total > 0 else np.zeros_like(values)
    if epsilon:
        shares = np.clip(shares, epsilon, None)
        shares = shares / shares.sum()
    return shares


def psi(expected: Sequence[float], actual: Sequence[float], epsilon: float = 1e-4) -> float:
    """Compute the population stability index of ``actual`` against ``expected`` bin counts.

    Empty bins are floored at ``epsilon`` so the logarithm stays finite. Common reading: below
    0.1 stable, 0.1-0.25 moderate shift, above 0.25 large shift.
    """
    reference, current = _shares(expected, epsilon), _shares(actual, epsilon)
    return float(np.sum((current - reference) * np.log(current / reference)))


def js_distance(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Jensen-Shannon distance (base 2, between 0 and 1) of two count vectors."""
    p, q = _shares(expected), _shares(actual)
    middle = (p + q) / 2

    def kl(a: np.ndarray, b: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / b[mask])))

    divergence = (kl(p, middle) + kl(q, middle)) / 2
    return math.sqrt(max(divergence, 0.0))


def ks_binned(expected: Sequence[float], actual: Sequence[float]) -> tuple[float, float]:
    """Two-sample KS statistic from binned counts, with its asymptotic p-value."""
    reference, current = np.asarray(expected, float), np.asarray(actual, float)
    n, m = reference.sum(), current.sum()
    if n == 0 or m == 0:
        return 0.0, 1.0
    statistic = float(np.max(np.abs(np.cumsum(reference) / n - np.cumsum(current) / m)))
    # As scipy's ks_2samp(method="asymp"): the one-sample KS law at the effective sample size.
    effective = max(round(n * m / (n + m)), 1)
    return statistic, _ks_p_value(statistic, int(effective))


def ks_binned_bounds(expected: Sequence[float], actual: Sequence[float]) -> tuple[float, float]:
    """Bounds on the exact two-sample KS statistic of the values two binned counts came from.

    Within bin ``i`` each distribution function lies between its values at the bin's two
    edges, so the exact statistic ``D`` satisfies ``lower <= D <= upper`` with ``lower`` the
    binned statistic (:func:`ks_binned`) and
    ``upper = max_i max(F_i - G_(i-1), G_i - F_(i-1))`` (``F``, ``G``: the cumulative shares
    at the bin edges). ``upper - lower`` is at most the largest share of one bin on either
    side: about 0.05 with the reference's 20 quantile bins, unless the window piles into a
    bin. Both are 0 when a side is empty.

    Examples
    --------
    >>> ks_binned_bounds([50, 50], [50, 50])
    (0.0, 0.5)
    >>> ks_binned_bounds([100, 0], [0, 100])
    (1.0, 1.0)
    """
    reference, current = np.asarray(expected, float), np.asarray(actual, float)
    n, m = reference.sum(), current.sum()
    if n == 0 or m == 0:
        return 0.0, 0.0
    f = np.concatenate([[0.0], np.cumsum(reference) / n])
    g = np.concatenate([[0.0], np.cumsum(current) / m])
    lower = float(np.max(np.abs(f[1:] - g[1:])))
    upper = float(max(np.max(f[1:] - g[:-1]), np.max(g[1:] - f[:-1])))
    return lower, min(upper, 1.0)


@functools.lru_cache(maxsize=65_536)
def _ks_p_value(statistic: float, effective: int) -> float:
    """P-value of the KS law, remembered: windows of one size repeat the same statistics.

    scipy computes it in Python (about half a millisecond), and with binned counts the same
    statistic comes back often (a 0/1 column in windows of equal size has a few values).
    """
    from scipy import stats

    p_value = float(stats.kstwo.sf(statistic, effective))
    return min(max(p_value, 0.0), 1.0)


def chi_square(expected: Sequence[float], actual: Sequence[float]) -> tuple[float, float]:
    """Chi-square test of homogeneity on a 2 x k table of counts (empty columns dropped)."""
    from scipy import stats

    table = np.vstack([np.asarray(expected, float), np.asarray(actual, float)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    expected_counts = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
    statistic = float(np.sum((table - expected_counts) ** 2 / expected_counts))
    p_value = float(stats.chi2.sf(statistic, table.shape[1] - 1))
    return statistic, p_value


@dataclass(frozen=True)
class DriftThresholds:
    """When a column counts as drifted.

    Parameters
    ----------
    alpha
        Significance level of the per-column test, before the Bonferroni correction over
        columns that :func:`drift_report` applies.
    psi
        Minimum population stability index.
    min_samples
        Windows with fewer values get no verdict.
    """

    alpha: float = 0.01
    psi: float = 0.1
    min_samples: int = 100


@dataclass(frozen=True)
class ColumnDrift:
    """Drift of one column in one window."""

    column: str
    test: str
    statistic: float
    p_value: float
    psi: float
    js_distance: float
    samples: int
    missing_share: float
    drifted: bool | None  # None: too few samples for a verdict

    def as_dict(self) -> dict[str, object]:
        """Plain dict for JSON and reports."""
        return asdict(self)


def column_drift(
    name: str,
    reference: Sketch,
    window: Sketch,
    thresholds: DriftThresholds,
    alpha: float | None = None,
) -> ColumnDrift:
    """Compare one column's window sketch with its reference sketch."""
    if isinstance(reference, NumericSketch) and isinstance(window, NumericSketch):
        test = "ks"
        statistic, p_value = ks_binned(reference.counts, window.counts)
    elif isinstance(reference, CategoricalSketch) and isinstance(window, CategoricalSketch):
        test = "chi_square"
        statistic, p_value = chi_square(reference.counts, window.counts)
    else:
        raise TypeError(f"Column '{name}': reference and window sketches differ in kind.")
    samples = window.total
    seen = samples + window.missing
    if samples == 0:  # nothing to compare yet: no effect, no verdict
        return ColumnDrift(
            column=name,
            test=test,
            statistic=0.0,
            p_value=1.0,
            psi=0.0,
            js_distance=0.0,
            samples=0,
            missing_share=window.missing / seen if seen else 0.0,
            drifted=None,
        )
    stability = psi(reference.counts, window.counts)
    verdict: bool | None = None
    if samples >= thresholds.min_samples:
        verdict = (
            p_value < (thresholds.alpha if alpha is None else alpha)
            and stability >= thresholds.psi
        )
    return ColumnDrift(
        column=name,
        test=test,
        statistic=statistic,
        p_value=p_value,
        psi=stability,
        js_distance=js_distance(reference.counts, window.counts),
        samples=samples,
        missing_share=window.missing / seen if seen else 0.0,
        drifted=verdict,
    )


def drift_report(
    reference: Mapping[str, Sketch],
    window: Mapping[str, Sketch],
    thresholds: DriftThresholds | None = None,
) -> list[ColumnDrift]:
    """Drift of every column, with the test level Bonferroni-corrected over the columns."""
    thresholds = thresholds or DriftThresholds()
    corrected = thresholds.alpha / max(len(reference), 1)
    return [
        column_drift(name, sketch, window[name], thresholds, alpha=corrected)
        for name, sketch in reference.items()
    ]
