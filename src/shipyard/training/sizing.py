"""Sizing a family's first setting to the time left, from a timed probe on a sample.

Boosters stop adding trees at the deadline by themselves; the other families (linear, forests,
the MLP) cannot be stopped inside a fit. Before the first setting of such a family is scored,
:func:`probe_fold_seconds` fits it on a seeded tenth of one fold's rows, on the machine as it
is now (a loaded machine is measured, not assumed idle), and :func:`size_setting` extrapolates
the cross-validation's cost: when it would overrun the time left, a forest first gets fewer
trees, then every family fits its folds on a seeded share of the rows. The leaderboard says so
in the row's note.

One BLAS thread per fit (:func:`single_blas_thread`): on a loaded 2-core machine OpenBLAS's
two spinning threads made a 30,000-row logistic regression 15 times slower (4.1 s against
0.27 s at load 5), and the matrices here are too narrow to gain from two threads.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.training.candidates import Candidate, FeatureSet, quiet_fit

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Sizing",
    "probe_fold_seconds",
    "row_sample",
    "single_blas_thread",
    "size_setting",
]

PROBE_SHARE = 0.1
"""Share of one fold's fit rows the probe fits on."""
PROBE_MIN_ROWS = 300
SAFETY = 0.8
"""A sized setting plans to use at most this share of the time left."""
MIN_ROWS = 300
"""A sized setting fits on at least this many rows (or all of them, when there are fewer)."""
MIN_TREES = 10
CLOSE_ENOUGH = 0.95
"""A setting within 5 % of the time planned keeps every row: the estimate is not that exact."""
WARM_UP_ROWS = 50


@dataclass(frozen=True)
class Sizing:
    """How a setting is run: its (possibly shrunk) parameters and the share of rows it fits."""

    params: dict[str, Any]
    row_fraction: float = 1.0
    estimate_s: float = 0.0
    """Estimated seconds for the whole cross-validation as sized."""
    full_estimate_s: float = 0.0
    """Estimated seconds for the whole cross-validation at full size."""
    notes: list[str] = field(default_factory=list)

    @property
    def shrunk(self) -> bool:
        """Whether the setting was made smaller than asked."""
        return bool(self.notes)

    @property
    def note(self) -> str:
        """One line for the leaderboard (empty when the setting runs at full size)."""
        return "; ".join(self.notes)


@contextmanager
def single_blas_thread() -> Iterator[None]:
    """Limit BLAS (OpenBLAS, MKL) to one thread while fitting; see the module docstring."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def row_sample(rows: Any, fraction: float, seed: int) -> Any:
    """Return a seeded, sorted share of ``rows`` (all of them when ``fraction`` is 1)."""
    if fraction >= 1.0:
        return rows
    count = max(1, min(len(rows), round(len(rows) * fraction)))
    chosen = np.random.default_rng(seed).choice(len(rows), size=count, replace=False)
    return np.asarray(rows)[np.sort(chosen)]


def probe_fold_seconds(
    family: type[Candidate],
    params: Mapping[str, Any],
    *,
    x: pd.DataFrame,
    y: Any,
    fit_rows: Any,
    score_rows: Any,
    features: FeatureSet,
    task: str,
    seed: int,
    threads: int,
) -> tuple[float, int]:
    """Time one fit (and scoring) on a sample of a fold; return ``(seconds, rows fitted)``.

    Raises
    ------
    ValueError
        When the family cannot fit the sample (one class only, say): the caller does not size.
    """
    count = min(len(fit_rows), max(PROBE_MIN_ROWS, round(len(fit_rows) * PROBE_SHARE)))
    sample = row_sample(fit_rows, count / len(fit_rows), seed)
    scored = row_sample(score_rows, min(1.0, count / max(len(score_rows), 1)), seed)
    # A first, untimed fit on a few rows pays the one-off costs (imports, first calls) that
    # would otherwise be extrapolated as if every row cost them.
    # (A few rows may hold one class only, which some families refuse: then skip it.)
    with suppress(ValueError):
        _fit_and_score(family, params, x, y, sample[:WARM_UP_ROWS], scored[:WARM_UP_ROWS],
                       features, task, seed, threads)  # fmt: skip
    started = time.perf_counter()
    _fit_and_score(family, params, x, y, sample, scored, features, task, seed, threads)
    return time.perf_counter() - started, len(sample)


def _fit_and_score(
    family: type[Candidate],
    params: Mapping[str, Any],
    x: pd.DataFrame,
    y: Any,
    fit_rows: Any,
    score_rows: Any,
    features: FeatureSet,
    task: str,
    seed: int,
    threads: int,
) -> None:
    candidate = family(features, task, seed, n_jobs=threads, **dict(params))
    with single_blas_thread(), quiet_fit():
        pipeline = candidate.fit(x.iloc[fit_rows], y[fit_rows], x.iloc[:0], y[:0])
        if task == "regression":
            pipeline.predict(x.iloc[score_rows])
        else:
            pipeline.predict_proba(x.iloc[score_rows])


def size_setting(
    family: type[Candidate],
    params: Mapping[str, Any],
    *,
    probe_s: float,
    probe_rows: int,
    fold_rows: int,
    folds: int,
    left_s: float,
) -> Sizing:
    """Shrink a setting so that its cross-validation fits in ``left_s`` seconds.

    The cost is extrapolated linearly in rows (and trees) from the probe, which is cautious:
    the probe's fixed costs are scaled up with it. A forest first gets fewer trees (never
    below ten), then every family fits on a share of the rows (never below a few hundred).
    """
    chosen = dict(params)
    full = probe_s * fold_rows / max(probe_rows, 1) * folds
    allowed = max(left_s, 0.0) * SAFETY
    if full <= allowed:
        return Sizing(chosen, 1.0, full, full)
    estimate, notes = full, []
    size_key = family.size_param
    if size_key and isinstance(chosen.get(size_key), int):
        trees = int(chosen[size_key])
        fewer = max(MIN_TREES, min(trees, int(trees * allowed / estimate)))
        if fewer < trees:
            chosen[size_key] = fewer
            estimate *= fewer / trees
            notes.append(f"{fewer} trees instead of {trees}")
    fraction = 1.0
    if estimate > allowed / CLOSE_ENOUGH:
        floor = min(1.0, MIN_ROWS / max(fold_rows, 1))
        fraction = max(floor, allowed / estimate)
        if fraction < 1.0:
            estimate *= fraction
            notes.append(f"fitted on {fraction:.0%} of the rows")
    if notes:
        notes[-1] += (
            f" to fit the time budget (full size: about {full:.0f}s, {max(left_s, 0):.0f}s left)"
        )
    return Sizing(chosen, fraction, estimate, full, notes)
