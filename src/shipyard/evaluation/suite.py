"""Everything evaluated after the test metrics, run once at training time.

:func:`run_suite` computes slices, fairness (with the gate and the optional mitigation),
explanations, permutation importance, robustness and plots, and returns the manifest sections
and the bundle files (``report.html``, ``plots/*.png``). The training pipeline calls it; it can
also be called on any predictor and labelled frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from shipyard.evaluation.explain import (
    UnsupportedModelError,
    contribution_summary,
    explain_frame,
    permutation_importance,
)
from shipyard.evaluation.fairness import FairnessReport, assess_fairness, mitigate
from shipyard.evaluation.robustness import robustness
from shipyard.evaluation.slices import SLICE_METRICS, slice_metrics

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.config import PipelineConfig
    from shipyard.runtime.predictor import Predictor

__all__ = ["SuiteResult", "assess_served_fairness", "run_suite"]

# Explanations, importance and robustness run on at most this many test rows: their summaries
# are stable well before that, and they score the model many times.
MAX_ROWS = 2000
# Forests (TreeSHAP over every leaf), networks (sampled permutations) and ensembles cost far
# more per row to explain than LightGBM or a linear model; their summary uses fewer rows.
MAX_COSTLY_EXPLAINED_ROWS = 100
CHEAP_EXPLAINERS = frozenset({"LightGBMScorer", "LinearScorer"})


@dataclass
class SuiteResult:
    """Manifest sections and bundle files produced by the evaluation suite."""

    evaluation: dict[str, Any]
    fairness: FairnessReport | None
    plots: dict[str, bytes] = field(default_factory=dict)

    def fairness_section(self) -> dict[str, Any] | None:
        """Return the manifest's ``fairness`` section (None when fairness was not assessed)."""
        return self.fairness.as_dict() if self.fairness else None


def run_suite(
    config: PipelineConfig,
    predictor: Predictor,
    *,
    test: pd.DataFrame,
    y_test: npt.NDArray[Any],
    outputs: npt.NDArray[Any],
    validation: pd.DataFrame,
    y_validation: npt.NDArray[Any],
    metric: str,
) -> SuiteResult:
    """Run the evaluation suite on the test split (and the validation split for mitigation)."""
    from shipyard.evaluation.plots import evaluation_plots

    task, seed = predictor.task, config.seed
    columns = predictor.contract.feature_names
    samples = min(config.evaluation.bootstrap_samples, 100)
    slice_metric = metric if metric in SLICE_METRICS[task] else SLICE_METRICS[task][0]
    slices = slice_metrics(
        test[columns + [c for c in config.sensitive if c not in columns]],
        y_test,
        outputs,
        task=task,
        contract=predictor.contract,
        sensitive=config.sensitive,
        metric=slice_metric,
        n_samples=samples,
        confidence=config.evaluation.confidence,
        seed=seed,
    )

    fairness = None
    if config.sensitive and task == "binary":
        fairness = assess_served_fairness(config, predictor, test, y_test, outputs)
        if config.fairness.mitigation != "none":
            fairness.mitigation = _mitigate(
                config, predictor, test, y_test, outputs, validation, y_validation
            )

    sample = test.sample(n=min(len(test), MAX_ROWS), random_state=seed)
    y_sample = y_test[test.index.get_indexer(sample.index)]
    explanations: dict[str, Any]
    try:
        scorer = getattr(predictor.scorer, "inner", predictor.scorer)
        explained = (
            sample
            if type(scorer).__name__ in CHEAP_EXPLAINERS
            else sample.head(MAX_COSTLY_EXPLAINED_ROWS)
        )
        explanation = explain_frame(predictor, explained[columns])
        explanations = {
            "method": explanation.method,
            "output": explanation.output_name,
            "summary": contribution_summary(explanation),
        }
    except UnsupportedModelError as error:
        explanation = None
        explanations = {"note": str(error)}
    importance = permutation_importance(
        predictor, sample[columns], y_sample, metric, repeats=2, seed=seed
    )
    robust = robustness(predictor, sample, config.sensitive, seed=seed)
    plots = evaluation_plots(
        task,
        y_test,
        outputs,
        predictor.classes,
        importance={key: value["mean"] for key, value in importance.items()},
        contributions=explanations.get("summary"),
        output_name=explanations.get("output", "raw output"),
    )
    evaluation = {
        "metric": metric,
        "slice_metric": slice_metric,
        "slices": [item.as_dict() for item in slices],
        "explanations": explanations,
        "permutation_importance": importance,
        "robustness": robust,
        "plots": [f"plots/{name}.png" for name in plots],
        "report": "report.html",
        "intended_use": config.evaluation.intended_use,
        "out_of_scope_use": config.evaluation.out_of_scope_use,
        "data": {"source": config.data.source, "test_source": config.data.test_source},
    }
    return SuiteResult(evaluation, fairness, plots)


def assess_served_fairness(
    config: PipelineConfig,
    predictor: Predictor,
    test: pd.DataFrame,
    y_test: npt.NDArray[Any],
    outputs: npt.NDArray[Any],
) -> FairnessReport:
    """Measure fairness and apply the gate to the decisions the predictor serves.

    The served decision is the predictor's: its tuned threshold, or its per-group thresholds
    for a fairness-mitigated model, so the gate judges what clients get.
    """
    decisions = predictor.class_indices(outputs, predictor.groups_of_frame(test))
    return assess_fairness(
        test[list(config.sensitive)].reset_index(drop=True),
        y_test,
        np.asarray(decisions, dtype=np.int64),
        positive_class=str(predictor.classes[-1]),
        thresholds={str(k): v for k, v in config.fairness.thresholds.items()},
        min_group_size=config.fairness.min_group_size,
        n_samples=config.fairness.bootstrap_samples,
        confidence=config.evaluation.confidence,
        seed=config.seed,
    )


def _mitigate(
    config: PipelineConfig,
    predictor: Predictor,
    test: pd.DataFrame,
    y_test: npt.NDArray[Any],
    outputs: npt.NDArray[Any],
    validation: pd.DataFrame,
    y_validation: npt.NDArray[Any],
) -> Any:
    from shipyard.evaluation.fairness import sensitive_labels

    # Mitigate on the grouping the gate cares about most: the first sensitive column.
    grouping = config.sensitive[0]
    constraint = (
        "equalized_odds"
        if set(config.fairness.thresholds) == {"equalized_odds_difference"}
        else "demographic_parity"
    )
    columns = predictor.contract.feature_names
    if config.fairness.mitigation == "threshold_optimizer":
        x_validation = predictor.score_frame(validation[columns])[:, 1:]
        x_test = outputs[:, 1:]
    else:
        x_validation = _encode(predictor, validation[columns])
        x_test = _encode(predictor, test[columns])
    return mitigate(
        config.fairness.mitigation,
        grouping,
        validation=(x_validation, y_validation, sensitive_labels(validation, [grouping])),
        test=(x_test, y_test, sensitive_labels(test, [grouping])),
        test_decision=np.asarray(
            predictor.class_indices(outputs, predictor.groups_of_frame(test)), dtype=np.int64
        ),
        constraint=constraint,
        seed=config.seed,
    )


def _encode(predictor: Predictor, frame: pd.DataFrame) -> npt.NDArray[np.float64]:
    from shipyard.runtime.predictor import _column_values

    values = {name: _column_values(frame[name]) for name in predictor.preprocessor.input_columns}
    return predictor.preprocessor.transform_columns(values)
