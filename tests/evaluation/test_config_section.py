from __future__ import annotations

import pytest

from shipyard.config import load_config_dict
from shipyard.errors import ConfigError

BASE = {"name": "m", "data": {"source": "a.csv", "target": "y"}}


def test_fairness_section_defaults_and_values():
    config = load_config_dict(
        {
            **BASE,
            "fairness": {
                "thresholds": {"demographic_parity_difference": 0.1},
                "mitigation": "exponentiated_gradient",
            },
            "evaluation": {"intended_use": "Research."},
        }
    )
    assert config.fairness.thresholds == {"demographic_parity_difference": 0.1}
    assert config.fairness.mitigation == "exponentiated_gradient"
    assert config.evaluation.intended_use == "Research."
    assert config.evaluation.report is True
    assert load_config_dict(BASE).fairness.thresholds == {}


def test_unknown_fairness_metric_suggests_the_right_one():
    with pytest.raises(ConfigError, match="Did you mean 'demographic_parity_difference'"):
        load_config_dict({**BASE, "fairness": {"thresholds": {"demographic_parity_diff": 0.1}}})


def test_unknown_mitigation_lists_the_options():
    with pytest.raises(ConfigError, match="threshold_optimizer"):
        load_config_dict({**BASE, "fairness": {"mitigation": "reweigh"}})
