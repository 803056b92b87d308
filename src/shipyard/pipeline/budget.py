"""The time budget of a run: wall-clock seconds from the start to the registered version.

Evaluation is inside the budget. Once the data is split, :func:`plan_evaluation` estimates
what evaluation will cost on this data and this machine as it is now: a timed probe of the
bootstrap (the largest part, and the one that grows with the test rows) gives the seconds
per resample, and how much slower than an idle machine that probe ran scales the fixed parts
(the suite's plots and documents, the drift reference, the parity check). Evaluation keeps at
most :data:`EVALUATION_SHARE` of the time left; when the full evaluation would not fit, it
does less (fewer bootstrap resamples, fewer fairness resamples, then no report suite unless a
fairness gate needs it), and the driver notes what it dropped. Model development gets the
rest (:func:`development_config`). After model development the plan is made again with the
time actually left, so a search that overran shrinks evaluation rather than the promise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.errors import TrainingError

if TYPE_CHECKING:
    from shipyard.config import PipelineConfig

__all__ = [
    "EvaluationPlan",
    "bootstrap_seconds",
    "development_config",
    "evaluation_config",
    "idle_resample_seconds",
    "plan_evaluation",
    "refuse_hopeless_budget",
    "refuse_spent_budget",
]

EVALUATION_SHARE = 0.35
"""Evaluation is planned to use at most this share of the time left after the split."""
MIN_BOOTSTRAP = 30
"""Fewest bootstrap resamples when time is short (below the config's own minimum of 100: the
intervals get rough, and the run's notes say so)."""
MIN_FAIRNESS_BOOTSTRAP = 20
SLICE_RESAMPLES = 100
"""The suite's slices use this many resamples at most (fewer when bootstrap_samples is)."""
SUITE_RESAMPLES = 520
"""At 100 slice resamples, the slice intervals cost about this many test-set resamples."""
SUITE_FIXED_S = 5.0
"""The suite's plots, explanations, importance, robustness and mitigation on an idle machine
(measured on Adult and COMPAS under load, scaled back by the probe's slowdown)."""
FIXED_S = 0.3
"""The model card, the bundle and the registry on an idle machine."""
SECONDS_PER_TRAIN_ROW = 1e-5
"""The drift reference and the parity check, per training row, on an idle machine."""
IDLE_SECONDS_PER_ROW_RESAMPLE = {"regression": 3e-8}
"""One bootstrap resample of the default metrics costs this per test row on an idle machine
(ROC AUC and log loss sort and take logarithms; the regression metrics are sums)."""
IDLE_CLASSIFICATION_SECONDS_PER_ROW_RESAMPLE = 3e-7
IDLE_SECONDS_PER_RESAMPLE = {"regression": 1.2e-4}
"""...plus this much whatever the rows (the metric functions check their inputs). Measured on
an idle 2-core machine: binary 0.22 ms at 50 rows, 1.6 ms at 5,000, 7.9 ms at 20,000;
regression 0.13, 0.24 and 0.58 ms. Without it a small test set made an idle machine look
several times slower than idle, and the report suite's estimate with it."""
IDLE_CLASSIFICATION_SECONDS_PER_RESAMPLE = 2.5e-4
MAX_SLOWDOWN = 12.0
"""A probe that ran slower than this against idle is taken as a stall, not as the machine's
pace: at load 15 on 2 cores the bootstrap ran about 8 times slower than idle."""
SUITE_SAMPLE_ROWS = 2000
"""Explanations, permutation importance and robustness run on this many test rows at most."""
SUITE_PASSES_PER_FEATURE = 2
"""Permutation importance scores the sample twice per feature."""
SUITE_PASSES = 10
"""Explanations, robustness and the mitigation score the sample about this many times."""
PROBE_RESAMPLES = 4
PROBE_ROUNDS = 3
MIN_DEVELOPMENT_S = 1.0
REPLAN_SHARE = 0.8
"""After model development, evaluation plans to use this share of the time left."""
PREPARING_SHARE = 1 / 3
"""When preparing the data alone spends the budget, a budget this many times larger is named:
preparation, model development and evaluation take about a third each at small budgets."""


@dataclass(frozen=True)
class EvaluationPlan:
    """How much evaluation does, and what it is expected to cost."""

    estimate_s: float
    bootstrap_samples: int
    fairness_samples: int
    suite: bool
    notes: list[str] = field(default_factory=list)


def bootstrap_seconds(kind: str, test_rows: int, classes: int, seed: int) -> float | None:
    """Time a few bootstrap resamples of the default metrics on data of the test set's size.

    Returns seconds per resample, or ``None`` when ``kind`` has no default metrics.
    """
    from shipyard.evaluation.metrics import DEFAULT_METRICS, bootstrap_metrics

    if kind not in DEFAULT_METRICS or test_rows < 2:
        return None
    rng = np.random.default_rng(seed)
    y: Any
    if kind == "regression":
        y, outputs = rng.normal(size=test_rows), rng.normal(size=test_rows)
    else:
        count = max(classes, 2)
        y = np.arange(test_rows) % count
        outputs = rng.dirichlet(np.ones(count), size=test_rows)
    rounds = []
    for _ in range(PROBE_ROUNDS):  # the median of a few rounds: one can be hit by a stall
        started = time.perf_counter()
        bootstrap_metrics(y, outputs, DEFAULT_METRICS[kind], n_samples=PROBE_RESAMPLES, seed=seed)
        rounds.append((time.perf_counter() - started) / PROBE_RESAMPLES)
    return float(np.median(rounds))


def idle_resample_seconds(kind: str, test_rows: int) -> float:
    """Return what one bootstrap resample of ``test_rows`` rows costs on an idle machine."""
    per_row = IDLE_SECONDS_PER_ROW_RESAMPLE.get(kind, IDLE_CLASSIFICATION_SECONDS_PER_ROW_RESAMPLE)
    fixed = IDLE_SECONDS_PER_RESAMPLE.get(kind, IDLE_CLASSIFICATION_SECONDS_PER_RESAMPLE)
    return fixed + per_row * max(test_rows, 1)


def _slowdown(per_resample_s: float | None, kind: str, test_rows: int) -> float:
    """How much slower than idle the probe ran: it scales the parts that were not probed."""
    if not per_resample_s:
        return 1.0
    measured = per_resample_s / idle_resample_seconds(kind, test_rows)
    return float(min(max(measured, 0.5), MAX_SLOWDOWN))


def _estimate(
    bootstrap: int, fairness: int, suite: bool, per_resample: float, fixed: float, suite_s: float
) -> float:
    slices = SUITE_RESAMPLES * min(bootstrap, SLICE_RESAMPLES) / SLICE_RESAMPLES
    resamples = bootstrap + (slices + fairness if suite else 0)
    return per_resample * resamples + fixed + (suite_s if suite else 0.0)


def _affordable(resamples: float, suite: bool) -> float:
    """Bootstrap resamples that ``resamples`` test-set resamples pay for, slices included."""
    if not suite:
        return resamples
    per_slice = SUITE_RESAMPLES / SLICE_RESAMPLES
    below = resamples / (1 + per_slice)  # each resample up to SLICE_RESAMPLES adds slices
    return below if below <= SLICE_RESAMPLES else resamples - SUITE_RESAMPLES


def plan_evaluation(
    config: PipelineConfig,
    *,
    left_s: float,
    per_resample_s: float | None,
    test_rows: int,
    train_rows: int,
    share: float = EVALUATION_SHARE,
    rows_per_second: float | None = None,
    features: int = 0,
    kind: str = "binary",
) -> EvaluationPlan:
    """Return the largest evaluation whose estimate fits ``share`` of ``left_s``.

    Once the model is chosen, ``rows_per_second`` (its measured batch scoring speed) adds
    what evaluation spends scoring: the test and training rows, and in the suite the
    explained, permuted and perturbed sample of ``features`` columns.

    A fairness gate (``fairness.thresholds``) keeps the suite whatever the time: a gate that
    was not evaluated must not pass.
    """
    evaluation, fairness = config.evaluation, config.fairness
    per_resample = per_resample_s or 0.0
    slowdown = _slowdown(per_resample_s, kind, test_rows)
    fixed = (FIXED_S + SECONDS_PER_TRAIN_ROW * train_rows) * slowdown
    suite_s = SUITE_FIXED_S * slowdown
    if rows_per_second:
        fixed += (test_rows + train_rows) / rows_per_second
        sample = min(test_rows, SUITE_SAMPLE_ROWS)
        suite_s += sample * (SUITE_PASSES_PER_FEATURE * features + SUITE_PASSES) / rows_per_second
    allowed = max(left_s, 0.0) * share
    suite = evaluation.report
    bootstrap, fair = evaluation.bootstrap_samples, fairness.bootstrap_samples
    full = _estimate(bootstrap, fair, suite, per_resample, fixed, suite_s)
    if full <= allowed or per_resample == 0.0:
        return EvaluationPlan(full, bootstrap, fair, suite)
    notes: list[str] = []
    # Fewer resamples first: the intervals widen, every section stays. With the suite, each
    # bootstrap resample also costs slice resamples (up to SLICE_RESAMPLES).
    spare = allowed - _estimate(0, 0, suite, per_resample, fixed, suite_s)
    resamples = max(spare / per_resample, 0.0)
    bootstrap = int(min(bootstrap, max(MIN_BOOTSTRAP, _affordable(resamples * 0.8, suite))))
    if suite:
        fair = int(min(fair, max(MIN_FAIRNESS_BOOTSTRAP, resamples * 0.2)))
    if bootstrap < evaluation.bootstrap_samples:
        notes.append(f"{bootstrap} bootstrap resamples instead of {evaluation.bootstrap_samples}")
    if suite and fair < fairness.bootstrap_samples:
        notes.append(f"{fair} fairness resamples instead of {fairness.bootstrap_samples}")
    estimate = _estimate(bootstrap, fair, suite, per_resample, fixed, suite_s)
    if estimate > allowed and suite and not fairness.thresholds:
        suite = False
        notes.append("no report suite (slices, fairness, explanations, plots, card)")
        estimate = _estimate(bootstrap, fair, suite, per_resample, fixed, suite_s)
    return EvaluationPlan(estimate, bootstrap, fair, suite, notes)


def refuse_hopeless_budget(
    budget_s: float, elapsed_s: float, plan: EvaluationPlan, *, preparing_s: float
) -> None:
    """Raise when not even a baseline and the smallest evaluation fit in the budget.

    Raises
    ------
    TrainingError
        Naming the budget that would hold a model: the time the data took to prepare, the
        smallest evaluation, and about as long again as preparing took for the baseline.
    """
    left = budget_s - elapsed_s
    if left >= plan.estimate_s + MIN_DEVELOPMENT_S:
        return
    needed = elapsed_s + plan.estimate_s + max(MIN_DEVELOPMENT_S, preparing_s)
    raise TrainingError(
        f"A time budget of {budget_s:g}s cannot hold a useful model: reading and preparing "
        f"the data took {elapsed_s:.1f}s and the smallest evaluation needs about "
        f"{plan.estimate_s:.1f}s; a budget of about {max(needed * 1.2, 1):.0f}s would "
        "(set training.time_budget or --time-budget)."
    )


def refuse_spent_budget(budget_s: float, elapsed_s: float, step: str) -> None:
    """Raise as soon as a step of preparing the data has used up the whole budget.

    Raises
    ------
    TrainingError
        Naming the step and a budget that would hold a model.
    """
    if elapsed_s < budget_s:
        return
    needed = elapsed_s / PREPARING_SHARE
    raise TrainingError(
        f"A time budget of {budget_s:g}s cannot hold a useful model: {elapsed_s:.1f}s were "
        f"spent by the end of {step}, before any model was fitted; a budget of about "
        f"{needed:.0f}s would (set training.time_budget or --time-budget)."
    )


def development_config(config: PipelineConfig, seconds: float) -> PipelineConfig:
    """Return ``config`` with ``training.time_budget`` set to model development's share."""
    training = config.training.model_copy(update={"time_budget": max(seconds, 0.01)})
    return config.model_copy(update={"training": training})


def evaluation_config(config: PipelineConfig, plan: EvaluationPlan) -> PipelineConfig:
    """Return ``config`` with the evaluation the plan affords."""
    evaluation = config.evaluation.model_copy(
        update={"bootstrap_samples": plan.bootstrap_samples, "report": plan.suite}
    )
    fairness = config.fairness.model_copy(update={"bootstrap_samples": plan.fairness_samples})
    return config.model_copy(update={"evaluation": evaluation, "fairness": fairness})
