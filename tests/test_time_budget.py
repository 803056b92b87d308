"""The time budget covers the whole run: planning, degrading, refusing, and progress events.

No test here asserts a wall-clock bound (the machine may be loaded); the benchmark
``benchmarks/quality/budget.py`` measures those.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from shipyard.config import PipelineConfig, load_config_dict
from shipyard.errors import TrainingError
from shipyard.pipeline import train
from shipyard.pipeline.budget import (
    MIN_BOOTSTRAP,
    MIN_FAIRNESS_BOOTSTRAP,
    SUITE_FIXED_S,
    evaluation_config,
    idle_resample_seconds,
    plan_evaluation,
    refuse_hopeless_budget,
    refuse_spent_budget,
)
from shipyard.progress import Event
from shipyard.registry.store import Registry


def _config(**sections: Any) -> PipelineConfig:
    raw: dict[str, Any] = {"name": "plan", "data": {"source": "x.csv", "target": "y"}}
    raw.update(sections)
    return load_config_dict(raw)


def _plan(config: PipelineConfig, left_s: float, share: float = 0.35) -> Any:
    return plan_evaluation(
        config,
        left_s=left_s,
        per_resample_s=0.01,
        test_rows=10_000,
        train_rows=20_000,
        share=share,
    )


def test_with_time_to_spare_evaluation_runs_as_configured() -> None:
    config = _config()
    plan = _plan(config, left_s=10_000.0)
    assert plan.bootstrap_samples == config.evaluation.bootstrap_samples
    assert plan.fairness_samples == config.fairness.bootstrap_samples
    assert plan.suite
    assert plan.notes == []


def test_short_of_time_evaluation_resamples_less_then_drops_the_suite() -> None:
    config = _config()
    full = _plan(config, left_s=10_000.0)
    fewer = _plan(config, left_s=full.estimate_s)  # 35% of the full estimate
    assert MIN_BOOTSTRAP <= fewer.bootstrap_samples < config.evaluation.bootstrap_samples
    assert fewer.estimate_s < full.estimate_s
    assert any("bootstrap resamples instead of 1000" in note for note in fewer.notes)
    nothing = _plan(config, left_s=0.0)
    assert nothing.bootstrap_samples == MIN_BOOTSTRAP
    assert not nothing.suite
    assert any("no report suite" in note for note in nothing.notes)
    # The config evaluation runs with says the same; the saved config is untouched.
    scaled = evaluation_config(config, nothing)
    assert scaled.evaluation.bootstrap_samples == MIN_BOOTSTRAP
    assert not scaled.evaluation.report
    assert config.evaluation.bootstrap_samples == 1000


def test_a_fairness_gate_keeps_the_suite_however_short_the_time() -> None:
    config = _config(
        sensitive=["sex"], fairness={"thresholds": {"demographic_parity_difference": 0.2}}
    )
    plan = _plan(config, left_s=0.0)
    assert plan.suite
    assert plan.fairness_samples == MIN_FAIRNESS_BOOTSTRAP


def _minimal_plan(per_resample_s: float, test_rows: int) -> Any:
    # A fairness gate keeps the suite, whose fixed part the probe's slowdown scales.
    config = _config(
        sensitive=["sex"], fairness={"thresholds": {"demographic_parity_difference": 0.2}}
    )
    return plan_evaluation(
        config,
        left_s=0.0,
        per_resample_s=per_resample_s,
        test_rows=test_rows,
        train_rows=1_000,
    )


def test_a_small_test_set_probed_on_an_idle_machine_does_not_look_slow() -> None:
    # A resample of 200 rows costs mostly the metric functions' fixed overhead: a probe at
    # idle pace must plan the suite at about its idle cost, not many times it.
    idle = idle_resample_seconds("binary", 200)
    plan = _minimal_plan(idle, 200)
    assert plan.estimate_s < 2 * SUITE_FIXED_S


def test_a_hopeless_budget_is_refused_with_the_budget_that_would_hold() -> None:
    plan = _plan(_config(), left_s=0.0)
    with pytest.raises(TrainingError) as raised:
        refuse_hopeless_budget(0.5, 3.0, plan, preparing_s=3.0)
    message = str(raised.value)
    assert "A time budget of 0.5s cannot hold a useful model" in message
    budget = int(message.split("a budget of about ")[1].split("s")[0])
    assert budget > 3.0 + plan.estimate_s
    assert "\n" not in message
    refuse_hopeless_budget(600.0, 3.0, plan, preparing_s=3.0)  # plenty: no error


def test_a_budget_spent_while_preparing_is_refused_at_once() -> None:
    refuse_spent_budget(20.0, 19.0, "reading the data")  # not spent yet: no error
    with pytest.raises(TrainingError) as raised:
        refuse_spent_budget(20.0, 21.0, "reading the data")
    message = str(raised.value)
    assert "21.0s were spent by the end of reading the data" in message
    assert "a budget of about 63s would" in message


def _small(small_adult_config: Callable[..., PipelineConfig], budget: float) -> PipelineConfig:
    return small_adult_config(
        **{
            "training.time_budget": budget,
            "training.models": ["linear", "lightgbm"],
            "training.n_trials": None,
            "evaluation.report": False,
        }
    )


def test_a_few_seconds_still_register_a_model_with_a_linear_baseline(
    small_adult_config: Callable[..., PipelineConfig],
) -> None:
    messages: list[str] = []
    config = _small(small_adult_config, 10.0)
    run = train(config, report=messages.append)
    names = [row.name for row in run.leaderboard]
    assert "linear" in names
    assert next(row for row in run.leaderboard if row.name == "linear").status == "ok"
    assert run.version.version == 1
    # Where the time went, in the run and in the manifest.
    for key in ("prepare_s", "development_s", "evaluation_s", "total_s", "budget_s"):
        assert key in run.timings
    assert run.timings["budget_s"] == 10.0
    manifest = Registry.from_config(config.registry).manifest(run.version.reference)
    assert manifest["timings"]["budget_s"] == 10.0
    # The reporter receives the progress events, in the order the run makes them.
    kinds = [message.kind for message in messages if isinstance(message, Event)]
    assert kinds[0] == "budget"
    assert kinds[-1] == "registered"
    order = ["budget", "setting", "search_done", "registered"]
    positions = [kinds.index(kind) for kind in order]
    assert positions == sorted(positions)
    stages = [m.fields["stage"] for m in messages if isinstance(m, Event) and m.kind == "stage"]
    assert stages == ["development", "evaluation", "registering"]
    setting = next(m for m in messages if isinstance(m, Event) and m.kind == "setting")
    assert setting.fields["family"] == "linear"
    assert setting.fields["best_family"] == "linear"
    assert 0.5 < setting.fields["score"] <= 1.0
    # An Event is still the line a plain reporter prints.
    assert setting.startswith("linear portfolio #1: CV roc_auc")


def test_an_absurd_budget_is_refused_in_one_line(
    small_adult_config: Callable[..., PipelineConfig],
) -> None:
    with pytest.raises(TrainingError) as raised:
        train(_small(small_adult_config, 0.5))
    message = str(raised.value)
    assert "cannot hold a useful model" in message
    assert "a budget of about" in message
    assert "\n" not in message
