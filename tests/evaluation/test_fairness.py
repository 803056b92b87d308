from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

from shipyard.evaluation.fairness import assess_fairness, mitigate


def synthetic(n: int = 4000, seed: int = 0):
    """Decisions that favour group 'A': selection rate 0.5 for A, 0.2 for B."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["A", "B"], n)
    colour = rng.choice(["red", "blue", "green"], n)
    y = rng.integers(0, 2, n)
    rate = np.where(group == "A", 0.5, 0.2)
    decision = (rng.random(n) < rate).astype(int)
    return pd.DataFrame({"group": group, "colour": colour}), y, decision


def test_disparities_match_fairlearn_and_have_intervals():
    sensitive, y, decision = synthetic()
    report = assess_fairness(sensitive, y, decision, positive_class="yes", n_samples=200, seed=1)
    by_name = {item.grouping: item for item in report.groupings}
    assert set(by_name) == {"group", "colour", "group & colour"}
    group = by_name["group"].disparities
    expected = demographic_parity_difference(y, decision, sensitive_features=sensitive["group"])
    assert group["demographic_parity_difference"].value == pytest.approx(expected, abs=1e-12)
    assert group["equalized_odds_difference"].value == pytest.approx(
        equalized_odds_difference(y, decision, sensitive_features=sensitive["group"]), abs=1e-12
    )
    dpd = group["demographic_parity_difference"]
    assert dpd.low < dpd.value < dpd.high
    assert 0.25 < dpd.value < 0.35
    assert (dpd.highest_group, dpd.lowest_group) == ("A", "B")
    ratio = group["demographic_parity_ratio"]
    assert ratio.value == pytest.approx(dpd.lowest_rate / dpd.highest_rate)
    rows = {row["group"]: row for row in by_name["group"].groups}
    assert rows["A"]["selection_rate"] == pytest.approx(decision[sensitive["group"] == "A"].mean())
    assert report.passed  # no thresholds, no gate
    assert report.verdict().startswith("not gated")


def test_thresholds_gate_with_a_message_naming_metric_group_and_numbers():
    sensitive, y, decision = synthetic()
    report = assess_fairness(
        sensitive,
        y,
        decision,
        positive_class="yes",
        thresholds={"demographic_parity_difference": 0.1, "demographic_parity_ratio": 0.8},
        n_samples=50,
    )
    assert not report.passed
    breached = {(b.grouping, b.metric) for b in report.breaches}
    assert ("group", "demographic_parity_difference") in breached
    assert ("group", "demographic_parity_ratio") in breached
    assert ("colour", "demographic_parity_difference") not in breached
    message = next(
        b.message()
        for b in report.breaches
        if (b.grouping, b.metric) == ("group", "demographic_parity_difference")
    )
    assert "demographic_parity_difference by group is 0.2" in message
    assert "above the maximum 0.1" in message
    assert "for 'A' vs" in message
    assert "for 'B'" in message
    section = report.as_dict()
    assert section["gate"]["passed"] is False
    assert section["gate"]["verdict"].startswith("BREACHED: ")


def test_small_groups_are_reported_but_not_gated():
    sensitive, y, decision = synthetic(n=1000)
    sensitive.loc[:4, "group"] = "tiny"
    decision[:5] = 1
    report = assess_fairness(
        sensitive[["group"]], y, decision, positive_class="yes", min_group_size=30, n_samples=20
    )
    result = report.groupings[0]
    assert result.excluded == ["tiny"]
    assert "tiny" in {row["group"] for row in result.groups}
    assert result.disparities["demographic_parity_difference"].highest_group != "tiny"


@pytest.mark.parametrize("method", ["threshold_optimizer", "exponentiated_gradient"])
def test_mitigation_lowers_disparity_and_reports_the_cost(method):
    rng = np.random.default_rng(0)
    n = 3000
    group = rng.choice(["A", "B"], n)
    signal = rng.normal(size=n) + np.where(group == "A", 0.8, -0.8)
    y = (signal + rng.normal(scale=0.7, size=n) > 0).astype(int)
    probability = 1.0 / (1.0 + np.exp(-2.0 * signal))
    features = (
        probability[:, None]
        if method == "threshold_optimizer"
        else np.column_stack([signal, group == "A"]).astype(float)
    )
    half = n // 2
    result = mitigate(
        method,
        "group",
        validation=(features[:half], y[:half], group[:half]),
        test=(features[half:], y[half:], group[half:]),
        test_decision=(probability[half:] >= 0.5).astype(int),
    )
    assert result.disparity_before > 0.3
    assert result.disparity_after < result.disparity_before / 2
    assert result.fairness_gained == pytest.approx(
        result.disparity_before - result.disparity_after
    )
    assert result.accuracy_paid == pytest.approx(result.accuracy_before - result.accuracy_after)
    assert result.as_dict()["accuracy_paid"] == result.accuracy_paid


def test_adult_report_shows_disparity_by_sex_with_ci_and_mitigation(evaluated):
    run = evaluated.runs["lightgbm"]
    fairness = run.fairness
    assert fairness is not None
    sex = next(item for item in fairness["groupings"] if item["grouping"] == "sex")
    dpd = sex["disparities"]["demographic_parity_difference"]
    assert dpd["low"] <= dpd["value"] <= dpd["high"]
    assert dpd["value"] > 0.1  # men are selected far more often on Adult
    assert {dpd["highest_group"], dpd["lowest_group"]} == {"Male", "Female"}
    assert {item["grouping"] for item in fairness["groupings"]} == {"sex", "race", "sex & race"}
    mitigation = fairness["mitigation"]
    assert mitigation["method"] == "threshold_optimizer"
    assert mitigation["disparity_after"] < mitigation["disparity_before"]
    assert mitigation["fairness_gained"] > 0
    assert "accuracy_paid" in mitigation
    report = (run.version.bundle_path / "report.html").read_text()
    assert "demographic_parity_difference" in report
    assert f"{dpd['value']:.4f} [{dpd['low']:.4f}, {dpd['high']:.4f}]" in report
    assert "Mitigation (threshold_optimizer" in report
