"""Fit the candidates, cross-validate them on the same folds, and pick the best.

Each candidate is fitted on the training part (LightGBM early-stops on the validation part),
then cross-validated with the settings it chose, on folds shared by all candidates. The winner
has the best mean CV score of the configured metric. Candidates still waiting when the time
budget is spent are skipped and reported as such.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.errors import TrainingError
from shipyard.evaluation.metrics import GREATER_IS_BETTER, score
from shipyard.tasks.tabular import CANDIDATES, FeatureSet

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

__all__ = ["CandidateResult", "TrainingResult", "train_candidates"]

Reporter = Callable[[str], None]


@dataclass
class CandidateResult:
    """One leaderboard row."""

    name: str
    status: str  # "ok", "skipped" or "failed"
    cv_scores: list[float] = field(default_factory=list)
    cv_mean: float = float("nan")
    cv_low: float = float("nan")
    cv_high: float = float("nan")
    fit_seconds: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON and the registry (NaN becomes None)."""

        def clean(value: Any) -> Any:
            return None if isinstance(value, float) and math.isnan(value) else value

        return {key: clean(value) for key, value in self.__dict__.items()}


@dataclass
class TrainingResult:
    """The winner and the leaderboard."""

    best: str
    pipeline: Pipeline
    leaderboard: list[CandidateResult]
    metric: str


def _fold_mean_interval(scores: Sequence[float], confidence: float = 0.95) -> tuple[float, ...]:
    from scipy import stats

    values = np.asarray(scores, dtype=float)
    mean = float(values.mean())
    if len(values) < 2 or values.std(ddof=1) == 0:
        return mean, mean, mean
    half = (
        stats.t.ppf(0.5 + confidence / 2, len(values) - 1)
        * values.std(ddof=1)
        / math.sqrt(len(values))
    )
    return mean, mean - float(half), mean + float(half)


def _outputs(pipeline: Pipeline, frame: pd.DataFrame, task: str) -> Any:
    if task == "regression":
        return pipeline.predict(frame)
    return pipeline.predict_proba(frame)


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
) -> TrainingResult:
    """Train, cross-validate and rank the candidate models.

    Raises
    ------
    TrainingError
        When no candidate could be trained.
    """
    from sklearn.base import clone
    from sklearn.model_selection import KFold, StratifiedKFold

    report = report or (lambda message: None)
    started = time.perf_counter()
    splitter = (
        KFold(cv_folds, shuffle=True, random_state=seed)
        if task == "regression"
        else StratifiedKFold(cv_folds, shuffle=True, random_state=seed)
    )
    folds = list(splitter.split(train_x, train_y))
    train_y = np.asarray(train_y)
    leaderboard: list[CandidateResult] = []
    fitted: dict[str, Pipeline] = {}
    for name in models:
        if fitted and time.perf_counter() - started > time_budget:
            leaderboard.append(
                CandidateResult(name, "skipped", message="time budget spent before it started")
            )
            report(f"{name}: skipped, the time budget of {time_budget:g}s is spent")
            continue
        candidate = CANDIDATES[name](features, task, seed)
        report(f"{name}: fitting")
        tick = time.perf_counter()
        try:
            fitted[name] = candidate.fit(train_x, train_y, validation_x, validation_y)
            scores = []
            for index, (fit_rows, score_rows) in enumerate(folds, start=1):
                report(f"{name}: cross-validation fold {index}/{cv_folds}")
                fold_model = clone(candidate.cv_pipeline())
                fold_model.fit(train_x.iloc[fit_rows], train_y[fit_rows], **candidate.fit_params())
                outputs = _outputs(fold_model, train_x.iloc[score_rows], task)
                scores.append(score(metric, train_y[score_rows], outputs))
        except (ValueError, RuntimeError, MemoryError) as error:
            fitted.pop(name, None)
            leaderboard.append(CandidateResult(name, "failed", message=str(error)))
            report(f"{name}: failed: {error}")
            continue
        mean, low, high = _fold_mean_interval(scores)
        leaderboard.append(
            CandidateResult(
                name, "ok", scores, mean, low, high, time.perf_counter() - tick, candidate.params()
            )
        )
        report(f"{name}: CV {metric} {mean:.4f} [{low:.4f}, {high:.4f}]")
    ranked = [row for row in leaderboard if row.status == "ok"]
    if not ranked:
        problems = "; ".join(f"{row.name}: {row.message}" for row in leaderboard)
        raise TrainingError(f"No candidate model could be trained ({problems}).")
    sign = 1.0 if GREATER_IS_BETTER[metric] else -1.0
    ranked.sort(key=lambda row: -sign * row.cv_mean)
    leaderboard = ranked + [row for row in leaderboard if row.status != "ok"]
    return TrainingResult(ranked[0].name, fitted[ranked[0].name], leaderboard, metric)
