from __future__ import annotations

import json
import re

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.config import ServingConfig
from shipyard.pipeline.documents import card_for_version, write_card
from shipyard.serving import build_app, running_server
from shipyard.training.export import frame_to_records

SECTIONS = (
    "Model details",
    "Intended use",
    "Out-of-scope use",
    "Training data",
    "Metrics (test split, bootstrap intervals)",
    "Slices",
    "Fairness",
    "Explanation summary",
    "Robustness",
    "Limitations",
    "Ethical considerations",
    "Versions and hashes",
)


def test_card_is_generated_from_registry_lineage(evaluated, tmp_path):
    registry = evaluated.registry
    version = registry.get("adult-lightgbm", 1)
    card = card_for_version(registry, "adult-lightgbm:1")
    markdown = card.to_markdown()
    for section in SECTIONS:
        assert f"## {section}\n" in markdown
    assert "Testing shipyard's evaluation suite." in markdown  # from the config
    assert "Decisions about real people." in markdown
    assert f"Manifest SHA-256: {version.manifest_sha256}" in markdown
    assert f"Data fingerprint: {version.data_fingerprint}" in markdown
    manifest = registry.verify("adult-lightgbm:1")
    assert manifest["files"]["model.lgb.txt"] in markdown
    auc = manifest["metrics"]["test"]["roc_auc"]
    assert f"{auc['value']:.4f} [{auc['low']:.4f}, {auc['high']:.4f}]" in markdown
    assert "demographic_parity_difference by sex" in markdown  # the breach, as a limitation
    assert "| age | integer |" in markdown  # the contract
    assert f"lightgbm | {version.package_versions['lightgbm']}" in markdown

    markdown_path, html_path = write_card(registry, "adult-lightgbm:1", tmp_path)
    assert markdown_path.read_text() == markdown
    page = html_path.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "<h2>Ethical considerations</h2>" in page

    # The bundle carries the card written at training time.
    bundle = version.bundle_path
    assert "## Fairness" in (bundle / "model_card.md").read_text()
    assert (bundle / "model_card.html").read_text().startswith("<!DOCTYPE html>")


@pytest.fixture(scope="module")
def server(evaluated):
    application = build_app(evaluated.registry, "adult-lightgbm:1", ServingConfig(auth=False))
    with running_server(application) as url:
        yield url


def test_explain_and_card_routes_over_a_real_socket(server, evaluated):
    frame = pd.read_csv(evaluated.test_csv, skipinitialspace=True).head(5)
    records = frame_to_records(frame.drop(columns=["income"]))
    with httpx.Client(base_url=server) as client:
        single = client.post("/v1/models/adult-lightgbm/explain", json=records[0])
        assert single.status_code == 200
        body = single.json()
        assert body["model"] == "adult-lightgbm"
        assert body["version"] == 1
        total = body["base_value"] + sum(body["contributions"].values())
        assert abs(total - body["raw_output"]) <= 1e-6
        predicted = client.post("/v1/models/adult-lightgbm/predict", json=records[0]).json()
        assert body["probabilities"] == predicted["probabilities"]

        batch = client.post("/v1/models/adult-lightgbm/explain", json=records).json()
        assert len(batch["explanations"]) == 5

        bad = client.post("/v1/models/adult-lightgbm/explain", json={**records[0], "age": "old"})
        assert bad.status_code == 422
        assert "age" in bad.json()["message"]
        assert client.post("/v1/models/other/explain", json=records[0]).status_code == 404
        assert (
            client.post("/v1/models/adult-lightgbm/explain", content=b"{not json").status_code
            == 400
        )

        card = client.get("/v1/models/adult-lightgbm/card")
        assert card.status_code == 200
        assert card.headers["content-type"].startswith("text/markdown")
        assert "## Fairness" in card.text
        assert "## Versions and hashes" in card.text
        page = client.get("/v1/models/adult-lightgbm/card", params={"format": "html"})
        assert page.headers["content-type"].startswith("text/html")
        assert (
            client.get("/v1/models/adult-lightgbm/card", params={"format": "pdf"}).status_code
            == 400
        )


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_cli_explain_card_and_report(evaluated, tmp_path):
    home = str(evaluated.home / ".shipyard")
    runner = CliRunner()
    frame = pd.read_csv(evaluated.test_csv, skipinitialspace=True).head(1)
    record = json.dumps(frame_to_records(frame.drop(columns=["income"]))[0])
    explained = runner.invoke(
        app, ["explain", "adult-linear:1", "--record", record, "--home", home, "--json"]
    )
    assert explained.exit_code == 0, explained.output
    answer = json.loads(explained.stdout)["explanations"][0]
    assert (
        abs(answer["base_value"] + sum(answer["contributions"].values()) - answer["raw_output"])
        <= 1e-6
    )

    from_file = runner.invoke(
        app,
        [
            "explain",
            "adult-lightgbm:1",
            "--data",
            str(evaluated.test_csv),
            "--limit",
            "2",
            "--home",
            home,
        ],
    )
    assert from_file.exit_code == 0, from_file.output
    assert from_file.output.count("record ") == 2

    neither = runner.invoke(app, ["explain", "adult-linear:1", "--home", home])
    assert neither.exit_code == 1
    assert "exactly one of --record JSON or --data FILE" in flat(neither.output)

    shown = runner.invoke(app, ["models", "card", "adult-lightgbm:1", "--home", home])
    assert shown.exit_code == 0
    assert "# Model card: adult-lightgbm version 1" in shown.output
    assert "## Model selection (cross-validated roc_auc)" in shown.output
    assert "lightgbm is the only candidate" in flat(shown.output)
    written = runner.invoke(
        app, ["card", "adult-lightgbm:1", "--home", home, "--output", str(tmp_path)]
    )
    assert written.exit_code == 0, written.output
    assert (tmp_path / "adult-lightgbm-v1-model-card.html").is_file()

    target = tmp_path / "report.html"
    copied = runner.invoke(
        app, ["report", "adult-lightgbm:1", "--home", home, "--output", str(target)]
    )
    assert copied.exit_code == 0, copied.output
    assert (
        target.read_bytes()
        == (evaluated.registry.get("adult-lightgbm", 1).bundle_path / "report.html").read_bytes()
    )
    page = target.read_text(encoding="utf-8")
    assert "<h2>Model selection (cross-validated roc_auc)</h2>" in page
    assert "CV mean [CI]" in page
