from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shipyard.evaluation.metrics import bootstrap_metrics, score
from shipyard.evaluation.robustness import counterfactual_flips, perturbation_stability
from shipyard.evaluation.slices import resampled_metrics, slice_metrics, weighted_auc


def test_slices_cover_values_bins_and_sensitive_intersections(evaluated):
    manifest = evaluated.registry.verify("adult-lightgbm:1")
    slices = manifest["evaluation"]["slices"]
    keys = {(item["feature"], item["value"]) for item in slices}
    assert {("sex", "Female"), ("sex", "Male"), ("sex & race", "Female & White")} <= keys
    age_bins = [item for item in slices if item["feature"] == "age"]
    assert len(age_bins) == 4  # quartiles
    assert sum(item["rows"] for item in age_bins) == manifest["rows"]["test"]
    worst = [item for item in slices if item["worst"]]
    assert len(worst) == 5
    measured = [item for item in slices if "roc_auc" in item["metrics"]]
    assert all(item["rows"] >= 30 for item in measured)
    cutoff = max(item["metrics"]["roc_auc"]["value"] for item in worst)
    assert all(
        item["metrics"]["roc_auc"]["value"] >= cutoff for item in measured if not item["worst"]
    )
    for item in measured:
        value = item["metrics"]["roc_auc"]
        assert value["low"] <= value["value"] <= value["high"]


def test_slice_metrics_on_a_known_split(evaluated):
    predictor = evaluated.registry.load_predictor("adult-linear:1")
    frame = pd.read_csv(evaluated.test_csv, skipinitialspace=True).head(800)
    y = (frame["income"] == ">50K").to_numpy().astype(int)
    outputs = predictor.score_frame(frame)
    results = slice_metrics(
        frame,
        y,
        outputs,
        task="binary",
        contract=predictor.contract,
        sensitive=["sex"],
        n_samples=50,
        min_rows=50,
    )
    female = next(r for r in results if (r.feature, r.value) == ("sex", "Female"))
    mask = (frame["sex"] == "Female").to_numpy()
    assert female.rows == int(mask.sum())
    expected = float(np.mean(outputs[mask].argmax(1) == y[mask]))
    assert female.metrics["accuracy"].value == expected
    small = [r for r in results if r.rows < 50]
    assert small
    assert all(r.metrics == {} for r in small)


def test_perturbations_and_counterfactual_flips(evaluated):
    predictor = evaluated.registry.load_predictor("adult-lightgbm:1")
    frame = pd.read_csv(evaluated.test_csv, skipinitialspace=True).head(400)
    stability = perturbation_stability(predictor, frame, seed=0)
    assert set(stability) == {"numeric_noise", "missing_values", "category_swap"}
    for item in stability.values():
        assert 0.5 < item["stability"] <= 1.0
    # Much stronger noise must change more decisions than mild noise.
    strong = perturbation_stability(predictor, frame, noise=2.0, missing_rate=0.6, seed=0)
    assert strong["numeric_noise"]["stability"] < stability["numeric_noise"]["stability"]
    assert strong["missing_values"]["stability"] < stability["missing_values"]["stability"]

    flips = counterfactual_flips(predictor, frame, ["sex", "race"])
    sex = flips["sex"]
    assert sex["used_as_feature"] is True
    assert set(sex["by_value"]) == {"Female", "Male"}
    assert 0.0 <= sex["change_rate"] <= 1.0
    # Recount by hand for one direction: everyone set to Male.
    before = predictor.score_frame(frame).argmax(1)
    after = predictor.score_frame(frame.assign(sex="Male")).argmax(1)
    women = (frame["sex"] == "Female").to_numpy()
    assert sex["by_value"]["Male"] == float((before != after)[women].sum() / women.sum())


def test_a_sensitive_column_that_is_not_a_feature_cannot_flip_decisions(evaluated):
    predictor = evaluated.registry.load_predictor("adult-lightgbm:1")
    frame = pd.read_csv(evaluated.test_csv, skipinitialspace=True).head(50)
    flips = counterfactual_flips(predictor, frame.assign(group="x"), ["group"])
    assert flips["group"] == {"used_as_feature": False, "change_rate": 0.0, "by_value": {}}


def test_resampled_auc_equals_the_auc_of_the_materialised_resample():
    rng = np.random.default_rng(0)
    n = 300
    y = rng.integers(0, 2, n)
    scores = np.round(rng.random(n), 2)  # many ties
    outputs = np.column_stack([1 - scores, scores])
    assert weighted_auc(np.ones((1, n)), scores, y == 1)[0] == pytest.approx(
        score("roc_auc", y, outputs), abs=1e-12
    )
    counts = rng.multinomial(n, np.full(n, 1 / n), size=5)
    for row in counts:
        rows = np.repeat(np.arange(n), row)
        expected = score("roc_auc", y[rows], outputs[rows])
        assert weighted_auc(row[None, :], scores, y == 1)[0] == pytest.approx(expected, abs=1e-12)


def test_resampled_intervals_agree_with_the_loop_bootstrap():
    rng = np.random.default_rng(1)
    n = 2000
    y = rng.integers(0, 2, n)
    scores = np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.25, n), 0, 1)
    outputs = np.column_stack([1 - scores, scores])
    fast = resampled_metrics(
        y, outputs, ["roc_auc", "accuracy"], n_samples=400, confidence=0.95, seed=0
    )
    slow = bootstrap_metrics(y, outputs, ["roc_auc", "accuracy"], n_samples=400, seed=0)
    for metric in ("roc_auc", "accuracy"):
        assert fast[metric].value == slow[metric].value
        width = slow[metric].high - slow[metric].low
        assert abs(fast[metric].low - slow[metric].low) < 0.2 * width
        assert abs(fast[metric].high - slow[metric].high) < 0.2 * width
