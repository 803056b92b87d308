"""The drift demo end to end on the bundled bike sharing data (fewer hours than the demo)."""

from __future__ import annotations

from shipyard.demos.drift import ReplayPlan, run_drift_demo
from shipyard.registry.store import Registry


def test_drift_demo_retrains_canaries_promotes_and_rolls_back(tmp_path):
    import time

    from shipyard import datasets

    # Every third hour of 2011 keeps the seasons and cuts the training time.
    source = tmp_path / "bikes-2011.csv"
    datasets.load("bike_sharing").train.iloc[::3].to_csv(source, index=False)
    home = tmp_path / "home"
    started = time.perf_counter()
    result = run_drift_demo(
        {
            "registry.home": str(home),
            "data.source": str(source),
            "evaluation.bootstrap_samples": 100,
            "monitoring.canary.requests": 100,
            "monitoring.rollback.observe_requests": 150,
        },
        report=lambda message: print(f"{time.perf_counter() - started:6.1f} {message}"),
        plan=ReplayPlan(champion=800, canary=400, promoted=200, pushed=150),
    )
    steps = [(step, [d.kind for d in watch.decisions]) for step, watch in result.passes]
    first, canary, promoted, pushed = (watch for _, watch in result.passes)
    # 2012 drifts from 2011 (the year, the season) and the realised RMSE is far above the
    # registered one: a retrain, whose challenger the gate passes, becomes the canary.
    assert {"yr", "temp", "prediction"} <= set(first.snapshot.drifted_columns)
    assert first.snapshot.realised_metric > 2 * first.snapshot.reference_metric
    kinds = [d.kind for d in first.decisions if d.kind != "alert"]
    assert kinds == ["retrain", "gate", "canary"], steps
    gate = first.decisions[-2].detail
    assert gate["passed"]
    assert gate["samples"] == 240
    assert gate["low"] > 0
    # The canary served a share of the next hours, did better, and was promoted.
    assert set(result.served[1]["answered_by"]) == {"bike-demand:1", "bike-demand:2"}
    assert canary.decisions[-1].kind == "promote", steps
    assert canary.decisions[-1].detail["difference"] > 0
    assert promoted.decisions[-2].kind == "confirm" or promoted.decisions[-1].kind == "confirm"
    # The worse challenger: rejected by the gate, and rolled back when pushed anyway.
    assert result.worse_gate is not None
    assert not result.worse_gate.passed
    assert result.worse_gate.improvement < 0
    assert result.served[3]["answered_by"] == {"bike-demand:3": 150}
    assert pushed.decisions[-1].kind == "rollback", steps
    assert result.final_champion == "bike-demand:2"
    assert result.report_path is not None
    assert result.report_path.read_text(encoding="utf-8").count("<svg") >= 2
    registry = Registry(f"sqlite:///{home / 'registry.db'}", home / "artifacts")
    actions = [event["action"] for event in registry.events("bike-demand")]
    for action in ("retrain", "gate", "canary", "remove_alias", "live_check", "rollback"):
        assert action in actions
