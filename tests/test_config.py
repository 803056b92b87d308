from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from shipyard.config import (
    CLI_FLAGS,
    PipelineConfig,
    apply_overrides,
    dump_config,
    load_config,
    load_config_dict,
)
from shipyard.errors import ConfigError

MINIMAL = {"name": "adult", "data": {"source": "adult.csv", "target": "income"}}


def with_keys(**sections: object) -> dict[str, object]:
    return {**MINIMAL, **sections}


def test_minimal_config_gets_defaults() -> None:
    config = load_config_dict(MINIMAL)
    assert config.task == "auto"
    assert config.training.cv_folds == 5
    assert config.training.models == (
        "linear",
        "lightgbm",
        "xgboost",
        "catboost",
        "random_forest",
        "extra_trees",
        "mlp",
    )
    assert config.training.n_trials is None
    assert config.registry.resolved_url() == f"sqlite:///{Path('.shipyard') / 'registry.db'}"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (with_keys(trainig={}), "unknown key 'trainig'. Did you mean 'training'?"),
        (
            with_keys(training={"time_budgt": 10}),
            "unknown key 'training.time_budgt'. Did you mean 'time_budget'?",
        ),
        (with_keys(data={"source": "a.csv", "targte": "y"}), "Did you mean 'target'?"),
    ],
)
def test_unknown_key_suggests_the_nearest(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_dict(raw)
    assert message in str(caught.value)


def test_unknown_key_without_a_near_match_lists_valid_keys() -> None:
    with pytest.raises(ConfigError, match=r"Valid keys here: .*cv_folds"):
        load_config_dict(with_keys(training={"zzzz": 1}))


def test_wrong_literal_suggests_the_nearest() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_dict(with_keys(metric="auc"))
    message = str(caught.value)
    assert "metric: 'auc' is not allowed" in message
    assert "Did you mean 'roc_auc'?" in message


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_dict(with_keys(trainig={}, metric="roc-auc"))
    message = str(caught.value)
    assert "'trainig'" in message
    assert "Did you mean 'roc_auc'?" in message


def test_a_misspelt_task_is_refused_with_the_nearest_registered_one() -> None:
    from shipyard.tasks.base import task_for_config

    # Tasks can come from installed packages, so the task registry (not the schema) checks.
    config = load_config_dict(with_keys(task="regresion"))
    with pytest.raises(ConfigError, match=r"No task trains 'task: regresion'.*'regression'\?"):
        task_for_config(config)


@pytest.mark.parametrize(
    ("task", "metric"),
    [
        ("regression", "roc_auc"),
        ("regression", "log_loss"),
        ("binary", "rmse"),
        ("multiclass", "r2"),
    ],
)
def test_metric_must_fit_the_task(task: str, metric: str) -> None:
    with pytest.raises(ConfigError, match=f"metric '{metric}' is for"):
        load_config_dict(with_keys(task=task, metric=metric))


def test_target_cannot_be_dropped() -> None:
    with pytest.raises(ConfigError, match=re.escape("data.drop lists the target 'income'")):
        load_config_dict(
            with_keys(data={"source": "a.csv", "target": "income", "drop": ["income"]})
        )


def test_missing_required_key_is_named() -> None:
    with pytest.raises(ConfigError, match=re.escape("data.source: this key is required")):
        load_config_dict({"name": "x", "data": {"target": "y"}})


def test_split_sizes_must_leave_training_rows() -> None:
    with pytest.raises(ConfigError, match=r"split.test_size \+ split.validation_size"):
        load_config_dict(with_keys(split={"test_size": 0.5, "validation_size": 0.45}))


def test_config_is_frozen() -> None:
    config = load_config_dict(MINIMAL)
    with pytest.raises(ValueError, match="frozen"):
        config.seed = 1  # type: ignore[misc]


def test_load_config_reads_yaml_and_applies_overrides(tmp_path: Path) -> None:
    path = tmp_path / "shipyard.yaml"
    path.write_text(
        "name: adult\ndata:\n  source: adult.csv\n  target: income\ntraining:\n  cv_folds: 3\n",
        encoding="utf-8",
    )
    config = load_config(path, {"training.time_budget": 60, "seed": 7, "task": None})
    assert config.training.time_budget == 60
    assert config.training.cv_folds == 3
    assert config.seed == 7
    assert config.task == "auto"  # None overrides are skipped (unset CLI flags)


def test_load_config_names_the_file_in_validation_errors(tmp_path: Path) -> None:
    path = tmp_path / "shipyard.yaml"
    path.write_text(
        "name: adult\ndata: {source: a.csv, target: y}\nseed: many\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=f"Invalid configuration in {path}"):
        load_config(path)


def test_load_config_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.yaml")


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "42\n"])
def test_load_config_rejects_non_mappings(tmp_path: Path, text: str) -> None:
    path = tmp_path / "shipyard.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(path)


def test_load_config_rejects_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "shipyard.yaml"
    path.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_apply_overrides_sets_dotted_keys_without_touching_the_input() -> None:
    raw = {"name": "a", "training": {"cv_folds": 5}}
    result = apply_overrides(
        raw, {"training.cv_folds": 3, "serving.port": 9000, "data.target": "y"}
    )
    assert result == {
        "name": "a",
        "training": {"cv_folds": 3},
        "serving": {"port": 9000},
        "data": {"target": "y"},
    }
    assert raw == {"name": "a", "training": {"cv_folds": 5}}


def test_apply_overrides_refuses_to_descend_into_a_value() -> None:
    with pytest.raises(ConfigError, match="'name' is not a section"):
        apply_overrides({"name": "a"}, {"name.first": "b"})


def test_override_with_a_typo_is_caught_at_validation() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'cv_folds'"):
        load_config_dict(apply_overrides(MINIMAL, {"training.cv_fold": 3}))


def test_every_cli_flag_maps_to_a_real_key() -> None:
    for flag, dotted in CLI_FLAGS.items():
        model: type = PipelineConfig
        *parents, leaf = dotted.split(".")
        for part in parents:
            model = model.model_fields[part].annotation
        assert leaf in model.model_fields, flag


names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)
configs = st.fixed_dictionaries(
    {
        "name": names,
        "data": st.fixed_dictionaries(
            {
                "source": st.text(min_size=1, max_size=30),
                "target": st.text(min_size=1, max_size=20),
            }
        ),
        "task": st.sampled_from(["auto", "binary", "multiclass"]),
        "metric": st.sampled_from(["auto", "roc_auc", "accuracy", "f1", "log_loss"]),
        "seed": st.integers(-(2**31), 2**31),
        "positive_class": st.none() | st.integers(0, 10) | st.text(min_size=1, max_size=10),
        "sensitive": st.lists(st.text(min_size=1, max_size=10), max_size=3),
        "training": st.fixed_dictionaries(
            {
                "time_budget": st.floats(0.5, 1e4, allow_nan=False),
                "cv_folds": st.integers(2, 20),
                "models": st.lists(
                    st.sampled_from(["linear", "lightgbm"]), min_size=1, max_size=2, unique=True
                ),
            }
        ),
        "evaluation": st.fixed_dictionaries({"confidence": st.floats(0.51, 0.99)}),
        "serving": st.fixed_dictionaries(
            {
                "port": st.integers(0, 65535),
                "unknown_fields": st.sampled_from(["reject", "ignore"]),
            }
        ),
    }
)


@given(configs)
def test_dump_then_load_round_trips(
    tmp_path_factory: pytest.TempPathFactory, raw: dict[str, object]
) -> None:
    config = load_config_dict(raw)
    path = tmp_path_factory.mktemp("config") / "shipyard.yaml"
    path.write_text(dump_config(config), encoding="utf-8")
    assert load_config(path) == config


def test_monitoring_defaults_and_the_section_round_trips() -> None:
    config = load_config_dict(
        with_keys(
            monitoring={
                "window_size": 500,
                "alerts": {
                    "rules": [{"kind": "drift", "threshold": 0.3, "column": "age"}],
                    "webhook": "https://hooks.example.com/shipyard",
                },
                "retraining": {"new_labels": 1000, "drifted_columns": None},
                "canary": {"share": 0.2, "requests": None, "seconds": 600},
            }
        )
    )
    monitoring = config.monitoring
    assert monitoring.window_size == 500
    assert monitoring.alerts.rules[0].column == "age"
    assert monitoring.retraining.drifted_columns is None
    assert monitoring.retraining.metric_drop == 0.02  # defaults stay
    assert monitoring.canary.seconds == 600
    assert monitoring.rollback.enabled
    assert load_config_dict(yaml.safe_load(dump_config(config))) == config


@pytest.mark.parametrize(
    ("monitoring", "message"),
    [
        ({"windw_size": 10}, "unknown key 'monitoring.windw_size'. Did you mean 'window_size'?"),
        (
            {"alerts": {"rules": [{"kind": "drift", "treshold": 0.2}]}},
            "unknown key 'monitoring.alerts.rules[0].treshold'. Did you mean 'threshold'?",
        ),
        (
            {"alerts": {"rules": [{"kind": "drfit", "threshold": 0.2}]}},
            "monitoring.alerts.rules[0].kind: 'drfit' is not allowed; expected one of "
            "'drift', 'metric_drop', 'error_rate'. Did you mean 'drift'?",
        ),
        (
            {"alerts": {"rules": [{"kind": "error_rate", "threshold": 5}]}},
            "an error_rate threshold is a share between 0 and 1; got 5.0",
        ),
        (
            {"alerts": {"rules": [{"kind": "metric_drop", "threshold": 0.1, "column": "x"}]}},
            "'column' applies to drift rules only; remove it from the metric_drop rule",
        ),
        (
            {"alerts": {"webhook": "hooks.example.com"}},
            "webhook must be an http:// or https:// URL; got 'hooks.example.com'",
        ),
        (
            {"canary": {"share": 0.1, "requests": None}},
            "a canary stage needs 'requests' or 'seconds'",
        ),
        ({"canary": {"share": 1.5}}, "monitoring.canary.share: Input should be less than"),
        ({"retraining": {"gate_share": 0.95}}, "monitoring.retraining.gate_share"),
        ({"window_size": 5}, "monitoring.window_size: Input should be greater than or equal"),
    ],
)
def test_monitoring_errors_name_the_key(monitoring: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_dict(with_keys(monitoring=monitoring))
    assert message in str(caught.value)


def test_monitoring_flags_map_to_keys() -> None:
    for flag in ("window_size", "interval", "webhook"):
        assert CLI_FLAGS[flag].startswith("monitoring.")
