"""Hyper-parameter search: a portfolio of known-good settings first, then Optuna, under a budget.

Every setting is scored by (repeated) k-fold cross-validation on folds shared by all trials,
so any two rows of the leaderboard can be compared with a paired test. Families take turns
(round robin, the usual winners on tabular data first: LightGBM, CatBoost, XGBoost, linear,
extra trees, random forest, MLP): first each family's portfolio, then one Optuna trial per
family per round, each family with its own seeded TPE sampler and median pruner. Pruning looks
at the running mean after each fold. The search stops when ``n_trials`` settings were scored or
when its share of the time budget is spent, whichever comes first. A fold that is still running
at that moment is abandoned (boosters stop adding trees at once), except in the very first
setting, which always finishes so that there is a model.

Boosters early-stop inside each fold on a tenth of that fold's training rows, so the rows a
fold scores never choose its tree count.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from shipyard.evaluation.metrics import GREATER_IS_BETTER, score
from shipyard.tasks.families import candidate_class
from shipyard.tasks.tabular import Candidate, FeatureSet, quiet_fit
from shipyard.training.execution import Executor
from shipyard.training.studies import close_storage, create_study, open_storage

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Folds", "SearchSettings", "TrialResult", "make_folds", "run_search"]

Reporter = Callable[[str], None]
INNER_VALIDATION_SHARE = 0.1
SMALL_DATA_ROWS = 2000
"""Below this many training rows, k-fold CV is repeated three times to steady the estimate."""


@dataclass(frozen=True)
class SearchSettings:
    """What the search may do (the ``training`` section of the config, resolved)."""

    models: Sequence[str]
    time_budget: float
    search_share: float = 0.7
    n_trials: int | None = None
    cv_folds: int = 5
    cv_repeats: int | None = None
    seed: int = 42
    model_threads: int = 2
    backend: str = "loky"
    n_jobs: int = 1
    class_weight: str | None = None
    optuna_storage: str | None = None
    study_prefix: str = "shipyard"
    fixed_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Settings per family shared by every trial (a text family's n-gram ranges)."""
    portfolios: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    """Portfolios per family that replace the family's own (the config's text C values)."""


@dataclass
class Folds:
    """The shared cross-validation folds: ``(fit rows, score rows, repeat)`` each."""

    splits: list[tuple[Any, Any, int]]
    repeats: int
    test_train_ratio: float


@dataclass
class TrialResult:
    """One scored setting of one family."""

    family: str
    params: dict[str, Any]
    scores: list[float]
    oof: list[Any]  # one out-of-fold output array per repeat
    fit_seconds: float
    trees: list[int] = field(default_factory=list)
    source: str = "portfolio"

    @property
    def mean(self) -> float:
        """Mean fold score."""
        return float(np.mean(self.scores))


def make_folds(y: Any, task: str, folds: int, repeats: int | None, seed: int) -> Folds:
    """Build the (repeated) folds; small data gets three repeats unless told otherwise."""
    from sklearn.model_selection import RepeatedKFold, RepeatedStratifiedKFold

    count = repeats or (3 if len(y) < SMALL_DATA_ROWS else 1)
    splitter = (
        RepeatedKFold(n_splits=folds, n_repeats=count, random_state=seed)
        if task == "regression"
        else RepeatedStratifiedKFold(n_splits=folds, n_repeats=count, random_state=seed)
    )
    splits = [
        (fit_rows, score_rows, index // folds)
        for index, (fit_rows, score_rows) in enumerate(splitter.split(np.zeros(len(y)), y))
    ]
    return Folds(splits, count, 1.0 / (folds - 1))


def sample_weights(y: Any, class_weight: str | None) -> Any:
    """Per-row weights that balance the classes (``balanced``), or None."""
    if class_weight != "balanced":
        return None
    classes, counts = np.unique(y, return_counts=True)
    per_class = len(y) / (len(classes) * counts)
    lookup = dict(zip(classes.tolist(), per_class.tolist(), strict=True))
    return np.array([lookup[value] for value in np.asarray(y).tolist()], dtype=np.float64)


@dataclass(frozen=True)
class _FoldJob:
    family: str
    params: dict[str, Any]
    features: FeatureSet
    task: str
    seed: int
    threads: int
    class_weight: str | None
    fit_rows: Any
    score_rows: Any
    stop_at: float | None = None
    """Wall-clock time (``time.time()``) after which the fold is abandoned; ``None``: never."""


def _outputs(pipeline: Any, frame: pd.DataFrame, task: str) -> Any:
    if task == "regression":
        return np.asarray(pipeline.predict(frame), dtype=np.float64)
    return np.asarray(pipeline.predict_proba(frame), dtype=np.float64)


def _run_fold(job: _FoldJob, x: pd.DataFrame, y: Any) -> tuple[Any, int | None, float]:
    """Fit one fold; return its out-of-fold outputs, chosen tree count and fit seconds."""
    started = time.perf_counter()
    candidate = candidate_class(job.family)(
        job.features, job.task, job.seed, n_jobs=job.threads, **job.params
    )
    candidate.stop_at = job.stop_at
    fit_x, fit_y = x.iloc[job.fit_rows], y[job.fit_rows]
    weights = sample_weights(fit_y, job.class_weight)
    if candidate.uses_validation:
        # Early-stop on a seeded tenth of the fold's own training rows.
        rng = np.random.default_rng(job.seed)
        inner = rng.random(len(job.fit_rows)) < INNER_VALIDATION_SHARE
        pipeline = candidate.fit(
            fit_x[~inner],
            fit_y[~inner],
            fit_x[inner],
            fit_y[inner],
            sample_weight=None if weights is None else weights[~inner],
        )
    else:
        pipeline = candidate.fit(fit_x, fit_y, fit_x.iloc[:0], fit_y[:0], sample_weight=weights)
    if candidate.out_of_time():
        # Boosters stopped adding trees at the deadline: the fold is not a fair score.
        raise _Pruned
    with quiet_fit():
        outputs = _outputs(pipeline, x.iloc[job.score_rows], job.task)
    return outputs, candidate.best_trees_, time.perf_counter() - started


class _Pruned(Exception):
    """Raised inside a trial when the pruner or the clock stops it."""


def _evaluate(
    family: str,
    params: dict[str, Any],
    *,
    x: pd.DataFrame,
    y: Any,
    folds: Folds,
    features: FeatureSet,
    task: str,
    metric: str,
    settings: SearchSettings,
    executor: Executor,
    should_stop: Callable[[int, float], bool],
    stop_at: float | None = None,
) -> TrialResult:
    n_outputs = 1 if task == "regression" else int(np.max(y)) + 1
    shape = (len(y),) if task == "regression" else (len(y), n_outputs)
    oof = [np.full(shape, np.nan) for _ in range(folds.repeats)]
    scores: list[float] = []
    trees: list[int] = []
    seconds = 0.0
    chunk = executor.batch_size(len(folds.splits))
    for start in range(0, len(folds.splits), chunk):
        group = folds.splits[start : start + chunk]
        jobs = [
            _FoldJob(
                family,
                params,
                features,
                task,
                settings.seed,
                settings.model_threads,
                settings.class_weight,
                fit_rows,
                score_rows,
                stop_at,
            )
            for fit_rows, score_rows, _ in group
        ]
        for (_, score_rows, repeat), (outputs, best_trees, fit_seconds) in zip(
            group, executor.map(_run_fold, jobs, x, y), strict=True
        ):
            oof[repeat][score_rows] = outputs
            scores.append(score(metric, y[score_rows], outputs))
            seconds += fit_seconds
            if best_trees:
                trees.append(best_trees)
            # The pruner sees the running mean after every fold, in fold order, however many
            # folds ran at once: the same trials are pruned in process and on a cluster.
            if len(scores) < len(folds.splits) and should_stop(
                len(scores), float(np.mean(scores))
            ):
                raise _Pruned
    return TrialResult(family, params, scores, oof, seconds / len(scores), trees)


def run_search(
    x: pd.DataFrame,
    y: Any,
    *,
    folds: Folds,
    features: FeatureSet,
    task: str,
    metric: str,
    settings: SearchSettings,
    report: Reporter | None = None,
) -> tuple[list[TrialResult], dict[str, str]]:
    """Score settings of every family; return all completed trials and each family's problem.

    The second value maps a family to why it has no trial (not installed, failed, out of time).
    """
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    report = report or (lambda message: None)
    started = time.perf_counter()
    deadline = started + settings.time_budget * settings.search_share
    # The same deadline on the wall clock, which fold jobs in other processes can read.
    wall_deadline = time.time() + settings.time_budget * settings.search_share
    executor = Executor(settings.backend, settings.n_jobs)
    direction: Literal["maximize", "minimize"] = (
        "maximize" if GREATER_IS_BETTER[metric] else "minimize"
    )
    problems: dict[str, str] = {}
    families: list[type[Candidate]] = []
    for name in sorted(settings.models, key=lambda name: candidate_class(name).priority):
        family = candidate_class(name)
        if family.available():
            families.append(family)
        else:
            problems[name] = f"not installed: pip install 'shipyard[{family.extra}]'"
            report(f"{name}: skipped, {problems[name]}")
    storage = open_storage(settings.optuna_storage)
    studies = {
        family.name: create_study(
            storage,
            settings.study_prefix,
            family.name,
            direction,
            sampler=optuna.samplers.TPESampler(seed=settings.seed + index),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
        )
        for index, family in enumerate(families)
    }
    if storage is not None:
        names = ", ".join(study.study_name for study in studies.values())
        report(f"Optuna studies in {type(storage).__name__}: {names}")
    portfolio = {
        family.name: [dict(params) for params in settings.portfolios.get(family.name, ())]
        or family.portfolio(task)
        for family in families
    }
    results: list[TrialResult] = []
    done: dict[str, int] = {family.name: 0 for family in families}

    def out_of_trials() -> bool:
        return settings.n_trials is not None and len(results) >= settings.n_trials

    round_index = 0
    while not out_of_trials():
        progressed = False
        for family in families:
            name = family.name
            if out_of_trials() or name in problems:
                continue
            first = done[name] == 0
            if not first and time.perf_counter() > deadline:
                continue
            if first and results and time.perf_counter() > deadline:
                problems[name] = "time budget spent before it started"
                report(f"{name}: skipped, the search budget is spent")
                continue
            trial = None
            if round_index < len(portfolio[name]):
                params, source = portfolio[name][round_index], "portfolio"
            else:
                trial = studies[name].ask()
                params = {**settings.fixed_params.get(name, {}), **family.suggest(trial, task)}
                source = "optuna"

            def should_stop(step: int, running: float, trial: Any = trial) -> bool:
                # Past the deadline only the very first setting is finished, so that
                # there is always one model.
                if results and time.perf_counter() > deadline:
                    return True
                if trial is None:
                    return False
                trial.report(running, step)
                return bool(trial.should_prune())

            label = f"{name} {source} #{done[name] + 1}"
            try:
                result = _evaluate(
                    name,
                    params,
                    x=x,
                    y=y,
                    folds=folds,
                    features=features,
                    task=task,
                    metric=metric,
                    settings=settings,
                    executor=executor,
                    should_stop=should_stop,
                    # The very first setting always finishes, so that there is a model.
                    stop_at=wall_deadline if results else None,
                )
            except _Pruned:
                if trial is not None:
                    studies[name].tell(trial, state=TrialState.PRUNED)
                report(f"{label}: stopped early")
                progressed = True
                continue
            except (ValueError, RuntimeError, MemoryError) as error:
                if trial is not None:
                    studies[name].tell(trial, state=TrialState.FAIL)
                if first:
                    problems[name] = f"failed: {error}"
                report(f"{label}: failed: {error}")
                continue
            result.source = source
            if trial is not None:
                studies[name].tell(trial, result.mean)
            results.append(result)
            done[name] += 1
            progressed = True
            report(f"{label}: CV {metric} {result.mean:.4f}")
        round_index += 1
        if not progressed or all(
            time.perf_counter() > deadline or name in problems for name in done
        ):
            break
    for name, count in done.items():
        if count == 0 and name not in problems:
            problems[name] = (
                "n_trials reached before it started"
                if out_of_trials()
                else "the search budget was spent before it finished a setting"
            )
    close_storage(storage)
    return results, problems


def mean_or_nan(values: Sequence[float]) -> float:
    """Mean of a list, NaN when empty."""
    return float(np.mean(values)) if values else math.nan
