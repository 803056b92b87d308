"""The end-to-end demo: train on Adult, evaluate, register, serve, call over HTTP, stop.

This is a front door like the CLI and the server (it starts a server), so the core never
imports it.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shipyard.config import PipelineConfig, load_config
from shipyard.examples import example_path
from shipyard.lifecycle import TrainRun, train
from shipyard.registry.store import Registry
from shipyard.tasks.export import frame_to_records

__all__ = ["DemoResult", "run_demo"]

# Three real rows of the official Adult test file: one below and two above $50K.
DEMO_TEST_ROWS = (0, 2, 3)


@dataclass
class DemoResult:
    """What the demo did: the training run and the answers the server gave."""

    run: TrainRun
    url: str
    calls: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary, the shape ``shipyard demo --json`` prints."""
        return {**self.run.as_dict(), "server": self.url, "calls": self.calls}


def demo_config(overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Load the demo's config (``shipyard/examples/adult.yaml``) with overrides applied."""
    return load_config(example_path("adult"), overrides)


def _post(url: str, payload: Any, key: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), method="POST", headers=headers
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def run_demo(
    overrides: dict[str, Any] | None = None, report: Callable[[str], None] | None = None
) -> DemoResult:
    """Run the whole demo and return what happened."""
    from shipyard import datasets
    from shipyard.serving import KeyStore, build_app, running_server
    from shipyard.serving.keys import default_keys_file

    report = report or (lambda message: None)
    config = demo_config(overrides)
    registry = Registry.from_config(config.registry)
    run = train(config, report=report, registry=registry)
    reference = run.version.reference
    report(f"starting a server for {reference}")
    keys, key = None, None
    if config.serving.auth:
        # API keys are on by default: the demo makes its own key, as a client would be given one.
        keys = KeyStore(config.serving.keys_file or default_keys_file(config.registry.home))
        _, key = keys.create("demo")
    app = build_app(registry, reference, config.serving, keys)
    adult = datasets.load("adult")
    rows = adult.test.iloc[list(DEMO_TEST_ROWS)]
    records = frame_to_records(rows.drop(columns=[adult.target]))
    calls = []
    with running_server(app, host=config.serving.host, port=0) as url:
        endpoint = f"{url}/v1/models/{config.name}/predict"
        report(f"POST {endpoint}, one record per request")
        for record, actual in zip(records, rows[adult.target], strict=True):
            answer = _post(endpoint, record, key)
            calls.append({"record": record, "answer": answer, "actual": actual})
    report("server stopped")
    return DemoResult(run, url, calls)
