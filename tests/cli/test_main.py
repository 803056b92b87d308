from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from sklearn.datasets import load_diabetes
from typer.testing import CliRunner

from shipyard import datasets
from shipyard.cli import app


def flat(text: str) -> str:
    """Rich wraps long lines; compare messages with whitespace collapsed."""
    return re.sub(r"\s+", " ", text)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    adult = datasets.load("adult")
    adult.train.sample(3000, random_state=1).to_csv(folder / "train.csv", index=False)
    adult.test.sample(800, random_state=1).to_csv(folder / "test.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def trained(workspace):
    """Two versions of 'income' trained through the CLI."""
    runner = CliRunner()
    results = []
    for seed in (1, 2):
        result = runner.invoke(
            app,
            [
                "train",
                "--data",
                str(workspace / "train.csv"),
                "--target",
                "income",
                "--name",
                "income",
                "--cv-folds",
                "2",
                "--n-trials",
                "3",
                "--seed",
                str(seed),
                "--set",
                "evaluation.bootstrap_samples=100",
                "--home",
                str(workspace / "home"),
                "--json",
            ],
        )
        assert result.exit_code == 0, result.output
        results.append(json.loads(result.stdout))
    return results


def home_args(workspace):
    return ["--home", str(workspace / "home")]


def test_train_prints_json_with_metrics_and_version(trained):
    first, second = trained
    assert (first["version"], second["version"]) == (1, 2)
    assert first["promoted"]
    assert not second["promoted"]
    auc = first["test_metrics"]["roc_auc"]
    assert auc["low"] <= auc["value"] <= auc["high"]
    assert auc["value"] > 0.85
    assert [row["name"] for row in first["leaderboard"]] != []
    assert first["parity"]["single"] <= 1e-6


def test_train_without_json_prints_leaderboard(workspace):
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--data",
            str(workspace / "train.csv"),
            "--target",
            "income",
            "--name",
            "plain",
            "--cv-folds",
            "2",
            "--model",
            "linear",
            "--n-trials",
            "1",
            "--set",
            "evaluation.bootstrap_samples=100",
            *home_args(workspace),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Leaderboard" in result.stdout
    assert "roc_auc" in result.stdout
    assert "Registered plain:1" in flat(result.stdout)


def test_models_list_show_promote(workspace, trained):
    runner = CliRunner()
    listed = json.loads(
        runner.invoke(app, ["models", "list", "--json", *home_args(workspace)]).stdout
    )
    income = next(item for item in listed if item["name"] == "income")
    assert income["versions"] == 2
    assert income["aliases"] == {"champion": 1}
    promoted = runner.invoke(
        app, ["models", "promote", "income", "2", "--reason", "test", *home_args(workspace)]
    )
    assert promoted.exit_code == 0, promoted.output
    shown = json.loads(
        runner.invoke(app, ["models", "show", "income", "--json", *home_args(workspace)]).stdout
    )
    assert shown["version"] == 2
    assert shown["aliases"] == ["champion"]
    assert any(
        event["action"] == "promote" and event["detail"]["reason"] == "test"
        for event in shown["events"]
    )
    rolled = runner.invoke(
        app, ["models", "rollback", "income", "--reason", "worse live", *home_args(workspace)]
    )
    assert rolled.exit_code == 0, rolled.output
    assert "champion -> income:1 (rolled back)" in flat(rolled.stdout)
    shown = json.loads(
        runner.invoke(app, ["models", "show", "income", "--json", *home_args(workspace)]).stdout
    )
    assert shown["version"] == 1
    assert any(
        event["action"] == "rollback" and event["detail"]["reason"] == "worse live"
        for event in shown["events"]
    )
    never_moved = runner.invoke(
        app, ["models", "rollback", "income", "--alias", "staging", *home_args(workspace)]
    )
    assert never_moved.exit_code == 1
    assert "no earlier version to roll back to" in flat(never_moved.stderr)


def test_evaluate_and_predict(workspace, trained, tmp_path):
    runner = CliRunner()
    evaluated = runner.invoke(
        app,
        [
            "evaluate",
            "income:1",
            "--data",
            str(workspace / "test.csv"),
            "--json",
            *home_args(workspace),
        ],
    )
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads(evaluated.stdout)["metrics"]
    assert metrics["roc_auc"]["value"] > 0.85
    scored = tmp_path / "scored.parquet"
    predicted = runner.invoke(
        app,
        [
            "predict",
            "income",
            "--data",
            str(workspace / "test.csv"),
            "--output",
            str(scored),
            "--chunk-size",
            "300",
            *home_args(workspace),
        ],
    )
    assert predicted.exit_code == 0, predicted.output
    frame = pd.read_parquet(scored)
    assert len(frame) == 800
    assert set(frame["prediction"]) <= {"<=50K", ">50K"}
    assert ((frame["probability_>50K"] > 0.5) == (frame["prediction"] == ">50K")).all()
    accuracy = (frame["prediction"] == frame["income"]).mean()
    assert accuracy > 0.75


def test_regression_on_a_file_it_has_never_seen(tmp_path):
    diabetes = load_diabetes(as_frame=True).frame
    diabetes.to_csv(tmp_path / "diabetes.csv", index=False)
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--data",
            str(tmp_path / "diabetes.csv"),
            "--target",
            "target",
            "--cv-folds",
            "3",
            "--n-trials",
            "4",
            "--set",
            "evaluation.bootstrap_samples=100",
            "--home",
            str(tmp_path / "home"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["task"] == "regression"
    assert data["model"] == "diabetes"
    assert data["test_metrics"]["r2"]["value"] > 0.2


def test_config_typo_exits_1_with_a_hint(tmp_path):
    config = tmp_path / "shipyard.yaml"
    config.write_text("name: x\ndata: {source: a.csv, target: y}\ntraining: {time_budgt: 5}\n")
    result = CliRunner().invoke(app, ["train", "--config", str(config)])
    assert result.exit_code == 1
    assert "Did you mean 'time_budget'?" in flat(result.stderr)
    assert "Traceback" not in result.output


def test_domain_errors_exit_1_usage_errors_exit_2(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(app, ["train", "--data", str(tmp_path / "nope.csv"), "--target", "y"])
    assert missing.exit_code == 1
    assert "does not exist" in flat(missing.stderr)
    unknown_model = runner.invoke(app, ["models", "show", "ghost", "--home", str(tmp_path)])
    assert unknown_model.exit_code == 1
    assert "No model named 'ghost'" in flat(unknown_model.stderr)
    assert runner.invoke(app, ["train", "--no-such-flag"]).exit_code == 2
    assert runner.invoke(app, ["models", "promote", "x", "not-a-number"]).exit_code == 2


def test_tampered_bundle_exits_1(workspace, trained, tmp_path):
    import shutil

    home = tmp_path / "home"
    shutil.copytree(workspace / "home", home)
    model_file = next((home / "artifacts" / "income" / "v1").glob("model.*"))
    model_file.write_bytes(model_file.read_bytes() + b"\n")
    result = CliRunner().invoke(
        app,
        [
            "predict",
            "income:1",
            "--data",
            str(workspace / "test.csv"),
            "--output",
            str(tmp_path / "out.csv"),
            "--home",
            str(home),
        ],
    )
    assert result.exit_code == 1
    assert "SHA-256" in flat(result.stderr)
    assert not (tmp_path / "out.csv").exists()


def test_debug_flag_shows_the_traceback(tmp_path):
    result = CliRunner().invoke(
        app, ["--debug", "models", "show", "ghost", "--home", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert result.exception is not None
    assert type(result.exception).__name__ == "ModelNotFoundError"


def test_a_missing_extra_is_named_with_its_brackets(tmp_path, monkeypatch):
    import shipyard.errors

    def missing(module, extra):
        raise shipyard.errors.MissingDependencyError(
            f"This feature needs the '{module}' package, which is not installed. "
            f"Install it with: pip install 'shipyard[{extra}]'"
        )

    monkeypatch.setattr(shipyard.errors, "require", missing)
    result = CliRunner().invoke(
        app, ["serve", "adult", "--server", "granian", "--home", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "pip install 'shipyard[serve]'" in " ".join(result.output.split())
