"""The serving path: validate with the contract, preprocess, score. No pandas or scikit-learn.

A :class:`Predictor` is built from a verified bundle (see :mod:`shipyard.registry.bundle`). The
same record gets the same answer alone, in a batch, and from the training-time model: the
exporter checks that before a bundle is written.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.errors import DataError
from shipyard.runtime.clean import Cleaner
from shipyard.runtime.group_thresholds import GroupThresholds
from shipyard.runtime.models import FloatArray, Scorer
from shipyard.runtime.preprocess import CompiledPreprocessor
from shipyard.runtime.unknown import LEGACY_POLICY, UnknownCategories
from shipyard.runtime.validate import RecordValidator

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.data.contract import Contract
    from shipyard.runtime.fast import SingleRecordPath

__all__ = ["Predictor", "encode_frame"]


class Predictor:
    """Turn request records into predictions.

    Parameters
    ----------
    contract
        The model's data contract, used to validate every record.
    preprocessor
        The compiled preprocessing.
    scorer
        The model.
    task
        ``binary``, ``multiclass`` or ``regression``.
    classes
        Class labels in output order (classification only).
    unknown_fields
        Passed to :class:`RecordValidator`.
    cleaner
        The fitted cleaning, run on records before they are validated (when the model has one).
    threshold
        A binary classifier's tuned decision threshold: the positive (second) class is
        predicted when its probability reaches it. ``None`` predicts the most probable class.
    unknown_categories
        What scoring does with categories training never saw (:mod:`shipyard.runtime.unknown`):
        the policy saved in the bundle's manifest.
    group_thresholds
        A fairness-mitigated binary classifier's threshold per sensitive group
        (:mod:`shipyard.runtime.group_thresholds`): labels then depend on each record's group,
        and answers say which threshold applied. Probabilities are unchanged.

    Attributes
    ----------
    unknown_seen
        Called with the count per column each time records with unknown categories are
        scored (the server counts them in its metrics); ``None`` by default.
    """

    def __init__(
        self,
        contract: Contract,
        preprocessor: CompiledPreprocessor,
        scorer: Scorer,
        task: str,
        classes: Sequence[Any] = (),
        unknown_fields: str = "reject",
        cleaner: Cleaner | None = None,
        threshold: float | None = None,
        unknown_categories: str = LEGACY_POLICY,
        group_thresholds: GroupThresholds | None = None,
    ) -> None:
        self.contract = contract
        self.preprocessor = preprocessor
        self.scorer = scorer
        self.task = task
        self.classes = list(classes)
        self.validator = RecordValidator(contract, unknown_fields, unknown_categories)
        self.cleaner = cleaner
        # Decision thresholds (one, or one per group) only mean something with two classes.
        two_classes = len(self.classes) == 2
        self.threshold = threshold if two_classes else None
        self.unknown = UnknownCategories(
            contract, unknown_categories, cleaner.spec if cleaner is not None else None
        )
        self.unknown_seen: Callable[[Counter[str]], None] | None = None
        self.group_thresholds = group_thresholds if two_classes else None
        self._single_record_path: SingleRecordPath | None = None

    def score_records(self, records: Sequence[Mapping[str, Any]]) -> FloatArray:
        """Clean and validate records; return raw outputs: probabilities, or regression values."""
        if self.cleaner is not None:
            records = self.cleaner.clean_records(records)
        self.validator.check_records(list(records))
        records = self.settle_records(records)
        rows = [self.preprocessor.transform_record(record) for record in records]
        features = np.array(rows, dtype=np.float64).reshape(len(rows), self.preprocessor.n_outputs)
        return self.scorer.score(features)

    def settle_records(self, records: Sequence[Any]) -> Sequence[Any]:
        """Replace unknown categories of valid records as the policy says (and count them)."""
        if not self.unknown.tolerant:
            return records
        settled, counts = self.unknown.settle_records(records)
        if counts and self.unknown_seen is not None:
            self.unknown_seen(counts)
        return settled

    def predict_records(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Validate and predict; each answer holds ``prediction`` (and ``probabilities``).

        One record takes the single-record path (:class:`~shipyard.runtime.fast.
        SingleRecordPath`: one pass of checks and encoding, the model's one-row routine, no
        numpy arrays), whose answer and errors are those of the batch path to the last bit.
        """
        if len(records) == 1:
            return [self.single_record_path().predict(records[0])]
        outputs = self.score_records(records)
        return self.format_outputs(outputs, self.groups_of_records(records))

    def single_record_path(self) -> SingleRecordPath:
        """Return the predictor's single-record path (built on first use, then kept)."""
        path = self._single_record_path
        if path is None or path.scorer is not self.scorer:  # a scorer swapped in since
            from shipyard.runtime.fast import SingleRecordPath

            path = self._single_record_path = SingleRecordPath(self)
        return path

    def groups_of_records(self, records: Sequence[Mapping[str, Any]]) -> list[str] | None:
        """Return each record's sensitive group when labels depend on it, else ``None``.

        Raises
        ------
        RecordValidationError
            When a record lacks a sensitive column the decision depends on.
        """
        if self.group_thresholds is None:
            return None
        steps = self.cleaner.steps if self.cleaner is not None else None
        return self.group_thresholds.keys_of_records(records, steps)

    def groups_of_frame(self, frame: pd.DataFrame) -> list[str] | None:
        """Return each (clean) row's sensitive group when labels depend on it, else ``None``.

        Raises
        ------
        DataError
            When the frame lacks a sensitive column the decision depends on.
        """
        rule = self.group_thresholds
        if rule is None:
            return None
        missing = [column for column in rule.columns if column not in frame.columns]
        if missing:
            raise DataError(
                f"The rows have no column {', '.join(map(repr, missing))}: this model decides "
                "with a threshold per sensitive group (fairness mitigation); add the column."
            )
        return rule.keys_of_columns(
            {
                column: frame[column].to_numpy(dtype=object, na_value=None)
                for column in rule.columns
            }
        )

    def format_outputs(
        self, outputs: FloatArray, groups: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """Turn raw outputs into JSON-ready answers (``groups``: see :meth:`class_indices`)."""
        if self.task == "regression":
            return [{"prediction": float(value)} for value in outputs]
        labels = [str(label) for label in self.classes]
        answers = [
            {
                "prediction": self.classes[best],
                "probabilities": dict(zip(labels, row, strict=True)),
            }
            for best, row in zip(
                self.class_indices(outputs, groups).tolist(), outputs.tolist(), strict=True
            )
        ]
        if self.group_thresholds is not None and groups is not None:
            for answer, group in zip(answers, groups, strict=True):
                answer["threshold"] = {
                    "group": group,
                    "value": self.group_thresholds.threshold(group),
                }
        return answers

    def class_indices(self, outputs: FloatArray, groups: Sequence[str] | None = None) -> Any:
        """Index of the predicted class per row of probabilities (the threshold applies).

        With group thresholds, ``groups`` (from :meth:`groups_of_records` or
        :meth:`groups_of_frame`) names each row's group.

        Raises
        ------
        ValueError
            When the model has group thresholds and ``groups`` is not given.
        """
        if self.group_thresholds is not None:
            if groups is None:
                raise ValueError(
                    "This model decides with a threshold per sensitive group: pass the rows' "
                    "groups (Predictor.groups_of_records or groups_of_frame)."
                )
            return self.group_thresholds.decide(outputs[:, 1], groups)
        if self.threshold is not None:
            return (outputs[:, 1] >= self.threshold).astype(np.int64)
        return np.argmax(outputs, axis=1)

    def decision_thresholds(self, groups: Sequence[str] | None = None) -> Any:
        """Return the decision threshold: one number, one per row (groups), or ``None``."""
        if self.group_thresholds is not None and groups is not None:
            return self.group_thresholds.cuts(groups)
        return self.threshold

    def clean_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return the frame cleaned as the model's training data was (unchanged without one)."""
        if self.cleaner is None:
            return frame
        from shipyard.runtime.clean import clean_frame

        return clean_frame(frame, self.cleaner.spec)

    def score_frame(self, frame: pd.DataFrame) -> FloatArray:
        """Score a whole frame through the batch path (columns at a time).

        The frame is cleaned, checked against the contract, and its unknown categories
        replaced (``self.unknown.settle_frame``) by the caller.
        """
        return self.scorer.score(encode_frame(self.preprocessor, frame))

    def labels_from_outputs(
        self, outputs: FloatArray, groups: Sequence[str] | None = None
    ) -> list[Any]:
        """Return the predicted label (or value) of each row of raw outputs."""
        if self.task == "regression":
            return [float(value) for value in outputs]
        return [self.classes[index] for index in self.class_indices(outputs, groups).tolist()]


def encode_frame(preprocessor: CompiledPreprocessor, frame: pd.DataFrame) -> FloatArray:
    """Encode a frame's input columns into the model's feature matrix (the batch path)."""
    columns = {name: _column_values(frame[name]) for name in preprocessor.input_columns}
    return preprocessor.transform_columns(columns)


def _column_values(series: pd.Series) -> Any:
    """Numeric columns as float arrays, string columns as they are, others as objects.

    A pandas string column is passed through: every value is a ``str`` (or missing), so the
    preprocessing factorises it in Arrow without making a Python object per value.
    """
    import pandas as pd

    if pd.api.types.is_numeric_dtype(series):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    if isinstance(series.dtype, pd.StringDtype):
        return series
    return series.to_numpy(dtype=object, na_value=None)
