from __future__ import annotations

import math
import sys
from typing import Any

import pytest

from shipyard import datasets
from shipyard.data.contract import ColumnContract, Contract, infer_contract
from shipyard.runtime.validate import RecordValidationError, RecordValidator


@pytest.fixture(scope="module")
def contract(adult: datasets.Dataset) -> Contract:
    return infer_contract(adult.train, "income", drop=["fnlwgt"])


@pytest.fixture(scope="module")
def validator(contract: Contract) -> RecordValidator:
    return RecordValidator(contract)


@pytest.fixture
def record(adult: datasets.Dataset) -> dict[str, Any]:
    row = adult.train.iloc[0].drop(["income", "fnlwgt"]).to_dict()
    return {key: value.item() if hasattr(value, "item") else value for key, value in row.items()}


def only_problem(validator: RecordValidator, record: Any) -> dict[str, Any]:
    problems = validator.problems(record)
    assert len(problems) == 1, problems
    return problems[0]


def test_a_real_record_is_valid(validator: RecordValidator, record: dict[str, Any]) -> None:
    assert validator.problems(record) == []
    validator.check_records([record, record])


def test_missing_required_field(validator: RecordValidator, record: dict[str, Any]) -> None:
    del record["age"]
    problem = only_problem(validator, record)
    assert problem["field"] == "age"
    assert problem["error"] == "required field is missing"
    assert problem["expected"] == "an integer >= 0"


def test_null_in_a_required_field(validator: RecordValidator, record: dict[str, Any]) -> None:
    record["sex"] = None
    assert only_problem(validator, record) | {"expected": ""} == {
        "field": "sex",
        "error": "must not be null",
        "expected": "",
    }


@pytest.mark.parametrize("value", ["39", True, [39], {"years": 39}])
def test_wrong_type_for_a_number(
    validator: RecordValidator, record: dict[str, Any], value: object
) -> None:
    record["age"] = value
    problem = only_problem(validator, record)
    assert problem["field"] == "age"
    assert problem["error"].startswith(f"expected a number, got {type(value).__name__}")


def test_fractional_value_for_an_integer(
    validator: RecordValidator, record: dict[str, Any]
) -> None:
    record["age"] = 39.5
    assert only_problem(validator, record)["error"] == "expected an integer, got 39.5"
    record["age"] = 39.0
    assert validator.problems(record) == []


def test_infinite_number(validator: RecordValidator, record: dict[str, Any]) -> None:
    record["hours-per-week"] = math.inf
    assert only_problem(validator, record)["error"] == (
        "must be finite: expected a finite number, got inf"
    )


@pytest.mark.parametrize("value", [10**309, -(10**309), int(sys.float_info.max) + 2**971])
def test_integer_past_float64_is_refused_before_any_arithmetic(
    validator: RecordValidator, record: dict[str, Any], value: int
) -> None:
    record["hours-per-week"] = value
    error = only_problem(validator, record)["error"]
    assert "within float64's range" in error
    assert f"got an integer of {len(str(abs(value)))} digits" in error


def test_largest_float64_integer_is_a_number(
    validator: RecordValidator, record: dict[str, Any]
) -> None:
    record["capital-gain"] = int(sys.float_info.max)
    # Within float64's range: whatever else the contract says, the range check passes it.
    assert all("float64" not in problem["error"] for problem in validator.problems(record))


def test_long_values_are_cut_in_messages(
    validator: RecordValidator, record: dict[str, Any]
) -> None:
    record["age"] = "x" * 10_000
    error = only_problem(validator, record)["error"]
    assert len(error) < 200
    assert error.endswith("...")


def test_below_the_minimum(validator: RecordValidator, record: dict[str, Any]) -> None:
    record["capital-gain"] = -5
    problem = only_problem(validator, record)
    assert problem["field"] == "capital-gain"
    assert problem["error"] == "-5 is below the minimum 0"


def test_unknown_category_suggests_the_nearest(
    validator: RecordValidator, record: dict[str, Any]
) -> None:
    record["workclass"] = "Privat"
    problem = only_problem(validator, record)
    assert problem["field"] == "workclass"
    assert problem["error"] == "unknown category 'Privat'; did you mean 'Private'?"
    assert "'Private'" in problem["expected"]


def test_number_for_a_category(validator: RecordValidator, record: dict[str, Any]) -> None:
    record["sex"] = 1
    assert only_problem(validator, record)["error"] == "expected a string, got int 1"


def test_unknown_field_suggests_the_nearest(
    validator: RecordValidator, record: dict[str, Any]
) -> None:
    record["hours_per_week"] = record.pop("hours-per-week")
    problems = validator.problems(record)
    assert {
        "field": "hours_per_week",
        "error": "unknown field; did you mean 'hours-per-week'?",
    } in problems
    assert any(
        p["field"] == "hours-per-week" and p["error"] == "required field is missing"
        for p in problems
    )


def test_unknown_field_without_a_near_name(
    validator: RecordValidator, record: dict[str, Any]
) -> None:
    record["zzz"] = 1
    assert (
        only_problem(validator, record)["error"]
        == "unknown field; remove it or add it to the contract"
    )


def test_ignored_columns_and_the_target_are_tolerated(
    validator: RecordValidator, record: dict[str, Any]
) -> None:
    assert validator.problems({**record, "fnlwgt": 1, "income": ">50K"}) == []


def test_unknown_fields_can_be_ignored(contract: Contract, record: dict[str, Any]) -> None:
    assert RecordValidator(contract, unknown_fields="ignore").problems({**record, "x": 1}) == []


def test_nullable_fields_accept_none(validator: RecordValidator, record: dict[str, Any]) -> None:
    assert validator.contract.column("workclass").nullable
    record["workclass"] = None
    record["occupation"] = float("nan")
    del record["native-country"]
    assert validator.problems(record) == []


@pytest.mark.parametrize("value", [["age", 39], "age=39", 39, None])
def test_a_record_must_be_an_object(validator: RecordValidator, value: object) -> None:
    problem = only_problem(validator, value)
    assert problem["field"] is None
    assert problem["error"].startswith("each record must be a JSON object")
    assert type(value).__name__ in problem["error"]


def test_boolean_columns() -> None:
    contract = Contract(
        target=ColumnContract(name="y", type="integer"),
        columns=(ColumnContract(name="flag", type="boolean"),),
    )
    validator = RecordValidator(contract)
    for good in (True, False, 0, 1):
        assert validator.problems({"flag": good}) == []
    assert validator.problems({"flag": "yes"})[0]["error"] == "expected true or false, got 'yes'"


def test_check_records_lists_every_problem_with_its_record(
    validator: RecordValidator, record: dict[str, Any]
) -> None:
    bad = {**record, "age": "old", "sex": "Mal"}
    with pytest.raises(RecordValidationError) as caught:
        validator.check_records([record, bad, "nope"])
    assert str(caught.value).startswith(
        "3 problem(s) in the request; first: record 1, field 'age': expected a number"
    )
    assert [(v["record"], v["field"]) for v in caught.value.violations] == [
        (1, "age"),
        (1, "sex"),
        (2, None),
    ]
