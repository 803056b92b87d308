"""The unknown-categories policy: records and frames settled alike, counted per column."""

from __future__ import annotations

import pandas as pd
import pytest

from shipyard.data.contract import ColumnContract, Contract
from shipyard.errors import DataError
from shipyard.runtime.preprocess import CompiledPreprocessor
from shipyard.runtime.unknown import UnknownCategories

CONTRACT = Contract(
    target=ColumnContract(name="y", type="string", categories=("no", "yes")),
    columns=(
        ColumnContract(
            name="country", type="string", nullable=True, categories=("France", "Peru", "__rare__")
        ),
        ColumnContract(name="sex", type="string", categories=("F", "M")),
        ColumnContract(name="age", type="integer", min=0),
    ),
)
CLEANING = {
    "version": 1,
    "columns": {"country": {"kind": "category", "rare": ["Fiji"], "other": "__rare__"}},
}
RECORDS = [
    {"country": "Atlantis", "sex": "X", "age": 30},
    {"country": "Peru", "sex": "F", "age": 41},
    {"country": None, "sex": "M", "age": 5},
    {"country": 7, "sex": "F", "age": 5},  # not text: the type rule's business, left as it is
]


@pytest.mark.parametrize(("policy", "country"), [("as_rare", "__rare__"), ("as_missing", None)])
def test_records_and_frames_are_settled_alike(policy: str, country: str | None) -> None:
    unknown = UnknownCategories(CONTRACT, policy, CLEANING)
    settled, counts = unknown.settle_records(RECORDS)
    # 'sex' never had missing values and has no rare bucket: 'X' stays, and scores as missing.
    assert settled[0] == {"country": country, "sex": "X", "age": 30}
    assert settled[1:3] == RECORDS[1:3]
    assert settled[1] is RECORDS[1]  # untouched records are not copied
    assert RECORDS[0]["country"] == "Atlantis"  # nor are the caller's records changed
    assert counts == {"country": 1, "sex": 1}
    frame = pd.DataFrame(RECORDS[:3]).astype({"country": "string", "sex": "string"})
    settled_frame, frame_counts = unknown.settle_frame(frame)
    assert frame_counts == counts
    assert settled_frame["country"].dtype == frame["country"].dtype  # still a string column
    first = settled_frame.loc[0, "country"]
    assert (first is pd.NA) if country is None else (first == country)
    assert settled_frame["country"].tolist()[1:] == ["Peru", pd.NA]
    assert frame.loc[0, "country"] == "Atlantis"
    assert "data.unknown_categories" in unknown.describe(counts)


def test_error_policy_settles_nothing_and_bad_names_are_refused() -> None:
    unknown = UnknownCategories(CONTRACT, "error", CLEANING)
    assert not unknown.tolerant
    with pytest.raises(DataError, match="Unknown categories policy 'drop'"):
        UnknownCategories(CONTRACT, "drop")


def test_the_contract_check_lifts_only_the_feature_category_rule() -> None:
    frame = pd.DataFrame({"country": ["Atlantis"], "sex": ["F"], "age": [-1], "y": ["maybe"]})
    strict = CONTRACT.validate_frame(frame, with_target=True)
    assert strict.counts == {"category": 2, "min": 1}
    lenient = CONTRACT.validate_frame(frame, with_target=True, unknown_categories="as_rare")
    assert lenient.counts == {"category": 1, "min": 1}  # the label's category stays a rule
    assert lenient.violations[-1].column == "y"


@pytest.mark.parametrize(
    "encoder",
    [
        {"kind": "onehot", "column": "sex", "categories": ["F", "M"]},
        {"kind": "onehot", "column": "sex", "categories": ["F"], "infrequent": ["M"]},
        {"kind": "ordinal", "column": "sex", "categories": ["F", "M"]},
    ],
)
def test_an_unknown_value_encodes_as_a_missing_one_where_training_had_no_missing(
    encoder: dict[str, object],
) -> None:
    # Why a column that is not nullable keeps its unknown value: no '(missing)' level was
    # fitted, so the preprocessing cannot tell the two apart.
    preprocessor = CompiledPreprocessor({"version": 1, "encoders": [encoder]})
    missing = preprocessor.transform_record({"sex": None})
    assert preprocessor.transform_record({"sex": "X"}) == pytest.approx(missing, nan_ok=True)
    columns = {"sex": ["X", None, "F"]}
    batch = preprocessor.transform_columns(columns)
    assert batch[0].tolist() == pytest.approx(batch[1].tolist(), nan_ok=True)
