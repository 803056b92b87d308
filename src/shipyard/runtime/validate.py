"""Request validation compiled from the data contract: plain Python, a few microseconds a record.

Every problem is reported with the field name, what was expected and what was received, so a
client can fix its request from the message alone.
"""

from __future__ import annotations

import difflib
import math
import sys
from collections.abc import Mapping
from typing import Any, NamedTuple

from shipyard.data.contract import ColumnContract, Contract
from shipyard.errors import DataValidationError

__all__ = [
    "FLOAT64_MAX",
    "Finding",
    "RecordTooLargeError",
    "RecordValidationError",
    "RecordValidator",
    "number_range_problem",
]

FLOAT64_MAX = sys.float_info.max


def _digits(value: int) -> str:
    """Count the decimal digits of ``value`` without converting a huge one to text."""
    try:
        return str(len(str(abs(value))))
    except ValueError:  # past Python's int-to-text limit: an estimate is enough for a message
        return f"about {int(abs(value).bit_length() * math.log10(2)) + 1}"


def _shown(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, so an answer never echoes a huge input."""
    try:
        text = repr(value)
    except ValueError:  # an integer past Python's int-to-text limit, somewhere inside
        return f"a {type(value).__name__} too large to show"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def number_range_problem(value: int | float) -> str | None:
    """Say why a JSON number cannot be used as a float64, or return ``None`` when it can.

    Python's json module reads integers of any size, and ``float()``, ``math.isnan`` and numpy
    overflow on those past float64's range, so this check comes before any arithmetic.
    """
    if isinstance(value, int):
        if -FLOAT64_MAX <= value <= FLOAT64_MAX:  # exact: Python compares int and float exactly
            return None
        return (
            f"expected a finite number within float64's range (magnitude at most "
            f"{FLOAT64_MAX:.4g}), got an integer of {_digits(value)} digits"
        )
    if math.isinf(value):
        return f"must be finite: expected a finite number, got {value!r}"
    return None


class RecordValidationError(DataValidationError):
    """One or more request records break the contract; ``violations`` lists each problem."""


class RecordTooLargeError(RecordValidationError):
    """A value of a request record is over its contract's size limit (an image's bytes)."""


class Finding(NamedTuple):
    """One broken rule of one record.

    ``field`` is None when the record is not a mapping at all; ``rule`` is ``not_null``,
    ``type``, ``category``, ``finite``, ``min``, ``max``, ``unknown_field`` or ``record``;
    ``error`` is the message a client sees; ``expected`` describes the column's rules.
    """

    field: str | None
    rule: str
    error: str
    expected: str | None = None

    def as_problem(self) -> dict[str, Any]:
        """Return the problem as a request's error response lists it."""
        problem: dict[str, Any] = {"field": self.field, "error": self.error}
        if self.expected is not None:
            problem["expected"] = self.expected
        return problem


class RecordValidator:
    """Check request records against a contract.

    Parameters
    ----------
    contract
        The model's data contract.
    unknown_fields
        ``"reject"`` to refuse fields the contract does not know (with the nearest known name),
        ``"ignore"`` to drop them silently.
    unknown_categories
        ``"error"`` refuses a category the contract does not list; the other policies
        (:mod:`shipyard.runtime.unknown`) accept it, to be replaced before scoring.
    """

    def __init__(
        self, contract: Contract, unknown_fields: str = "reject", unknown_categories: str = "error"
    ) -> None:
        self.contract = contract
        self.unknown_fields = unknown_fields
        self.unknown_categories = unknown_categories
        self._columns = list(contract.columns)
        self._known = {column.name for column in contract.columns}
        self._tolerated = set(contract.ignored) | {c.name for c in contract.target_columns}
        self._category_sets = {
            column.name: frozenset(column.categories)
            for column in contract.columns
            if column.categories is not None and unknown_categories == "error"
        }

    def problems(self, record: Any) -> list[dict[str, Any]]:
        """Return the problems of one record (empty when it is valid)."""
        return [finding.as_problem() for finding in self.findings(record)]

    def findings(self, record: Any, with_target: bool = False) -> list[Finding]:
        """Return each broken rule of one record, with the rule's name (empty when valid).

        ``with_target`` also checks the target column (requests never carry it; a labelled
        file does).
        """
        if not isinstance(record, Mapping):
            return [
                Finding(
                    None,
                    "record",
                    "each record must be a JSON object mapping "
                    f"field names to values, got {type(record).__name__}",
                )
            ]
        found: list[Finding] = []
        columns = [*self._columns, *self.contract.target_columns] if with_target else self._columns
        for column in columns:
            broken = self._check(column, record.get(column.name, None), column.name in record)
            if broken:
                found.append(Finding(column.name, broken[0], broken[1], column.describe()))
        if self.unknown_fields == "reject":
            for name in record:
                if name not in self._known and name not in self._tolerated:
                    hint = difflib.get_close_matches(str(name), self._known, n=1)
                    found.append(
                        Finding(
                            name,
                            "unknown_field",
                            "unknown field"
                            + (
                                f"; did you mean '{hint[0]}'?"
                                if hint
                                else "; remove it or add it to the contract"
                            ),
                        )
                    )
        return found

    def _check(self, column: ColumnContract, value: Any, present: bool) -> tuple[str, str] | None:
        """Return the broken rule's name and the message, or None when the value is valid."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            if column.nullable:
                return None
            return "not_null", "required field is missing" if not present else "must not be null"
        kind = column.type
        if kind == "text":
            if isinstance(value, str):
                return None
            return "type", f"expected text (a string), got {type(value).__name__} {_shown(value)}"
        if kind == "string":
            if not isinstance(value, str):
                return "type", f"expected a string, got {type(value).__name__} {_shown(value)}"
            allowed = self._category_sets.get(column.name)
            if allowed is not None and value not in allowed:
                hint = difflib.get_close_matches(value, allowed, n=1)
                return "category", f"unknown category {_shown(value)}" + (
                    f"; did you mean {hint[0]!r}?" if hint else ""
                )
            return None
        if kind == "boolean":
            if isinstance(value, bool) or value in (0, 1):
                return None
            return "type", f"expected true or false, got {_shown(value)}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "type", f"expected a number, got {type(value).__name__} {_shown(value)}"
        if (problem := number_range_problem(value)) is not None:
            return "finite", problem
        if kind == "integer" and value != int(value):
            return "type", f"expected an integer, got {_shown(value)}"
        if column.min is not None and value < column.min:
            return "min", f"{_shown(value)} is below the minimum {column.min:g}"
        if column.max is not None and value > column.max:
            return "max", f"{_shown(value)} is above the maximum {column.max:g}"
        return None

    def check_records(self, records: list[Any]) -> None:
        """Raise :class:`RecordValidationError` listing every problem in a list of records."""
        violations = []
        for index, record in enumerate(records):
            for problem in self.problems(record):
                violations.append({"record": index, **problem})
        if violations:
            first = violations[0]
            where = f"record {first['record']}, " if len(records) > 1 else ""
            raise RecordValidationError(
                f"{len(violations)} problem(s) in the request; first: {where}"
                f"field '{first['field']}': {first['error']}",
                violations,
            )
