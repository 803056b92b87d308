from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from shipyard.monitoring.sketch import CategoricalSketch, NumericSketch, _is_missing

EDGES = [-1.0, 0.0, 0.5, 2.0, 1e10]
CATEGORIES = ["1", "True", "a", "b"]


def value_by_value_numeric(values):
    """The sketch update as it was first written: float() of each value."""
    numbers = np.asarray([np.nan if _is_missing(v) else float(v) for v in values], dtype=float)
    present = numbers[~np.isnan(numbers)]
    counts = [0] * (len(EDGES) + 1)
    for position in np.searchsorted(np.asarray(EDGES), present, side="left"):
        counts[int(position)] += 1
    return counts, int(np.isnan(numbers).sum())


def value_by_value_categorical(values):
    counts, missing = [0] * (len(CATEGORIES) + 1), 0
    for value in values:
        if _is_missing(value):
            missing += 1
        elif str(value) in CATEGORIES:
            counts[CATEGORIES.index(str(value))] += 1
        else:
            counts[-1] += 1
    return counts, missing


numbers = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
)


@given(st.one_of(st.lists(numbers), st.lists(st.integers(-3, 3)), st.lists(st.floats(-2, 3))))
def test_numeric_update_counts_as_float_of_each_value(values):
    sketch = NumericSketch(edges=list(EDGES), counts=[0] * (len(EDGES) + 1))
    sketch.update(values)
    assert (sketch.counts, sketch.missing) == value_by_value_numeric(values)
    again = NumericSketch(edges=list(EDGES), counts=[0] * (len(EDGES) + 1))
    again.update(iter(values))  # any iterable, not only lists
    assert again.counts == sketch.counts


def test_numeric_update_takes_arrays_and_text_numbers():
    sketch = NumericSketch(edges=list(EDGES), counts=[0] * (len(EDGES) + 1))
    sketch.update(np.array([0.1, np.nan, 3.0]))
    sketch.update(["0.25", None, 7])
    assert (sketch.counts, sketch.missing) == ([0, 0, 2, 0, 2, 0], 2)


@given(
    st.one_of(
        st.lists(st.sampled_from(["a", "b", "c", "1", "True"])),
        st.lists(st.one_of(st.none(), st.booleans(), st.integers(0, 2), st.floats(), st.text())),
    )
)
def test_categorical_update_counts_as_str_of_each_value(values):
    sketch = CategoricalSketch(categories=list(CATEGORIES), counts=[0] * (len(CATEGORIES) + 1))
    sketch.update(values)
    assert (sketch.counts, sketch.missing) == value_by_value_categorical(values)
    again = CategoricalSketch(categories=list(CATEGORIES), counts=[0] * (len(CATEGORIES) + 1))
    again.update(value for value in values)
    assert again.counts == sketch.counts


def test_categorical_update_takes_unhashable_values():
    sketch = CategoricalSketch(categories=list(CATEGORIES), counts=[0] * (len(CATEGORIES) + 1))
    sketch.update([["a"], "a", {"b": 1}])
    assert sketch.counts == [0, 0, 1, 0, 2]


def test_a_whole_number_is_one_category_as_an_integer_or_a_float():
    # Served JSON gives 1, a training column with missing values gives 1.0: the same category.
    reference = CategoricalSketch.from_values([1.0, 2.0, float("nan"), 1.0])
    assert reference.categories == ["1", "2"]
    served = reference.empty()
    served.update([1, 1.0, 2, 3, None])
    assert served.counts == [2, 1, 1]
    assert served.missing == 1
    # A reference an earlier release wrote as "1.0" still counts the integer 1 as its own.
    earlier = CategoricalSketch(categories=["1.0", "2.0"], counts=[0, 0, 0])
    earlier.update([1, 2.0, 7])
    assert earlier.counts == [1, 1, 1]
