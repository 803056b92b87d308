"""Request validation compiled from the data contract: plain Python, a few microseconds a record.

Every problem is reported with the field name, what was expected and what was received, so a
client can fix its request from the message alone.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from typing import Any

from shipyard.data.contract import ColumnContract, Contract
from shipyard.errors import DataValidationError

__all__ = ["RecordValidationError", "RecordValidator"]


class RecordValidationError(DataValidationError):
    """One or more request records break the contract; ``violations`` lists each problem."""


class RecordValidator:
    """Check request records against a contract.

    Parameters
    ----------
    contract
        The model's data contract.
    unknown_fields
        ``"reject"`` to refuse fields the contract does not know (with the nearest known name),
        ``"ignore"`` to drop them silently.
    """

    def __init__(self, contract: Contract, unknown_fields: str = "reject") -> None:
        self.contract = contract
        self.unknown_fields = unknown_fields
        self._columns = list(contract.columns)
        self._known = {column.name for column in contract.columns}
        self._tolerated = set(contract.ignored) | {contract.target.name}
        self._category_sets = {
            column.name: frozenset(column.categories)
            for column in contract.columns
            if column.categories is not None
        }

    def problems(self, record: Any) -> list[dict[str, Any]]:
        """Return the problems of one record (empty when it is valid)."""
        if not isinstance(record, Mapping):
            return [
                {
                    "field": None,
                    "error": "each record must be a JSON object mapping "
                    f"field names to values, got {type(record).__name__}",
                }
            ]
        found: list[dict[str, Any]] = []
        for column in self._columns:
            message = self._check(column, record.get(column.name, None), column.name in record)
            if message:
                found.append(
                    {"field": column.name, "error": message, "expected": column.describe()}
                )
        if self.unknown_fields == "reject":
            for name in record:
                if name not in self._known and name not in self._tolerated:
                    hint = difflib.get_close_matches(str(name), self._known, n=1)
                    found.append(
                        {
                            "field": name,
                            "error": "unknown field"
                            + (
                                f"; did you mean '{hint[0]}'?"
                                if hint
                                else "; remove it or add it to the contract"
                            ),
                        }
                    )
        return found

    def _check(self, column: ColumnContract, value: Any, present: bool) -> str | None:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            if column.nullable:
                return None
            return "required field is missing" if not present else "must not be null"
        kind = column.type
        if kind == "text":
            if isinstance(value, str):
                return None
            return f"expected text (a string), got {type(value).__name__} {value!r}"
        if kind == "string":
            if not isinstance(value, str):
                return f"expected a string, got {type(value).__name__} {value!r}"
            allowed = self._category_sets.get(column.name)
            if allowed is not None and value not in allowed:
                hint = difflib.get_close_matches(value, allowed, n=1)
                return f"unknown category {value!r}" + (
                    f"; did you mean {hint[0]!r}?" if hint else ""
                )
            return None
        if kind == "boolean":
            if isinstance(value, bool) or value in (0, 1):
                return None
            return f"expected true or false, got {value!r}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"expected a number, got {type(value).__name__} {value!r}"
        if math.isinf(value):
            return "must be finite"
        if kind == "integer" and value != int(value):
            return f"expected an integer, got {value!r}"
        if column.min is not None and value < column.min:
            return f"{value!r} is below the minimum {column.min:g}"
        if column.max is not None and value > column.max:
            return f"{value!r} is above the maximum {column.max:g}"
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
