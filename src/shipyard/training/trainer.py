"""Model development: search, ensemble, serving cost, statistics, selection, calibration.

:func:`train_candidates` runs the search (:mod:`shipyard.training.search`), refits each
family's best setting (by default on the training and validation rows together, with the tree
count cross-validation chose), builds a greedy ensemble on the out-of-fold
predictions, measures what each leaderboard row costs to serve, and picks the model to ship:

1. rows slower than ``max_latency_ms`` for one record are excluded;
2. the best row by mean CV score is tested (corrected resampled t-test, same folds) against
   every other row; with ``prefer_simpler``, the simplest row it does not significantly beat
   is chosen (ties go to the faster one to serve);
3. a binary winner may be calibrated (Platt or isotonic) and given a decision threshold tuned
   for ``threshold_metric``, both fitted on out-of-fold predictions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.errors import ExportError, TrainingError
from shipyard.evaluation.metrics import GREATER_IS_BETTER, score
from shipyard.evaluation.stats import corrected_interval, corrected_paired_ttest
from shipyard.training.candidates import FeatureSet
from shipyard.training.ensemble import (
    CompositeModel,
    fit_calibration,
    greedy_ensemble,
    tune_threshold,
)
from shipyard.training.search import (
    BASELINE,
    Folds,
    SearchSettings,
    TrialResult,
    family_class,
    make_folds,
    run_search,
    sample_weights,
)
from shipyard.training.serving_cost import measure_serving_cost
from shipyard.training.sizing import row_sample, single_blas_thread

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.runtime.predictor import Predictor
    from shipyard.training.export import ExportedModel

__all__ = [
    "CandidateResult",
    "SelectionSettings",
    "TrainingResult",
    "train_candidates",
]

Reporter = Callable[[str], None]
ENSEMBLE = "ensemble"
ENSEMBLE_COMPLEXITY = 10


@dataclass
class CandidateResult:
    """One leaderboard row: a family's best setting, or the ensemble."""

    name: str
    status: str  # "ok", "too slow", "not refitted", "skipped" or "failed"
    cv_scores: list[float] = field(default_factory=list)
    cv_mean: float = float("nan")
    cv_low: float = float("nan")
    cv_high: float = float("nan")
    fit_seconds: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    trials: int = 0
    complexity: int = 0
    p_value_vs_best: float | None = None
    single_ms: float | None = None
    single_per_second: float | None = None
    batch_per_second: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON and the registry (NaN becomes None)."""

        def clean(value: Any) -> Any:
            return None if isinstance(value, float) and math.isnan(value) else value

        return {key: clean(value) for key, value in self.__dict__.items()}


@dataclass(frozen=True)
class SelectionSettings:
    """How the shipped model is chosen and finished."""

    ensemble: bool = True
    prefer_simpler: bool = True
    alpha: float = 0.05
    max_latency_ms: float | None = None
    calibration: str = "none"
    threshold_metric: str | None = None
    confidence: float = 0.95
    final_fit: str = "all_rows"
    """``all_rows``: refit on training plus validation rows with the tree count CV chose;
    ``early_stopping``: refit on the training rows, early-stopping on the validation rows."""


@dataclass
class TrainingResult:
    """The chosen model, its serving form, the leaderboard and the statistical verdict."""

    best: str
    pipeline: CompositeModel
    leaderboard: list[CandidateResult]
    metric: str
    exported: ExportedModel | None = None
    verdict: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None
    threshold: dict[str, Any] | None = None


def _mean_oof(trial: TrialResult) -> Any:
    return np.mean(np.stack(trial.oof), axis=0)


def _fold_scores(folds: Folds, y: Any, outputs: Sequence[Any], metric: str) -> list[float]:
    return [
        score(metric, y[score_rows], outputs[repeat][score_rows])
        for _, score_rows, repeat in folds.splits
    ]


def train_candidates(
    train_x: pd.DataFrame,
    train_y: Any,
    validation_x: pd.DataFrame,
    validation_y: Any,
    *,
    features: FeatureSet,
    task: str,
    metric: str,
    models: Sequence[str],
    cv_folds: int,
    time_budget: float,
    seed: int,
    report: Reporter | None = None,
    search: SearchSettings | None = None,
    selection: SelectionSettings | None = None,
    build_predictor: Callable[[ExportedModel], Predictor] | None = None,
    cost_records: Sequence[Mapping[str, Any]] = (),
) -> TrainingResult:
    """Search, ensemble, measure, test and select; return the model to ship.

    ``build_predictor`` and ``cost_records`` turn on the serving-cost measurement (and so the
    ``max_latency_ms`` filter); without them the rows carry no cost.

    Raises
    ------
    TrainingError
        When no candidate could be trained, or every one is too slow to serve.
    """
    report = report or (lambda message: None)
    selection = selection or SelectionSettings()
    search = search or SearchSettings(
        models=models, time_budget=time_budget, cv_folds=cv_folds, seed=seed
    )
    started = time.perf_counter()
    train_y = np.asarray(train_y)
    validation_y = np.asarray(validation_y)
    folds = make_folds(
        train_y,
        task,
        search.cv_folds,
        search.cv_repeats,
        search.seed,
        groups=search.fold_groups,
        times=search.fold_times,
    )
    if folds.kind in ("grouped", "time"):
        report(f"tuning folds: {len(folds.splits)} {folds.kind} folds, following the split")
    trials, problems = run_search(
        train_x,
        train_y,
        folds=folds,
        features=features,
        task=task,
        metric=metric,
        settings=search,
        report=report,
    )
    sign = 1.0 if GREATER_IS_BETTER[metric] else -1.0
    best_trials: dict[str, TrialResult] = {}
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial.family] = counts.get(trial.family, 0) + 1
        current = best_trials.get(trial.family)
        if current is None or sign * trial.mean > sign * current.mean:
            best_trials[trial.family] = trial
    if not best_trials:
        details = "; ".join(f"{name}: {problem}" for name, problem in problems.items())
        raise TrainingError(f"No candidate model could be trained ({details}).")

    rows: list[CandidateResult] = []
    fitted: dict[str, CompositeModel] = {}
    all_rows = selection.final_fit == "all_rows" and len(validation_y) > 0
    if all_rows:
        import pandas as pd

        full_x = pd.concat([train_x, validation_x], ignore_index=True)
        full_y = np.concatenate([train_y, validation_y])
    weights = sample_weights(full_y if all_rows else train_y, search.class_weight)
    deadline = started + search.time_budget
    wall_deadline = time.time() + (deadline - time.perf_counter())
    ranked_families = sorted(best_trials, key=lambda name: -sign * best_trials[name].mean)

    def not_refitted(name: str, message: str) -> None:
        trial = best_trials[name]
        mean, low, high = corrected_interval(
            trial.scores, folds.test_train_ratio, selection.confidence
        )
        rows.append(
            CandidateResult(
                name,
                "not refitted",
                trial.scores,
                mean,
                low,
                high,
                params=trial.params,
                message=message,
                trials=counts[name],
                complexity=family_class(search, name).complexity,
            )
        )
        report(f"{name}: {message}")

    # The cheap linear baseline is refitted first and always; then the rest, best first.
    for name in sorted(ranked_families, key=lambda name: name != BASELINE):
        trial = best_trials[name]
        family = family_class(search, name)
        # A refit sees 1/k more rows than a fold fit (and boosters stop on their own).
        expected = trial.fit_seconds * search.cv_folds / (search.cv_folds - 1)
        if rows and name != BASELINE and time.perf_counter() + expected > deadline:
            not_refitted(
                name, f"not refitted: about {expected:.0f}s of refit would pass the time budget"
            )
            continue
        candidate = family(
            features, task, search.seed, n_jobs=search.model_threads, **trial.params
        )
        if fitted:
            # Another model can be shipped, so this booster stops at the end of the budget.
            candidate.stop_at = wall_deadline
        tick = time.perf_counter()
        with single_blas_thread():
            pipeline = _refit(
                candidate,
                trial,
                (full_x, full_y) if all_rows else (train_x, train_y),
                (validation_x, validation_y) if not all_rows else None,
                weights,
                search.seed,
                report,
            )
        if family.uses_validation and candidate.out_of_time():
            not_refitted(name, "not refitted: the time budget ran out during its refit")
            continue
        fitted[name] = CompositeModel([(pipeline, 1.0)], task)
        mean, low, high = corrected_interval(
            trial.scores, folds.test_train_ratio, selection.confidence
        )
        rows.append(
            CandidateResult(
                name,
                "ok",
                trial.scores,
                mean,
                low,
                high,
                time.perf_counter() - tick,
                candidate.params(),
                message=trial.note,
                trials=counts[name],
                complexity=family.complexity,
            )
        )
    oof = {name: trial.oof for name, trial in best_trials.items()}

    refitted = [best_trials[name] for name in ranked_families if name in fitted]
    # Time-ordered folds never score the oldest rows; ensemble and calibration use the rest.
    scored = folds.scored_rows
    if selection.ensemble and len(refitted) > 1:
        ranked = refitted
        weights_found = greedy_ensemble(
            [_mean_oof(trial)[scored] for trial in ranked], train_y[scored], metric
        )
        members = [
            (trial, weight) for trial, weight in zip(ranked, weights_found, strict=True) if weight
        ]
        if len(members) > 1:
            outputs = [
                sum(weight * trial.oof[repeat] for trial, weight in members)
                for repeat in range(folds.repeats)
            ]
            scores = _fold_scores(folds, train_y, outputs, metric)
            mean, low, high = corrected_interval(
                scores, folds.test_train_ratio, selection.confidence
            )
            oof[ENSEMBLE] = outputs
            fitted[ENSEMBLE] = CompositeModel(
                [(fitted[trial.family].members[0][0], weight) for trial, weight in members], task
            )
            weights_text = {trial.family: round(weight, 3) for trial, weight in members}
            rows.append(
                CandidateResult(
                    ENSEMBLE,
                    "ok",
                    scores,
                    mean,
                    low,
                    high,
                    sum(row.fit_seconds for row in rows if row.name in weights_text),
                    {"weights": weights_text},
                    trials=len(trials),
                    complexity=ENSEMBLE_COMPLEXITY,
                )
            )
            report(f"ensemble of {weights_text}: CV {metric} {mean:.4f}")

    if build_predictor is not None and cost_records:
        for row in rows:
            if row.name not in fitted:
                continue
            try:
                predictor = build_predictor(fitted[row.name].export())
            except ExportError as error:
                row.status, row.message = "failed", f"cannot be exported: {error}"
                continue
            cost = measure_serving_cost(predictor, cost_records)
            row.single_ms = cost.single_ms
            row.single_per_second = cost.single_per_second
            row.batch_per_second = cost.batch_per_second
            if selection.max_latency_ms is not None and cost.single_ms > selection.max_latency_ms:
                row.status = "too slow"
                row.message = (
                    f"{cost.single_ms:.2f} ms per record exceeds max_latency_ms "
                    f"{selection.max_latency_ms:g}"
                )
            report(
                f"{row.name}: serves {cost.single_per_second:,.0f} single records/s, "
                f"{cost.batch_per_second:,.0f} rows/s in batches"
            )

    eligible = sorted(
        (row for row in rows if row.status == "ok"), key=lambda row: -sign * row.cv_mean
    )
    if not eligible:
        details = "; ".join(f"{row.name}: {row.message}" for row in rows)
        raise TrainingError(
            f"Every candidate was excluded ({details}); raise training.max_latency_ms "
            "or choose faster families."
        )
    verdict, chosen = _select(eligible, folds, metric, selection)
    others = sorted(
        (row for row in rows if row.status != "ok"), key=lambda row: -sign * row.cv_mean
    )
    skipped = [
        CandidateResult(name, "skipped", message=problem) for name, problem in problems.items()
    ]
    leaderboard = eligible + others + skipped
    report(verdict["summary"])

    model = fitted[chosen.name]
    chosen_oof = np.mean(np.stack(oof[chosen.name]), axis=0)[scored]
    scored_y = train_y[scored]
    calibration = None
    threshold = None
    if task == "binary" and selection.calibration != "none":
        calibration = fit_calibration(selection.calibration, chosen_oof[:, 1], scored_y)
        model = CompositeModel(model.members, task, calibration)
        report(f"calibrated {chosen.name} with {selection.calibration} on out-of-fold predictions")
    if task == "binary" and selection.threshold_metric:
        positive = chosen_oof[:, 1]
        if calibration is not None:
            from shipyard.runtime.scorers import Calibration

            positive = Calibration(calibration).apply(positive)
        value, achieved = tune_threshold(selection.threshold_metric, positive, scored_y)
        threshold = {"metric": selection.threshold_metric, "value": value, "cv_value": achieved}
        report(
            f"decision threshold {value:.3f} maximises out-of-fold {selection.threshold_metric}"
        )
    report(f"model development took {time.perf_counter() - started:.1f}s")
    return TrainingResult(
        chosen.name,
        model,
        leaderboard,
        metric,
        verdict=verdict,
        calibration=calibration,
        threshold=threshold,
    )


def _refit(
    candidate: Any,
    trial: TrialResult,
    rows: tuple[pd.DataFrame, Any],
    validation: tuple[pd.DataFrame, Any] | None,
    weights: Any,
    seed: int,
    report: Reporter,
) -> Any:
    """Refit a family's best setting: on every row (``validation`` None) or the training rows.

    A setting the search fitted on a share of the rows (sized to the time budget) is refitted
    on the same share.
    """
    x, y = rows
    chosen = row_sample(np.arange(len(y)), trial.row_fraction, seed)
    if trial.row_fraction < 1.0:
        x, y = x.iloc[chosen], y[chosen]
        weights = None if weights is None else weights[chosen]
    name = candidate.name
    if validation is None:
        trees = refit_trees(trial.trees)
        described = f" with {trees} trees" if trees and candidate.uses_validation else ""
        report(f"{name}: refitting the best setting on {len(y)} rows{described}")
        return candidate.fit_all(x, y, trees, sample_weight=weights)
    report(f"{name}: refitting the best setting on the training rows")
    return candidate.fit(x, y, validation[0], validation[1], sample_weight=weights)


def refit_trees(fold_trees: Sequence[int]) -> int | None:
    """Trees for a refit on every row: the mean of the folds' early-stopped counts.

    The refit sees more rows than a fold, which would support a few more trees, but scaling
    the count up overfitted small data (a log-loss gate on 1,500 rows turned against the
    scaled refit) and gained only 0.0003 test AUC on Adult.
    """
    if not fold_trees:
        return None
    return max(1, round(float(np.mean(fold_trees))))


def _select(
    rows: list[CandidateResult], folds: Folds, metric: str, selection: SelectionSettings
) -> tuple[dict[str, Any], CandidateResult]:
    """Test the top row against the others and choose the row to ship."""
    greater = GREATER_IS_BETTER[metric]
    top = rows[0]

    def test(other: CandidateResult) -> Any:
        return corrected_paired_ttest(
            top.cv_scores,
            other.cv_scores,
            test_train_ratio=folds.test_train_ratio,
            greater_is_better=greater,
            alpha=selection.alpha,
        )

    tests = {row.name: test(row) for row in rows[1:]}
    for row in rows[1:]:
        row.p_value_vs_best = tests[row.name].p_value
    runner_up = rows[1] if len(rows) > 1 else None
    baseline = next((row for row in rows if row.name == "linear"), None)
    chosen = top
    if selection.prefer_simpler:
        tied = [top] + [row for row in rows[1:] if not tests[row.name].significant]
        chosen = min(
            tied,
            key=lambda row: (row.complexity, -(row.single_per_second or 0.0)),
        )
    verdict: dict[str, Any] = {
        "best_by_cv": top.name,
        "chosen": chosen.name,
        "test": "corrected resampled t-test (Nadeau-Bengio), one-sided",
        "alpha": selection.alpha,
        "vs_runner_up": None,
        "vs_baseline": None,
    }
    parts = []
    if runner_up is not None:
        result = tests[runner_up.name]
        verdict["vs_runner_up"] = {"other": runner_up.name, **result.as_dict()}
        parts.append(
            f"{top.name} is {'' if result.significant else 'not '}significantly better than "
            f"runner-up {runner_up.name} (p={result.p_value:.3g})"
        )
    if baseline is not None and baseline is not top:
        result = tests[baseline.name]
        verdict["vs_baseline"] = {"other": baseline.name, **result.as_dict()}
        parts.append(
            f"{'' if result.significant else 'not '}significantly better than the "
            f"linear baseline (p={result.p_value:.3g})"
        )
    if chosen is not top:
        parts.append(f"shipping the simpler {chosen.name}, which it does not significantly beat")
    verdict["summary"] = "; ".join(parts) if parts else f"{top.name} is the only candidate"
    return verdict, chosen
