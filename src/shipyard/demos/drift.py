"""The drift demo: a bike-demand model trained on 2011 meets 2012, and the loop closes itself.

On the bundled UCI Bike Sharing data (CC BY 4.0; Fanaee-T & Gama 2013), hourly rentals in
Washington D.C.:

1. a champion learns 2011 (a regression on ``cnt``, the rentals in the hour);
2. the real server (API key on) answers the hours of 2012 in order, and the true counts come
   back as feedback;
3. a watch pass finds drift (the season and the year the model never saw, and its predictions)
   and a realised RMSE far above the registered one, retrains on 2011 plus the labelled hours,
   gates the challenger on the most recent hours it did not train on, and makes it the canary;
4. the server sends a share of the next hours to the canary; the next pass compares it with
   the champion on those hours and promotes it; the pass after confirms the new champion;
5. a deliberately worse challenger (trained on a tiny sample of 2011) is rejected by the gate,
   and when it is pushed to champion by hand anyway, the next pass rolls it back.

Ridership grew by about 60% from 2011 to 2012: the same weather and hour bring more riders.
A model trained on 2011 alone cannot know that (``yr`` is 0 throughout), which is why the
drift is worth acting on, and why the retrained model, which sees ``yr = 1`` rows, is better.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.config import PipelineConfig, apply_overrides, load_config, load_config_dict
from shipyard.demos.adult import demo_key, post_json
from shipyard.examples import example_path
from shipyard.monitoring.gate import GateResult
from shipyard.pipeline import TrainRun, train
from shipyard.pipeline.watch import Watcher, WatchPass
from shipyard.registry.store import Registry

__all__ = ["PUSHED_STEP", "DriftDemoResult", "ReplayPlan", "drift_demo_config", "run_drift_demo"]

FEEDBACK_BATCH = 100  # labels are posted in batches, as they arrive an hour later
PUSHED_STEP = "the worse version, pushed by hand"


@dataclass(frozen=True)
class ReplayPlan:
    """How many hours of 2012 each phase replays, in order (hour 0 is 1 January 2012)."""

    champion: int = 1500  # served by the 2011 champion: early January to early March
    canary: int = 800  # a share of them answered by the canary
    promoted: int = 500  # served by the new champion, until it is confirmed
    pushed: int = 300  # served by the worse version pushed by hand
    tiny_sample: int = 200  # hours of 2011 the worse challenger is trained on


@dataclass
class DriftDemoResult:
    """What the demo did, step by step."""

    champion: TrainRun
    url: str
    passes: list[tuple[str, WatchPass]] = field(default_factory=list)
    served: list[dict[str, Any]] = field(default_factory=list)
    worse: TrainRun | None = None
    worse_gate: GateResult | None = None
    report_path: Path | None = None
    final_champion: str = ""
    home: Path = Path(".shipyard")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary, the shape ``shipyard demo drift --json`` prints."""
        return {
            "champion": self.champion.as_dict(),
            "server": self.url,
            "served": self.served,
            "passes": [{"step": step, **result.as_dict()} for step, result in self.passes],
            "worse_challenger": self.worse.version.reference if self.worse else None,
            "worse_gate": self.worse_gate.as_dict() if self.worse_gate else None,
            "report": str(self.report_path) if self.report_path else None,
            "final_champion": self.final_champion,
        }


def drift_demo_config(overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Load the demo's config (``shipyard/examples/bike_sharing.yaml``) with overrides."""
    return load_config(example_path("bike_sharing"), overrides)


def _replay(url: str, name: str, key: str | None, hours: Any, target: str) -> dict[str, Any]:
    """Send each hour as one request, post the true counts in batches; count who answered."""
    from shipyard.training.export import frame_to_records

    records = frame_to_records(hours.drop(columns=[target, "casual", "registered"]))
    versions: dict[int, int] = {}
    labels = []
    for record, actual in zip(records, hours[target], strict=True):
        answer = post_json(f"{url}/v1/models/{name}/predict", record, key)
        versions[answer["version"]] = versions.get(answer["version"], 0) + 1
        labels.append({"request_id": answer["request_id"], "label": float(actual)})
        if len(labels) == FEEDBACK_BATCH:
            post_json(f"{url}/v1/models/{name}/feedback", labels, key)
            labels = []
    if labels:
        post_json(f"{url}/v1/models/{name}/feedback", labels, key)
    return {
        "from": str(hours["dteday"].iloc[0]),
        "to": str(hours["dteday"].iloc[-1]),
        "hours": len(records),
        "answered_by": {f"{name}:{version}": count for version, count in versions.items()},
    }


def _wait_for_version(app: Any, version: int, timeout: float = 30.0) -> None:
    """Wait until the server's hot swap serves ``version`` (the alias is polled)."""
    import time

    deadline = time.monotonic() + timeout
    while app.state.serving.state.primary.model.version != version:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the server did not swap to version {version} in {timeout} s")
        time.sleep(0.05)


def _wait_for_canary(app: Any, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while app.state.serving.state.canary is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the server did not pick up the canary in {timeout} s")
        time.sleep(0.05)


def _worse_challenger(
    config: PipelineConfig,
    registry: Registry,
    home: Path,
    size: int,
    report: Callable[[str], None],
) -> TrainRun:
    """Train a deliberately worse version: the same pipeline on a tiny sample of 2011."""
    from shipyard import datasets

    sample = datasets.load("bike_sharing").train.sample(size, random_state=config.seed)
    source = home / "bike-sharing-tiny-sample.csv"
    sample.to_csv(source, index=False)
    raw = apply_overrides(config.model_dump(mode="json"), {"data.source": str(source)})
    return train(load_config_dict(raw), report=report, registry=registry)


def run_drift_demo(
    overrides: dict[str, Any] | None = None,
    report: Callable[[str], None] | None = None,
    plan: ReplayPlan | None = None,
) -> DriftDemoResult:
    """Run the whole drift scenario and return what happened."""
    from shipyard import datasets
    from shipyard.pipeline.monitor import monitor
    from shipyard.pipeline.retrain import gate_version
    from shipyard.serving import build_app, running_server

    report = report or (lambda message: None)
    plan = plan or ReplayPlan()
    config = drift_demo_config(overrides)
    home = Path(config.registry.home)
    registry = Registry.from_config(config.registry)
    report("training the champion on the hours of 2011")
    champion = train(config, report=report, registry=registry)
    name, first = config.name, champion.version.version
    year_2012 = datasets.load("bike_sharing").test
    watcher = Watcher(registry, name, config.monitoring, report=report)
    demo = demo_key(config)
    app = build_app(registry, name, config.serving, demo.store, monitoring=config.monitoring)
    result = DriftDemoResult(champion, "", home=home)
    start = 0

    def replay(hours: int) -> None:
        nonlocal start
        chunk = year_2012.iloc[start : start + hours]
        start += hours
        report(f"replaying {hours} hours of 2012 through {result.url} with feedback")
        result.served.append(_replay(result.url, name, demo.key, chunk, config.data.target_column))

    def watch(step: str) -> WatchPass:
        report(f"watch pass: {step}")
        passed = watcher.run_once()
        result.passes.append((step, passed))
        return passed

    with running_server(app, host=config.serving.host, port=0) as url:
        result.url = url
        replay(plan.champion)
        result.report_path = home / f"{name}-v{first}-drift.html"
        monitor(
            registry,
            f"{name}:{first}",
            window_size=config.monitoring.window_size,
            report_path=result.report_path,
        )
        watch("the 2011 champion meets 2012")
        _wait_for_canary(app)
        replay(plan.canary)
        watch("the canary against the champion")
        _wait_for_version(app, registry.resolve(name).version)
        replay(plan.promoted)
        watch("the new champion, watched after its promotion")

        report("training a deliberately worse challenger on a tiny sample of 2011")
        result.worse = _worse_challenger(config, registry, home, plan.tiny_sample, report)
        retraining = config.monitoring.retraining
        result.worse_gate = gate_version(
            registry,
            result.worse.version.reference,
            gate_share=retraining.gate_share,
            min_gate_rows=retraining.min_gate_rows,
        )
        report(f"gate on the worse challenger: {result.worse_gate.reason}")
        registry.promote(
            name,
            result.worse.version.version,
            reason="pushed by hand despite the gate (demo)",
        )
        _wait_for_version(app, result.worse.version.version)
        replay(plan.pushed)
        watch(PUSHED_STEP)
        _wait_for_version(app, registry.resolve(name).version)
    result.final_champion = registry.resolve(name).reference
    report("server stopped")
    demo.retire(report)
    return result
