"""The promotion gate: does a challenger beat the champion with statistical confidence.

Both models are scored on the same recent labelled window. The gate resamples the window's rows
(a paired bootstrap: each resample scores both models on the same rows) and builds a BCa
confidence interval for ``challenger metric - champion metric`` (see
:func:`shipyard.stats.paired_difference`), oriented so that positive means better.
The challenger passes only when the window has at least ``min_samples`` rows and the whole
interval lies above ``min_improvement``.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> y = rng.integers(0, 2, 2000)
>>> noise = rng.normal(0, 1, 2000)
>>> good = np.column_stack([1 - (p := 1 / (1 + np.exp(-(4 * y - 2 + noise)))), p])
>>> weak = np.column_stack([1 - (q := 1 / (1 + np.exp(-(1 * y - 0.5 + noise)))), q])
>>> compare_models(y, good, weak, "roc_auc", seed=0).passed
True
>>> compare_models(y, weak, good, "roc_auc", seed=0).passed
False
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from shipyard import stats
from shipyard.evaluation.metrics import GREATER_IS_BETTER, score

__all__ = ["GateResult", "compare_models", "compare_paired_values"]


@dataclass(frozen=True)
class GateResult:
    """The gate's numbers and verdict."""

    metric: str
    samples: int
    challenger: float
    champion: float
    improvement: float
    low: float
    high: float
    confidence: float
    passed: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON and the audit log."""
        return asdict(self)


def compare_models(
    y: Any,
    challenger_outputs: Any,
    champion_outputs: Any,
    metric: str,
    *,
    min_samples: int = 200,
    min_improvement: float = 0.0,
    confidence: float = 0.95,
    n_samples: int = 1000,
    seed: int = 0,
) -> GateResult:
    """Decide whether the challenger beats the champion on the same labelled rows.

    Parameters
    ----------
    y
        True class indices or values of the window.
    challenger_outputs, champion_outputs
        Each model's raw outputs on the same rows (probabilities or predictions).
    metric
        A metric of :mod:`shipyard.evaluation.metrics`; lower-is-better metrics are flipped so
        that a positive improvement always means better.
    min_samples
        Fewer labelled rows give no promotion, whatever the numbers.
    min_improvement
        The lower end of the interval must exceed this.
    """
    y = np.asarray(y)
    challenger_outputs, champion_outputs = (
        np.asarray(challenger_outputs),
        np.asarray(champion_outputs),
    )
    sign = 1.0 if GREATER_IS_BETTER[metric] else -1.0
    challenger = score(metric, y, challenger_outputs)
    champion = score(metric, y, champion_outputs)
    improvement = sign * (challenger - champion)
    if len(y) < min_samples:
        return GateResult(
            metric,
            len(y),
            challenger,
            champion,
            improvement,
            float("nan"),
            float("nan"),
            confidence,
            False,
            f"only {len(y)} labelled rows; the gate needs at least {min_samples}",
        )
    interval = stats.paired_difference(
        lambda rows: sign * score(metric, y[rows], challenger_outputs[rows]),
        lambda rows: sign * score(metric, y[rows], champion_outputs[rows]),
        len(y),
        n_samples=n_samples,
        confidence=confidence,
        seed=seed,
    )
    low, high = interval.low, interval.high
    passed = low > min_improvement
    level = f"{confidence:.0%}"
    if passed:
        reason = (
            f"{metric} improves by {improvement:+.4f} ({level} CI [{low:+.4f}, "
            f"{high:+.4f}]), entirely above {min_improvement:+.4f}"
        )
    else:
        reason = (
            f"{metric} change {improvement:+.4f} ({level} CI [{low:+.4f}, {high:+.4f}]) "
            f"is not confidently above {min_improvement:+.4f}"
        )
    return GateResult(
        metric,
        len(y),
        challenger,
        champion,
        improvement,
        low,
        high,
        confidence,
        passed,
        _with_note(reason, interval),
    )


def compare_paired_values(
    challenger_values: Any,
    champion_values: Any,
    metric: str,
    *,
    min_samples: int = 200,
    min_improvement: float = 0.0,
    confidence: float = 0.95,
    n_samples: int = 1000,
    seed: int = 0,
) -> GateResult:
    """Decide on per-unit scores (greater is better) whose mean is the metric.

    For metrics that are means over units, such as a recommender's NDCG@k over users: both
    arrays hold one value per unit in the same order, and the paired bootstrap resamples units,
    so the interval accounts for the two models being scored on the same users.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> champion = rng.uniform(0, 0.3, 500)
    >>> compare_paired_values(champion + 0.05, champion, "ndcg@10").passed
    True
    >>> compare_paired_values(champion, champion, "ndcg@10").passed
    False
    """
    challenger_values = np.asarray(challenger_values, dtype=np.float64)
    champion_values = np.asarray(champion_values, dtype=np.float64)
    count = len(challenger_values)
    challenger = float(challenger_values.mean()) if count else float("nan")
    champion = float(champion_values.mean()) if count else float("nan")
    improvement = challenger - champion
    if count < min_samples:
        return GateResult(
            metric,
            count,
            challenger,
            champion,
            improvement,
            float("nan"),
            float("nan"),
            confidence,
            False,
            f"only {count} paired units; the gate needs at least {min_samples}",
        )
    interval = stats.paired_difference(
        lambda rows: float(challenger_values[rows].mean()),
        lambda rows: float(champion_values[rows].mean()),
        count,
        n_samples=n_samples,
        confidence=confidence,
        seed=seed,
    )
    low, high = interval.low, interval.high
    passed = low > min_improvement
    level = f"{confidence:.0%}"
    verdict = (
        f"entirely above {min_improvement:+.4f}"
        if passed
        else f"not confidently above {min_improvement:+.4f}"
    )
    reason = (
        f"{metric} {'improves by' if passed else 'change'} {improvement:+.4f} over {count} "
        f"paired units ({level} CI [{low:+.4f}, {high:+.4f}]), {verdict}"
    )
    return GateResult(
        metric,
        count,
        challenger,
        champion,
        improvement,
        low,
        high,
        confidence,
        passed,
        _with_note(reason, interval),
    )


def _with_note(reason: str, interval: stats.Estimate) -> str:
    # A fallback from BCa to the percentile interval belongs in the audit trail.
    return f"{reason} ({interval.note})" if interval.note else reason
