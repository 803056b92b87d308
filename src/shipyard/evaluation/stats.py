"""Paired statistics on cross-validation folds: corrected intervals and the corrected t-test.

Scores from k-fold cross-validation are not independent: every pair of folds shares most of its
training rows, so the plain t-test and t-interval are far too confident. Nadeau and Bengio
(2003, "Inference for the Generalization Error", Machine Learning 52) correct the variance by
replacing ``1/k`` with ``1/k + n_test/n_train``. Both the leaderboard intervals and the paired
test between two models (scored on the same folds) use that correction here.

Examples
--------
>>> test = corrected_paired_ttest([0.91, 0.92, 0.93, 0.92, 0.91], [0.80, 0.81, 0.80, 0.82, 0.79],
...                               test_train_ratio=0.25)
>>> test.significant, round(test.mean_difference, 3)
(True, 0.114)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["PairedTest", "corrected_interval", "corrected_paired_ttest"]


def _corrected_scale(differences: Any, test_train_ratio: float) -> float:
    count = len(differences)
    variance = float(np.var(differences, ddof=1)) if count > 1 else 0.0
    return math.sqrt((1.0 / count + test_train_ratio) * variance)


def corrected_interval(
    scores: Sequence[float], test_train_ratio: float, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Return the mean of fold scores and its Nadeau-Bengio-corrected t interval.

    Parameters
    ----------
    scores
        One score per fold (repeated k-fold: every fold of every repeat).
    test_train_ratio
        Rows scored per fold divided by rows fitted per fold (``1/(k-1)`` for plain k-fold).
    confidence
        Coverage of the interval.
    """
    from scipy import stats

    values = np.asarray(scores, dtype=float)
    mean = float(values.mean())
    scale = _corrected_scale(values, test_train_ratio)
    if len(values) < 2 or scale == 0.0:
        return mean, mean, mean
    half = float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1)) * scale
    return mean, mean - half, mean + half


@dataclass(frozen=True)
class PairedTest:
    """The corrected resampled t-test of model A against model B on the same folds.

    ``mean_difference`` is A minus B in the direction where positive means A is better.
    """

    mean_difference: float
    statistic: float
    p_value: float
    alpha: float

    @property
    def significant(self) -> bool:
        """Whether A is better than B at level ``alpha`` (one-sided)."""
        return self.mean_difference > 0 and self.p_value < self.alpha

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return {
            "mean_difference": self.mean_difference,
            "statistic": self.statistic if math.isfinite(self.statistic) else None,
            "p_value": self.p_value,
            "alpha": self.alpha,
            "significant": self.significant,
        }


def corrected_paired_ttest(
    scores_a: Sequence[float],
    scores_b: Sequence[float],
    *,
    test_train_ratio: float,
    greater_is_better: bool = True,
    alpha: float = 0.05,
) -> PairedTest:
    """Test whether model A beats model B, with both scored on the same folds.

    The p-value is one-sided: the chance of a difference at least this much in A's favour if
    the two models were equally good.

    Raises
    ------
    ValueError
        When the two score lists differ in length or hold fewer than two folds.
    """
    from scipy import stats

    a, b = np.asarray(scores_a, dtype=float), np.asarray(scores_b, dtype=float)
    if a.shape != b.shape or len(a) < 2:
        raise ValueError(
            f"A paired test needs the same two or more folds for both models; got {len(a)} "
            f"and {len(b)} scores."
        )
    differences = (a - b) if greater_is_better else (b - a)
    mean = float(differences.mean())
    scale = _corrected_scale(differences, test_train_ratio)
    if scale == 0.0:
        statistic = math.copysign(math.inf, mean) if mean else 0.0
        p_value = 0.0 if mean > 0 else (0.5 if mean == 0 else 1.0)
    else:
        statistic = mean / scale
        p_value = float(stats.t.sf(statistic, len(differences) - 1))
    return PairedTest(mean, statistic, p_value, alpha)
