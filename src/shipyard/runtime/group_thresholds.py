"""Per-group decision thresholds: a fairness-mitigated binary classifier's decision rule.

A mitigated version keeps its base model's probabilities and changes only the label: a record
is predicted positive when the positive class's probability reaches the threshold of its group,
the group being the record's value of the sensitive column (values joined with ``" & "`` when
there are several columns). A group the thresholds were not fitted for gets ``default``, the
base model's own threshold. The thresholds are plain numbers in ``group_thresholds.json``, one
of the bundle's hashed files; they are fitted at training time by
:mod:`shipyard.evaluation.threshold_mitigation`.

Examples
--------
>>> rule = GroupThresholds(("sex",), {"Female": 0.3, "Male": 0.6}, default=0.5)
>>> rule.keys_of_records([{"sex": "Female"}, {"sex": "Male"}, {"sex": "Other"}])
['Female', 'Male', 'Other']
>>> rule.decide([0.4, 0.4, 0.4], ["Female", "Male", "Other"]).tolist()
[1, 0, 0]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from shipyard.errors import BundleIntegrityError
from shipyard.runtime.validate import RecordValidationError

__all__ = ["FILE_NAME", "GROUP_THRESHOLDS_VERSION", "GroupThresholds", "group_label"]

FILE_NAME = "group_thresholds.json"
GROUP_THRESHOLDS_VERSION = 1
JOIN = " & "  # the same join as the fairness report's intersections
MISSING = "(missing)"


def group_label(value: Any) -> str:
    """Return the group name of one sensitive value, the same from a frame and from JSON.

    Missing values are ``(missing)``; integral floats read as integers (a CSV column of
    integers with gaps is float), so ``1.0`` and ``1`` are the same group.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class GroupThresholds:
    """Decision thresholds on the positive class's probability, one per sensitive group.

    Parameters
    ----------
    columns
        The sensitive columns whose values name the group.
    thresholds
        Group name -> threshold; the positive class is predicted when its probability
        reaches the group's threshold.
    default
        The threshold of a group not in ``thresholds`` (the base model's own).
    """

    columns: tuple[str, ...]
    thresholds: Mapping[str, float]
    default: float

    def threshold(self, group: str) -> float:
        """Return the threshold of one group (``default`` for a group not fitted)."""
        return float(self.thresholds.get(group, self.default))

    def keys_of_records(
        self,
        records: Sequence[Mapping[str, Any]],
        clean: Mapping[str, Callable[[Any], Any]] | None = None,
    ) -> list[str]:
        """Return the group of each record; ``clean`` holds the bundle's per-column cleaning.

        Raises
        ------
        RecordValidationError
            When a record lacks a sensitive column: its threshold cannot be chosen.
        """
        steps = clean or {}
        keys = []
        for position, record in enumerate(records):
            values = []
            for column in self.columns:
                if column not in record:
                    raise RecordValidationError(
                        f"Record {position} has no '{column}': this model decides with a "
                        f"threshold per '{column}' group (fairness mitigation), so every record "
                        f"must carry '{column}'.",
                        [
                            {
                                "record": position,
                                "field": column,
                                "error": "missing; the model's decision threshold depends on it",
                            }
                        ],
                    )
                step = steps.get(column)
                value = record[column]
                values.append(group_label(step(value) if step is not None else value))
            keys.append(JOIN.join(values))
        return keys

    def keys_of_columns(self, columns: Mapping[str, Sequence[Any]]) -> list[str]:
        """Return the group of each row of columns (lists of plain Python values)."""
        labels = [[group_label(value) for value in columns[name]] for name in self.columns]
        return [JOIN.join(parts) for parts in zip(*labels, strict=True)]

    def cuts(self, groups: Sequence[str]) -> npt.NDArray[np.float64]:
        """Return the threshold of each row's group."""
        return np.array([self.threshold(group) for group in groups], dtype=np.float64)

    def decide(self, positive: Any, groups: Sequence[str]) -> npt.NDArray[np.int64]:
        """Return 1 where the positive probability reaches its group's threshold, else 0."""
        return (np.asarray(positive, dtype=np.float64) >= self.cuts(groups)).astype(np.int64)

    def to_json(self, **fitted: Any) -> dict[str, Any]:
        """Return the JSON document of ``group_thresholds.json`` (``fitted``: how they were)."""
        return {
            "version": GROUP_THRESHOLDS_VERSION,
            "columns": list(self.columns),
            "default": self.default,
            "thresholds": dict(sorted(self.thresholds.items())),
            **({"fitted": fitted} if fitted else {}),
        }

    @classmethod
    def from_json(cls, document: Any, source: str = FILE_NAME) -> GroupThresholds:
        """Read ``group_thresholds.json``.

        Raises
        ------
        BundleIntegrityError
            When the document is not one this release reads.
        """
        problem = _document_problem(document)
        if problem is not None:
            raise BundleIntegrityError(
                f"{source} {problem}; the bundle is damaged or comes from a newer release. "
                "Re-train the model, or upgrade shipyard."
            )
        return cls(
            tuple(document["columns"]),
            {str(group): float(value) for group, value in document["thresholds"].items()},
            float(document["default"]),
        )


def _document_problem(document: Any) -> str | None:
    if not isinstance(document, dict):
        return f"holds {type(document).__name__}, not a JSON object"
    if document.get("version") != GROUP_THRESHOLDS_VERSION:
        return f"has version {document.get('version')!r}, not {GROUP_THRESHOLDS_VERSION}"
    columns, thresholds = document.get("columns"), document.get("thresholds")
    if (
        not isinstance(columns, list)
        or not columns
        or not all(isinstance(c, str) for c in columns)
    ):
        return "has no list of sensitive 'columns'"
    if not isinstance(thresholds, dict):
        return "has no 'thresholds' mapping"
    numbers = [document.get("default"), *thresholds.values()]
    if not all(
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        for value in numbers
    ):
        return "holds a threshold that is not a finite number"
    return None
