"""Every command meets malformed files with one clear line, and scores unusual ones.

A small LightGBM model is trained once through the CLI (from a semicolon-separated file), and
each malformed file, built from real Adult rows, goes through predict, validate, profile,
evaluate and train.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from tests.data.malformed import (
    REFUSED,
    missing_target,
    non_utf8,
    one_row,
    semicolon,
    whitespace_headerless,
)
from typer.testing import CliRunner, Result

from shipyard import datasets
from shipyard.cli import app
from shipyard.config import RegistryConfig, ServingConfig
from shipyard.registry.store import Registry
from shipyard.serving import build_app, running_server

TRAIN_FLAGS = [
    "--target",
    "income",
    "--drop",
    "fnlwgt",
    "--model",
    "lightgbm",
    "--cv-folds",
    "2",
    "--n-trials",
    "1",
    "--set",
    "evaluation.bootstrap_samples=100",
    "--set",
    "evaluation.report=false",
    "--set",
    "training.model_threads=1",
    # Categories under 1% of rows share a rare bucket, so the as_rare policy has one to use.
    "--set",
    "cleaning.rare_share=0.01",
]


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def unwrapped(text: str) -> str:
    """The output without whitespace: the console breaks a long path anywhere."""
    return re.sub(r"\s+", "", text)


def invoke(*arguments: str) -> Result:
    return CliRunner().invoke(app, [str(argument) for argument in arguments])


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two models of the same data: the default policy (as_rare) and 'error'."""
    folder = tmp_path_factory.mktemp("malformed")
    adult = datasets.load("adult")
    train = semicolon(adult.train.sample(1000, random_state=3), folder / "train.csv")
    # A labelled test file with a few categories the training rows never had.
    test = adult.test.sample(300, random_state=5).reset_index(drop=True)
    test.loc[[10, 20], "native-country"] = "Atlantis"
    test.to_csv(folder / "test.csv", index=False)
    home = folder / "home"
    runs = {}
    for name, policy, extra in (
        ("rare", "as_rare", ["--test-data", folder / "test.csv"]),
        ("strict", "error", []),
    ):
        result = invoke(
            "train",
            "--data",
            train,
            "--name",
            name,
            "--unknown-categories",
            policy,
            "--home",
            home,
            "--json",
            *extra,
            *TRAIN_FLAGS,
        )
        assert result.exit_code == 0, result.output
        runs[name] = json.loads(result.stdout)
    rows = adult.test.sample(200, random_state=4).reset_index(drop=True)
    registry = Registry.from_config(RegistryConfig(home=str(home)))
    contract = registry.load_predictor("rare:1").contract
    # Keep rows the contract accepts, so that the tests below add each problem on purpose.
    known = {column.name: set(column.categories or ()) for column in contract.columns}
    accepted = rows[
        rows.apply(
            lambda row: all(
                pd.isna(row[name]) or not values or row[name] in values
                for name, values in known.items()
            ),
            axis=1,
        )
    ].reset_index(drop=True)
    return {"folder": folder, "home": home, "rows": accepted, "registry": registry, "runs": runs}


def _one_line_error(result: Result, expected: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    # One error, no traceback (rich may wrap the line to the terminal's width).
    assert [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert result.output.count("Error") == 1
    assert re.search(expected, flat(result.output)), result.output


def _every_command(workspace: dict[str, Any], path: Path) -> dict[str, Result]:
    home, folder = workspace["home"], workspace["folder"]
    return {
        "predict": invoke(
            "predict", "rare", "--data", path, "-o", folder / "out.csv", "--home", home
        ),
        "validate": invoke("validate", path, "--model", "rare", "--home", home),
        "profile": invoke("profile", path, "--report", folder / "profile.html"),
        "evaluate": invoke("evaluate", "rare", "--data", path, "--home", home),
        "train": invoke("train", "--data", path, "--home", home, *TRAIN_FLAGS),
    }


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_every_command_refuses_a_malformed_file_in_one_line(
    name: str, workspace: dict[str, Any]
) -> None:
    build, expected = REFUSED[name]
    path = build(workspace["rows"], workspace["folder"] / f"{name}.csv")
    for command, result in _every_command(workspace, path).items():
        assert result.exit_code == 1, (command, result.output)
        _one_line_error(result, expected)


def test_train_names_the_real_problem_of_tiny_and_unlabelled_files(
    workspace: dict[str, Any],
) -> None:
    folder, rows = workspace["folder"], workspace["rows"]
    tiny = invoke("train", "--data", one_row(rows, folder / "one.csv"), *TRAIN_FLAGS)
    _one_line_error(tiny, r"has 1 labelled row\(s\): too few to train. At least 10 are needed")
    unlabelled = missing_target(rows, folder / "unlabelled.csv")
    _one_line_error(
        invoke("train", "--data", unlabelled, *TRAIN_FLAGS),
        r"Every value of the target column 'income' is missing",
    )
    _one_line_error(
        invoke("evaluate", "rare", "--data", unlabelled, "--home", workspace["home"]),
        r"Every value of the target column 'income' is missing",
    )
    # One row is a fine thing to score or check.
    out = folder / "one-scored.csv"
    home = workspace["home"]
    predicted = invoke("predict", "rare", "--data", folder / "one.csv", "-o", out, "--home", home)
    assert predicted.exit_code == 0, predicted.output
    assert len(pd.read_csv(out)) == 1
    assert invoke("validate", folder / "one.csv", "--model", "rare", "--home", home).exit_code == 0


def test_unusual_but_valid_files_are_read_by_every_command(workspace: dict[str, Any]) -> None:
    folder, rows, home = workspace["folder"], workspace["rows"], workspace["home"]
    for path, extra in (
        (semicolon(rows, folder / "semicolon.csv"), []),
        (non_utf8(rows, folder / "latin.csv"), ["--encoding", "latin-1"]),
    ):
        out = folder / f"scored-{path.stem}.csv"
        predicted = invoke("predict", "rare", "--data", path, "-o", out, "--home", home, *extra)
        assert predicted.exit_code == 0, predicted.output
        assert len(pd.read_csv(out)) == len(rows)
        checked = invoke("validate", path, "--model", "rare", "--home", home, *extra)
        assert checked.exit_code == 0, checked.output
        scored = invoke("evaluate", "rare", "--data", path, "--home", home, "--json", *extra)
        assert scored.exit_code == 0, scored.output
        assert json.loads(scored.stdout)["rows"] == len(rows)
        profile = folder / f"{path.stem}.html"
        profiled = invoke("profile", path, "--report", profile, "--json", *extra)
        assert profiled.exit_code == 0, profiled.output
        assert json.loads(profiled.stdout)["n_rows"] == len(rows)


def test_whitespace_headerless_file_through_every_command(workspace: dict[str, Any]) -> None:
    folder, rows = workspace["folder"], workspace["rows"]
    path = whitespace_headerless(rows, folder / "adult.data")
    profiled = invoke("profile", path, "--report", folder / "ws.html", "--json")
    assert profiled.exit_code == 0, profiled.output
    profile = json.loads(profiled.stdout)
    assert profile["n_rows"] == len(rows)
    assert [column["name"] for column in profile["columns"]][:2] == ["column_1", "column_2"]
    # A model trained on named columns cannot match column_1..15: the message says which.
    results = _every_command(workspace, path)
    for command, named in (("predict", "age"), ("validate", "age"), ("evaluate", "income")):
        assert results[command].exit_code == 1, results[command].output
        assert "Traceback" not in results[command].output
        assert named in results[command].output
    # Trained on the headerless file itself, its columns are column_1..15.
    trained = invoke(
        "train",
        "--data",
        path,
        "--target",
        "column_15",
        "--name",
        "headerless",
        "--model",
        "linear",
        "--cv-folds",
        "2",
        "--n-trials",
        "1",
        "--set",
        "evaluation.bootstrap_samples=100",
        "--set",
        "evaluation.report=false",
        "--home",
        folder / "headerless-home",
        "--json",
    )
    assert trained.exit_code == 0, trained.output
    assert json.loads(trained.stdout)["rows"]["test"] > 0


def test_train_scores_a_test_file_with_unknown_categories_as_its_policy_says(
    workspace: dict[str, Any],
) -> None:
    notes = [note for note in workspace["runs"]["rare"]["notes"] if note.startswith("test data")]
    # The two countries set here, and whatever else the real test rows hold that 1,000
    # training rows lacked.
    unseen = r"\d+ value\(s\) of categories unseen in training \(.*native-country"
    assert re.search(unseen, notes[0])
    assert "data.unknown_categories: as_rare" in notes[0]
    assert workspace["runs"]["rare"]["rows"]["test"] == 300
    strict = invoke(
        "train",
        "--data",
        workspace["folder"] / "train.csv",
        "--test-data",
        workspace["folder"] / "test.csv",
        "--unknown-categories",
        "error",
        "--home",
        workspace["home"],
        *TRAIN_FLAGS,
    )
    assert strict.exit_code == 1
    assert "Traceback" not in strict.output
    assert "'native-country': 'Atlantis' breaks 'category'" in flat(strict.output)


def _with_unknown_categories(rows: pd.DataFrame) -> pd.DataFrame:
    unknown = rows.head(40).copy()
    unknown.loc[[3, 7], "native-country"] = "Atlantis"
    unknown.loc[5, "workclass"] = "Astronaut"
    return unknown


def _served(registry: Registry, reference: str, records: list[dict[str, Any]]) -> Any:
    settings = ServingConfig(auth=False, poll_seconds=0)
    app_ = build_app(registry, reference, settings)
    with running_server(app_) as url, httpx.Client(base_url=url) as client:
        answers = [
            client.post(f"/v1/models/{reference.split(':')[0]}/predict", json=record)
            for record in records
        ]
        metrics = client.get("/metrics").text
        record = client.get("/openapi.json").json()["components"]["schemas"]["Record"]
    # The document says what the server accepts: an enum only where unknowns are refused.
    country = record["properties"]["native-country"]
    refuses = reference.startswith("strict")
    assert ("enum" in json.dumps(country)) is refuses, country
    return answers, metrics


def test_unknown_categories_are_scored_alike_by_predict_and_the_server(
    workspace: dict[str, Any],
) -> None:
    from shipyard.training.export import frame_to_records

    folder, home = workspace["folder"], workspace["home"]
    frame = _with_unknown_categories(workspace["rows"])
    path = folder / "unknown.csv"
    frame.to_csv(path, index=False)
    out = folder / "unknown-scored.csv"
    result = invoke("predict", "rare", "--data", path, "-o", out, "--home", home)
    assert result.exit_code == 0, result.output
    assert "3 value(s) of categories unseen in training" in flat(result.output)
    assert "data.unknown_categories: as_rare" in flat(result.output)
    scored = pd.read_csv(out)
    assert len(scored) == len(frame)
    answers, metrics = _served(workspace["registry"], "rare:1", frame_to_records(frame))
    assert all(answer.status_code == 200 for answer in answers)
    served = [answer.json()["probabilities"][">50K"] for answer in answers]
    assert served == pytest.approx(scored["probability_>50K"].tolist(), abs=1e-9)
    counted = {
        line.split('column="')[1].split('"')[0]: float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("shipyard_unknown_categories_total{")
    }
    assert counted == {"native-country": 2.0, "workclass": 1.0}
    assert invoke("validate", path, "--model", "rare", "--home", home).exit_code == 0


def test_error_policy_refuses_on_the_server_and_quarantines_in_predict(
    workspace: dict[str, Any],
) -> None:
    from shipyard.training.export import frame_to_records

    folder, home = workspace["folder"], workspace["home"]
    frame = _with_unknown_categories(workspace["rows"])
    frame.loc[9, "age"] = -4  # breaks 'min' under every policy
    path = folder / "unknown-strict.csv"
    frame.to_csv(path, index=False)
    out = folder / "strict-scored.parquet"
    result = invoke("predict", "strict", "--data", path, "-o", out, "--home", home)
    assert result.exit_code == 0, result.output
    rejected = Path(f"{out}.rejected.csv")
    assert "Rejected 4 rows" in flat(result.output)
    assert str(rejected) in unwrapped(result.output)
    bad = pd.read_csv(rejected)
    assert bad["_row"].tolist() == [3, 5, 7, 9]
    assert json.loads(bad.loc[0, "_violations"]) == ["native-country: category"]
    assert json.loads(bad.loc[3, "_violations"]) == ["age: min"]
    assert len(pd.read_parquet(out)) == len(frame) - 4
    answers, _ = _served(workspace["registry"], "strict:1", frame_to_records(frame))
    refused = [index for index, answer in enumerate(answers) if answer.status_code == 422]
    assert refused == [3, 5, 7, 9]
    # The default model scores the unknown categories and rejects only the negative age.
    lenient = invoke("predict", "rare", "--data", path, "-o", folder / "l.csv", "--home", home)
    assert "Rejected 1 rows" in flat(lenient.output)
    # --invalid-rows fail stops at the first bad row, and a file of bad rows only fails.
    failed = invoke(
        "predict",
        "strict",
        "--data",
        path,
        "-o",
        folder / "f.csv",
        "--home",
        home,
        "--invalid-rows",
        "fail",
    )
    assert failed.exit_code == 1
    assert not (folder / "f.csv").exists()
    only_bad = folder / "only-bad.csv"
    frame.loc[[3, 5, 7, 9]].to_csv(only_bad, index=False)
    _one_line_error(
        invoke("predict", "strict", "--data", only_bad, "-o", folder / "b.csv", "--home", home),
        r"Every row of .* \(4\) breaks the model's contract; nothing was scored",
    )


def test_header_flags_override_the_detection(workspace: dict[str, Any]) -> None:
    folder, rows = workspace["folder"], workspace["rows"]
    words = folder / "words.csv"  # text columns only: the first row cannot be told from a header
    rows[["workclass", "education"]].to_csv(words, index=False, header=False)
    counts = {}
    for flag in ("--header", "--no-header"):
        result = invoke("profile", words, "--report", folder / "words.html", "--json", flag)
        assert result.exit_code == 0, result.output
        counts[flag] = json.loads(result.stdout)["n_rows"]
    assert counts == {"--header": len(rows) - 1, "--no-header": len(rows)}
