"""The fairness mitigation a tabular binary classifier ships: a decision threshold per group.

``fairness.apply: threshold`` turns the base model into a mitigated one that keeps its
probabilities and decides with the threshold of each record's sensitive group. The thresholds
are fitted on the validation rows (:func:`shipyard.evaluation.threshold_mitigation.
fit_group_thresholds`), stored as ``group_thresholds.json`` in the bundle, and applied by the
predictor wherever a label is derived (serving, ``shipyard predict``, ``shipyard evaluate``).
The mitigated model is evaluated again on the test rows: its label metrics, its fairness gate
on its own decisions, and the ``applied`` section with the before/after trade-off.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.errors import ConfigError
from shipyard.runtime.group_thresholds import FILE_NAME, GroupThresholds
from shipyard.tasks.base import EvaluatedModel, FittedModel, RunContext, SplitData
from shipyard.tasks.labels import encode_target

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.config import PipelineConfig
    from shipyard.evaluation.fairness import FairnessReport

__all__ = ["apply_group_thresholds", "check_mitigation"]

METHOD = "group_thresholds"
# A binary model without a tuned threshold predicts the more probable class: 0.5.
ARGMAX_THRESHOLD = 0.5


def check_mitigation(config: PipelineConfig, kind: str) -> None:
    """Refuse ``fairness.apply`` for a label it cannot mitigate, before anything is fitted.

    Raises
    ------
    ConfigError
        When the task is not binary classification.
    """
    if config.fairness.apply != "none" and kind != "binary":
        raise ConfigError(
            f"fairness.apply: {config.fairness.apply} needs a binary classifier (decision "
            f"thresholds per group); this is a {kind} task. Set fairness.apply: none."
        )


def _columns(frame: pd.DataFrame, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: frame[name].to_numpy(dtype=object, na_value=None) for name in names}


def _parity(report: FairnessReport, grouping: str) -> float | None:
    """Return one grouping's demographic parity difference (None when not measured)."""
    for result in report.groupings:
        if result.grouping == grouping:
            disparity = result.disparities.get("demographic_parity_difference")
            return None if disparity is None else disparity.value
    return None


def _validation_parity(decisions: Any, groups: list[str], fitted: dict[str, float]) -> float:
    """Return the demographic parity difference between the fitted groups' decisions."""
    labels = np.asarray(groups, dtype=object)
    rates = [float(np.mean(decisions[labels == group])) for group in fitted]
    return max(rates) - min(rates)


def apply_group_thresholds(
    fitted: FittedModel,
    evaluated: EvaluatedModel,
    data: SplitData,
    config: PipelineConfig,
    context: RunContext,
) -> tuple[FittedModel, EvaluatedModel]:
    """Fit per-group thresholds on the validation rows; return the mitigated model, evaluated.

    Raises
    ------
    ConfigError
        When the task is not binary.
    DataError
        When fewer than two sensitive groups have enough validation rows.
    """
    from shipyard.evaluation.metrics import DEFAULT_METRICS, bootstrap_metrics
    from shipyard.evaluation.suite import assess_served_fairness
    from shipyard.evaluation.threshold_mitigation import fit_group_thresholds

    check_mitigation(config, data.kind)
    base = fitted.predictor
    columns, target = tuple(config.sensitive), config.data.target
    default = base.threshold if base.threshold is not None else ARGMAX_THRESHOLD
    bound = config.fairness.parity_target()
    context.report(
        f"fairness mitigation: fitting a decision threshold per {' & '.join(columns)} group "
        f"on {len(data.validation)} validation rows (demographic parity difference <= {bound:g})"
    )
    probe = GroupThresholds(columns, {}, default)
    validation_groups = probe.keys_of_columns(_columns(data.validation, columns))
    validation_scores = base.score_frame(data.validation[base.contract.feature_names])[:, 1]
    thresholds = fit_group_thresholds(
        validation_scores,
        encode_target(data.validation[target], data.kind, data.classes),
        validation_groups,
        max_difference=bound,
        min_group_size=config.fairness.min_group_size,
    )
    rule = GroupThresholds(columns, thresholds, default)
    mitigated = copy.copy(base)  # the same model and preprocessing; only the decision differs
    mitigated.group_thresholds = rule

    outputs = evaluated.test_outputs
    y_test = encode_target(data.test[target], data.kind, data.classes)
    test_groups = mitigated.groups_of_frame(data.test)
    test_metrics = bootstrap_metrics(
        y_test,
        outputs,
        DEFAULT_METRICS[data.kind],
        n_samples=config.evaluation.bootstrap_samples,
        confidence=config.evaluation.confidence,
        seed=config.seed,
        threshold=rule.cuts(test_groups),
    )
    before = assess_served_fairness(config, base, data.test, y_test, outputs)
    after = assess_served_fairness(config, mitigated, data.test, y_test, outputs)
    grouping = " & ".join(columns)
    after.applied = {
        "method": METHOD,
        "columns": list(columns),
        "file": FILE_NAME,
        "thresholds": dict(sorted(thresholds.items())),
        "default_threshold": default,
        "validation": {
            "rows": len(data.validation),
            "target": bound,
            "demographic_parity_difference": _validation_parity(
                rule.decide(validation_scores, validation_groups), validation_groups, thresholds
            ),
        },
        "test": {
            "rows": len(data.test),
            "grouping": grouping,
            "demographic_parity_difference": {
                "before": _parity(before, grouping),
                "after": _parity(after, grouping),
            },
            "accuracy": {
                "before": float(np.mean(base.class_indices(outputs) == y_test)),
                "after": float(np.mean(rule.decide(outputs[:, 1], test_groups) == y_test)),
            },
        },
    }
    section = after.as_dict()
    section["mitigation"] = (evaluated.manifest.get("fairness") or {}).get("mitigation")
    document = rule.to_json(
        method=METHOD, split="validation", rows=len(data.validation), parity_target=bound
    )
    manifest = {**evaluated.manifest, "group_thresholds": FILE_NAME, "fairness": section}
    files = {
        **evaluated.files,
        FILE_NAME: json.dumps(document, indent=1, allow_nan=False).encode(),
    }
    return (
        dataclasses.replace(fitted, predictor=mitigated),
        EvaluatedModel(test_metrics, manifest, files, outputs, plots=evaluated.plots),
    )
