"""Fitting per-group thresholds: exact against brute force, and the config that asks for them."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from shipyard.config import load_config_dict
from shipyard.errors import BundleIntegrityError, ConfigError, DataError
from shipyard.evaluation.threshold_mitigation import GroupCuts, fit_group_thresholds
from shipyard.runtime.group_thresholds import GroupThresholds
from shipyard.runtime.validate import RecordValidationError


def _best_by_brute_force(scores, y, groups, names, bound):
    cuts = {name: GroupCuts.of(scores[groups == name], y[groups == name]) for name in names}
    best = -1
    for combination in itertools.product(*(range(len(cuts[name].rates)) for name in names)):
        rates = [cuts[name].rates[i] for name, i in zip(names, combination, strict=True)]
        if max(rates) - min(rates) <= bound + 1e-12:
            correct = sum(
                cuts[name].correct[i] for name, i in zip(names, combination, strict=True)
            )
            best = max(best, int(correct))
    return best


@pytest.mark.parametrize("seed", range(40))
def test_fitted_thresholds_are_the_most_accurate_within_the_bound(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(12, 40))
    scores = np.round(rng.random(n), 1)  # ties between scores on purpose
    y = (rng.random(n) < scores).astype(np.int64)
    groups = np.array(rng.choice(["a", "b", "c"], n), dtype=object)
    bound = float(rng.choice([0.0, 0.1, 0.3]))
    names = sorted(name for name in set(groups) if np.sum(groups == name) >= 2)
    if len(names) < 2:
        pytest.skip("fewer than two groups in this draw")
    thresholds = fit_group_thresholds(
        scores, y, list(groups), max_difference=bound, min_group_size=2
    )
    assert sorted(thresholds) == names
    rule = GroupThresholds(("g",), thresholds, default=0.5)
    kept = np.isin(groups, names)
    decisions = rule.decide(scores[kept], list(groups[kept]))
    rates = [decisions[groups[kept] == name].mean() for name in names]
    assert max(rates) - min(rates) <= bound + 1e-12
    correct = int(np.sum(decisions == y[kept]))
    assert correct == _best_by_brute_force(scores, y, groups, names, bound)


def test_small_groups_keep_the_default_and_too_few_groups_are_refused():
    scores = np.linspace(0, 1, 50)
    y = (scores > 0.5).astype(int)
    groups = ["a"] * 30 + ["b"] * 15 + ["c"] * 5
    fitted = fit_group_thresholds(scores, y, groups, max_difference=0.1, min_group_size=10)
    assert sorted(fitted) == ["a", "b"]
    with pytest.raises(DataError, match="at least two sensitive groups"):
        fit_group_thresholds(scores, y, groups, max_difference=0.1, min_group_size=20)


def test_group_keys_clean_and_refuse_a_missing_column():
    rule = GroupThresholds(("sex", "race"), {"Female & White": 0.3}, default=0.5)
    keys = rule.keys_of_records(
        [{"sex": " female ", "race": "White"}], {"sex": lambda value: value.strip().title()}
    )
    assert keys == ["Female & White"]
    assert rule.threshold(keys[0]) == 0.3
    assert rule.threshold("Male & White") == 0.5
    assert rule.keys_of_columns({"sex": [None, 1.0], "race": ["x", 2]}) == [
        "(missing) & x",
        "1 & 2",
    ]
    with pytest.raises(RecordValidationError, match="Record 1 has no 'race'") as caught:
        rule.keys_of_records([{"sex": "Male", "race": "White"}, {"sex": "Male"}])
    assert caught.value.violations[0]["field"] == "race"


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"version": 2, "columns": ["sex"], "default": 0.5, "thresholds": {}},
        {"version": 1, "columns": [], "default": 0.5, "thresholds": {}},
        {"version": 1, "columns": ["sex"], "default": 0.5, "thresholds": {"Male": "high"}},
        {"version": 1, "columns": ["sex"], "default": float("nan"), "thresholds": {}},
    ],
)
def test_a_thresholds_document_this_release_cannot_read_is_refused(document):
    with pytest.raises(BundleIntegrityError, match=r"group_thresholds\.json"):
        GroupThresholds.from_json(document)


def _config(**fairness):
    return {
        "name": "adult",
        "data": {"source": "adult.csv", "target": "income"},
        "fairness": fairness,
    }


def test_the_config_says_what_applying_a_mitigation_needs():
    with pytest.raises(ConfigError, match="needs the sensitive columns"):
        load_config_dict(_config(apply="threshold", apply_target=0.05))
    with pytest.raises(ConfigError, match="needs a demographic parity bound"):
        load_config_dict({**_config(apply="threshold"), "sensitive": ["sex"]})
    with pytest.raises(ConfigError, match="Did you mean 'threshold'"):
        load_config_dict({**_config(apply="thresholds"), "sensitive": ["sex"]})
    config = load_config_dict(
        {
            **_config(apply="threshold", thresholds={"demographic_parity_difference": 0.1}),
            "sensitive": ["sex"],
        }
    )
    assert config.fairness.parity_target() == pytest.approx(0.05)
