from __future__ import annotations

import pandas as pd
import pytest

from shipyard.data.contract import Contract, infer_contract
from shipyard.errors import DataError
from shipyard.runtime.validate import RecordValidationError, RecordValidator


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "body": [f"message number {i} says something long enough" for i in range(40)],
            "channel": ["sms", "mail"] * 20,
            "label": ["a", "b"] * 20,
        }
    )


def test_free_text_is_ignored_unless_text_detection_is_asked_for():
    assert infer_contract(_frame(), "label").ignored == ("body",)
    detected = infer_contract(_frame(), "label", detect_text=True)
    assert [(column.name, column.type) for column in detected.columns] == [
        ("body", "text"),
        ("channel", "string"),
    ]
    # Short categorical strings are never taken for text.
    assert detected.column("channel").categories == ("mail", "sms")


def test_declared_text_column_and_yaml_round_trip():
    contract = infer_contract(_frame(), "label", text_columns=["body"])
    assert contract.column("body").type == "text"
    assert Contract.from_yaml(contract.to_yaml()) == contract
    with pytest.raises(DataError, match="Declared text column"):
        infer_contract(_frame(), "label", text_columns=["subject"])


def test_text_fields_must_be_strings():
    contract = infer_contract(_frame(), "label", text_columns=["body"])
    validator = RecordValidator(contract)
    validator.check_records([{"body": "hello there", "channel": "sms"}])
    with pytest.raises(RecordValidationError, match="expected text"):
        validator.check_records([{"body": 42, "channel": "sms"}])
