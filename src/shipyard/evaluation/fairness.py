"""Group fairness of binary decisions, with bootstrap intervals, a gate, and mitigation.

For each sensitive column, and for the intersection of all of them, Fairlearn's ``MetricFrame``
gives selection rate, true positive rate and false positive rate per group. From groups with at
least ``min_group_size`` test rows, three disparities are computed:

- demographic parity difference: largest minus smallest selection rate;
- demographic parity ratio: smallest over largest selection rate;
- equalized odds difference: the larger of the TPR gap and the FPR gap.

Each gets a percentile-bootstrap interval (rows resampled, group rates recomputed). Thresholds
from the config form a gate on the point estimates: a difference above its threshold, or a
ratio below it, is a breach, and a version with a breach cannot become champion without an
override (see :meth:`shipyard.registry.store.Registry.promote`).

Mitigation (``threshold_optimizer`` or ``exponentiated_gradient``) is fitted on the validation
split and measured on the test split; the report says how much disparity it removed and how much
accuracy it cost. The served model is not changed by it. The mitigation that ships is
``fairness.apply: threshold`` (:mod:`shipyard.evaluation.threshold_mitigation`); its section
is ``applied``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from shipyard import stats
from shipyard.errors import DataError, require

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Disparity",
    "FairnessReport",
    "GroupingResult",
    "Mitigation",
    "assess_fairness",
    "breach_message",
    "mitigate",
]

IntArray = npt.NDArray[np.int64]
RATIO_METRICS = frozenset({"demographic_parity_ratio"})
INTERSECTION = " & "


@dataclass(frozen=True)
class Disparity:
    """One disparity measure over one grouping, with its interval and the groups behind it."""

    metric: str
    value: float
    low: float
    high: float
    confidence: float
    highest_group: str
    highest_rate: float
    lowest_group: str
    lowest_rate: float
    rate: str


@dataclass
class GroupingResult:
    """Per-group rates and the disparities for one sensitive column or intersection."""

    grouping: str
    groups: list[dict[str, Any]]
    disparities: dict[str, Disparity]
    excluded: list[str] = field(default_factory=list)


@dataclass
class Breach:
    """A disparity that crosses its configured threshold."""

    grouping: str
    metric: str
    threshold: float
    disparity: Disparity

    def message(self) -> str:
        """Name the metric, the grouping, the groups and the numbers."""
        d = self.disparity
        side = "below the minimum" if self.metric in RATIO_METRICS else "above the maximum"
        return (
            f"{self.metric} by {self.grouping} is {d.value:.4f} "
            f"({d.confidence:.0%} CI {d.low:.4f} to {d.high:.4f}), {side} {self.threshold:g}: "
            f"{d.rate} {d.highest_rate:.4f} for '{d.highest_group}' vs "
            f"{d.lowest_rate:.4f} for '{d.lowest_group}'"
        )


@dataclass
class Mitigation:
    """What a mitigation changed on the test split."""

    method: str
    grouping: str
    constraint: str
    disparity_metric: str
    disparity_before: float
    disparity_after: float
    accuracy_before: float
    accuracy_after: float

    @property
    def fairness_gained(self) -> float:
        """How much the disparity went down (positive is better)."""
        return self.disparity_before - self.disparity_after

    @property
    def accuracy_paid(self) -> float:
        """How much accuracy was lost (positive is a cost)."""
        return self.accuracy_before - self.accuracy_after

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, with the gain and the cost."""
        return {
            **asdict(self),
            "fairness_gained": self.fairness_gained,
            "accuracy_paid": self.accuracy_paid,
        }


@dataclass
class FairnessReport:
    """Fairness of a model's decisions on the test split, and the gate's verdict."""

    positive_class: str
    groupings: list[GroupingResult]
    thresholds: dict[str, float]
    breaches: list[Breach]
    mitigation: Mitigation | None = None
    applied: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        """Whether no threshold is breached."""
        return not self.breaches

    def verdict(self) -> str:
        """One line: passed, breached (with the first breach), or not gated."""
        if not self.thresholds:
            return "not gated (no fairness thresholds configured)"
        if self.passed:
            return "passed: every disparity is within its threshold"
        more = f" (and {len(self.breaches) - 1} more)" if len(self.breaches) > 1 else ""
        return f"BREACHED: {self.breaches[0].message()}{more}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, the ``fairness`` section of the manifest."""
        return {
            "positive_class": self.positive_class,
            "groupings": [
                {
                    "grouping": item.grouping,
                    "groups": item.groups,
                    "excluded_small_groups": item.excluded,
                    "disparities": {
                        name: asdict(value) for name, value in item.disparities.items()
                    },
                }
                for item in self.groupings
            ],
            "gate": {
                "thresholds": self.thresholds,
                "passed": self.passed,
                "verdict": self.verdict(),
                "breaches": [
                    {
                        "grouping": breach.grouping,
                        "metric": breach.metric,
                        "threshold": breach.threshold,
                        "value": breach.disparity.value,
                        "message": breach.message(),
                    }
                    for breach in self.breaches
                ],
            },
            "mitigation": self.mitigation.as_dict() if self.mitigation else None,
            "applied": self.applied,
        }


def breach_message(fairness: Mapping[str, Any]) -> str:
    """Join the breach messages of a manifest's ``fairness`` section."""
    breaches = fairness.get("gate", {}).get("breaches", [])
    return "; ".join(str(breach["message"]) for breach in breaches)


def _groupings(sensitive: pd.DataFrame) -> dict[str, npt.NDArray[Any]]:
    columns = list(sensitive.columns)
    labels = {column: sensitive[column].astype(str).fillna("(missing)") for column in columns}
    groupings = {column: labels[column].to_numpy(dtype=object) for column in columns}
    if len(columns) > 1:
        joined = labels[columns[0]]
        for column in columns[1:]:
            joined = joined + INTERSECTION + labels[column]
        groupings[INTERSECTION.join(columns)] = joined.to_numpy(dtype=object)
    return groupings


def _rates(
    codes: IntArray, n_groups: int, y: IntArray, decision: IntArray
) -> tuple[npt.NDArray[np.float64], ...]:
    """Return selection rate, TPR and FPR per group (NaN where a group has no rows of a kind)."""
    count = np.bincount(codes, minlength=n_groups).astype(np.float64)
    selected = np.bincount(codes, weights=decision, minlength=n_groups)
    positives = np.bincount(codes, weights=y, minlength=n_groups)
    true_positive = np.bincount(codes, weights=y * decision, minlength=n_groups)
    false_positive = np.bincount(codes, weights=(1 - y) * decision, minlength=n_groups)
    negatives = count - positives
    with np.errstate(divide="ignore", invalid="ignore"):
        return (
            selected / count,
            true_positive / positives,
            false_positive / negatives,
        )


def _disparities(
    selection: npt.NDArray[np.float64],
    tpr: npt.NDArray[np.float64],
    fpr: npt.NDArray[np.float64],
) -> dict[str, float]:
    low, high = float(np.nanmin(selection)), float(np.nanmax(selection))
    tpr_gap = float(np.nanmax(tpr) - np.nanmin(tpr)) if np.isfinite(tpr).any() else 0.0
    fpr_gap = float(np.nanmax(fpr) - np.nanmin(fpr)) if np.isfinite(fpr).any() else 0.0
    return {
        "demographic_parity_difference": high - low,
        "demographic_parity_ratio": low / high if high > 0 else 1.0,
        "equalized_odds_difference": max(tpr_gap, fpr_gap),
    }


def _assess_grouping(
    name: str,
    labels: npt.NDArray[Any],
    y: IntArray,
    decision: IntArray,
    *,
    min_group_size: int,
    n_samples: int,
    confidence: float,
    rng: np.random.Generator,
) -> GroupingResult:
    from fairlearn.metrics import (
        MetricFrame,
        count,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    frame = MetricFrame(
        metrics={
            "rows": count,
            "selection_rate": selection_rate,
            "true_positive_rate": true_positive_rate,
            "false_positive_rate": false_positive_rate,
        },
        y_true=y,
        y_pred=decision,
        sensitive_features=labels,
    )
    table = frame.by_group
    groups: list[dict[str, Any]] = [
        {
            "group": str(group),
            "rows": int(row["rows"]),
            "selection_rate": float(row["selection_rate"]),
            "true_positive_rate": float(row["true_positive_rate"]),
            "false_positive_rate": float(row["false_positive_rate"]),
        }
        for group, row in table.iterrows()
    ]
    kept = [str(item["group"]) for item in groups if int(item["rows"]) >= min_group_size]
    excluded = [str(item["group"]) for item in groups if int(item["rows"]) < min_group_size]
    if len(kept) < 2:
        return GroupingResult(name, groups, {}, excluded)
    index = {group: position for position, group in enumerate(kept)}
    codes_all = np.array([index.get(str(label), -1) for label in labels], dtype=np.int64)
    mask = codes_all >= 0
    codes, y_kept, decision_kept = codes_all[mask], y[mask], decision[mask]
    selection, tpr, fpr = _rates(codes, len(kept), y_kept, decision_kept)
    point = _disparities(selection, tpr, fpr)

    def resampled(rows: npt.NDArray[np.int64]) -> dict[str, float]:
        rates = _rates(codes[rows], len(kept), y_kept[rows], decision_kept[rows])
        if np.isnan(rates[0]).any():  # a group vanished from this resample: it does not count
            return dict.fromkeys(point, float("nan"))
        return _disparities(*rates)

    estimates = stats.bootstrap_statistics(
        resampled, len(codes), n_samples=n_samples, confidence=confidence, seed=rng
    )
    disparities = {}
    for metric, value in point.items():
        low, high = estimates[metric].low, estimates[metric].high
        if not np.isfinite(low):  # every resample lost a group: the interval is the point
            low = high = value
        extremes: npt.NDArray[np.float64] = selection
        rate_name = "selection rate"
        if metric == "equalized_odds_difference":
            tpr_gap = np.nanmax(tpr) - np.nanmin(tpr)
            extremes, rate_name = (tpr, "TPR") if tpr_gap >= value - 1e-12 else (fpr, "FPR")
        top, bottom = int(np.nanargmax(extremes)), int(np.nanargmin(extremes))
        disparities[metric] = Disparity(
            metric=metric,
            value=value,
            low=float(low),
            high=float(high),
            confidence=confidence,
            highest_group=kept[top],
            highest_rate=float(extremes[top]),
            lowest_group=kept[bottom],
            lowest_rate=float(extremes[bottom]),
            rate=rate_name,
        )
    return GroupingResult(name, groups, disparities, excluded)


def assess_fairness(
    sensitive: pd.DataFrame,
    y: IntArray,
    decision: IntArray,
    *,
    positive_class: str,
    thresholds: Mapping[str, float] | None = None,
    min_group_size: int = 30,
    n_samples: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> FairnessReport:
    """Measure group fairness of binary decisions and apply the gate.

    Parameters
    ----------
    sensitive
        One column per sensitive attribute, aligned with ``y``.
    y, decision
        True labels and the model's decisions, 1 for the positive class.
    positive_class
        The label that 1 stands for, for the report.
    thresholds
        ``{metric: threshold}``; differences above or ratios below breach the gate.
    """
    require("fairlearn", "report")
    y = np.asarray(y, dtype=np.int64)
    decision = np.asarray(decision, dtype=np.int64)
    rng = np.random.default_rng(seed)
    thresholds = dict(thresholds or {})
    results = [
        _assess_grouping(
            name,
            labels,
            y,
            decision,
            min_group_size=min_group_size,
            n_samples=n_samples,
            confidence=confidence,
            rng=rng,
        )
        for name, labels in _groupings(sensitive).items()
    ]
    breaches = []
    for result in results:
        for metric, threshold in thresholds.items():
            disparity = result.disparities.get(metric)
            if disparity is None:
                continue
            crossed = (
                disparity.value < threshold
                if metric in RATIO_METRICS
                else disparity.value > threshold
            )
            if crossed:
                breaches.append(Breach(result.grouping, metric, threshold, disparity))
    return FairnessReport(positive_class, results, thresholds, breaches)


def _identity_estimator() -> Any:
    """Build a prefit classifier whose single feature is already the positive-class probability."""
    from sklearn.base import BaseEstimator, ClassifierMixin

    class ScoreAsProbability(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
        def fit(self, features: Any, y: Any) -> ScoreAsProbability:
            self.classes_ = np.array([0, 1])
            return self

        def predict_proba(self, features: Any) -> Any:
            positive = np.clip(np.asarray(features, dtype=np.float64)[:, 0], 0.0, 1.0)
            return np.column_stack([1.0 - positive, positive])

        def predict(self, features: Any) -> Any:
            return (self.predict_proba(features)[:, 1] >= 0.5).astype(np.int64)

    return ScoreAsProbability().fit(None, None)


def mitigate(
    method: str,
    grouping: str,
    *,
    validation: tuple[npt.NDArray[Any], IntArray, npt.NDArray[Any]],
    test: tuple[npt.NDArray[Any], IntArray, npt.NDArray[Any]],
    test_decision: IntArray,
    constraint: str = "demographic_parity",
    seed: int = 0,
) -> Mitigation:
    """Fit a Fairlearn mitigation on validation rows and measure it on test rows.

    Parameters
    ----------
    method
        ``threshold_optimizer`` (group-specific thresholds on the model's probability) or
        ``exponentiated_gradient`` (a reweighted logistic regression on the encoded features).
    grouping
        The name of the sensitive grouping, for the report.
    validation, test
        ``(features, y, sensitive labels)``. For ``threshold_optimizer`` the features are the
        model's positive-class probabilities, shape (rows, 1); for ``exponentiated_gradient``
        they are the encoded feature matrix.
    test_decision
        The unmitigated model's decisions on the test rows.
    constraint
        ``demographic_parity`` or ``equalized_odds``.

    Raises
    ------
    DataError
        When the method is unknown.
    """
    require("fairlearn", "report")
    x_validation, y_validation, s_validation = validation
    x_test, y_test, s_test = test
    if method == "threshold_optimizer":
        from fairlearn.postprocessing import ThresholdOptimizer

        optimizer = ThresholdOptimizer(
            estimator=_identity_estimator(),
            constraints=constraint,
            objective="accuracy_score",
            predict_method="predict_proba",
            prefit=True,
        )
        optimizer.fit(x_validation, y_validation, sensitive_features=s_validation)
        after = np.asarray(
            optimizer.predict(x_test, sensitive_features=s_test, random_state=seed),
            dtype=np.int64,
        )
    elif method == "exponentiated_gradient":
        from fairlearn.reductions import (
            DemographicParity,
            EqualizedOdds,
            ExponentiatedGradient,
        )
        from sklearn.linear_model import LogisticRegression

        moment = DemographicParity() if constraint == "demographic_parity" else EqualizedOdds()
        reduction = ExponentiatedGradient(
            LogisticRegression(max_iter=500), constraints=moment, max_iter=30
        )
        with warnings.catch_warnings():
            # fairlearn's reductions grow and recast pandas objects in ways pandas 3 deprecates
            # (setting via .at on new keys, bools into float Series); the results are correct.
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"fairlearn\.")
            reduction.fit(
                np.nan_to_num(x_validation), y_validation, sensitive_features=s_validation
            )
            after = np.asarray(
                reduction.predict(np.nan_to_num(x_test), random_state=seed), dtype=np.int64
            )
    else:
        raise DataError(
            f"Unknown mitigation '{method}'; use threshold_optimizer or exponentiated_gradient."
        )
    measure = f"{constraint}_difference"

    def disparity(decision: IntArray) -> float:
        groups = sorted({str(label) for label in s_test})
        codes = np.array([groups.index(str(label)) for label in s_test], dtype=np.int64)
        return _disparities(*_rates(codes, len(groups), y_test, decision))[measure]

    return Mitigation(
        method=method,
        grouping=grouping,
        constraint=constraint,
        disparity_metric=measure,
        disparity_before=disparity(test_decision),
        disparity_after=disparity(after),
        accuracy_before=float(np.mean(test_decision == y_test)),
        accuracy_after=float(np.mean(after == y_test)),
    )


def sensitive_labels(frame: pd.DataFrame, columns: Sequence[str]) -> npt.NDArray[Any]:
    """One label per row for the given sensitive columns (joined for intersections)."""
    groupings = _groupings(frame[list(columns)])
    return groupings[INTERSECTION.join(columns) if len(columns) > 1 else columns[0]]
