"""Cleaning at serving time: a fitted JSON spec run on one record or on column batches.

The spec is written by :func:`shipyard.data.clean.fit_cleaner` and saved in the model bundle as
``cleaning.json``. Training cleans its data through this same module (the batch path), so a
value is cleaned the same way at training and at serving. Cleaning is idempotent: a cleaned
value cleans to itself.

Spec
----
``missing_tokens``
    Text values meaning "missing" (``?``, ``NA``, ...), matched after trimming spaces.
``drop``
    Columns removed (constant or identifier columns); requests may still send them.
``columns``
    Per column, one of

    - ``{"kind": "number", "thousands": ",", "clip": [low, high]}``: text such as
      ``" 1,234 "`` becomes ``1234.0``; values are clipped when ``clip`` is set;
    - ``{"kind": "boolean"}``: ``yes``/``no``, ``true``/``false``, ``y``/``n`` become 1/0;
    - ``{"kind": "datetime", "format": "%m/%d/%Y"}``: dates become ISO 8601 text;
    - ``{"kind": "category", "canonical": {"male": "Male"}, "rare": ["Holand-Netherlands"],
      "other": "__rare__"}``: spaces are trimmed and collapsed, spellings that differ only by
      case become the most frequent one, and categories rare in training become ``other``.
``indicators``
    Columns that get a ``<column>__missing`` companion: 1 when the value is missing, else 0.

Values that cannot be coerced are left as they are, so the data contract (checked after
cleaning) reports them instead of cleaning hiding them. No pandas or scikit-learn is used here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from shipyard.errors import DataError
from shipyard.runtime.validate import number_range_problem

__all__ = ["CLEANING_VERSION", "INDICATOR_SUFFIX", "Cleaner", "clean_frame"]

CLEANING_VERSION = 1
INDICATOR_SUFFIX = "__missing"
TRUE_WORDS = frozenset({"yes", "true", "y", "t"})
FALSE_WORDS = frozenset({"no", "false", "n", "f"})
_SPACES = re.compile(r"\s+")

Step = Callable[[Any], Any]


def is_missing(value: Any) -> bool:
    """Whether a value is None or a float NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _past_float64(value: int | float) -> bool:
    """Whether ``value`` is an integer too large for a float64 (Python's json reads those)."""
    return isinstance(value, int) and number_range_problem(value) is not None


def _number_step(rule: Mapping[str, Any], missing: frozenset[str]) -> Step:
    thousands = rule.get("thousands")
    low, high = rule.get("clip") or (None, None)

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text in missing:
                return None
            if thousands:
                text = text.replace(thousands, "")
            try:
                value = float(text)
            except ValueError:
                return value
        if isinstance(value, bool) or not isinstance(value, int | float) or is_missing(value):
            return value
        if _past_float64(value):
            return value  # left as it is for the contract to refuse, as text that is no number
        if low is not None and value < low:
            return float(low)
        if high is not None and value > high:
            return float(high)
        return value

    return clean


def _boolean_step(missing: frozenset[str]) -> Step:
    def clean(value: Any) -> Any:
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, str):
            word = value.strip().lower()
            if value.strip() in missing:
                return None
            if word in TRUE_WORDS or word == "1":
                return 1
            if word in FALSE_WORDS or word == "0":
                return 0
        return value

    return clean


def _datetime_step(rule: Mapping[str, Any], missing: frozenset[str]) -> Step:
    pattern = rule.get("format")

    def clean(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text in missing:
            return None
        # The fitted format first, then ISO 8601, so cleaned (ISO) values clean to themselves.
        if pattern:
            try:
                return datetime.strptime(text, pattern).isoformat()
            except ValueError:
                pass
        try:
            return datetime.fromisoformat(text).isoformat()
        except ValueError:
            return value

    return clean


def _category_step(rule: Mapping[str, Any], missing: frozenset[str]) -> Step:
    canonical: dict[str, str] = dict(rule.get("canonical", {}))
    rare = frozenset(rule.get("rare", ()))
    other = str(rule.get("other", "__rare__"))

    def clean(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = _SPACES.sub(" ", value.strip())
        if text in missing:
            return None
        text = canonical.get(text.casefold(), text)
        return other if text in rare else text

    return clean


def _as_numbers(values: list[Any]) -> Any:
    """Return a float array (NaN for missing) when every value is a float64, else the list."""
    if all(
        value is None
        or (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and not _past_float64(value)
        )
        for value in values
    ):
        return np.array([np.nan if value is None else value for value in values], np.float64)
    return values


class Cleaner:
    """Run a cleaning spec on records (plain Python) or on column batches.

    Parameters
    ----------
    spec
        The spec written by :func:`shipyard.data.clean.fit_cleaner`.
    """

    def __init__(self, spec: Mapping[str, Any]) -> None:
        if spec.get("version") != CLEANING_VERSION:
            raise DataError(
                f"Cleaning spec version {spec.get('version')!r} is not supported by this "
                f"shipyard (expects {CLEANING_VERSION}); upgrade shipyard or re-train the model."
            )
        self.spec = dict(spec)
        missing = frozenset(spec.get("missing_tokens", ()))
        self.drop = frozenset(spec.get("drop", ()))
        self.indicators = list(spec.get("indicators", ()))
        self.steps: dict[str, Step] = {}
        self.numeric_columns: dict[str, tuple[float | None, float | None]] = {}
        # Columns whose cleaned values are numbers (or missing): batches return float arrays.
        self.numbers = frozenset(
            name
            for name, rule in spec.get("columns", {}).items()
            if rule["kind"] in ("number", "boolean")
        )
        for name, rule in spec.get("columns", {}).items():
            kind = rule["kind"]
            if kind == "number":
                self.steps[name] = _number_step(rule, missing)
                low, high = rule.get("clip") or (None, None)
                self.numeric_columns[name] = (low, high)
            elif kind == "boolean":
                self.steps[name] = _boolean_step(missing)
            elif kind == "datetime":
                self.steps[name] = _datetime_step(rule, missing)
            elif kind == "category":
                self.steps[name] = _category_step(rule, missing)
            else:
                raise DataError(f"Cleaning spec: column '{name}' has unknown kind {kind!r}.")

    def clean_record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Return a cleaned copy of one record (a mapping that is not a dict is copied too)."""
        cleaned = {name: value for name, value in record.items() if name not in self.drop}
        for name, step in self.steps.items():
            if name in cleaned:
                cleaned[name] = step(cleaned[name])
        for name in self.indicators:
            if name in cleaned or name in self.steps:
                cleaned[name + INDICATOR_SUFFIX] = int(is_missing(cleaned.get(name)))
        return cleaned

    def clean_records(self, records: Sequence[Any]) -> list[Any]:
        """Clean each mapping in a list; anything else is passed on for the validator to refuse."""
        return [
            self.clean_record(record) if isinstance(record, Mapping) else record
            for record in records
        ]

    def clean_columns(self, columns: Mapping[str, Any]) -> dict[str, Any]:
        """Clean a batch held as columns (numpy arrays or lists); return new columns.

        Float columns with nothing to coerce take a vectorised path (``numpy.clip``);
        other columns apply the per-value step once per value.
        """
        cleaned: dict[str, Any] = {}
        for name, values in columns.items():
            if name in self.drop:
                continue
            step = self.steps.get(name)
            if step is None:
                cleaned[name] = values
                continue
            array = np.asarray(values)
            if name in self.numeric_columns and array.dtype.kind in "fiu":
                low, high = self.numeric_columns[name]
                # Integers stay integers unless clipping makes them floats, as one by one.
                if low is not None or high is not None:
                    array = np.clip(array.astype(np.float64), low, high)
                cleaned[name] = array
            else:
                values = [step(value) for value in array.tolist()]
                cleaned[name] = _as_numbers(values) if name in self.numbers else values
                if not isinstance(cleaned[name], np.ndarray):
                    cleaned[name] = np.array(values, dtype=object)
        for name in self.indicators:
            if name not in cleaned:
                continue
            array = np.asarray(cleaned[name])
            if array.dtype.kind == "f":
                flags = np.isnan(array)
            else:
                flags = np.array([is_missing(value) for value in array.tolist()], dtype=bool)
            cleaned[name + INDICATOR_SUFFIX] = flags.astype(np.int64)
        return cleaned


def clean_frame(frame: Any, spec: dict[str, Any]) -> Any:
    """Apply a cleaning spec to a pandas frame through the batch path; return a new frame."""
    import pandas as pd

    cleaner = Cleaner(spec)
    columns = {
        str(name): frame[name].to_numpy(dtype=object, na_value=None)
        if not pd.api.types.is_numeric_dtype(frame[name])
        else frame[name].to_numpy()
        for name in frame.columns
    }
    cleaned = cleaner.clean_columns(columns)
    return pd.DataFrame(cleaned, index=frame.index)
