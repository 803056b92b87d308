"""Live numbers of a model version from the prediction log, and new-versus-old verdicts.

A version's live numbers over a period are its answered and failed requests (the error rate)
and, on the predictions that got feedback, its realised metric with a bootstrap interval. Two
versions are compared two ways:

- :func:`compare_unpaired`: a canary and the champion over the same period, each on the
  requests it answered (different rows): the interval of the metric difference resamples each
  version's rows separately.
- :func:`compare_paired`: a freshly promoted champion against the one it replaced, both scored
  on the rows the new one answered: a paired bootstrap, as the promotion gate does.

Both intervals of a difference are BCa intervals (:mod:`shipyard.stats`), since a rollback
follows from them.

Either way the new version is judged worse (and rolled back) only when its error rate exceeds
the old one's by more than a tolerance, or when the whole interval of the metric difference
lies below minus the metric tolerance: a rollback needs evidence, not noise.

Examples
--------
>>> import numpy as np
>>> y = np.arange(200.0)
>>> close, far = y + 1.0, y + np.where(np.arange(200) % 2, 30.0, -30.0)
>>> difference, low, high = unpaired_difference(y, far, y, close, "rmse", seed=0)
>>> round(difference, 1), high < 0
(-29.0, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np

from shipyard import stats
from shipyard.evaluation.metrics import GREATER_IS_BETTER, score
from shipyard.monitoring.gate import compare_models
from shipyard.monitoring.log import MonitoringStore
from shipyard.monitoring.performance import outputs_from_log

__all__ = [
    "SCORED_TASKS",
    "LiveComparison",
    "LiveNumbers",
    "LiveSample",
    "compare_paired",
    "compare_unpaired",
    "live_numbers",
    "unpaired_difference",
]


# Tasks whose logged answers the metrics can score against feedback labels.
SCORED_TASKS = ("binary", "multiclass", "regression")


@dataclass(frozen=True)
class LiveNumbers:
    """One version's requests, failures and realised metric over a period."""

    version: int
    answered: int
    failed: int
    labels: int
    metric: str
    value: float | None = None  # realised metric, once there are enough labels
    low: float | None = None
    high: float | None = None

    @property
    def requests(self) -> int:
        """Answered plus failed requests."""
        return self.answered + self.failed

    @property
    def error_rate(self) -> float | None:
        """Share of requests that failed (None before any request)."""
        return self.failed / self.requests if self.requests else None

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON and the audit log."""
        return {**asdict(self), "requests": self.requests, "error_rate": self.error_rate}


@dataclass(frozen=True)
class LiveSample:
    """Live numbers with the labelled rows behind them: what the version answered, the truth."""

    numbers: LiveNumbers
    y: np.ndarray
    outputs: np.ndarray
    records: list[dict[str, Any]]

    def subset(self, keep: Sequence[bool]) -> LiveSample:
        """Keep the labelled rows where ``keep`` is true (the request counts stay)."""
        mask = np.asarray(keep, dtype=bool)
        records = [record for record, kept in zip(self.records, keep, strict=True) if kept]
        numbers = replace(self.numbers, labels=len(records))
        return LiveSample(numbers, self.y[mask], self.outputs[mask], records)


@dataclass(frozen=True)
class LiveComparison:
    """A new version against an old one, and whether the new one must be rolled back."""

    metric: str
    new: LiveNumbers
    old: LiveNumbers
    paired: bool
    difference: float | None  # new minus old, oriented so that positive is better
    low: float | None
    high: float | None
    error_rate_increase: float | None
    error_rate_worse: bool
    metric_worse: bool
    reasons: list[str] = field(default_factory=list)

    @property
    def worse(self) -> bool:
        """The new version is worse by the error rate or, confidently, by the metric."""
        return self.error_rate_worse or self.metric_worse

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON and the audit log."""
        return {
            "metric": self.metric,
            "paired": self.paired,
            "difference": self.difference,
            "low": self.low,
            "high": self.high,
            "error_rate_increase": self.error_rate_increase,
            "error_rate_worse": self.error_rate_worse,
            "metric_worse": self.metric_worse,
            "reasons": self.reasons,
            "new": self.new.as_dict(),
            "old": self.old.as_dict(),
        }


def live_numbers(
    store: MonitoringStore,
    name: str,
    version: int,
    task: str,
    classes: Sequence[Any],
    metric: str,
    since: datetime,
    until: datetime | None = None,
    *,
    min_labels: int = 30,
    n_samples: int = 300,
    confidence: float = 0.95,
    seed: int = 0,
) -> LiveSample:
    """Count a version's requests in ``[since, until)`` and score its labelled ones.

    The realised metric gets a percentile-bootstrap interval at ``confidence`` once there are
    ``min_labels`` labels. For tasks outside :data:`SCORED_TASKS`, or without a metric, only
    the requests are counted.
    """
    activity = store.activity(name, version, since, until)
    scored = bool(metric) and task in SCORED_TASKS
    rows = store.labelled(name, since=since, version=version, until=until) if scored else []
    y, outputs = outputs_from_log(rows, task, classes) if rows else (np.empty(0), np.empty(0))
    value = low = high = None
    if len(rows) >= min_labels:
        estimate = stats.bootstrap(
            lambda rows: score(metric, y[rows], outputs[rows]),
            len(y),
            n_samples=n_samples,
            confidence=confidence,
            seed=seed,
        )
        value, low, high = estimate.value, estimate.low, estimate.high
    numbers = LiveNumbers(
        version, activity["answered"], activity["failed"], len(rows), metric, value, low, high
    )
    return LiveSample(numbers, y, outputs, [row["inputs"] for row in rows])


def unpaired_difference(
    y_new: np.ndarray,
    outputs_new: np.ndarray,
    y_old: np.ndarray,
    outputs_old: np.ndarray,
    metric: str,
    *,
    n_samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Return ``new - old`` of a metric on different rows, with a BCa bootstrap interval.

    Each version's rows are resampled separately (:func:`shipyard.stats.independent_difference`).
    The difference is oriented so that a positive value means the new version is better,
    whatever the metric's direction.
    """
    sign = 1.0 if GREATER_IS_BETTER[metric] else -1.0
    estimate = stats.independent_difference(
        lambda rows: sign * score(metric, y_new[rows], outputs_new[rows]),
        len(y_new),
        lambda rows: sign * score(metric, y_old[rows], outputs_old[rows]),
        len(y_old),
        n_samples=n_samples,
        confidence=confidence,
        seed=seed,
    )
    point = sign * (score(metric, y_new, outputs_new) - score(metric, y_old, outputs_old))
    return float(point), estimate.low, estimate.high


def _verdict(
    new: LiveNumbers,
    old: LiveNumbers,
    high: float | None,
    error_rate_tolerance: float,
    metric_tolerance: float,
    confidence: float,
) -> tuple[float | None, bool, bool, list[str]]:
    reasons = []
    increase = None
    error_rate_worse = metric_worse = False
    if new.error_rate is not None and old.error_rate is not None:
        increase = new.error_rate - old.error_rate
        if increase > error_rate_tolerance:
            error_rate_worse = True
            reasons.append(
                f"error rate {new.error_rate:.2%} ({new.failed}/{new.requests}) against "
                f"{old.error_rate:.2%} ({old.failed}/{old.requests}), up by more than "
                f"{error_rate_tolerance:.2%}"
            )
    if high is not None and high < -metric_tolerance:
        metric_worse = True
        limit = f"{-metric_tolerance:+.4f}" if metric_tolerance else "zero"
        reasons.append(
            f"{new.metric} is confidently worse: the {confidence:.0%} interval of the "
            f"difference ends at {high:+.4f}, below {limit}"
        )
    return increase, error_rate_worse, metric_worse, reasons


def compare_unpaired(
    new: LiveSample,
    old: LiveSample,
    *,
    min_labels: int,
    error_rate_tolerance: float,
    metric_tolerance: float,
    confidence: float = 0.95,
    seed: int = 0,
) -> LiveComparison:
    """Compare two versions that served different requests over the same period.

    Parameters
    ----------
    new, old
        :func:`live_numbers` of each version over the period.
    min_labels
        Both versions need this many labels for a metric verdict.
    error_rate_tolerance, metric_tolerance
        How much worse the new version may be before it is judged worse.
    confidence
        Coverage of the interval of the metric difference.
    """
    difference = low = high = None
    if new.numbers.labels >= min_labels and old.numbers.labels >= min_labels:
        difference, low, high = unpaired_difference(
            new.y,
            new.outputs,
            old.y,
            old.outputs,
            new.numbers.metric,
            confidence=confidence,
            seed=seed,
        )
    return _comparison(
        new.numbers,
        old.numbers,
        False,
        (difference, low, high),
        error_rate_tolerance,
        metric_tolerance,
        confidence,
    )


def compare_paired(
    new: LiveSample,
    old_numbers: LiveNumbers,
    old_outputs: np.ndarray | None,
    *,
    min_labels: int,
    error_rate_tolerance: float,
    metric_tolerance: float,
    confidence: float = 0.95,
    seed: int = 0,
) -> LiveComparison:
    """Compare a new version with an old one scored on the same labelled rows.

    Parameters
    ----------
    new
        :func:`live_numbers` of the new version; its labelled rows are the ones compared.
    old_numbers
        The old version's request counts (from its own period) for the error rate.
    old_outputs
        The old version's outputs on the new version's labelled rows (None: not scored).
    confidence
        Coverage of the interval of the metric difference.
    """
    difference = low = high = None
    if old_outputs is not None and new.numbers.labels >= min_labels:
        gate = compare_models(
            new.y,
            new.outputs,
            old_outputs,
            new.numbers.metric,
            min_samples=min_labels,
            confidence=confidence,
            seed=seed,
        )
        difference, low, high = gate.improvement, gate.low, gate.high
        # The old version's realised metric on the same rows, as if it had answered them.
        old_numbers = replace(old_numbers, labels=new.numbers.labels, value=gate.champion)
    return _comparison(
        new.numbers,
        old_numbers,
        True,
        (difference, low, high),
        error_rate_tolerance,
        metric_tolerance,
        confidence,
    )


def _comparison(
    new: LiveNumbers,
    old: LiveNumbers,
    paired: bool,
    interval: tuple[float | None, float | None, float | None],
    error_rate_tolerance: float,
    metric_tolerance: float,
    confidence: float,
) -> LiveComparison:
    difference, low, high = interval
    increase, error_rate_worse, metric_worse, reasons = _verdict(
        new, old, high, error_rate_tolerance, metric_tolerance, confidence
    )
    return LiveComparison(
        new.metric,
        new,
        old,
        paired,
        difference,
        low,
        high,
        increase,
        error_rate_worse,
        metric_worse,
        reasons,
    )
