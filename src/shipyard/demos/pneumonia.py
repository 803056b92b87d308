"""The image demo: chest X-rays -> pneumonia detector -> registry -> server -> HTTP.

Trains on the bundled PneumoniaMNIST subset (CC BY 4.0; MedMNIST v2, Yang et al. 2023, from
Kermany et al. 2018): EfficientNet-Lite0 transfer learning against a small CNN and a linear
model, registers the chosen one, serves it, sends three real test X-rays to ``/predict`` and
``/explain``, and writes each saliency overlay as a PNG. Not a medical device.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.config import PipelineConfig, load_config_dict
from shipyard.demos.adult import demo_key, post_json
from shipyard.pipeline import TrainRun, train
from shipyard.registry.store import Registry

__all__ = ["PneumoniaDemoResult", "pneumonia_demo_config", "run_pneumonia_demo"]

# Test X-rays sent to the server: the first normal ones and the first with pneumonia.
DEMO_IMAGES = 3
CLASS_NAMES = {0: "normal", 1: "pneumonia"}


@dataclass
class PneumoniaDemoResult:
    """What the demo did: the training run, the answers and the saliency files written."""

    run: TrainRun
    url: str
    calls: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary, the shape ``shipyard demo pneumonia --json`` prints."""
        return {**self.run.as_dict(), "server": self.url, "calls": self.calls}


def pneumonia_demo_config(overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Return the demo's config: the bundled ``.npz``, its own test split, three candidates."""
    from shipyard.config import apply_overrides
    from shipyard.datasets.pneumoniamnist import path

    raw: dict[str, Any] = {
        "name": "pneumonia",
        "task": "image_classification",
        "positive_class": 1,
        "data": {"source": path(), "target": "label"},
        "training": {"time_budget": 540},
        "split": {"validation_size": 0.1},
        "evaluation": {"bootstrap_samples": 500},
        "registry": {"home": ".shipyard"},
    }
    return load_config_dict(apply_overrides(raw, overrides or {}))


def _test_images() -> list[tuple[Any, int]]:
    """Two normal X-rays and one with pneumonia from the test split (never trained on)."""
    from shipyard.datasets.pneumoniamnist import load_pneumoniamnist

    data = load_pneumoniamnist()
    chosen = [index for index, label in enumerate(data.test_labels) if label == 0][:2]
    chosen.append(next(index for index, label in enumerate(data.test_labels) if label == 1))
    return [(data.test_images[index], int(data.test_labels[index])) for index in chosen]


def run_pneumonia_demo(
    overrides: dict[str, Any] | None = None,
    report: Callable[[str], None] | None = None,
    saliency_folder: Path | None = None,
) -> PneumoniaDemoResult:
    """Run the whole demo and return what happened (saliency PNGs under ``saliency_folder``)."""
    import urllib.request

    from shipyard.serving import build_app, running_server
    from shipyard.tasks.image.sources import encode_png

    report = report or (lambda message: None)
    config = pneumonia_demo_config(overrides)
    registry = Registry.from_config(config.registry)
    run = train(config, report=report, registry=registry)
    folder = saliency_folder or Path(config.registry.home) / "saliency"
    folder.mkdir(parents=True, exist_ok=True)
    report(f"starting a server for {run.version.reference}")
    demo = demo_key(config)
    app = build_app(registry, run.version.reference, config.serving, demo.store)
    calls = []
    with running_server(app, host=config.serving.host, port=0) as url:
        base = f"{url}/v1/models/{config.name}"
        report(f"POST {base}/predict and /explain, one X-ray per request")
        for number, (pixels, actual) in enumerate(_test_images(), start=1):
            record = {"image": base64.b64encode(encode_png(pixels[:, :, None])).decode()}
            answer = post_json(f"{base}/predict", record, demo.key)
            request = urllib.request.Request(
                f"{base}/explain",
                data=json.dumps(record).encode(),
                method="POST",
                headers={
                    "Content-Type": "application/json",
                    **({"Authorization": f"Bearer {demo.key}"} if demo.key else {}),
                },
            )
            with urllib.request.urlopen(request, timeout=60) as response:
                png = response.read()
            saliency = folder / f"xray_{number}_{CLASS_NAMES[actual]}_saliency.png"
            saliency.write_bytes(png)
            calls.append(
                {
                    "image": number,
                    "answer": answer,
                    "actual": CLASS_NAMES[actual],
                    "saliency": str(saliency),
                }
            )
    report("server stopped")
    demo.retire(report)
    return PneumoniaDemoResult(run, url, calls)
