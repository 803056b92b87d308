from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shipyard import datasets
from shipyard.data.profile import profile_table
from shipyard.data.report import render_html, write_reports
from shipyard.errors import DataError


@pytest.fixture(scope="module")
def messy() -> pd.DataFrame:
    """California-housing-like: a numeric column with holes, a categorical, an id, a constant."""
    generator = np.random.default_rng(0)
    rows = 400
    rooms = generator.gamma(2.0, 300.0, rows)
    rooms[generator.choice(rows, 20, replace=False)] = np.nan
    price = 1000 * rooms + generator.normal(0, 1e5, rows)
    return pd.DataFrame(
        {
            "house_id": np.arange(rows) + 10_000,
            "rooms": rooms,
            "ocean": generator.choice(["INLAND", "NEAR BAY", " ISLAND "], rows),
            "workclass": generator.choice(["Private", "?", "State-gov"], rows),
            "country": ["US"] * rows,
            "price": price,
            "leak": price * 2 + 1,
        }
    )


def test_semantic_types_missing_and_placeholders(messy: pd.DataFrame) -> None:
    found = profile_table(messy, target="price")
    semantic = {column.name: column.semantic for column in found.columns}
    assert semantic == {
        "house_id": "identifier",
        "rooms": "numeric",
        "ocean": "categorical",
        "workclass": "categorical",
        "country": "constant",
        "price": "numeric",
        "leak": "numeric",
    }
    assert found.column("rooms").missing == 20
    # '?' counts as missing, and surrounding spaces do not make new categories.
    assert found.column("workclass").missing == int((messy["workclass"] == "?").sum())
    assert {value for value, _ in found.column("ocean").top_values} == {
        "INLAND",
        "NEAR BAY",
        "ISLAND",
    }
    rooms = found.column("rooms")
    assert rooms.quantiles["50%"] == pytest.approx(messy["rooms"].median())
    assert sum(rooms.histogram["counts"]) == 380
    assert rooms.outliers > 0
    assert found.column("leak").association == pytest.approx(1.0)
    assert any("'leak' alone almost determines" in warning for warning in found.warnings)
    assert any("'house_id' is identifier" in warning for warning in found.warnings)
    assert found.duplicate_rows == 0


def test_adult_profile_from_frame_and_file(adult: datasets.Dataset, tmp_path: Path) -> None:
    sample = adult.train.head(2000)
    path = tmp_path / "adult.csv"
    sample.to_csv(path, index=False, na_rep="?")
    from_frame = profile_table(sample, target="income")
    from_file = profile_table(path, target="income")
    for name in ("workclass", "occupation", "age"):
        assert from_file.column(name).missing == from_frame.column(name).missing
        assert from_file.column(name).distinct == from_frame.column(name).distinct
    assert from_frame.column("workclass").missing > 0
    relationship = from_frame.column("relationship")
    assert relationship.association_method == "correlation ratio"
    assert 0.2 < (relationship.association or 0) < 0.9


def test_multiclass_target_uses_cramers_v() -> None:
    frame = pd.DataFrame({"colour": list("rgbrgbrgbr") * 10, "label": list("xyzxyzxyzx") * 10})
    found = profile_table(frame, target="label")
    assert found.column("colour").association_method == "Cramér's V"
    assert found.column("colour").association == pytest.approx(1.0)


def test_reports_are_self_contained(messy: pd.DataFrame, tmp_path: Path) -> None:
    found = profile_table(messy, target="price")
    write_reports(found, tmp_path / "p.html", tmp_path / "p.json")
    page = (tmp_path / "p.html").read_text(encoding="utf-8")
    assert page.count("<svg") >= 5
    assert "http" not in page  # opens offline
    assert "<script" not in page
    data = json.loads((tmp_path / "p.json").read_text(encoding="utf-8"))
    assert data["n_rows"] == 400
    assert [column["name"] for column in data["columns"]] == list(messy.columns)
    assert "ISLAND" in render_html(found)


def test_unknown_target_is_a_data_error(messy: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="Target column 'prices' is not in"):
        profile_table(messy, target="prices")


def test_large_tables_quantiles_from_a_sample_within_the_stated_error() -> None:
    """Above EXACT_ROWS rows the quantiles come from a 100,000-row sample.

    A quantile of n sampled values misses its level by about sqrt(p (1 - p) / n) in rank
    (0.0016 for the median at n = 100,000); 0.01 is more than six of those.
    """
    generator = np.random.default_rng(3)
    rows = 300_000
    skewed = generator.lognormal(0.0, 1.0, rows)
    holes = skewed.copy()
    holes[generator.choice(rows, rows // 10, replace=False)] = np.nan
    groups = generator.integers(0, 3, rows)
    frame = pd.DataFrame({"skewed": skewed, "holes": holes, "group": groups})
    frame = pd.concat([frame, frame.head(3)], ignore_index=True)  # three rows twice
    found = profile_table(frame)
    assert found.duplicate_rows == 3
    for name in ("skewed", "holes"):
        present = np.sort(frame[name].dropna().to_numpy())
        for label, value in found.column(name).quantiles.items():
            level = float(label.rstrip("%")) / 100
            rank = np.searchsorted(present, value, side="right") / len(present)
            assert abs(rank - level) < 0.01, (name, label, rank)
