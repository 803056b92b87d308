"""The end-to-end demo: train on Adult, evaluate, register, serve, call over HTTP, stop.

This is a front door like the CLI and the server (it starts a server), so the core never
imports it.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.config import PipelineConfig, load_config
from shipyard.examples import example_path
from shipyard.pipeline import TrainRun, train
from shipyard.registry.store import Registry
from shipyard.training.export import frame_to_records

__all__ = ["DemoResult", "run_demo"]

# Three real rows of the official Adult test file: one below and two above $50K.
DEMO_TEST_ROWS = (0, 2, 3)


@dataclass
class DemoResult:
    """What the demo did: the training run and the answers the server gave."""

    run: TrainRun
    url: str
    calls: list[dict[str, Any]]
    cards: list[str] = field(default_factory=list)

    @property
    def fairness_verdict(self) -> str:
        """The fairness gate's verdict on the trained model."""
        if not self.run.fairness:
            return "not assessed (no sensitive columns, or the evaluation report was skipped)"
        return str(self.run.fairness["gate"]["verdict"])

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary, the shape ``shipyard demo --json`` prints."""
        return {
            **self.run.as_dict(),
            "server": self.url,
            "calls": self.calls,
            "fairness_verdict": self.fairness_verdict,
            "model_card": self.cards,
        }


def demo_config(overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Load the demo's config (``shipyard/examples/adult.yaml``) with overrides applied."""
    return load_config(example_path("adult"), overrides)


def _headers(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key is not None else {}


def post_json(url: str, payload: Any, key: str | None = None) -> Any:
    """POST ``payload`` as JSON (with the API key, if any) and decode the JSON answer."""
    headers = {"Content-Type": "application/json", **_headers(key)}
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), method="POST", headers=headers
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def get_json(url: str, key: str | None = None) -> Any:
    """GET ``url`` (with the API key, if any) and decode the JSON answer."""
    request = urllib.request.Request(url, headers=_headers(key))
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@dataclass
class DemoKey:
    """The API key a demo's server is given for its own requests, revoked when the demo ends."""

    store: Any | None
    key: str | None = None
    key_id: str | None = None

    def retire(self, report: Callable[[str], None]) -> None:
        """Revoke the key, so the user's first ``shipyard serve`` makes and prints their own."""
        if self.store is None or self.key_id is None:
            return
        self.store.revoke(self.key_id)
        report(
            f"the demo's API key is revoked; the first 'shipyard serve' creates one and prints it "
            f"once (kept hashed in {self.store.path}); 'shipyard keys create' makes more"
        )


def demo_key(config: PipelineConfig) -> DemoKey:
    """Create a key when auth is on (as a client is given one); ``retire`` it when done."""
    from shipyard.serving import KeyStore
    from shipyard.serving.keys import default_keys_file

    if not config.serving.auth:
        return DemoKey(None)
    keys = KeyStore(config.serving.keys_file or default_keys_file(config.registry.home))
    record, key = keys.create("demo")
    return DemoKey(keys, key, record.id)


def run_demo(
    overrides: dict[str, Any] | None = None, report: Callable[[str], None] | None = None
) -> DemoResult:
    """Run the whole demo and return what happened."""
    from shipyard import datasets
    from shipyard.serving import build_app, running_server

    report = report or (lambda message: None)
    config = demo_config(overrides)
    registry = Registry.from_config(config.registry)
    run = train(config, report=report, registry=registry)
    reference = run.version.reference
    from shipyard.pipeline.documents import write_card

    cards = [str(path) for path in write_card(registry, reference, Path(config.registry.home))]
    report(f"model card written to {cards[0]}")
    report(f"starting a server for {reference}")
    demo = demo_key(config)
    app = build_app(
        registry, reference, config.serving, demo.store, own_auth_mounts=_ui(registry, demo)
    )
    adult = datasets.load("adult")
    rows = adult.test.iloc[list(DEMO_TEST_ROWS)]
    records = frame_to_records(rows.drop(columns=[adult.target]))
    calls = []
    with running_server(app, host=config.serving.host, port=0) as url:
        endpoint = f"{url}/v1/models/{config.name}/predict"
        if demo.store is not None:
            report(f"web UI while the demo runs: {url}/ui/ (log in with an API key)")
        report(f"POST {endpoint}, one record per request")
        for record, actual in zip(records, rows[adult.target], strict=True):
            answer = post_json(endpoint, record, demo.key)
            calls.append({"record": record, "answer": answer, "actual": actual})
    report("server stopped")
    demo.retire(report)
    report(
        "browse the registry in the web UI: shipyard ui --home "
        f"{config.registry.home}, then open http://127.0.0.1:{config.serving.port}/ui/"
    )
    return DemoResult(run, url, calls, cards)


def _ui(registry: Registry, demo: DemoKey) -> list[Any]:
    """Mount the web UI beside the demo's API (when keys are on: people log in with one)."""
    if demo.store is None:
        return []
    from shipyard.ui.mounted import ui_mount

    return [ui_mount(registry, demo.store)]
