"""The vectorised contract shortcut never passes a frame the full check refuses."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipyard import datasets
from shipyard.data.contract import ColumnContract, Contract, infer_contract
from shipyard.runtime.frames import frame_passes


@pytest.fixture(scope="module")
def adult_contract() -> tuple[Contract, pd.DataFrame]:
    adult = datasets.load("adult")
    contract = infer_contract(adult.train, adult.target, drop=["fnlwgt"])
    return contract, adult.test[contract.feature_names]


def _breaks(contract: Contract, frame: pd.DataFrame) -> bool:
    return bool(contract.validate_frame(frame).violations)


def test_real_rows_pass_and_agree(adult_contract) -> None:
    contract, test = adult_contract
    frame = test.head(3000).copy()
    # Keep the rows the full check accepts, then both must accept the frame.
    problems = contract.row_problems(frame)
    frame = frame.drop(index=list(problems))
    assert not _breaks(contract, frame)
    assert frame_passes(contract, frame)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("age", -1),  # under min
        ("workclass", "Astronaut"),  # unknown category
        ("education", None),  # missing in a non-nullable column
        ("age", 30.5),  # not an integer
    ],
)
def test_each_broken_rule_is_left_to_the_full_check(adult_contract, column, value) -> None:
    contract, test = adult_contract
    frame = test.head(200).copy()
    frame = frame.drop(index=list(contract.row_problems(frame)))
    if isinstance(value, float):
        frame[column] = frame[column].astype(float)
    frame.loc[frame.index[5], column] = value
    assert _breaks(contract, frame)
    assert not frame_passes(contract, frame)


def test_missing_column_and_unknown_dtypes_are_not_proven(adult_contract) -> None:
    contract, test = adult_contract
    frame = test.head(100).drop(index=list(contract.row_problems(test.head(100))))
    assert not frame_passes(contract, frame.drop(columns=["age"]))
    as_objects = frame.astype({"workclass": object})
    assert not frame_passes(contract, as_objects)  # object columns: the full check decides


_CONTRACT = Contract(
    target=ColumnContract(name="y", type="integer", nullable=False),
    columns=(
        ColumnContract(name="n", type="number", nullable=True, min=-5.0, max=5.0),
        ColumnContract(name="i", type="integer", nullable=False, min=0.0),
        ColumnContract(name="b", type="boolean", nullable=False),
        ColumnContract(name="s", type="string", nullable=True, categories=["a", "b"]),
    ),
)
_NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64), st.sampled_from([0.0, 1.0, 5.0])
)


@given(
    numbers=st.lists(_NUMBERS, min_size=1, max_size=8),
    integers=st.lists(st.one_of(_NUMBERS, st.integers(-3, 3)), min_size=8, max_size=8),
    booleans=st.lists(st.sampled_from([0, 1, 2, 0.5]), min_size=8, max_size=8),
    strings=st.lists(st.sampled_from(["a", "b", "c", None]), min_size=8, max_size=8),
)
def test_shortcut_never_passes_what_the_full_check_refuses(
    numbers, integers, booleans, strings
) -> None:
    size = len(numbers)
    frame = pd.DataFrame(
        {
            "n": np.array(numbers, dtype=float),
            "i": pd.Series(integers[:size]).astype(float),
            "b": np.array(booleans[:size]),
            "s": pd.array(strings[:size], dtype="str"),
        }
    )
    if frame_passes(_CONTRACT, frame):
        assert not _breaks(_CONTRACT, frame)
