from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shipyard import datasets
from shipyard.data.leakage import check_leakage, raise_on_errors
from shipyard.errors import DataError


def _bikes(rows: int = 2000) -> pd.DataFrame:
    """Bike-sharing shaped: cnt = casual + registered, plus honest weather features."""
    generator = np.random.default_rng(1)
    temp = generator.uniform(0, 1, rows)
    hour = generator.integers(0, 24, rows)
    casual = generator.poisson(5 + 30 * temp)
    registered = generator.poisson(50 + 10 * (hour % 12))
    return pd.DataFrame(
        {
            "instant": np.arange(1, rows + 1),
            "temp": temp,
            "hr": hour,
            "casual": casual,
            "registered": registered,
            "cnt": casual + registered,
        }
    )


def test_bike_sharing_leaks_are_found_and_named() -> None:
    frame = _bikes()
    features = ["instant", "temp", "hr", "casual", "registered"]
    findings = check_leakage(frame, "cnt", features, task="regression")
    by_check = {finding.check: finding for finding in findings}
    derived = by_check["target_derived"]
    assert set(derived.columns) == {"casual", "registered"}
    assert derived.level == "error"
    assert "'cnt' = 1·" in derived.message
    assert by_check["identifier"].columns == ("instant",)
    assert by_check["identifier"].level == "warning"
    with pytest.raises(DataError, match=r"(?s)leakage stops training.*data.drop: \['casual'"):
        raise_on_errors(findings)
    honest = check_leakage(frame, "cnt", ["temp", "hr"], task="regression")
    assert honest == []


def test_single_feature_leak_in_classification(adult: datasets.Dataset) -> None:
    sample = adult.train.head(3000).copy()
    sample["approved"] = np.where(sample["income"] == ">50K", "yes", "no")
    features = ["age", "education", "approved"]
    findings = check_leakage(sample, "income", features, task="binary", errors=())
    assert [(f.check, f.columns, f.level) for f in findings] == [
        ("single_feature", ("approved",), "warning")
    ]
    assert "ROC AUC 1.0000" in findings[0].message


def test_adult_has_no_leak_but_cross_split_duplicates(adult: datasets.Dataset) -> None:
    features = [name for name in adult.train.columns if name != "income"]
    findings = check_leakage(
        adult.train.head(5000), "income", features, task="binary", test=adult.train.iloc[4000:6000]
    )
    assert [finding.check for finding in findings] == ["train_test_duplicates"]
    # The 1,000 rows in both parts, plus one that repeats a training row by chance.
    assert findings[0].message.startswith("1001 test rows (50.0%)")


def test_future_times() -> None:
    frame = pd.DataFrame(
        {
            "ordered": pd.date_range("2024-01-01", periods=100, freq="D").astype(str),
            "shipped": pd.date_range("2024-01-03", periods=100, freq="D").astype(str),
            "label": [0, 1] * 50,
        }
    )
    frame.loc[:49, "shipped"] = "2023-12-01"
    findings = check_leakage(
        frame, "label", ["shipped"], task="binary", prediction_time_column="ordered"
    )
    assert [(f.check, f.columns) for f in findings] == [("future_time", ("shipped",))]
    assert "in 50 rows" in findings[0].message
    with pytest.raises(DataError, match="prediction_time_column 'when'"):
        check_leakage(frame, "label", ["shipped"], task="binary", prediction_time_column="when")
