"""Bootstrap confidence intervals: the one implementation every interval in shipyard uses.

Two kinds of interval, chosen by what follows from them:

- :func:`bootstrap` and :func:`bootstrap_statistics` (one sample): the percentile bootstrap
  over rows, for the intervals a report shows (test metrics, slices, fairness disparities,
  live metrics, ranking metrics). Simple, and stable under a seed.
- :func:`paired_difference` (two models scored on the same rows) and
  :func:`independent_difference` (two models scored on different rows): the BCa
  (bias-corrected and accelerated) bootstrap of ``scipy.stats.bootstrap``, for the intervals a
  decision follows from (promotion gate, rollback, canary). BCa corrects the bias and skew that
  a bounded metric such as ROC AUC shows near its ends, where a percentile interval is too
  optimistic on one side.

A statistic is a function of row indices: it receives the indices of one resample (with
repeats) and returns a number, so the caller decides how rows become a metric. A resample on
which the statistic is not finite (ROC AUC of a resample holding one class, a fairness group
that vanished) is dropped, and the interval is taken over the others; when no resample is left
the bounds are NaN. BCa needs a jackknife (one evaluation per row) and fails on degenerate
bootstrap distributions (all resamples equal, or some not finite); in those cases, and above
:data:`BCA_MAX_ROWS` rows, where the jackknife costs too much and the two intervals agree
anyway, the percentile interval of the same resamples is used and the estimate's ``note`` says
why.

Examples
--------
>>> import numpy as np
>>> values = np.random.default_rng(0).normal(10.0, 2.0, 400)
>>> estimate = bootstrap(lambda rows: values[rows].mean(), len(values), n_samples=500, seed=0)
>>> round(estimate.value, 3), estimate.low < estimate.value < estimate.high
(9.927, True)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from shipyard.errors import ConfigError

__all__ = [
    "BCA_MAX_ROWS",
    "Estimate",
    "Indices",
    "bootstrap",
    "bootstrap_statistics",
    "independent_difference",
    "paired_difference",
    "percentile_interval",
    "resample_counts",
]

Indices = npt.NDArray[np.int64]
"""Row indices of one resample (rows may repeat)."""

BCA_MAX_ROWS = 3000
"""Above this many rows the BCa jackknife (one statistic evaluation per row, each over all
rows) takes tens of seconds, and the bootstrap distribution is close enough to normal that BCa
and percentile intervals agree to the third decimal: the percentile interval is used."""

PERCENTILE = "percentile"
BCA = "BCa"


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its bootstrap confidence interval.

    Parameters
    ----------
    value
        The statistic on all rows.
    low, high
        The interval's bounds (NaN when no resample gave a finite statistic).
    confidence
        The interval's coverage, such as 0.95.
    method
        ``"percentile"`` or ``"BCa"``: how the bounds were computed.
    note
        Why the method differs from the one asked for; empty otherwise.
    """

    value: float
    low: float
    high: float
    confidence: float
    method: str = PERCENTILE
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)


def _check(n_samples: int, confidence: float, caller: str) -> None:
    if not 0.0 < confidence < 1.0:
        raise ConfigError(
            f"The 'confidence' parameter of shipyard.stats.{caller} must be a number strictly "
            f"between 0 and 1. Got {confidence!r} instead (write 0.95 for a 95% interval)."
        )
    if n_samples < 1:
        raise ConfigError(
            f"The 'n_samples' parameter of shipyard.stats.{caller} must be an int >= 1. Got "
            f"{n_samples!r} instead (1000 resamples is a good default)."
        )


def _generator(seed: int | np.random.Generator) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def percentile_interval(draws: npt.ArrayLike, confidence: float) -> tuple[float, float]:
    """Return the equal-tailed percentile interval of bootstrap draws, ignoring non-finite ones.

    Parameters
    ----------
    draws
        The statistic on each resample; NaN or infinite draws (failed resamples) are dropped.
    confidence
        The interval's coverage, such as 0.95.

    Returns
    -------
    tuple of float
        ``(low, high)``; both NaN when no draw is finite.

    Examples
    --------
    >>> percentile_interval([1.0, 2.0, 3.0, 4.0, float("nan")], 0.5)
    (1.75, 3.25)
    """
    values = np.asarray(draws, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if not len(finite):
        return float("nan"), float("nan")
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)


def resample_counts(
    n_rows: int, n_samples: int, seed: int | np.random.Generator = 0
) -> npt.NDArray[np.float64]:
    """Return bootstrap resamples as draw counts: one row per resample, one column per row.

    A statistic that is a weighted sum over rows (a mean, a rate, a weighted AUC) is then one
    matrix product for all resamples, instead of one Python call per resample.

    Examples
    --------
    >>> counts = resample_counts(5, 3, seed=0)
    >>> counts.shape, counts.sum(axis=1).tolist()
    ((3, 5), [5.0, 5.0, 5.0])
    """
    rng = _generator(seed)
    uniform = np.full(n_rows, 1.0 / n_rows)
    return rng.multinomial(n_rows, uniform, size=n_samples).astype(np.float64)


def bootstrap_statistics(
    statistics: Callable[[Indices], Mapping[str, float]],
    n_rows: int,
    *,
    n_samples: int = 1000,
    confidence: float = 0.95,
    seed: int | np.random.Generator = 0,
) -> dict[str, Estimate]:
    """Percentile-bootstrap intervals of several statistics, all on the same resamples.

    Sharing the resamples makes the intervals comparable, and lets the statistics share work
    (one pass over a resample computes them all).

    Parameters
    ----------
    statistics
        Maps the row indices of a resample to a value per statistic name; a value that is not
        finite marks the resample as failed for that statistic.
    n_rows
        The number of rows the indices refer to.
    n_samples
        Resamples drawn.
    confidence
        The intervals' coverage, such as 0.95.
    seed
        The seed, or a generator to draw from (which then advances).

    Returns
    -------
    dict of str to Estimate
        One estimate per name; the value is the statistic on all rows.

    Examples
    --------
    >>> import numpy as np
    >>> heights = np.random.default_rng(1).normal(170.0, 10.0, 300)
    >>> estimates = bootstrap_statistics(
    ...     lambda rows: {"mean": heights[rows].mean(), "median": np.median(heights[rows])},
    ...     len(heights), n_samples=200, seed=0)
    >>> sorted(estimates), estimates["mean"].method
    (['mean', 'median'], 'percentile')
    """
    _check(n_samples, confidence, "bootstrap_statistics")
    rng = _generator(seed)
    draws: dict[str, npt.NDArray[np.float64]] = {}
    for sample in range(n_samples):
        values = statistics(rng.integers(0, n_rows, n_rows))
        for name, value in values.items():
            draws.setdefault(name, np.full(n_samples, np.nan))[sample] = value
    point = statistics(np.arange(n_rows))
    estimates = {}
    for name, value in point.items():
        low, high = percentile_interval(draws.get(name, []), confidence)
        estimates[name] = Estimate(float(value), low, high, confidence)
    return estimates


def bootstrap(
    statistic: Callable[[Indices], float],
    n_rows: int,
    *,
    n_samples: int = 1000,
    confidence: float = 0.95,
    seed: int | np.random.Generator = 0,
) -> Estimate:
    """Percentile-bootstrap interval of one statistic over rows.

    Parameters
    ----------
    statistic
        Maps the row indices of a resample to a number (not finite: the resample failed).
    n_rows
        The number of rows the indices refer to.
    n_samples
        Resamples drawn.
    confidence
        The interval's coverage, such as 0.95.
    seed
        The seed, or a generator to draw from (which then advances).

    Examples
    --------
    >>> import numpy as np
    >>> errors = np.random.default_rng(2).exponential(1.0, 500)
    >>> narrow = bootstrap(lambda rows: errors[rows].mean(), 500, confidence=0.8)
    >>> wide = bootstrap(lambda rows: errors[rows].mean(), 500, confidence=0.99)
    >>> narrow.high - narrow.low < wide.high - wide.low
    True
    """
    _check(n_samples, confidence, "bootstrap")
    estimates = bootstrap_statistics(
        lambda rows: {"value": statistic(rows)},
        n_rows,
        n_samples=n_samples,
        confidence=confidence,
        seed=seed,
    )
    return estimates["value"]


def _bca_or_percentile(
    data: tuple[Indices, ...],
    statistic: Callable[..., float],
    point: float,
    *,
    paired: bool,
    n_samples: int,
    confidence: float,
    seed: int | np.random.Generator,
) -> Estimate:
    """Run ``scipy.stats.bootstrap`` with BCa; fall back to its percentile interval."""
    from scipy import stats

    rows = sum(len(sample) for sample in data)
    if min(len(sample) for sample in data) < 2:
        note = "fewer than two rows in a sample: no interval"
        return Estimate(point, float("nan"), float("nan"), confidence, PERCENTILE, note)
    method, note = BCA, ""
    if rows > BCA_MAX_ROWS:
        method = PERCENTILE
        note = f"percentile interval: {rows} rows exceed the BCa limit of {BCA_MAX_ROWS}"
    with warnings.catch_warnings():
        # Degenerate resamples warn inside scipy; the NaN bounds they give are handled below.
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        result = stats.bootstrap(
            data,
            lambda *samples: float(statistic(*samples)),
            n_resamples=n_samples,
            vectorized=False,
            paired=paired,
            confidence_level=confidence,
            method=method,
            rng=_generator(seed),
        )
    low, high = result.confidence_interval.low, result.confidence_interval.high
    if method == PERCENTILE or not (np.isfinite(low) and np.isfinite(high)):
        if method == BCA:
            method = PERCENTILE
            note = (
                "percentile interval: BCa is undefined when every resample gives the same "
                "value or the statistic fails on some"
            )
        low, high = percentile_interval(result.bootstrap_distribution, confidence)
    return Estimate(point, float(low), float(high), confidence, method, note)


def paired_difference(
    new: Callable[[Indices], float],
    old: Callable[[Indices], float],
    n_rows: int,
    *,
    n_samples: int = 1000,
    confidence: float = 0.95,
    seed: int | np.random.Generator = 0,
) -> Estimate:
    """BCa interval of ``new - old`` for two models scored on the same rows (paired bootstrap).

    Each resample draws rows once and scores both models on them, so the interval accounts for
    the two scores being correlated through the rows (a hard row is hard for both).

    Parameters
    ----------
    new, old
        Each model's statistic of the row indices of a resample.
    n_rows
        The number of rows both models were scored on.
    n_samples
        Resamples drawn.
    confidence
        The interval's coverage, such as 0.95.
    seed
        The seed, or a generator to draw from (which then advances).

    Returns
    -------
    Estimate
        ``method`` is ``"BCa"``, or ``"percentile"`` with a ``note`` saying why.

    Examples
    --------
    >>> import numpy as np
    >>> old_scores = np.random.default_rng(3).uniform(0.0, 0.5, 300)
    >>> new_scores = old_scores + np.random.default_rng(4).normal(0.05, 0.05, 300)
    >>> estimate = paired_difference(lambda rows: new_scores[rows].mean(),
    ...                              lambda rows: old_scores[rows].mean(), 300, n_samples=200)
    >>> round(estimate.value, 3), estimate.method, estimate.low > 0
    (0.055, 'BCa', True)

    A model compared with itself differs by zero on every resample, where BCa is undefined:

    >>> same = paired_difference(lambda rows: old_scores[rows].mean(),
    ...                          lambda rows: old_scores[rows].mean(), 300, n_samples=200)
    >>> same.value, same.low, same.high, same.method
    (0.0, 0.0, 0.0, 'percentile')
    """
    _check(n_samples, confidence, "paired_difference")

    def difference(rows: Indices) -> float:
        return new(rows) - old(rows)

    return _bca_or_percentile(
        (np.arange(n_rows),),
        difference,
        float(difference(np.arange(n_rows))),
        paired=True,
        n_samples=n_samples,
        confidence=confidence,
        seed=seed,
    )


def independent_difference(
    new: Callable[[Indices], float],
    new_rows: int,
    old: Callable[[Indices], float],
    old_rows: int,
    *,
    n_samples: int = 1000,
    confidence: float = 0.95,
    seed: int | np.random.Generator = 0,
) -> Estimate:
    """BCa interval of ``new - old`` for two models scored on different rows.

    Each model's rows are resampled separately (a canary and the champion answer different
    requests over the same period).

    Parameters
    ----------
    new, old
        Each model's statistic of the row indices of a resample of its own rows.
    new_rows, old_rows
        How many rows each model was scored on.
    n_samples
        Resamples drawn.
    confidence
        The interval's coverage, such as 0.95.
    seed
        The seed, or a generator to draw from (which then advances).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(5)
    >>> canary, champion = rng.normal(1.0, 1.0, 200), rng.normal(0.5, 1.0, 150)
    >>> estimate = independent_difference(lambda rows: canary[rows].mean(), 200,
    ...                                   lambda rows: champion[rows].mean(), 150)
    >>> estimate.method, estimate.low > 0
    ('BCa', True)
    """
    _check(n_samples, confidence, "independent_difference")
    return _bca_or_percentile(
        (np.arange(new_rows), np.arange(old_rows)),
        lambda new_sample, old_sample: new(new_sample) - old(old_sample),
        float(new(np.arange(new_rows)) - old(np.arange(old_rows))),
        paired=False,
        n_samples=n_samples,
        confidence=confidence,
        seed=seed,
    )
