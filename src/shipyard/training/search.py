"""Hyper-parameter search: a portfolio of known-good settings first, then Optuna, under a budget.

Every setting is scored by cross-validation on folds shared by all trials, so any two rows of
the leaderboard can be compared with a paired test. The folds follow the split: grouped when
the split keeps groups apart, forward-chaining when it splits in time, stratified otherwise
(see :func:`make_folds`). Families take turns (round robin: the cheap linear baseline first,
then the usual winners on tabular data: LightGBM, CatBoost, XGBoost, extra trees, random
forest, MLP): first each family's portfolio, then one Optuna trial per family per round, each
family with its own seeded TPE sampler and median pruner. Scored portfolio settings are added
to their family's study, so the sampler and the pruner build on them. Pruning looks at the
running mean after each fold. The search stops when ``n_trials`` settings were scored or when
its share of the time budget is spent, whichever comes first. A fold that is still running at
that moment is abandoned (boosters stop adding trees at once), except in the very first
setting, which is scored with what it has so that there is a model.

Boosters early-stop inside each fold on a tenth of that fold's training rows, so the rows a
fold scores never choose its tree count. The families that cannot stop inside a fit (linear,
forests, MLP) have their first setting sized to the time left from a timed probe
(:mod:`shipyard.training.sizing`): fewer trees or a share of the rows, said in the
leaderboard's note; their later settings start only when the family's measured fold time says
they will finish. Each scored setting is reported as a ``setting`` progress event
(:mod:`shipyard.progress`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from shipyard.errors import ConfigError
from shipyard.evaluation.metrics import GREATER_IS_BETTER, score
from shipyard.progress import event
from shipyard.training.candidates import Candidate, FeatureSet, quiet_fit
from shipyard.training.execution import Executor
from shipyard.training.sizing import (
    Sizing,
    probe_fold_seconds,
    row_sample,
    single_blas_thread,
    size_setting,
)
from shipyard.training.studies import close_storage, create_study, open_storage

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Folds", "SearchSettings", "TrialResult", "make_folds", "run_search"]

Reporter = Callable[[str], None]
INNER_VALIDATION_SHARE = 0.1
SMALL_DATA_ROWS = 2000
"""Below this many training rows, k-fold CV is repeated three times to steady the estimate."""
BASELINE = "linear"
"""The cheap family that takes the first turn and is never skipped for time."""
MIN_FOLD_SECONDS = 0.5
"""A booster's first setting starts only when each fold would get at least this long."""


@dataclass(frozen=True)
class SearchSettings:
    """What the search may do (the ``training`` section of the config, resolved)."""

    models: Sequence[str]
    time_budget: float
    families: Mapping[str, type[Candidate]] = field(default_factory=dict)
    """The task's model families by name; ``models`` picks among them."""
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
    fold_groups: Any = None
    """One group label per training row (``split.group_column``): grouped tuning folds."""
    fold_times: Any = None
    """One time value per training row (``split.time_column``): forward-chaining folds."""


@dataclass
class Folds:
    """The shared cross-validation folds: ``(fit rows, score rows, repeat)`` each."""

    splits: list[tuple[Any, Any, int]]
    repeats: int
    test_train_ratio: float
    kind: str = "stratified"
    """``stratified``, ``k-fold`` (regression), ``grouped`` or ``time``."""

    @property
    def scored_rows(self) -> Any:
        """The rows some fold scores (time folds never score the oldest block), sorted."""
        return np.unique(np.concatenate([score_rows for _, score_rows, _ in self.splits]))


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
    row_fraction: float = 1.0
    """Share of each fold's rows the setting was fitted on (below 1 when sized to the time)."""
    note: str = ""

    @property
    def mean(self) -> float:
        """Mean fold score."""
        return float(np.mean(self.scores))


def make_folds(
    y: Any,
    task: str,
    folds: int,
    repeats: int | None,
    seed: int,
    *,
    groups: Any = None,
    times: Any = None,
) -> Folds:
    """Build the (repeated) folds the split asks for.

    With ``times`` the folds chain forward in time, with ``groups`` no group is in two parts
    of a fold, otherwise they are stratified by class (plain k-fold for regression). Small
    data gets three repeats unless told otherwise (time folds are the same every repeat, so
    they run once).

    Raises
    ------
    ConfigError
        When both ``groups`` and ``times`` are given, either does not have one value per
        row, there are too few groups or time values for the folds, or repeats are asked of
        time folds.
    """
    if groups is not None and times is not None:
        raise ConfigError("Set split.group_column or split.time_column, not both.")
    if times is not None:
        if repeats is not None and repeats > 1:
            raise ConfigError(
                f"training.cv_repeats is {repeats}, but time-ordered folds are the same in "
                "every repeat; set cv_repeats to 1 or leave it unset."
            )
        return _time_folds(_aligned(times, y, "time_column"), folds)
    count = repeats or (3 if len(y) < SMALL_DATA_ROWS else 1)
    if groups is not None:
        return _grouped_folds(y, task, folds, count, seed, _aligned(groups, y, "group_column"))
    from sklearn.model_selection import RepeatedKFold, RepeatedStratifiedKFold

    splitter = (
        RepeatedKFold(n_splits=folds, n_repeats=count, random_state=seed)
        if task == "regression"
        else RepeatedStratifiedKFold(n_splits=folds, n_repeats=count, random_state=seed)
    )
    splits = [
        (fit_rows, score_rows, index // folds)
        for index, (fit_rows, score_rows) in enumerate(splitter.split(np.zeros(len(y)), y))
    ]
    kind = "k-fold" if task == "regression" else "stratified"
    return Folds(splits, count, 1.0 / (folds - 1), kind)


def _aligned(values: Any, y: Any, column: str) -> Any:
    """Return ``values`` as an array with one value per training row."""
    array = np.asarray(values)
    if len(array) != len(y):
        raise ConfigError(
            f"The split.{column} values for the tuning folds number {len(array)}, but there "
            f"are {len(y)} training rows; pass one value per training row, in row order."
        )
    return array


def _mean_ratio(splits: Sequence[tuple[Any, Any, int]]) -> float:
    """Mean scored-to-fitted row ratio of unequal folds (the t-test's correction term)."""
    return float(np.mean([len(score_rows) / len(fit_rows) for fit_rows, score_rows, _ in splits]))


def _grouped_folds(y: Any, task: str, folds: int, repeats: int, seed: int, groups: Any) -> Folds:
    """Group k-fold (stratified by class for classification), reshuffled each repeat."""
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    labels = np.unique(groups.astype(str), return_inverse=True)[1]
    distinct = int(labels.max()) + 1 if len(labels) else 0
    if distinct < folds:
        raise ConfigError(
            f"split.group_column has {distinct} groups in the training rows, fewer than "
            f"training.cv_folds ({folds}); lower cv_folds or use more groups."
        )
    splits: list[tuple[Any, Any, int]] = []
    for repeat in range(repeats):
        splitter = (
            GroupKFold(n_splits=folds, shuffle=True, random_state=seed + repeat)
            if task == "regression"
            else StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed + repeat)
        )
        splits.extend(
            (fit_rows, score_rows, repeat)
            for fit_rows, score_rows in splitter.split(np.zeros(len(y)), y, labels)
        )
    return Folds(splits, repeats, _mean_ratio(splits), "grouped")


def _time_folds(times: Any, folds: int) -> Folds:
    """Forward-chaining folds: fold k fits on time blocks before k and scores block k.

    The rows are cut into ``folds + 1`` blocks of about equal size in time order; rows that
    share a time value share a block, so a tie never falls on both sides of a fold.
    """
    order = _time_order(times)
    values, inverse, counts = np.unique(order, return_inverse=True, return_counts=True)
    if len(values) < folds + 1:
        raise ConfigError(
            f"split.time_column has {len(values)} distinct times in the training rows; "
            f"{folds + 1} are needed for {folds} forward-chaining folds. Lower "
            "training.cv_folds or use a finer time column."
        )
    # Each time value goes to the block its rows' midpoint falls in.
    midpoints = np.cumsum(counts) - counts / 2.0
    value_block = np.minimum((midpoints / len(order) * (folds + 1)).astype(int), folds)
    # A value holding many rows can leave a block empty; number the blocks that remain.
    value_block = np.unique(value_block, return_inverse=True)[1]
    row_block = value_block[inverse]
    blocks = int(row_block.max()) + 1
    if blocks < 2:
        raise ConfigError(
            "split.time_column puts nearly every training row at one time, so no fold can "
            "train on earlier rows; use a finer time column."
        )
    rows = np.arange(len(order))
    splits = [(rows[row_block < block], rows[row_block == block], 0) for block in range(1, blocks)]
    return Folds(splits, 1, _mean_ratio(splits), "time")


def _time_order(times: Any) -> Any:
    """Return the times as sortable values; text is read as dates, as the time split reads it."""
    import pandas as pd

    series = pd.Series(times)
    if not pd.api.types.is_numeric_dtype(series):
        series = pd.to_datetime(series, errors="coerce", format="mixed")
    if series.isna().any():
        raise ConfigError(
            f"split.time_column has {int(series.isna().sum())} missing or unreadable values "
            "in the training rows; fix or drop those rows."
        )
    return series.to_numpy()


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
    family: type[Candidate]
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
    keep_when_out_of_time: bool = False
    """Score a fold the clock cut short instead of abandoning it (the first setting)."""


def _outputs(pipeline: Any, frame: pd.DataFrame, task: str) -> Any:
    if task == "regression":
        return np.asarray(pipeline.predict(frame), dtype=np.float64)
    return np.asarray(pipeline.predict_proba(frame), dtype=np.float64)


def _run_fold(job: _FoldJob, x: pd.DataFrame, y: Any) -> tuple[Any, int | None, float, bool]:
    """Fit one fold; return its outputs, tree count, fit seconds and whether the clock cut it."""
    with single_blas_thread():
        return _fit_and_score(job, x, y)


def _fit_and_score(job: _FoldJob, x: pd.DataFrame, y: Any) -> tuple[Any, int | None, float, bool]:
    started = time.perf_counter()
    candidate = job.family(job.features, job.task, job.seed, n_jobs=job.threads, **job.params)
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
    late = candidate.out_of_time()
    if late and not job.keep_when_out_of_time:
        # Boosters stopped adding trees at the deadline: the fold is not a fair score.
        raise _Pruned
    # Only a booster is cut short by the clock; any other family just finished late.
    cut = late and candidate.uses_validation
    with quiet_fit():
        outputs = _outputs(pipeline, x.iloc[job.score_rows], job.task)
    return outputs, candidate.best_trees_, time.perf_counter() - started, bool(cut)


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
    keep_when_out_of_time: bool = False,
    row_fraction: float = 1.0,
    share_time: bool = False,
) -> TrialResult:
    """Score one setting on every fold.

    With ``share_time`` each fold (or batch of folds) may run until its share of the time
    left before ``stop_at``, and folds the clock cuts short are scored with the trees they
    grew: a booster's first setting then fits the time left instead of being abandoned. A
    fold's share leaves room for what it costs besides its trees (binning, scoring), measured
    on the folds before it; when that alone would overrun, the setting is abandoned.
    """
    n_outputs = 1 if task == "regression" else int(np.max(y)) + 1
    shape = (len(y),) if task == "regression" else (len(y), n_outputs)
    oof = [np.full(shape, np.nan) for _ in range(folds.repeats)]
    scores: list[float] = []
    trees: list[int] = []
    seconds, cut_folds, overhead = 0.0, 0, 0.0
    chunk = executor.batch_size(len(folds.splits))
    for start in range(0, len(folds.splits), chunk):
        group = folds.splits[start : start + chunk]
        fold_stop = stop_at
        if share_time and stop_at is not None:
            now, remaining = time.time(), len(folds.splits) - start
            batches = math.ceil(remaining / len(group))
            spare = stop_at - now - overhead * batches
            if start and spare < 0 and not keep_when_out_of_time:
                raise _Pruned  # what the folds cost besides trees would overrun by itself
            fold_stop = now + max(spare, 0.0) / batches
        jobs = [
            _FoldJob(
                family_class(settings, family),
                params,
                features,
                task,
                settings.seed,
                settings.model_threads,
                settings.class_weight,
                row_sample(fit_rows, row_fraction, settings.seed + start + index),
                score_rows,
                fold_stop,
                keep_when_out_of_time or share_time,
            )
            for index, (fit_rows, score_rows, _) in enumerate(group)
        ]
        for (_, score_rows, repeat), (outputs, best_trees, fit_seconds, cut) in zip(
            group, executor.map(_run_fold, jobs, x, y), strict=True
        ):
            if fold_stop is not None and share_time:
                overhead = max(overhead, time.time() - fold_stop)
            cut_folds += cut
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
    note = (
        f"the time budget stopped {cut_folds} of {len(scores)} folds before early stopping"
        if cut_folds
        else ""
    )
    return TrialResult(
        family,
        params,
        scores,
        oof,
        seconds / len(scores),
        trees,
        row_fraction=row_fraction,
        note=note,
    )


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
    The linear baseline takes the first turn and always runs; every other fold stops at the
    search's deadline.
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
    for name in sorted(settings.models, key=lambda name: _turn_order(settings, name)):
        family = family_class(settings, name)
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
    fractions: dict[str, float] = {}
    sign = 1.0 if direction == "maximize" else -1.0

    def out_of_trials() -> bool:
        return settings.n_trials is not None and len(results) >= settings.n_trials

    def progress(label: str, result: TrialResult) -> str:
        best = max(results, key=lambda trial: sign * trial.mean)
        left = max(0.0, deadline - time.perf_counter())
        sized = f" ({result.note})" if result.note else ""
        return event(
            "setting",
            f"{label}: CV {metric} {result.mean:.4f}{sized}; best so far {best.mean:.4f} "
            f"({best.family}); {len(results)} settings scored, {left:.0f}s of search time left",
            family=result.family,
            label=label,
            metric=metric,
            score=result.mean,
            best=best.mean,
            best_family=best.family,
            scored=len(results),
            search_left_s=left,
            note=result.note,
        )

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

            # A booster's first setting shares the time left among its folds.
            share_time = first and family.uses_validation
            left = deadline - time.perf_counter()
            if share_time and results and left < MIN_FOLD_SECONDS * len(folds.splits):
                problems[name] = (
                    f"time budget spent before it started ({max(left, 0):.1f}s of search time "
                    f"left for {len(folds.splits)} folds)"
                )
                report(f"{name}: skipped, {problems[name]}")
                continue

            def should_stop(
                step: int, running: float, trial: Any = trial, share_time: bool = share_time
            ) -> bool:
                # Past the deadline only the very first setting (and a booster's first,
                # whose folds share the time left) is finished, so there is a model.
                if results and not share_time and time.perf_counter() > deadline:
                    return True
                if trial is None:
                    return False
                trial.report(running, step)
                return bool(trial.should_prune())

            label = f"{name} {source} #{done[name] + 1}"
            sizing = Sizing(params, fractions.get(name, 1.0))
            if not family.uses_validation:
                # A fit of this family cannot be stopped: size it to the time left first.
                left = deadline - time.perf_counter()
                if first:
                    sizing = _size_first(
                        family, params, x, y, folds, features, task, settings, left
                    )
                    if sizing.estimate_s > left and results and name != BASELINE:
                        problems[name] = (
                            f"would need about {sizing.estimate_s:.0f}s even when shrunk; "
                            f"{max(left, 0):.0f}s of search time were left"
                        )
                        report(f"{name}: skipped, {problems[name]}")
                        continue
                    if sizing.shrunk:
                        report(event("sized", f"{name}: {sizing.note}", family=name))
                    fractions[name] = sizing.row_fraction
                else:
                    expected = _expected_seconds(family, params, results, len(folds.splits))
                    if expected > left:
                        if trial is not None:
                            studies[name].tell(trial, state=TrialState.PRUNED)
                        report(
                            f"{label}: not started, its folds would take about "
                            f"{expected:.0f}s and {max(left, 0):.0f}s of search time are left"
                        )
                        continue
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
                    stop_at=wall_deadline,
                    # The very first setting is always scored, so that there is a model; its
                    # boosters (when the linear baseline is not searched) still stop at the
                    # deadline and are scored with the trees they grew by then.
                    keep_when_out_of_time=not results,
                    row_fraction=sizing.row_fraction,
                    share_time=share_time,
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
            result.note = "; ".join(note for note in (sizing.note, result.note) if note)
            if trial is None:
                # Tell the family's sampler and pruner what the portfolio found.
                studies[name].add_trial(_portfolio_trial(family, task, params, result))
            else:
                studies[name].tell(trial, result.mean)
            results.append(result)
            done[name] += 1
            progressed = True
            report(progress(label, result))
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
    report(
        event(
            "search_done",
            f"search finished: {len(results)} settings scored in "
            f"{time.perf_counter() - started:.1f}s",
            search_s=time.perf_counter() - started,
            scored=len(results),
        )
    )
    return results, problems


def _size_first(
    family: type[Candidate],
    params: dict[str, Any],
    x: pd.DataFrame,
    y: Any,
    folds: Folds,
    features: FeatureSet,
    task: str,
    settings: SearchSettings,
    left_s: float,
) -> Sizing:
    """Probe a family's first setting on a sample of the first fold; size it to ``left_s``."""
    fit_rows, score_rows, _ = folds.splits[0]
    started = time.perf_counter()
    try:
        probe_s, probe_rows = probe_fold_seconds(
            family,
            params,
            x=x,
            y=y,
            fit_rows=fit_rows,
            score_rows=score_rows,
            features=features,
            task=task,
            seed=settings.seed,
            threads=settings.model_threads,
        )
    except ValueError:  # the sample cannot be fitted (one class only): run at full size
        return Sizing(params)
    return size_setting(
        family,
        params,
        probe_s=probe_s,
        probe_rows=probe_rows,
        fold_rows=len(fit_rows),
        folds=len(folds.splits),
        left_s=left_s - (time.perf_counter() - started),
    )


def _expected_seconds(
    family: type[Candidate], params: Mapping[str, Any], results: Sequence[TrialResult], folds: int
) -> float:
    """Seconds a later setting's folds should take, from the family's measured fold times."""
    own = [trial for trial in results if trial.family == family.name]
    if not own:
        return 0.0
    per_fold = float(np.mean([trial.fit_seconds for trial in own]))
    key = family.size_param
    if key and isinstance(params.get(key), int):
        # Scale by parts (trees) relative to what was measured.
        measured = float(np.mean([trial.params.get(key) or params[key] for trial in own]))
        per_fold *= params[key] / max(measured, 1.0)
    return per_fold * folds


def _turn_order(settings: SearchSettings, name: str) -> tuple[bool, int]:
    """Return a sort key: the linear baseline first, then the families by priority."""
    return name != BASELINE, family_class(settings, name).priority


def family_class(settings: SearchSettings, name: str) -> type[Candidate]:
    """Return the family called ``name`` among the task's families.

    Raises
    ------
    ConfigError
        When the task has no such family (the known ones are listed).
    """
    try:
        return settings.families[name]
    except KeyError:
        known = ", ".join(sorted(settings.families)) or "none"
        raise ConfigError(
            f"No model family is called '{name}' for this task; its families are {known}."
        ) from None


def _portfolio_trial(
    family: type[Candidate], task: str, params: Mapping[str, Any], result: TrialResult
) -> Any:
    """Return a completed Optuna trial for a scored portfolio setting.

    It holds the settings that lie in the family's search space (under the names
    :meth:`~shipyard.tasks.tabular.Candidate.suggest` gives them), the mean CV score, and the
    running mean after each fold, which the median pruner compares later trials with.
    """
    import optuna

    space = _search_space(family, task)
    chosen: dict[str, Any] = {}
    distributions: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{family.name}.{key}"
        if name in space and _in_space(name, value, space[name]):
            chosen[name], distributions[name] = value, space[name]
    running = np.cumsum(result.scores) / np.arange(1, len(result.scores) + 1)
    return optuna.trial.create_trial(
        params=chosen,
        distributions=distributions,
        value=result.mean,
        intermediate_values={step: float(mean) for step, mean in enumerate(running, start=1)},
        user_attrs={"source": "portfolio"},
    )


def _search_space(family: type[Candidate], task: str) -> dict[str, Any]:
    """Return the family's Optuna distributions, read from one throwaway trial."""
    import optuna

    probe = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = probe.ask()
    family.suggest(trial, task)
    return dict(trial.distributions)


def _in_space(name: str, value: Any, distribution: Any) -> bool:
    """Whether ``value`` is one the distribution can hold (a default may lie outside it)."""
    import optuna

    try:
        optuna.trial.create_trial(
            params={name: value}, distributions={name: distribution}, value=0.0
        )
    except (ValueError, TypeError):
        return False
    return True


def mean_or_nan(values: Sequence[float]) -> float:
    """Mean of a list, NaN when empty."""
    return float(np.mean(values)) if values else math.nan
