"""Robustness: how stable the model's decisions are under small, realistic changes to inputs.

Three perturbations of the test rows, each scored through the served path:

- ``numeric_noise``: Gaussian noise of ``noise`` standard deviations on every numeric feature;
- ``missing_values``: a share ``missing_rate`` of every feature's values set to missing;
- ``category_swap``: a share ``swap_rate`` of every categorical value replaced by another known
  category.

Stability is the share of rows whose decision (class, or for regression a prediction within
10% of the predictions' standard deviation) does not change. The counterfactual test sets each
sensitive attribute to each of its other values, all else equal, and reports how often the
decision changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.runtime.predictor import Predictor

__all__ = ["counterfactual_flips", "perturbation_stability", "robustness"]

MAX_COUNTERFACTUAL_VALUES = 12


def _decisions(predictor: Predictor, frame: pd.DataFrame) -> npt.NDArray[Any]:
    outputs = predictor.score_frame(frame)
    if predictor.task == "regression":
        return np.asarray(outputs, dtype=np.float64)
    return np.asarray(np.argmax(outputs, axis=1))


def _unchanged(
    predictor: Predictor, before: npt.NDArray[Any], after: npt.NDArray[Any]
) -> npt.NDArray[np.bool_]:
    if predictor.task == "regression":
        tolerance = 0.1 * float(np.std(before)) if len(before) > 1 else 0.0
        return np.asarray(np.abs(after - before) <= tolerance)
    return np.asarray(after == before)


def perturbation_stability(
    predictor: Predictor,
    frame: pd.DataFrame,
    *,
    noise: float = 0.1,
    missing_rate: float = 0.1,
    swap_rate: float = 0.1,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Share of decisions unchanged under each perturbation."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = frame.reset_index(drop=True)
    before = _decisions(predictor, frame)
    contract = predictor.contract
    numeric = [c.name for c in contract.columns if c.type in ("number", "integer")]
    categorical = [c for c in contract.columns if c.categories]

    noisy = frame.copy()
    for name in numeric:
        values = pd.to_numeric(noisy[name], errors="coerce").to_numpy(dtype=np.float64)
        spread = float(np.nanstd(values)) if np.isfinite(values).any() else 0.0
        noisy[name] = values + rng.normal(0.0, noise * spread, len(values))

    missing = frame.copy()
    for column in contract.feature_names:
        mask = rng.random(len(missing)) < missing_rate
        if pd.api.types.is_numeric_dtype(missing[column]):
            missing[column] = missing[column].astype(np.float64).mask(mask)
        else:
            missing[column] = missing[column].astype(object).mask(mask, None)

    swapped = frame.copy()
    for spec in categorical:
        categories = np.asarray(list(spec.categories or ()), dtype=object)
        if len(categories) < 2:
            continue
        values = swapped[spec.name].astype(object).to_numpy(copy=True)
        mask = rng.random(len(values)) < swap_rate
        for row in np.flatnonzero(mask):
            others = categories[categories != values[row]]
            values[row] = others[rng.integers(0, len(others))]
        swapped[spec.name] = values

    results = {}
    settings = {
        "numeric_noise": (noisy, {"noise_std_fraction": noise, "columns": len(numeric)}),
        "missing_values": (missing, {"missing_rate": missing_rate}),
        "category_swap": (swapped, {"swap_rate": swap_rate, "columns": len(categorical)}),
    }
    for name, (perturbed, detail) in settings.items():
        unchanged = _unchanged(predictor, before, _decisions(predictor, perturbed))
        results[name] = {"stability": float(unchanged.mean()), **detail}
    return results


def counterfactual_flips(
    predictor: Predictor, frame: pd.DataFrame, sensitive: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """For each sensitive column, how often changing only its value changes the decision.

    A column the model does not use as a feature cannot change a decision directly; it is
    reported with ``used_as_feature: false`` (proxies through other columns remain possible).
    """
    frame = frame.reset_index(drop=True)
    before = _decisions(predictor, frame)
    results: dict[str, dict[str, Any]] = {}
    for column in sensitive:
        if column not in predictor.preprocessor.input_columns:
            results[column] = {"used_as_feature": False, "change_rate": 0.0, "by_value": {}}
            continue
        spec = next(c for c in predictor.contract.columns if c.name == column)
        observed = frame[column].dropna().astype(str).value_counts().index.tolist()
        values = list(spec.categories or observed)[:MAX_COUNTERFACTUAL_VALUES]
        if spec.type in ("number", "integer", "boolean"):
            values = observed[:MAX_COUNTERFACTUAL_VALUES]
        changed_any = np.zeros(len(frame), dtype=bool)
        by_value = {}
        for value in values:
            flipped = frame.copy()
            typed: Any = value
            if spec.type in ("number", "integer"):
                typed = float(value)
            flipped[column] = [typed] * len(frame)
            differs = ~_unchanged(predictor, before, _decisions(predictor, flipped))
            own = frame[column].astype(str).to_numpy() == str(value)
            differs &= ~own
            changed_any |= differs
            others = int((~own).sum())
            by_value[str(value)] = float(differs.sum() / others) if others else 0.0
        results[column] = {
            "used_as_feature": True,
            "change_rate": float(changed_any.mean()),
            "by_value": by_value,
        }
    return results


def robustness(
    predictor: Predictor, frame: pd.DataFrame, sensitive: Sequence[str], *, seed: int = 0
) -> dict[str, Any]:
    """Perturbation stability and counterfactual flips together, the manifest's section."""
    return {
        "perturbations": perturbation_stability(predictor, frame, seed=seed),
        "counterfactual": counterfactual_flips(predictor, frame, sensitive),
    }
