from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.registry.store import FairnessGateError


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_a_breaching_first_version_is_registered_but_not_champion(evaluated):
    run = evaluated.runs["lightgbm"]
    assert run.version.reference == "adult-lightgbm:1"
    assert not run.promoted
    assert run.version.aliases == ()
    assert any("not promoted to champion" in note for note in run.notes)
    assert run.as_dict()["fairness"].startswith("BREACHED: demographic_parity_difference")


def test_promote_is_refused_with_metric_group_and_numbers(evaluated):
    registry = evaluated.registry
    with pytest.raises(FairnessGateError) as caught:
        registry.promote("adult-linear", 1)
    message = str(caught.value)
    assert "adult-linear:1 cannot become champion" in message
    assert re.search(r"demographic_parity_difference by sex is 0\.\d{4} \(95% CI", message)
    assert "above the maximum 0.05" in message
    assert "'Male'" in message
    assert "'Female'" in message
    assert "--override-fairness" in message
    # Another alias is not gated: a challenger can still be tried out.
    assert registry.promote("adult-linear", 1, "challenger").aliases == ("challenger",)


def test_override_needs_a_reason_and_both_are_audited(evaluated):
    registry = evaluated.registry
    with pytest.raises(FairnessGateError, match="needs a reason"):
        registry.promote("adult-lightgbm", 1, override_fairness=True)
    promoted = registry.promote(
        "adult-lightgbm", 1, reason="approved by the review board", override_fairness=True
    )
    assert "champion" in promoted.aliases
    event = registry.events("adult-lightgbm")[-1]
    assert event["action"] == "promote"
    assert event["detail"]["override_fairness"] is True
    assert event["detail"]["reason"] == "approved by the review board"
    assert "demographic_parity_difference by sex" in event["detail"]["fairness_breaches"][0]


def test_cli_promote_refuses_then_overrides(evaluated):
    home = str(evaluated.home / ".shipyard")
    runner = CliRunner()
    refused = runner.invoke(app, ["models", "promote", "adult-linear", "1", "--home", home])
    assert refused.exit_code == 1
    assert "demographic_parity_difference by sex" in flat(refused.output)
    done = runner.invoke(
        app,
        [
            "models",
            "promote",
            "adult-linear",
            "1",
            "--home",
            home,
            "--override-fairness",
            "--reason",
            "documented exception",
        ],
    )
    assert done.exit_code == 0, done.output
    assert "champion -> adult-linear:1" in done.output
