"""The data contract over partitioned data: inferred from merged facts, checked per partition.

Each partition reports small, mergeable facts per column (its kind, rows, missing values,
smallest value, and up to ``max_categories + 1`` distinct values); merged, they give exactly
the contract :func:`shipyard.data.contract.infer_contract` would infer from the whole table,
without the table ever being in one place. Validation runs the contract's own
:meth:`~shipyard.data.contract.Contract.validate_frame` on each partition and merges the
reports, numbering rows from the start of the first file.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.data.contract import (
    MAX_STORED_VIOLATIONS,
    ColumnContract,
    Contract,
    ValidationReport,
    Violation,
)
from shipyard.engines.base import Engine
from shipyard.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ColumnFacts", "infer_partitioned_contract", "validate_partitions"]

TARGET_VALUES = 1000
"""Distinct target values kept: enough to tell classes from a continuous target."""


@dataclass
class ColumnFacts:
    """What one column of one or more partitions holds."""

    kind: str  # boolean, integer, number, datetime or string
    rows: int = 0
    missing: int = 0
    minimum: float | None = None
    values: set[str] = field(default_factory=set)
    overflow: bool = False
    raw_values: set[Any] = field(default_factory=set)  # the target's, for task detection

    def merge(self, other: ColumnFacts, cap: int) -> ColumnFacts:
        """Combine the facts of two partitions."""
        kinds = {self.kind, other.kind}
        if kinds == {"integer", "number"}:
            kind = "number"
        elif len(kinds) == 1:
            kind = self.kind
        else:
            raise DataError(
                f"A column holds {self.kind} values in one partition and {other.kind} values in "
                "another; every file must have the same column types."
            )
        low = [value for value in (self.minimum, other.minimum) if value is not None]
        values = self.values | other.values
        raw = self.raw_values | other.raw_values
        return ColumnFacts(
            kind,
            self.rows + other.rows,
            self.missing + other.missing,
            min(low) if low else None,
            set(sorted(values)[: cap + 1]),
            self.overflow or other.overflow or len(values) > cap,
            set(list(raw)[: TARGET_VALUES + 1]),
        )


Facts = dict[str, ColumnFacts]


def _kind(series: pd.Series) -> str:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_integer_dtype(series):
        return "integer"
    if pd.api.types.is_numeric_dtype(series):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    return "string"


@dataclass(frozen=True)
class ContractFacts:
    """The partition function of contract inference: a frame in, its column facts out."""

    target: str
    max_categories: int = 100

    def __call__(self, frame: pd.DataFrame) -> Facts:
        """Facts of every column of one partition."""
        facts: Facts = {}
        for name in map(str, frame.columns):
            series = frame[name]
            present = series.dropna()
            kind = _kind(series)
            found = ColumnFacts(kind, len(series), int(series.isna().sum()))
            if kind in ("integer", "number") and len(present):
                found.minimum = float(present.min())
            if kind == "string":
                distinct = present.astype(str).unique().tolist()
                found.values = set(sorted(distinct)[: self.cap(name) + 1])
                found.overflow = len(distinct) > self.cap(name)
            if name == self.target:
                found.raw_values = set(present.unique().tolist()[: TARGET_VALUES + 1])
            facts[name] = found
        return facts

    def cap(self, name: str) -> int:
        """Distinct values kept for a column: all of the target's classes, else the limit."""
        return TARGET_VALUES if name == self.target else self.max_categories

    def merge(self, first: Facts, second: Facts) -> Facts:
        """Merge the facts of two sets of partitions (same columns required)."""
        if list(first) != list(second):
            raise DataError(
                f"Partitions have different columns: {list(first)} and {list(second)}; every "
                "file must have the same columns in the same order."
            )
        return {name: first[name].merge(second[name], self.cap(name)) for name in first}


def _column_contract(name: str, facts: ColumnFacts, max_categories: int) -> ColumnContract | None:
    """Apply the rules of :func:`shipyard.data.contract.infer_contract` to merged facts."""
    nullable = facts.missing > 0
    if facts.kind == "boolean":
        return ColumnContract(name=name, type="boolean", nullable=nullable)
    if facts.kind in ("integer", "number"):
        never_negative = facts.minimum is not None and facts.minimum >= 0
        return ColumnContract(
            name=name, type=facts.kind, nullable=nullable, min=0.0 if never_negative else None
        )
    if facts.kind == "datetime":
        return None
    distinct = len(facts.values)
    present = facts.rows - facts.missing
    if facts.overflow or distinct > max_categories or (distinct > 20 and distinct > 0.5 * present):
        return None
    return ColumnContract(
        name=name, type="string", nullable=nullable, categories=tuple(sorted(facts.values))
    )


def infer_partitioned_contract(
    engine: Engine,
    sources: list[Path],
    target: str,
    drop: tuple[str, ...] = (),
    max_categories: int = 100,
) -> tuple[Contract, Facts]:
    """Infer the contract of all partitions together; also return the merged facts.

    Raises
    ------
    DataError
        When the target is missing or has missing values, partitions disagree on columns or
        types, or no usable feature remains.
    """
    function = ContractFacts(target, max_categories)
    facts: Facts = engine.summarise_files(function, function.merge, sources)
    if target not in facts:
        raise DataError(f"Target column '{target}' is not in the data; columns: {list(facts)}.")
    if facts[target].missing:
        raise DataError(
            f"Target column '{target}' has {facts[target].missing} missing values; drop those "
            "rows before training on the cluster."
        )
    columns, ignored = [], []
    for name, found in facts.items():
        if name == target:
            continue
        column = None if name in drop else _column_contract(name, found, max_categories)
        if column is None:
            ignored.append(name)
        else:
            columns.append(column)
    if not columns:
        raise DataError(f"No usable feature column remains; ignored: {', '.join(ignored)}.")
    target_column = _column_contract(target, facts[target], max_categories=TARGET_VALUES)
    if target_column is None:
        raise DataError(f"Target column '{target}' has a type shipyard cannot predict.")
    contract = Contract(target=target_column, columns=tuple(columns), ignored=tuple(ignored))
    return contract, facts


@dataclass(frozen=True)
class ValidatePartition:
    """The partition function of validation: a frame in, ``[(rows, report)]`` out."""

    contract: Contract
    with_target: bool = False

    def __call__(self, frame: pd.DataFrame) -> list[tuple[int, ValidationReport]]:
        """Check one partition."""
        return [(len(frame), self.contract.validate_frame(frame, with_target=self.with_target))]

    @staticmethod
    def merge(
        first: list[tuple[int, ValidationReport]], second: list[tuple[int, ValidationReport]]
    ) -> list[tuple[int, ValidationReport]]:
        """Keep the reports in partition order."""
        return first + second


def validate_partitions(
    engine: Engine, sources: list[Path], contract: Contract, with_target: bool = False
) -> ValidationReport:
    """Check every partition against the contract; rows are numbered across all files."""
    function = ValidatePartition(contract, with_target)
    reports = engine.summarise_files(function, function.merge, sources)
    counts: Counter[str] = Counter()
    violations: list[Violation] = []
    offset = 0
    for rows, report in reports:
        counts.update(report.counts)
        for violation in report.violations[: MAX_STORED_VIOLATIONS - len(violations)]:
            row = violation.row
            shifted = offset + int(row) if isinstance(row, int) else row
            violations.append(violation.model_copy(update={"row": shifted}))
        offset += rows
    return ValidationReport(n_rows=offset, violations=violations, counts=dict(counts))
