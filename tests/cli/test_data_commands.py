from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from shipyard import datasets
from shipyard.cli import app
from shipyard.data.contract import infer_contract


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_profile_prints_and_writes_reports(adult: datasets.Dataset, tmp_path: Path) -> None:
    source = tmp_path / "adult.csv"
    adult.train.head(1500).to_csv(source, index=False, na_rep="?")
    report = tmp_path / "out" / "adult.html"
    report.parent.mkdir()
    result = CliRunner().invoke(
        app, ["profile", str(source), "--target", "income", "--report", str(report)]
    )
    assert result.exit_code == 0, result.output
    assert "workclass" in result.output
    assert "1,500 rows" in flat(result.output)
    assert report.read_text(encoding="utf-8").startswith("<!doctype html>")
    data = json.loads(report.with_suffix(".json").read_text(encoding="utf-8"))
    assert data["columns"][1]["name"] == "workclass"
    assert data["columns"][1]["missing"] > 0  # '?' counted as missing

    as_json = CliRunner().invoke(app, ["profile", str(source), "--report", str(report), "--json"])
    assert json.loads(as_json.output)["n_rows"] == 1500


def test_validate_policies_and_exit_codes(adult: datasets.Dataset, tmp_path: Path) -> None:
    contract = tmp_path / "contract.yaml"
    contract.write_text(infer_contract(adult.train, "income").to_yaml(), encoding="utf-8")
    frame = adult.train.head(200).copy()
    frame.loc[7, "age"] = -1
    source = tmp_path / "data.csv"
    frame.to_csv(source, index=False)
    runner = CliRunner()

    failed = runner.invoke(app, ["validate", str(source), "--contract", str(contract)])
    assert failed.exit_code == 1
    assert "row 7, column 'age': -1 breaks 'min'" in flat(failed.output)

    warned = runner.invoke(
        app, ["validate", str(source), "--contract", str(contract), "--policy", "warn", "--json"]
    )
    assert warned.exit_code == 0
    assert json.loads(warned.output)["counts"] == {"min": 1}

    quarantine = tmp_path / "bad.csv"
    kept = runner.invoke(
        app,
        [
            "validate",
            str(source),
            "--contract",
            str(contract),
            "--policy",
            "quarantine",
            "--quarantine",
            str(quarantine),
        ],
    )
    assert kept.exit_code == 0, kept.output
    assert pd.read_csv(quarantine)["_row"].tolist() == [7]

    wrong = runner.invoke(
        app, ["validate", str(source), "--contract", str(contract), "--policy", "dorp"]
    )
    assert wrong.exit_code == 1
    assert "validation.policy: Input should be 'fail', 'warn' or 'quarantine'" in flat(
        wrong.output
    )
