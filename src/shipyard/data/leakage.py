"""Leakage checks run before training: features that know the answer they should predict.

Checks
------
``single_feature``
    One feature alone predicts the target almost perfectly (a depth-4 tree on that feature,
    cross-validated: ROC AUC for binary targets, accuracy for multiclass, R² for regression).
``identifier``
    A feature is an identifier (every value differs); a model can memorise it.
``target_derived``
    The target is (almost exactly) a linear combination of two features, as bike sharing's
    ``cnt = casual + registered``.
``train_test_duplicates``
    Test rows whose features also appear in training rows: the test score is then optimistic.
``future_time``
    A date feature is later than the prediction time (``leakage.prediction_time_column``) in
    some rows: at prediction time that value cannot be known yet.

Each finding names the column and says why; its level (``warning`` or ``error``) comes from
the configuration, and :func:`raise_on_errors` stops training on errors.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from shipyard.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LeakageFinding", "check_leakage", "raise_on_errors"]

SAMPLE_ROWS = 10_000
DERIVED_R2 = 0.9999
Level = Literal["warning", "error"]
RawFinding = tuple[str, tuple[str, ...], str]


@dataclass(frozen=True)
class LeakageFinding:
    """One suspected leak."""

    check: str
    columns: tuple[str, ...]
    level: Level
    message: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = asdict(self)
        data["columns"] = list(self.columns)
        return data


def check_leakage(
    train: pd.DataFrame,
    target: str,
    features: Iterable[str],
    *,
    task: str,
    test: pd.DataFrame | None = None,
    threshold: float = 0.99,
    errors: Iterable[str] = ("single_feature", "target_derived"),
    prediction_time_column: str | None = None,
    seed: int = 0,
) -> list[LeakageFinding]:
    """Run every leakage check; return the findings (an empty list when nothing looks wrong).

    Parameters
    ----------
    train
        The training rows (with the target).
    target
        The target column.
    features
        The feature columns to check.
    task
        ``binary``, ``multiclass`` or ``regression``.
    test
        The held-out rows, for the duplicate check.
    threshold
        The single-feature score at or above which a feature is a suspected leak.
    errors
        The checks whose findings are errors; the others are warnings.
    prediction_time_column
        A date column holding when each prediction is made.
    seed
        Seed for sampling and cross-validation.
    """
    import pandas as pd

    features = [name for name in features if name in train.columns and name != target]
    fatal = frozenset(errors)
    sample = train.sample(n=min(len(train), SAMPLE_ROWS), random_state=seed)
    raw: list[RawFinding] = []
    raw += _single_feature(sample, target, features, task, threshold, seed)
    raw += _identifiers(train, features)
    if task == "regression":
        raw += _derived(sample, target, features)
    if test is not None:
        raw += _duplicates(train, test, features)
    if prediction_time_column is not None:
        if prediction_time_column not in train.columns:
            raise DataError(
                f"leakage.prediction_time_column '{prediction_time_column}' is not in the data."
            )
        reference = pd.to_datetime(train[prediction_time_column], errors="coerce")
        raw += _future_times(train, features, prediction_time_column, reference)
    return [
        LeakageFinding(check, columns, "error" if check in fatal else "warning", message)
        for check, columns, message in raw
    ]


def raise_on_errors(findings: list[LeakageFinding]) -> None:
    """Raise :class:`DataError` listing the findings whose level is ``error``."""
    fatal = [finding for finding in findings if finding.level == "error"]
    if fatal:
        columns = sorted({column for finding in fatal for column in finding.columns})
        raise DataError(
            "Suspected target leakage stops training:\n"
            + "\n".join(f"  - {finding.message}" for finding in fatal)
            + f"\nDrop the leaking columns (data.drop: {columns}), or make these checks "
            "warnings with leakage.errors: []."
        )


def _single_feature(
    sample: pd.DataFrame,
    target: str,
    features: list[str],
    task: str,
    threshold: float,
    seed: int,
) -> list[RawFinding]:
    import numpy as np
    import pandas as pd
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    y = sample[target]
    classification = task != "regression"
    if classification:
        y = y.astype(str)
        if y.value_counts().min() < 3:
            return []
        folds: Any = StratifiedKFold(3, shuffle=True, random_state=seed)
    else:
        y = pd.to_numeric(y, errors="coerce")
        folds = KFold(3, shuffle=True, random_state=seed)
    found: list[RawFinding] = []
    for name in features:
        column = sample[name]
        if pd.api.types.is_numeric_dtype(column):
            x = column.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            # Categories become their codes: a tree on codes still isolates one category.
            x = column.astype("category").cat.codes.to_numpy(dtype=np.float64)
        x = np.nan_to_num(x, nan=-1e12).reshape(-1, 1)
        model: Any = (
            DecisionTreeClassifier(max_depth=4, random_state=seed)
            if classification
            else DecisionTreeRegressor(max_depth=4, random_state=seed)
        )
        method = "predict_proba" if task == "binary" else "predict"
        predicted = cross_val_predict(model, x, y, cv=folds, method=method)
        score, label = _score(y, predicted, task)
        if score >= threshold:
            found.append(
                (
                    "single_feature",
                    (name,),
                    f"'{name}' alone predicts '{target}' with {label} {score:.4f} "
                    f"(threshold {threshold}): it may be recorded after the outcome or "
                    "computed from it",
                )
            )
    return found


def _score(y: Any, predicted: Any, task: str) -> tuple[float, str]:
    import numpy as np

    if task == "binary":
        from sklearn.metrics import roc_auc_score

        positive = sorted(set(y))[-1]
        auc = float(roc_auc_score(np.asarray(y) == positive, predicted[:, -1]))
        return max(auc, 1 - auc), "ROC AUC"
    if task == "multiclass":
        return float(np.mean(np.asarray(y) == predicted)), "accuracy"
    from sklearn.metrics import r2_score

    return float(r2_score(y, predicted)), "R²"


def _identifiers(train: pd.DataFrame, features: list[str]) -> list[RawFinding]:
    from shipyard.data.clean import is_identifier

    return [
        (
            "identifier",
            (name,),
            f"'{name}' is an identifier (all {train[name].notna().sum()} values differ): a "
            "model can memorise it, and new rows bring new values",
        )
        for name in features
        if is_identifier(train[name])
    ]


def _derived(sample: pd.DataFrame, target: str, features: list[str]) -> list[RawFinding]:
    import numpy as np
    import pandas as pd

    numeric = [
        name
        for name in features
        if pd.api.types.is_numeric_dtype(sample[name])
        and sample[name].notna().all()
        and sample[name].nunique() > 1  # a constant has no correlation (numpy would warn)
    ]
    y = pd.to_numeric(sample[target], errors="coerce").to_numpy(dtype=np.float64)
    if len(numeric) < 2 or np.isnan(y).any() or np.var(y) == 0:
        return []
    # Candidates: the features most correlated with the target (pairs of them are tried).
    correlations = {
        name: abs(float(np.nan_to_num(np.corrcoef(sample[name].to_numpy(np.float64), y)[0, 1])))
        for name in numeric
    }
    candidates = sorted(numeric, key=lambda name: -correlations[name])[:8]
    found: list[RawFinding] = []
    for first, second in itertools.combinations(candidates, 2):
        x = np.column_stack(
            [
                sample[first].to_numpy(np.float64),
                sample[second].to_numpy(np.float64),
                np.ones(len(y)),
            ]
        )
        coefficients, *_ = np.linalg.lstsq(x, y, rcond=None)
        residual = y - x @ coefficients
        r2 = 1 - float(residual @ residual) / float(((y - y.mean()) ** 2).sum())
        if r2 >= DERIVED_R2:
            a, b, c = (round(float(value), 3) for value in coefficients)
            formula = f"{a:g}·{first} + {b:g}·{second}" + (f" + {c:g}" if c else "")
            found.append(
                (
                    "target_derived",
                    (first, second),
                    f"'{target}' = {formula} (R² {r2:.5f}): '{first}' and '{second}' are "
                    "computed with the target, not known before it",
                )
            )
    return found


def _duplicates(train: pd.DataFrame, test: pd.DataFrame, features: list[str]) -> list[RawFinding]:
    import pandas as pd

    columns = [name for name in features if name in test.columns]
    if not columns or test.empty:
        return []
    seen = set(pd.util.hash_pandas_object(train[columns], index=False).tolist())
    repeated = int(pd.util.hash_pandas_object(test[columns], index=False).isin(seen).sum())
    if not repeated:
        return []
    return [
        (
            "train_test_duplicates",
            (),
            f"{repeated} test rows ({repeated / len(test):.1%}) have the same features as a "
            "training row: the test score may be optimistic",
        )
    ]


def _future_times(
    train: pd.DataFrame, features: list[str], reference_name: str, reference: pd.Series
) -> list[RawFinding]:
    import pandas as pd

    found: list[RawFinding] = []
    for name in features:
        if name == reference_name:
            continue
        column = train[name]
        if not (
            pd.api.types.is_datetime64_any_dtype(column)
            or pd.api.types.is_object_dtype(column)
            or pd.api.types.is_string_dtype(column)
        ):
            continue
        times = pd.to_datetime(column, errors="coerce", format="mixed")
        if times.notna().mean() < 0.9:
            continue
        later = int((times > reference).sum())
        if later:
            found.append(
                (
                    "future_time",
                    (name,),
                    f"'{name}' is later than the prediction time '{reference_name}' in {later} "
                    "rows: that value is not known when the prediction is made",
                )
            )
    return found
