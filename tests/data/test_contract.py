from __future__ import annotations

import re
import string
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import pandas as hpd

from shipyard import datasets
from shipyard.data.contract import ColumnContract, Contract, infer_contract
from shipyard.errors import DataError, DataValidationError

# -- inference --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def adult_contract(adult: datasets.Dataset) -> Contract:
    return infer_contract(adult.train, "income")


def test_infers_types_nullability_limits_and_categories(adult_contract: Contract) -> None:
    age = adult_contract.column("age")
    assert (age.type, age.nullable, age.min, age.max) == ("integer", False, 0.0, None)
    workclass = adult_contract.column("workclass")
    assert workclass.type == "string"
    assert workclass.nullable  # '?' in the source became missing
    assert "Private" in workclass.categories
    assert list(workclass.categories) == sorted(workclass.categories)
    assert adult_contract.column("sex").categories == ("Female", "Male")
    assert not adult_contract.column("sex").nullable
    assert adult_contract.target.name == "income"
    assert adult_contract.target.categories == ("<=50K", ">50K")
    assert "income" not in adult_contract.feature_names
    assert len(adult_contract.feature_names) == 14
    assert adult_contract.ignored == ()


def test_adult_satisfies_its_own_contract(
    adult: datasets.Dataset, adult_contract: Contract
) -> None:
    assert adult_contract.validate_frame(adult.train, with_target=True).ok


def test_adult_test_split_breaks_no_rule_except_unseen_categories(
    adult: datasets.Dataset, adult_contract: Contract
) -> None:
    report = adult_contract.validate_frame(adult.test, with_target=True)
    assert set(report.counts) <= {"category"}


def test_negative_numbers_get_no_minimum_and_floats_are_numbers() -> None:
    frame = pd.DataFrame({"delta": [-1.5, 2.0, 3.0], "flag": [True, False, True], "y": [0, 1, 0]})
    contract = infer_contract(frame, "y")
    assert contract.column("delta") == ColumnContract(name="delta", type="number")
    assert contract.column("flag").type == "boolean"
    assert contract.target.type == "integer"


def test_identifiers_dates_and_dropped_columns_are_ignored() -> None:
    frame = pd.DataFrame(
        {
            "id": [f"row-{i}" for i in range(50)],
            "when": pd.date_range("2024-01-01", periods=50),
            "note": ["x"] * 50,
            "size": np.arange(50.0),
            "y": [0, 1] * 25,
        }
    )
    contract = infer_contract(frame, "y", drop=["note"])
    assert contract.feature_names == ["size"]
    assert set(contract.ignored) == {"id", "when", "note"}


def test_missing_target_suggests_the_nearest_column() -> None:
    frame = pd.DataFrame({"income": ["a", "b"], "age": [1, 2]})
    with pytest.raises(DataError, match="Did you mean 'income'"):
        infer_contract(frame, "incme")


def test_target_with_missing_values_is_refused() -> None:
    frame = pd.DataFrame({"x": [1, 2, 3], "y": [0, None, 1]})
    with pytest.raises(DataError, match="1 missing values"):
        infer_contract(frame, "y")


def test_no_usable_feature_is_refused() -> None:
    frame = pd.DataFrame({"id": [str(i) for i in range(40)], "y": [0, 1] * 20})
    with pytest.raises(DataError, match="No usable feature column"):
        infer_contract(frame, "y")


# -- YAML ----------------------------------------------------------------------------------------


def test_yaml_round_trip(adult_contract: Contract, tmp_path: Path) -> None:
    text = adult_contract.to_yaml()
    assert Contract.from_yaml(text) == adult_contract
    path = tmp_path / "contract.yaml"
    path.write_text(text, encoding="utf-8")
    assert Contract.load(path) == adult_contract
    assert ": null" not in text  # unset limits are left out, so the file stays readable


def test_from_yaml_explains_schema_errors() -> None:
    text = "target: {name: y, type: integer}\ncolumns:\n  - {name: a, type: float}\n"
    with pytest.raises(DataError, match=r"not a valid data contract: columns\.0\.type"):
        Contract.from_yaml(text)
    with pytest.raises(DataError, match="not valid YAML"):
        Contract.from_yaml("columns: [unclosed")


def test_unknown_column_suggests_the_nearest(adult_contract: Contract) -> None:
    with pytest.raises(DataError, match=re.escape("no feature column 'agee'. Did you mean 'age'")):
        adult_contract.column("agee")


# -- validation -----------------------------------------------------------------------------------

SMALL = Contract(
    target=ColumnContract(name="y", type="string", categories=("no", "yes")),
    columns=(
        ColumnContract(name="amount", type="number", min=0.0),
        ColumnContract(name="count", type="integer", nullable=True, max=10.0),
        ColumnContract(name="colour", type="string", categories=("blue", "red")),
        ColumnContract(name="flag", type="boolean"),
    ),
)


def test_report_names_column_row_value_and_rule() -> None:
    frame = pd.DataFrame(
        {
            "amount": [1.0, -2.0, 3.0],
            "count": [1, 2, 30],
            "colour": ["red", "blue", "gren"],
            "flag": [True, False, True],
            "y": ["no", "yes", "no"],
        },
        index=[10, 11, 12],
    )
    report = SMALL.validate_frame(frame, with_target=True)
    found = {(v.column, v.row, v.value, v.rule) for v in report.violations}
    assert found == {
        ("amount", 11, -2.0, "min"),
        ("count", 12, 30, "max"),
        ("colour", 12, "gren", "category"),
    }
    assert report.counts == {"min": 1, "max": 1, "category": 1}
    assert not report.ok
    colour = next(v for v in report.violations if v.column == "colour")
    assert colour.expected == "one of 'blue', 'red'"
    assert "row 11, column 'amount': -2.0 breaks 'min'" in report.summary()


def test_types_nulls_and_missing_columns() -> None:
    frame = pd.DataFrame(
        {"amount": ["1.5", "lots", None], "count": [1.0, 2.5, None], "flag": [1, 0, 2]}
    )
    report = SMALL.validate_frame(frame)
    found = {(v.column, v.row, v.rule) for v in report.violations}
    assert found == {
        ("amount", 1, "type"),
        ("amount", 2, "not_null"),
        ("count", 1, "type"),
        ("flag", 2, "type"),
        ("colour", None, "missing_column"),
    }


def test_complex_numbers_and_dates_are_not_numbers() -> None:
    frame = pd.DataFrame(
        {
            "amount": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "count": pd.Series([1, 2j], dtype=object),
            "colour": ["red", "red"],
            "flag": [True, False],
        }
    )
    report = SMALL.validate_frame(frame)
    found = {(v.column, v.row, v.rule) for v in report.violations}
    assert found == {("amount", 0, "type"), ("amount", 1, "type"), ("count", 1, "type")}


def test_raise_if_failed_carries_the_violations() -> None:
    frame = pd.DataFrame({"amount": [-1.0], "count": [1], "colour": ["red"], "flag": [True]})
    SMALL.validate_frame(frame.assign(amount=[1.0])).raise_if_failed("ok data")
    with pytest.raises(DataValidationError, match="The batch does not satisfy") as caught:
        SMALL.validate_frame(frame).raise_if_failed("The batch")
    assert caught.value.violations == [
        {"column": "amount", "row": 0, "value": -1.0, "rule": "min", "expected": "a number >= 0"}
    ]


def test_stored_violations_are_capped_but_counted() -> None:
    n = 1500
    frame = pd.DataFrame(
        {"amount": [-1.0] * n, "count": [1] * n, "colour": ["red"] * n, "flag": [True] * n}
    )
    report = SMALL.validate_frame(frame)
    assert report.counts == {"min": n}
    assert len(report.violations) == 1000
    assert "and 1495 more" in report.summary()


# -- properties ---------------------------------------------------------------------------------

texts = st.text(alphabet=string.ascii_letters + " -", max_size=6)
any_column = st.one_of(
    st.sampled_from([int, float, bool, complex, "datetime64[ns]"]).map(
        lambda dtype: {"dtype": dtype}
    ),
    st.just(
        {
            "elements": st.one_of(
                st.none(),
                st.integers(),
                st.floats(),
                texts,
                st.booleans(),
                st.complex_numbers(),
                st.binary(max_size=3),
                st.datetimes(),
                st.lists(st.integers(), max_size=2),
            ),
            "dtype": object,
        }
    ),
    st.just({"elements": texts | st.none(), "dtype": object}),
)


@st.composite
def arbitrary_frames(draw: st.DrawFn) -> pd.DataFrame:
    names = draw(
        st.lists(
            st.sampled_from(["amount", "count", "colour", "flag", "y", "other"]),
            unique=True,
            max_size=6,
        )
    )
    columns = [hpd.column(name, **draw(any_column)) for name in names]
    return draw(hpd.data_frames(columns, index=hpd.range_indexes(max_size=12)))


@given(arbitrary_frames())
def test_validation_reports_instead_of_crashing_on_arbitrary_frames(frame: pd.DataFrame) -> None:
    try:
        report = SMALL.validate_frame(frame, with_target=True)
    except DataError:
        return
    assert report.n_rows == len(frame)
    assert sum(report.counts.values()) >= len(report.violations)
    for violation in report.violations:
        assert violation.column in {"amount", "count", "colour", "flag", "y"}
        assert violation.row is None or violation.row in frame.index


def valid_values(column: ColumnContract) -> st.SearchStrategy[object]:
    if column.type == "string":
        values: st.SearchStrategy[object] = st.sampled_from(column.categories or ("a",))
    elif column.type == "boolean":
        values = st.booleans()
    elif column.type == "integer":
        values = st.integers(
            int(column.min if column.min is not None else -1000),
            int(column.max if column.max is not None else 1000),
        )
    else:
        values = st.floats(
            column.min if column.min is not None else -1e6,
            column.max if column.max is not None else 1e6,
        )
    return values | st.none() if column.nullable else values


def breaking_value(column: ColumnContract) -> object:
    if not column.nullable:
        return None
    if column.type == "string":
        return "not-a-category"
    if column.type == "boolean":
        return "maybe"
    if column.max is not None:
        return column.max + 1
    return column.min - 1 if column.min is not None else "text"


@st.composite
def valid_columns(draw: st.DrawFn, contract: Contract, n_rows: int) -> dict[str, list[object]]:
    return {
        column.name: draw(st.lists(valid_values(column), min_size=n_rows, max_size=n_rows))
        for column in contract.columns
    }


@given(st.data())
def test_valid_frames_pass_and_one_broken_cell_is_one_violation(data: st.DataObject) -> None:
    n_rows = data.draw(st.integers(1, 15), label="rows")
    values = data.draw(valid_columns(SMALL, n_rows), label="values")
    assert SMALL.validate_frame(pd.DataFrame(values)).ok

    column = data.draw(st.sampled_from(SMALL.columns), label="column")
    row = data.draw(st.integers(0, n_rows - 1), label="row")
    values[column.name][row] = breaking_value(column)
    report = SMALL.validate_frame(pd.DataFrame(values))
    assert len(report.violations) == 1
    assert sum(report.counts.values()) == 1
    assert (report.violations[0].column, report.violations[0].row) == (column.name, row)


@given(st.data())
def test_adult_shaped_frames_pass_the_adult_contract(
    adult_contract: Contract, data: st.DataObject
) -> None:
    values = data.draw(valid_columns(adult_contract, 5))
    assert adult_contract.validate_frame(pd.DataFrame(values)).ok


# -- properties of the rules set by hand (uniqueness, text length) and of the YAML form -------

names = st.text(alphabet=string.ascii_letters + "_- ", min_size=1, max_size=10)
limits = st.none() | st.floats(-1e9, 1e9, allow_nan=False).map(lambda x: round(x, 3))


@st.composite
def contracts(draw: st.DrawFn) -> Contract:
    def column(name: str) -> ColumnContract:
        kind = draw(st.sampled_from(["number", "integer", "string", "boolean"]))
        low, high = sorted([draw(limits) or 0.0, draw(limits) or 0.0])
        numeric = kind in ("number", "integer")
        categories = (
            tuple(sorted(draw(st.sets(texts.filter(bool), min_size=1, max_size=4))))
            if kind == "string"
            else None
        )
        shortest = draw(st.none() | st.integers(0, 3)) if kind == "string" else None
        return ColumnContract(
            name=name,
            type=kind,  # type: ignore[arg-type]
            nullable=draw(st.booleans()),
            min=low if numeric and draw(st.booleans()) else None,
            max=high if numeric and draw(st.booleans()) else None,
            categories=categories,
            unique=draw(st.booleans()),
            min_length=shortest,
            max_length=None if shortest is None else shortest + draw(st.integers(0, 5)),
        )

    chosen = draw(st.lists(names, min_size=2, max_size=6, unique=True))
    return Contract(
        target=column(chosen[0]),
        columns=tuple(column(name) for name in chosen[1:]),
        ignored=tuple(draw(st.lists(names, max_size=2))),
    )


@given(contracts())
def test_any_contract_survives_a_yaml_round_trip(contract: Contract) -> None:
    assert Contract.from_yaml(contract.to_yaml()) == contract


@given(contracts(), arbitrary_frames())
def test_generated_contracts_never_crash_on_arbitrary_frames(
    contract: Contract, frame: pd.DataFrame
) -> None:
    # Give the frame's columns the contract's names (extra columns get names of their own).
    wanted = [column.name for column in (*contract.columns, contract.target)]
    wanted += [f"extra {index}" for index in range(frame.shape[1])]
    frame = frame.set_axis(wanted[: frame.shape[1]], axis=1)
    try:
        report = contract.validate_frame(frame, with_target=True)
    except DataValidationError:
        return
    assert report.n_rows == len(frame)
    problems = contract.row_problems(frame, with_target=True)
    assert set(problems) <= set(frame.index)
