"""Hypothesis strategies shared by the test suite.

Property-based tests draw their inputs from here, so a new kind of hostile input joins every
test that uses the strategy.
"""

from __future__ import annotations

import sys
from typing import Any

from hypothesis import strategies as st

__all__ = ["hostile_json_values", "json_paths", "replace_at"]

# Integers past float64's range: Python's json module reads them, float() overflows on them.
_HUGE_INTEGERS = st.integers(min_value=int(sys.float_info.max), max_value=10**400) | st.integers(
    min_value=-(10**400), max_value=-int(sys.float_info.max)
)

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | _HUGE_INTEGERS
    | st.floats()  # NaN and the infinities included: Python's json writes and reads them
    | st.text(max_size=20)
)


def hostile_json_values() -> st.SearchStrategy[Any]:
    """Arbitrary JSON values: scalars of every kind (huge integers, NaN), lists and objects."""
    return st.recursive(
        _SCALARS,
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=8), children, max_size=3)
        ),
        max_leaves=6,
    )


def json_paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path (object keys and list indices) to a value inside ``document``."""
    found: list[tuple[Any, ...]] = []
    children: list[tuple[Any, Any]] = []
    if isinstance(document, dict):
        children = list(document.items())
    elif isinstance(document, list):
        children = list(enumerate(document))
    for key, child in children:
        path = (*prefix, key)
        found.append(path)
        found.extend(json_paths(child, path))
    return found


def replace_at(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    """Return a copy of ``document`` whose value at ``path`` is ``value`` (the root when empty)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(document, dict):
        return {**document, head: replace_at(document[head], rest, value)}
    copied = list(document)
    copied[head] = replace_at(copied[head], rest, value)
    return copied
