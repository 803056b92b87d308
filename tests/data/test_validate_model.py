"""``shipyard validate`` checks rows as the model's server checks requests (cleaned first)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from typer.testing import CliRunner

from shipyard import datasets
from shipyard.cli import app
from shipyard.data.contract import Contract
from shipyard.data.validate import validate_records_file
from shipyard.runtime.clean import INDICATOR_SUFFIX
from shipyard.runtime.validate import RecordValidationError


def _category_values(column: Any, rule: Mapping[str, Any], missing: list[str]) -> Any:
    """(usual, odd) values of a category column: known, rare, respelt, unknown, missing."""
    known = sorted(set(column.categories or ()) - {rule.get("other", "__rare__")})
    rare = sorted(rule.get("rare", ())) or known
    usual = [
        st.sampled_from(known),
        st.sampled_from(rare),
        st.sampled_from(known + rare).map(lambda value: f" {value}  "),
    ]
    if column.nullable:
        usual.append(st.sampled_from(missing))
    odd = [
        st.sampled_from(known + rare).map(lambda value: f"  {value.upper()} "),
        st.sampled_from(["Atlantis", "", "__rare__"]),
        st.sampled_from(missing),
        st.none(),
        st.integers(-3, 3),
    ]
    return st.one_of(usual), st.one_of(odd)


def _number_values(column: Any, missing: list[str]) -> Any:
    """(usual, odd) numbers: in and out of range, as numbers and as text with separators."""
    low = int(column.min) if column.min is not None else 0
    high = int(column.max) if column.max is not None else 100_000
    inside = st.integers(low, high)
    usual = [
        inside,
        inside.map(float),
        inside.map(lambda value: f"{value:,}"),
        inside.map(lambda value: f" {value} "),
    ]
    whole = st.integers(low - 5, high + 5)
    odd = [
        whole,
        st.floats(low - 1, high + 1, allow_nan=False).filter(lambda value: value != int(value)),
        whole.map(lambda value: f"{value:,}"),
        st.sampled_from(missing),
        st.sampled_from(["abc", "1.2.3", "12,34,5"]),
        st.none(),
        st.booleans(),
    ]
    return st.one_of(usual), st.one_of(odd)


def adult_records(contract: Contract, cleaning: Mapping[str, Any]) -> Any:
    """Records as a client might send them to a model trained on Adult.

    Built from the model's contract and fitted cleaning: categories (rare ones, spelling
    variants, unknown ones), missing tokens such as ``?``, numbers as text with thousands
    separators, fields left out and the odd unknown field. Half the records hold only usual
    values (most of them valid); in the rest any field may hold an odd value.
    """
    missing = sorted(cleaning.get("missing_tokens", ["?"]))
    rules = cleaning.get("columns", {})
    usual: dict[str, Any] = {}
    anything: dict[str, Any] = {}
    for column in contract.columns:
        if column.name.endswith(INDICATOR_SUFFIX):
            continue  # the cleaning adds these; clients do not send them
        if column.categories is not None:
            common, odd = _category_values(column, rules.get(column.name, {}), missing)
        else:
            common, odd = _number_values(column, missing)
        usual[column.name] = common
        anything[column.name] = st.one_of(common, odd)
    names = sorted(usual)
    odd_records = st.tuples(
        st.fixed_dictionaries(anything),
        st.sets(st.sampled_from(names), max_size=2),
        st.sampled_from([{}, {}, {}, {"agee": 30}]),
    ).map(lambda parts: {k: v for k, v in parts[0].items() if k not in parts[1]} | parts[2])
    return st.one_of(st.fixed_dictionaries(usual), odd_records)


@pytest.fixture(scope="module")
def served(adult_model: Any) -> Any:
    """The registered model's predictor, as the server loads it, and its bundle folder."""
    registry = adult_model.registry()
    try:
        predictor = registry.load_predictor("adult:1")
        bundle = Path(registry.resolve("adult:1").bundle_path)
    finally:
        registry.close()
    return predictor, bundle


def _rare_country_file(served: Any, folder: Path) -> tuple[Path, str]:
    """Adult rows whose country the model's cleaning groups into ``__rare__``."""
    predictor, _ = served
    rare = sorted(predictor.cleaner.spec["columns"]["native-country"]["rare"])[0]
    rows = datasets.load("adult").test.head(5).drop(columns=["income"])
    rows["native-country"] = rare
    source = folder / "rare.csv"
    rows.to_csv(source, index=False)
    return source, rare


def test_a_rare_country_fails_the_bare_contract_but_not_the_model(
    adult_model: Any, served: Any, tmp_path: Path
) -> None:
    predictor, bundle = served
    source, rare = _rare_country_file(served, tmp_path)
    records = json.loads(
        datasets.load("adult").test.head(5).drop(columns=["income"]).to_json(orient="records")
    )
    # The server answers these records: the cleaning groups the country into __rare__.
    assert len(predictor.predict_records([{**r, "native-country": rare} for r in records])) == 5

    bare = CliRunner().invoke(
        app, ["validate", str(source), "--contract", str(bundle / "contract.yaml")]
    )
    assert bare.exit_code != 0
    assert "--cleaning" in bare.output  # the note says how to apply the cleaning beside it

    home = str(adult_model.home)
    by_model = CliRunner().invoke(
        app, ["validate", str(source), "--model", "adult", "--home", home]
    )
    assert by_model.exit_code == 0, by_model.output
    assert "all 5 rows satisfy the contract" in by_model.output

    with_cleaning = CliRunner().invoke(
        app,
        [
            "validate",
            str(source),
            "--contract",
            str(bundle / "contract.yaml"),
            "--cleaning",
            str(bundle / "cleaning.json"),
            "--json",
        ],
    )
    assert with_cleaning.exit_code == 0, with_cleaning.output
    assert json.loads(with_cleaning.output)["ok"] is True


def test_validate_against_a_model_reports_what_the_server_refuses(
    adult_model: Any, served: Any, tmp_path: Path
) -> None:
    rows = datasets.load("adult").test.head(4).drop(columns=["income"])
    # A number as text, one beyond training's range (the cleaning clips it), text, missing.
    rows["age"] = ["39", "1,000", "abc", "?"]
    source = tmp_path / "rows.csv"
    rows.to_csv(source, index=False)
    result = CliRunner().invoke(
        app,
        [
            *("validate", str(source), "--model", "adult", "--home", str(adult_model.home)),
            *("--json", "--policy", "warn"),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    flagged = {(item["row"], item["column"], item["rule"]) for item in report["violations"]}
    predictor, _ = served
    refused = {
        row
        for row, record in enumerate(json.loads(rows.to_json(orient="records")))
        if _refused_by_server(predictor, record)
    }
    assert (2, "age", "type") in flagged
    assert {row for row, _, _ in flagged} == refused
    assert 0 not in refused
    assert 1 not in refused


def test_validate_needs_a_model_or_a_contract(tmp_path: Path) -> None:
    source = tmp_path / "rows.csv"
    source.write_text("a\n1\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(source)])
    assert result.exit_code != 0
    assert "--model" in result.output
    assert "--contract" in result.output


def _refused_by_server(predictor: Any, record: dict[str, Any]) -> bool:
    try:
        predictor.score_records([record])
    except RecordValidationError:
        return True
    return False


@given(data=st.data())
def test_validate_accepts_a_record_exactly_when_the_server_does(served: Any, data: Any) -> None:
    predictor, _ = served
    strategy = adult_records(predictor.contract, predictor.cleaner.spec)
    records = data.draw(st.lists(strategy, min_size=1, max_size=8))
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "records.jsonl"
        source.write_text(
            "".join(json.dumps(record) + "\n" for record in records), encoding="utf-8"
        )
        result = validate_records_file(
            source, predictor.validator, predictor.cleaner, policy="warn"
        )
    reported = {violation.row for violation in result.report.violations}
    refused = {row for row, record in enumerate(records) if _refused_by_server(predictor, record)}
    event(f"{len(refused)} of {len(records)} records refused")
    assert reported == refused
    assert result.report.n_rows == len(records)
