"""The data contract: what every row must look like, inferred once and enforced everywhere.

A contract lists the feature columns with their type, nullability, limits and allowed
categories, and the target. It is inferred from the training source, saved as readable YAML in
each model bundle (edit it to tighten or loosen a rule), and enforced on training data, on test
data and on every serving request.

Inference rules
---------------
- bool columns are ``boolean``; integer columns ``integer``; float columns ``number``.
- Numeric columns that were never negative get ``min: 0``. No upper limit is inferred: the
  largest value seen in training is not a law of nature. Set ``max`` by hand where one holds.
- Text columns with at most ``max_categories`` distinct values (and repeats) are categorical and
  list their ``categories``. Text with more distinct values (identifiers, free text) and dates
  are not features yet: they are listed under ``ignored`` so requests may still carry them.
- Free text (many distinct values averaging at least ``TEXT_MIN_LENGTH`` characters and
  several words) becomes a ``text`` column when the caller asks for text detection
  (``detect_text=True``, as the text classification task does) or names the column in
  ``text_columns``; otherwise it stays ignored, as before.
- ``nullable`` is true when the column had missing values in the source.

Rules set by hand
-----------------
- ``unique: true``: no value may repeat within a data set (checked on files and frames; a
  single request cannot break it).
- ``min_length`` / ``max_length``: limits on the length of text values.

Examples
--------
>>> import pandas as pd
>>> frame = pd.DataFrame({"age": [30, 41, None], "sex": ["F", "M", "F"], "y": [0, 1, 0]})
>>> contract = infer_contract(frame, target="y")
>>> [(c.name, c.type, c.nullable, c.min) for c in contract.columns]
[('age', 'number', True, 0.0), ('sex', 'string', False, None)]
>>> contract.validate_frame(frame.assign(sex=["F", "X", "M"])).counts
{'category': 1}
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shipyard.errors import DataError, DataValidationError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ColumnContract", "Contract", "ValidationReport", "infer_contract"]

ColumnType = Literal["number", "integer", "string", "boolean", "text"]
NUMERIC_TYPES = frozenset({"number", "integer", "boolean"})
MAX_STORED_VIOLATIONS = 1000
TEXT_MIN_LENGTH = 20
TEXT_MIN_WORDS = 3


class ColumnContract(BaseModel):
    """The rules for one column."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    type: ColumnType
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None
    unique: bool = False
    min_length: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, ge=0)

    @property
    def is_categorical(self) -> bool:
        """Whether the column is encoded as categories (text with a known set of values)."""
        return self.type == "string"

    def describe(self) -> str:
        """Say in words what a valid value looks like, for error messages."""
        if self.categories is not None:
            shown = ", ".join(repr(category) for category in self.categories[:12])
            more = f", ... ({len(self.categories)} in all)" if len(self.categories) > 12 else ""
            return f"one of {shown}{more}"
        words = {
            "number": "a number",
            "integer": "an integer",
            "boolean": "true or false",
            "string": "a string",
            "text": "a text string",
        }[self.type]
        if self.min is not None:
            words += f" >= {self.min:g}"
        if self.max is not None:
            words += f" <= {self.max:g}"
        if self.min_length is not None or self.max_length is not None:
            words += f" of length {self.min_length or 0} to {self.max_length or 'any'}"
        if self.unique:
            words += ", unique"
        return words


class Violation(BaseModel):
    """One broken rule: which column, which row, which value."""

    model_config = ConfigDict(frozen=True)

    column: str
    row: Any
    value: Any
    rule: str
    expected: str


class ValidationReport(BaseModel):
    """Every violation found in a frame, with counts per rule."""

    n_rows: int
    violations: list[Violation] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether no rule was broken."""
        return not self.counts

    def summary(self, limit: int = 5) -> str:
        """Summarise in a few lines the first violations and the counts per rule."""
        if self.ok:
            return f"all {self.n_rows} rows satisfy the contract"
        total = sum(self.counts.values())
        lines = [
            f"{total} violation(s) in {self.n_rows} rows "
            f"({', '.join(f'{rule}: {n}' for rule, n in sorted(self.counts.items()))}):"
        ]
        for violation in self.violations[:limit]:
            lines.append(
                f"  row {violation.row}, column '{violation.column}': "
                f"{violation.value!r} breaks '{violation.rule}' "
                f"(expected {violation.expected})"
            )
        if total > limit:
            lines.append(f"  ... and {total - limit} more")
        return "\n".join(lines)

    def raise_if_failed(self, what: str) -> None:
        """Raise :class:`DataValidationError` naming ``what`` when any rule was broken."""
        if not self.ok:
            raise DataValidationError(
                f"{what} does not satisfy the data contract: {self.summary()}\n"
                "Fix the data, or edit the contract if the rule is wrong.",
                [violation.model_dump() for violation in self.violations],
            )


class Contract(BaseModel):
    """The data contract of a model: its feature columns, its target, the ignored columns.

    The target is ``None`` for a model learnt without labels (clustering, anomaly detection).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    target: ColumnContract | None = None
    columns: tuple[ColumnContract, ...]
    ignored: tuple[str, ...] = ()

    @property
    def target_columns(self) -> list[ColumnContract]:
        """The target as a list: empty when the model has none."""
        return [] if self.target is None else [self.target]

    @property
    def target_name(self) -> str:
        """The target column's name.

        Raises
        ------
        DataError
            When the model was learnt without a target.
        """
        if self.target is None:
            raise DataError("This model was learnt without a target column.")
        return self.target.name

    def column(self, name: str) -> ColumnContract:
        """Return a feature column's rules by name, suggesting the nearest name if unknown."""
        for column in self.columns:
            if column.name == name:
                return column
        hint = difflib.get_close_matches(name, self.feature_names, n=1)
        raise DataError(
            f"The contract has no feature column '{name}'."
            + (f" Did you mean '{hint[0]}'?" if hint else "")
        )

    @property
    def feature_names(self) -> list[str]:
        """Feature column names, in contract order."""
        return [column.name for column in self.columns]

    def to_yaml(self) -> str:
        """Serialise to the readable YAML stored in bundles."""
        data = self.model_dump(mode="json", exclude_none=True)
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)

    @classmethod
    def from_yaml(cls, text: str, source: str = "contract") -> Contract:
        """Parse and validate a contract from YAML.

        Raises
        ------
        DataError
            When the text is not YAML or breaks the contract schema.
        """
        try:
            return cls.model_validate(yaml.safe_load(text))
        except yaml.YAMLError as error:
            raise DataError(f"{source} is not valid YAML: {error}") from error
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}"
                for item in error.errors()
            )
            raise DataError(f"{source} is not a valid data contract: {problems}") from None

    @classmethod
    def load(cls, path: str | Path) -> Contract:
        """Read a contract YAML file."""
        path = Path(path)
        return cls.from_yaml(path.read_text(encoding="utf-8"), source=str(path))

    def validate_frame(
        self, frame: pd.DataFrame, with_target: bool = False, unknown_categories: str = "error"
    ) -> ValidationReport:
        """Check every row of a frame; return all violations (the first 1,000 kept in full).

        ``unknown_categories`` other than ``"error"`` (the model scores categories training
        never saw, see :mod:`shipyard.runtime.unknown`) lifts the category rule of the feature
        columns; the target's categories are always checked.
        """
        columns = [*self.columns, *self.target_columns] if with_target else list(self.columns)
        violations: list[Violation] = []
        counts: Counter[str] = Counter()
        for column in columns:
            if column.name not in frame.columns:
                counts["missing_column"] += 1
                violations.append(
                    Violation(
                        column=column.name,
                        row=None,
                        value=None,
                        rule="missing_column",
                        expected="the column to be present",
                    )
                )
                continue
            categories = unknown_categories == "error" or column is self.target
            for rule, rows, values in _check_series(column, frame[column.name], categories):
                counts[rule] += len(rows)
                room = MAX_STORED_VIOLATIONS - len(violations)
                violations.extend(
                    Violation(
                        column=column.name,
                        row=_plain(row),
                        value=_plain(value),
                        rule=rule,
                        expected=column.describe(),
                    )
                    for row, value in zip(rows[:room], values[:room], strict=True)
                )
        return ValidationReport(n_rows=len(frame), violations=violations, counts=dict(counts))

    def row_problems(
        self, frame: pd.DataFrame, with_target: bool = False, unknown_categories: str = "error"
    ) -> dict[Any, list[str]]:
        """Map each row label that breaks a rule to its reasons (``"age: min"``), uncapped.

        Missing columns concern every row and are not listed here: check
        :meth:`validate_frame` for them first.
        """
        columns = [*self.columns, *self.target_columns] if with_target else list(self.columns)
        problems: dict[Any, list[str]] = {}
        for column in columns:
            if column.name not in frame.columns:
                continue
            categories = unknown_categories == "error" or column is self.target
            for rule, rows, _ in _check_series(column, frame[column.name], categories):
                for row in rows:
                    problems.setdefault(row, []).append(f"{column.name}: {rule}")
        return problems


def _check_series(
    column: ColumnContract, series: pd.Series, categories: bool = True
) -> Iterable[tuple[str, list[Any], list[Any]]]:
    import numpy as np

    missing = series.isna()
    if not column.nullable and missing.any():
        yield "not_null", list(series.index[missing]), [None] * int(missing.sum())
    present = series[~missing]
    if column.type in NUMERIC_TYPES:
        if column.type == "boolean" and present.dtype == bool:
            return
        numbers = _real_numbers(present)
        bad_type = numbers.isna()
        if column.type == "integer":
            bad_type |= ~bad_type & (np.floor(numbers.fillna(0)) != numbers.fillna(0))
        if column.type == "boolean":
            bad_type |= ~numbers.isin([0, 1])
        if bad_type.any():
            yield "type", list(present.index[bad_type]), present[bad_type].tolist()
        numbers = numbers[~bad_type]
        for rule, limit, breaks in (
            ("min", column.min, numbers < (column.min or 0)),
            ("max", column.max, numbers > (column.max or 0)),
        ):
            if limit is not None and breaks.any():
                yield rule, list(numbers.index[breaks]), numbers[breaks].tolist()
    elif column.categories is not None and categories:
        unknown = ~present.map(str).isin(column.categories)
        if unknown.any():
            yield "category", list(present.index[unknown]), present[unknown].tolist()
    if column.type == "string" and (
        column.min_length is not None or column.max_length is not None
    ):
        import pandas as pd

        # Built from a list: Series.map keeps an empty date column's dtype, not integers.
        # Non-text values are the category or type rule's business, not this one's.
        lengths = pd.Series(
            [len(value) if isinstance(value, str) else -1 for value in present.tolist()],
            index=present.index,
            dtype="int64",
        )
        longest = column.max_length if column.max_length is not None else float("inf")
        wrong = lengths.ge(0) & (lengths.lt(column.min_length or 0) | lengths.gt(longest))
        if wrong.any():
            yield "length", list(present.index[wrong]), present[wrong].tolist()
    if column.unique:
        try:
            repeated = present.duplicated(keep="first")
        except TypeError:  # unhashable values (lists): compare their text
            repeated = present.map(repr).duplicated(keep="first")
        if repeated.any():
            yield "unique", list(present.index[repeated]), present[repeated].tolist()


def _real_numbers(present: pd.Series) -> pd.Series:
    """Present values as real numbers, NaN where a value is none (text, complex, a date)."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(present) or pd.api.types.is_timedelta64_dtype(present):
        return pd.Series(np.nan, index=present.index, dtype=np.float64)
    converted = pd.to_numeric(present, errors="coerce")
    if converted.dtype.kind == "c":
        # One complex value makes to_numeric return a complex column; complex is not a number.
        real = present.map(lambda value: not isinstance(value, complex | np.complexfloating))
        converted = pd.to_numeric(present.astype(object).where(real), errors="coerce")
    return converted


def _plain(value: Any) -> Any:
    """Turn numpy scalars into plain Python for reports and JSON."""
    return value.item() if hasattr(value, "item") else value


def infer_contract(
    frame: pd.DataFrame,
    target: str | None,
    drop: Iterable[str] = (),
    max_categories: int = 100,
    *,
    detect_text: bool = False,
    text_columns: Iterable[str] = (),
) -> Contract:
    """Infer a contract from a frame (see the module docstring for the rules).

    ``target`` is ``None`` for data without labels: every column is then a feature candidate.

    Raises
    ------
    DataError
        When the target is absent or has missing values, or no usable feature remains.
    """
    if target is not None:
        _check_target(frame, target)
    dropped = set(drop)
    declared = set(text_columns)
    missing_text = sorted(declared - set(map(str, frame.columns)))
    if missing_text:
        raise DataError(
            f"Declared text column(s) {', '.join(missing_text)} are not in the data; "
            f"columns are {', '.join(map(str, frame.columns))}."
        )
    ignored = [name for name in map(str, frame.columns) if name in dropped]
    columns: list[ColumnContract] = []
    for name in map(str, frame.columns):
        if name == target or name in dropped:
            continue
        if name in declared or (detect_text and _looks_like_text(frame[name])):
            nullable = bool(frame[name].isna().any())
            columns.append(ColumnContract(name=name, type="text", nullable=nullable))
            continue
        column = _infer_column(name, frame[name], max_categories)
        if column is None:
            ignored.append(name)
        else:
            columns.append(column)
    if not columns:
        raise DataError(
            "No usable feature column remains after inference; "
            f"ignored: {', '.join(ignored) or 'none'}."
        )
    if target is None:
        return Contract(columns=tuple(columns), ignored=tuple(ignored))
    target_column = _infer_column(target, frame[target], max_categories=10**9)
    assert target_column is not None  # the target is never ignored: no category limit
    return Contract(target=target_column, columns=tuple(columns), ignored=tuple(ignored))


def _check_target(frame: pd.DataFrame, target: str) -> None:
    """Refuse a target the frame lacks, or one with missing values."""
    if target not in frame.columns:
        hint = difflib.get_close_matches(target, [str(c) for c in frame.columns], n=1)
        raise DataError(
            f"Target column '{target}' is not in the data; columns are "
            f"{', '.join(map(str, frame.columns))}."
            + (f" Did you mean '{hint[0]}'?" if hint else "")
        )
    if frame[target].isna().any():
        raise DataError(
            f"Target column '{target}' has {int(frame[target].isna().sum())} "
            "missing values; drop those rows before training."
        )


def _looks_like_text(series: pd.Series) -> bool:
    """Whether a column holds free text: strings, mostly distinct, long, of several words."""
    import pandas as pd

    present = series.dropna()
    if len(present) == 0 or pd.api.types.is_numeric_dtype(series):
        return False
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_datetime64_any_dtype(series):
        return False
    if not present.map(lambda value: isinstance(value, str)).all():
        return False
    values = present.astype(str)
    words = values.str.split().str.len()
    return bool(
        values.nunique() > 0.5 * len(values)
        and values.str.len().mean() >= TEXT_MIN_LENGTH
        and words.mean() >= TEXT_MIN_WORDS
    )


def _infer_column(name: str, series: pd.Series, max_categories: int) -> ColumnContract | None:
    import pandas as pd

    nullable = bool(series.isna().any())
    present = series.dropna()
    if pd.api.types.is_bool_dtype(series):
        return ColumnContract(name=name, type="boolean", nullable=nullable)
    if pd.api.types.is_numeric_dtype(series):
        kind: ColumnType = "integer" if pd.api.types.is_integer_dtype(series) else "number"
        never_negative = len(present) > 0 and float(present.min()) >= 0
        return ColumnContract(
            name=name, type=kind, nullable=nullable, min=0.0 if never_negative else None
        )
    if pd.api.types.is_datetime64_any_dtype(series):
        return None
    values = present.astype(str)
    distinct = values.nunique()
    if distinct > max_categories or (distinct > 20 and distinct > 0.5 * len(values)):
        return None
    return ColumnContract(
        name=name, type="string", nullable=nullable, categories=tuple(sorted(values.unique()))
    )
