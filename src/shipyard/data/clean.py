"""Fitting the cleaning steps on training data, and applying them to frames.

:func:`fit_cleaner` looks at the training frame and writes a JSON spec (see
:mod:`shipyard.runtime.clean` for its format); :func:`clean_frame` runs the spec through the
same runtime code the server uses, so training and serving clean identically.
:func:`clean_training_frame` does both and also removes duplicate rows, returning every action
taken in words for the training report.

Examples
--------
>>> import pandas as pd
>>> frame = pd.DataFrame(
...     {"price": [" 1,200 ", "950", "?", "80"], "city": ["Paris ", "paris", "Lyon", "Paris"]}
... )
>>> spec, actions = fit_cleaner(frame, rare_share=0)
>>> clean_frame(frame, spec).to_dict("list")  # doctest: +NORMALIZE_WHITESPACE
{'price': [1200.0, 950.0, nan, 80.0], 'city': ['Paris', 'Paris', 'Lyon', 'Paris'],
 'price__missing': [0, 0, 1, 0]}
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shipyard.runtime.clean import (
    CLEANING_VERSION,
    FALSE_WORDS,
    INDICATOR_SUFFIX,
    TRUE_WORDS,
    clean_frame,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_MISSING_TOKENS",
    "CleaningResult",
    "clean_frame",
    "clean_training_frame",
    "fit_cleaner",
]

DEFAULT_MISSING_TOKENS = ("", "?", "NA", "N/A", "n/a", "na", "null", "NULL", "None", "NaN", "nan")
DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%m/%d/%Y", "%d/%m/%Y", "%Y/%m/%d", "%d.%m.%Y")
RARE_LABEL = "__rare__"
_SPACES = re.compile(r"\s+")
_NUMBER = re.compile(r"^[+-]?(\d{1,3}(,\d{3})+|\d+)?(\.\d+)?([eE][+-]?\d+)?$")


@dataclass
class CleaningResult:
    """A cleaned training frame, the fitted spec, and what was done, in words."""

    frame: pd.DataFrame
    spec: dict[str, Any]
    actions: list[str] = field(default_factory=list)


def _texts(series: pd.Series, missing: frozenset[str]) -> list[str]:
    """Present values of a text column, trimmed, without missing placeholders."""
    values = []
    for value in series.dropna().tolist():
        text = _SPACES.sub(" ", str(value).strip())
        if text not in missing:
            values.append(text)
    return values


def _date_format(values: list[str]) -> str | None:
    if not values or not all(re.search(r"\d[-/.]\d", value) for value in values[:100]):
        return None
    for pattern in DATE_FORMATS:
        try:
            for value in values:
                datetime.strptime(value, pattern)
        except ValueError:
            continue
        return pattern
    return None


def is_identifier(series: pd.Series) -> bool:
    """Row numbers and keys: every value differs (and integers fill a dense range)."""
    import pandas as pd

    present = series.dropna()
    if len(present) < 50 or present.nunique() != len(present):
        return False
    if pd.api.types.is_integer_dtype(present):
        return bool(int(present.max()) - int(present.min()) + 1 <= 2 * len(present))
    if pd.api.types.is_object_dtype(present) or pd.api.types.is_string_dtype(present):
        texts = present.astype(str)
        return bool(texts.str.len().mean() <= 40 and (~texts.str.contains(" ")).mean() > 0.9)
    return False


def fit_cleaner(
    frame: pd.DataFrame,
    target: str | None = None,
    *,
    keep: Iterable[str] = (),
    not_features: Iterable[str] = (),
    missing_tokens: Iterable[str] = DEFAULT_MISSING_TOKENS,
    rare_share: float = 0.001,
    clip_quantile: float | None = None,
    missing_indicators: bool = True,
    drop_constant: bool = True,
    drop_identifiers: bool = True,
) -> tuple[dict[str, Any], list[str]]:
    """Fit the cleaning steps on a frame; return the spec and the actions in words.

    Parameters
    ----------
    frame
        The training data.
    target
        The target column: never cleaned or dropped.
    keep
        Columns never dropped (for example the sensitive ones); they are still cleaned.
    not_features
        Columns never used as features (``data.drop``): cleaned, but given no missing
        indicator, which would smuggle them into the features (as ``<column>__missing``).
    missing_tokens
        Text values that mean "missing".
    rare_share
        Categories seen in fewer than this share of rows become ``__rare__`` (0 disables).
    clip_quantile
        When set (for example 0.001), numbers are clipped to this quantile and its mirror.
    missing_indicators
        Add a ``<column>__missing`` column for numeric columns with missing values.
    drop_constant, drop_identifiers
        Drop columns with one value, and identifier columns (every value differs).
    """
    import pandas as pd

    missing = frozenset(missing_tokens)
    kept = set(keep)
    ignored = set(not_features)
    columns: dict[str, dict[str, Any]] = {}
    drop: list[str] = []
    indicators: list[str] = []
    actions: list[str] = []
    for name in map(str, frame.columns):
        if name == target:
            continue
        series = frame[name]
        is_text = pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)
        values = _texts(series, missing) if is_text else []
        present = len(values) if is_text else int(series.notna().sum())
        distinct = len(set(values)) if is_text else int(series.nunique())
        if drop_constant and distinct <= 1 and name not in kept:
            drop.append(name)
            actions.append(f"dropped '{name}': constant ({distinct} distinct value)")
            continue
        if drop_identifiers and name not in kept and is_identifier(series):
            drop.append(name)
            actions.append(f"dropped '{name}': identifier (all {present} values differ)")
            continue
        rule: dict[str, Any]
        if is_text and values and all(_NUMBER.match(value) for value in values):
            rule = {"kind": "number", "thousands": ","}
            actions.append(f"coerced '{name}' from text to numbers")
        elif is_text and values and {v.lower() for v in values} <= TRUE_WORDS | FALSE_WORDS:
            rule = {"kind": "boolean"}
            actions.append(f"coerced '{name}' from yes/no text to 1/0")
        elif is_text and (pattern := _date_format(values)) is not None:
            rule = {"kind": "datetime", "format": pattern}
            actions.append(f"parsed '{name}' as dates ({pattern}) into ISO 8601")
        elif is_text:
            rule = _category_rule(name, values, len(frame), rare_share, actions)
        elif pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            rule = {"kind": "number", "thousands": ","}
        else:
            continue
        tokens_found = int(series.notna().sum()) - present if is_text else 0
        if tokens_found:
            actions.append(f"'{name}': {tokens_found} placeholder values (such as '?') → missing")
        if rule["kind"] == "number" and clip_quantile:
            numbers = pd.to_numeric(
                series.astype(str).str.strip().str.replace(",", ""), errors="coerce"
            )
            low, high = numbers.quantile([clip_quantile, 1 - clip_quantile]).tolist()
            if pd.notna(low) and pd.notna(high) and low < high:
                rule["clip"] = [float(low), float(high)]
                outside = int(((numbers < low) | (numbers > high)).sum())
                actions.append(
                    f"clipped '{name}' to [{low:g}, {high:g}] ({outside} values outside)"
                )
        if (
            missing_indicators
            and name not in ignored
            and rule["kind"] == "number"
            and present < len(series)
            and name + INDICATOR_SUFFIX not in frame.columns
        ):
            indicators.append(name)
            actions.append(
                f"added '{name}{INDICATOR_SUFFIX}' marking its "
                f"{len(series) - present} missing values"
            )
        columns[name] = rule
    spec = {
        "version": CLEANING_VERSION,
        "missing_tokens": sorted(missing),
        "drop": drop,
        "columns": columns,
        "indicators": indicators,
    }
    return spec, actions


def _category_rule(
    name: str, values: list[str], rows: int, rare_share: float, actions: list[str]
) -> dict[str, Any]:
    from collections import Counter

    counts = Counter(values)
    spellings: dict[str, list[str]] = {}
    for value in counts:
        spellings.setdefault(value.casefold(), []).append(value)
    # Spellings that differ only by case become the most frequent one.
    canonical = {}
    for folded, forms in spellings.items():
        if len(forms) > 1:
            # Ties go to a capitalised spelling ('Paris' over 'paris' and 'PARIS').
            winner = max(
                forms,
                key=lambda form: (counts[form], form[:1].isupper(), not form.isupper(), form),
            )
            canonical[folded] = winner
            actions.append(
                f"'{name}': merged {', '.join(repr(f) for f in sorted(forms) if f != winner)}"
                f" into {winner!r} (case)"
            )
    merged: Counter[str] = Counter()
    for value, count in counts.items():
        merged[canonical.get(value.casefold(), value)] += count
    rare = sorted(value for value, count in merged.items() if count < rare_share * rows)
    if len(rare) >= 2:
        actions.append(
            f"'{name}': grouped {len(rare)} rare categories (under {rare_share:.1%} of rows) "
            f"into '{RARE_LABEL}'"
        )
    else:
        rare = []
    return {"kind": "category", "canonical": canonical, "rare": rare, "other": RARE_LABEL}


def clean_training_frame(
    frame: pd.DataFrame,
    target: str,
    *,
    drop_duplicates: bool = True,
    **options: Any,
) -> CleaningResult:
    """Fit the cleaner on training data, clean it, and remove duplicate rows.

    ``options`` are passed to :func:`fit_cleaner`.
    """
    spec, actions = fit_cleaner(frame, target, **options)
    cleaned = clean_frame(frame, spec)
    if drop_duplicates:
        duplicated = cleaned.duplicated()
        if duplicated.any():
            cleaned = cleaned[~duplicated].reset_index(drop=True)
            actions.append(f"removed {int(duplicated.sum())} duplicate rows")
    return CleaningResult(cleaned, spec, actions)
