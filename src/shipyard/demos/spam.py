"""The text demo: SMS messages -> spam detector -> registry -> server -> HTTP.

Trains on the bundled UCI SMS Spam Collection (CC BY 4.0; Almeida, Gómez Hidalgo & Yamakami
2011), registers the winner, serves it, sends real held-out messages to ``/predict`` and shows
the answers with the tokens that drove them, then stops the server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shipyard.config import PipelineConfig, load_config
from shipyard.demos.adult import demo_key, post_json
from shipyard.examples import example_path
from shipyard.pipeline import TrainRun, train
from shipyard.registry.store import Registry

__all__ = ["SpamDemoResult", "run_spam_demo", "spam_demo_config"]

# How many held-out messages of each class are sent to the server.
DEMO_MESSAGES_PER_CLASS = 2


@dataclass
class SpamDemoResult:
    """What the demo did: the training run and the answers the server gave."""

    run: TrainRun
    url: str
    calls: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary, the shape ``shipyard demo spam --json`` prints."""
        return {**self.run.as_dict(), "server": self.url, "calls": self.calls}


def spam_demo_config(overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Load the demo's config (``shipyard/examples/sms_spam.yaml``) with overrides applied."""
    return load_config(example_path("sms_spam"), overrides)


def held_out_messages(config: PipelineConfig, frame: Any) -> Any:
    """Return the first test-part messages of each class (never seen in training)."""
    from shipyard.data.split import split_frame

    _, _, test = split_frame(
        frame,
        config.data.target_column,
        classification=True,
        seed=config.seed,
        test_size=config.split.test_size,
        validation_size=config.split.validation_size,
        stratify=config.split.stratify,
    )
    assert test is not None
    return test.groupby(config.data.target, sort=True).head(DEMO_MESSAGES_PER_CLASS)


def run_spam_demo(
    overrides: dict[str, Any] | None = None, report: Callable[[str], None] | None = None
) -> SpamDemoResult:
    """Run the whole spam demo and return what happened."""
    from shipyard import datasets
    from shipyard.serving import build_app, running_server

    report = report or (lambda message: None)
    config = spam_demo_config(overrides)
    registry = Registry.from_config(config.registry)
    run = train(config, report=report, registry=registry)
    messages = held_out_messages(config, datasets.load("sms_spam").train)
    report(f"starting a server for {run.version.reference}")
    demo = demo_key(config)
    app = build_app(registry, run.version.reference, config.serving, demo.store)
    calls = []
    with running_server(app, host=config.serving.host, port=0) as url:
        endpoint = f"{url}/v1/models/{config.name}/predict"
        report(f"POST {endpoint}, one message per request")
        for text, actual in zip(messages["text"], messages["label"], strict=True):
            answer = post_json(endpoint, {"text": text}, demo.key)
            calls.append({"text": text, "answer": answer, "actual": actual})
    report("server stopped")
    demo.retire(report)
    return SpamDemoResult(run, url, calls)
