from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from shipyard import datasets
from shipyard.data.contract import ColumnContract, Contract, infer_contract
from shipyard.data.validate import validate_file
from shipyard.errors import DataError, DataValidationError


@pytest.fixture(scope="module")
def contract(adult: datasets.Dataset) -> Contract:
    return infer_contract(adult.train, "income")


@pytest.fixture
def broken_file(adult: datasets.Dataset, tmp_path: Path) -> Path:
    frame = adult.train.head(1000).copy()
    frame.loc[3, "age"] = -4
    frame.loc[500, "sex"] = "Unknown"
    frame.loc[999, "education"] = None
    path = tmp_path / "adult.csv"
    frame.to_csv(path, index=False)
    return path


def test_fail_policy_reports_column_row_value_rule(contract: Contract, broken_file: Path) -> None:
    with pytest.raises(DataValidationError) as caught:
        validate_file(broken_file, contract, chunk_size=300)
    found = {(v["column"], v["row"], v["rule"]) for v in caught.value.violations}
    assert found == {("age", 3, "min"), ("sex", 500, "category"), ("education", 999, "not_null")}
    assert "min: 1" in str(caught.value)


def test_warn_policy_returns_every_violation(contract: Contract, broken_file: Path) -> None:
    result = validate_file(broken_file, contract, policy="warn", chunk_size=250)
    assert result.report.n_rows == 1000
    assert result.report.counts == {"min": 1, "category": 1, "not_null": 1}
    assert [v.value for v in result.report.violations if v.rule == "min"] == [-4]


def test_quarantine_writes_bad_rows_with_reasons_and_keeps_the_rest(
    contract: Contract, broken_file: Path, tmp_path: Path
) -> None:
    result = validate_file(
        broken_file,
        contract,
        policy="quarantine",
        quarantine_path=tmp_path / "bad.csv",
        clean_path=tmp_path / "good.csv",
        chunk_size=400,
    )
    bad = pd.read_csv(tmp_path / "bad.csv")
    good = pd.read_csv(tmp_path / "good.csv")
    assert bad["_row"].tolist() == [3, 500, 999]
    assert [json.loads(reason) for reason in bad["_violations"]] == [
        ["age: min"],
        ["sex: category"],
        ["education: not_null"],
    ]
    assert (result.bad_rows, result.clean_rows) == (3, 997)
    assert len(good) + len(bad) == 1000  # nothing dropped silently


def test_parquet_and_json_lines_in_chunks(
    adult: datasets.Dataset, contract: Contract, tmp_path: Path
) -> None:
    frame = adult.test.head(600)
    frame.to_parquet(tmp_path / "t.parquet", index=False, row_group_size=100)
    frame.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    for name in ("t.parquet", "t.jsonl"):
        result = validate_file(tmp_path / name, contract, policy="warn", chunk_size=100)
        assert result.report.n_rows == 600
        assert set(result.report.counts) <= {"category"}


def test_unique_and_length_rules() -> None:
    contract = Contract(
        target=ColumnContract(name="y", type="integer"),
        columns=(
            ColumnContract(name="code", type="string", unique=True, min_length=2, max_length=3),
        ),
    )
    frame = pd.DataFrame({"code": ["ab", "abc", "ab", "abcd", "a"]})
    report = contract.validate_frame(frame)
    assert report.counts == {"length": 2, "unique": 1}
    assert {(v.rule, v.row) for v in report.violations} == {
        ("length", 3),
        ("length", 4),
        ("unique", 2),
    }
    assert Contract.from_yaml(contract.to_yaml()) == contract


def test_unknown_policy_and_missing_columns(
    contract: Contract, broken_file: Path, tmp_path: Path
) -> None:
    with pytest.raises(DataError, match="Unknown validation policy 'drop'"):
        validate_file(broken_file, contract, policy="drop")
    pd.DataFrame({"age": [1]}).to_csv(tmp_path / "thin.csv", index=False)
    with pytest.raises(DataError, match="lacks columns the contract requires: workclass"):
        validate_file(tmp_path / "thin.csv", contract, policy="quarantine")
