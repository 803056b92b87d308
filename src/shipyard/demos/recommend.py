"""The recommendation demo: X-Wines ratings -> recommender -> registry -> server -> HTTP.

Trains on the bundled X-Wines Slim ratings (CC0; de Azambuja, Morais & Filipe 2023,
doi:10.3390/bdcc7010020), registers the winner, serves it, asks the server for ten wines for a
real user and for wines similar to one they liked, then stops the server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shipyard.config import PipelineConfig, load_config
from shipyard.demos.adult import demo_key, get_json
from shipyard.examples import example_path
from shipyard.pipeline import TrainRun, train
from shipyard.registry.store import Registry

__all__ = ["RecommendDemoResult", "recommend_demo_config", "run_recommend_demo"]


@dataclass
class RecommendDemoResult:
    """What the demo did: the training run and the server's answers."""

    run: TrainRun
    url: str
    user: Any
    recommendations: dict[str, Any]
    similar: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary, the shape ``shipyard demo recommend --json`` prints."""
        return {
            **self.run.as_dict(),
            "server": self.url,
            "user": self.user,
            "recommendations": self.recommendations,
            "similar": self.similar,
        }


def recommend_demo_config(overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Load the demo's config (``shipyard/examples/xwines.yaml``) with overrides applied."""
    return load_config(example_path("xwines"), overrides)


def run_recommend_demo(
    overrides: dict[str, Any] | None = None, report: Callable[[str], None] | None = None
) -> RecommendDemoResult:
    """Run the whole recommendation demo and return what happened."""
    from shipyard import datasets
    from shipyard.serving import build_app, running_server

    report = report or (lambda message: None)
    config = recommend_demo_config(overrides)
    registry = Registry.from_config(config.registry)
    run = train(config, report=report, registry=registry)
    settings = config.recommendation
    assert settings is not None
    ratings = datasets.load("xwines").train
    # The most active rater of the final year: a real user with a long history.
    latest = ratings[ratings[settings.time or "Date"].dt.year == 2021]
    user = int(latest[settings.user].value_counts().index[0])
    liked = ratings[(ratings[settings.user] == user) & (ratings[settings.rating or "Rating"] >= 4)]
    item = int(liked[settings.item].iloc[-1])
    report(f"starting a server for {run.version.reference}")
    demo = demo_key(config)
    app = build_app(registry, run.version.reference, config.serving, demo.store)
    with running_server(app, host=config.serving.host, port=0) as url:
        base = f"{url}/v1/models/{config.name}"
        report(f"GET {base}/recommend?user={user}&k={settings.k}")
        recommendations = get_json(f"{base}/recommend?user={user}&k={settings.k}", demo.key)
        report(f"GET {base}/similar?item={item}&k=5")
        similar = get_json(f"{base}/similar?item={item}&k=5", demo.key)
    report("server stopped")
    demo.retire(report)
    return RecommendDemoResult(run, url, user, recommendations, similar)
