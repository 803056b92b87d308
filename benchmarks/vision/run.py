"""Image scoring speed: ONNX Runtime (the served path) against PyTorch eager, same images.

For each network the image task ships (EfficientNet-Lite0 at 64 px with its ImageNet weights,
the small CNN at 28 px; a seeded head: speed does not depend on training), the ONNX export and
the PyTorch model score the same PneumoniaMNIST test X-rays, both on one thread (the server
runs one process per core), side by side in one process:

- batch: images per second scoring all 468 test images in batches of 64;
- single: median and 95th percentile latency of one image per call (200 calls).

The outputs are compared too (maximum absolute difference of the probabilities). Prints one
JSON line per network, with the load average before and after.

    PYTHONPATH=src .venv/bin/python benchmarks/vision/run.py
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import numpy as np
import torch

from shipyard.datasets.pneumoniamnist import load_pneumoniamnist
from shipyard.tasks.image.export import export_onnx
from shipyard.tasks.image.networks import SmallCNN, TransferNet, load_backbone
from shipyard.tasks.image.pixels import model_input
from shipyard.tasks.image.predictor import onnx_session

BATCH = 64
SINGLE_CALLS = 200


def _timed(run: Any, pixels: np.ndarray) -> tuple[float, float, float]:
    started = time.perf_counter()
    for start in range(0, len(pixels), BATCH):
        run(pixels[start : start + BATCH])
    batch_per_second = len(pixels) / (time.perf_counter() - started)
    latencies = []
    for index in range(SINGLE_CALLS):
        one = pixels[index % len(pixels) : index % len(pixels) + 1]
        started = time.perf_counter()
        run(one)
        latencies.append(1000.0 * (time.perf_counter() - started))
    return batch_per_second, float(np.median(latencies)), float(np.percentile(latencies, 95))


def measure(name: str, network: Any, size: int) -> dict[str, Any]:
    images = list(load_pneumoniamnist().test_images[:, :, :, None])
    pixels = model_input(images, size)
    network = network.eval()
    session = onnx_session(export_onnx(network, 1, size))

    def eager(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return network(torch.from_numpy(batch))[0].numpy()

    def onnx(batch: np.ndarray) -> np.ndarray:
        return session.run(["probabilities"], {"pixels": batch})[0]

    eager(pixels[:BATCH])  # warm both up once
    onnx(pixels[:BATCH])
    load_before = os.getloadavg()[0]
    onnx_figures = _timed(onnx, pixels)
    eager_figures = _timed(eager, pixels)
    gap = float(np.max(np.abs(onnx(pixels) - eager(pixels))))
    return {
        "network": name,
        "input": f"{size}x{size}",
        "images": len(pixels),
        "onnx_images_per_s": round(onnx_figures[0], 1),
        "eager_images_per_s": round(eager_figures[0], 1),
        "batch_ratio": round(onnx_figures[0] / eager_figures[0], 2),
        "onnx_single_ms_p50": round(onnx_figures[1], 2),
        "eager_single_ms_p50": round(eager_figures[1], 2),
        "onnx_single_ms_p95": round(onnx_figures[2], 2),
        "eager_single_ms_p95": round(eager_figures[2], 2),
        "single_ratio": round(eager_figures[1] / onnx_figures[1], 2),
        "max_abs_diff": gap,
        "load_before_after": [round(load_before, 1), round(os.getloadavg()[0], 1)],
    }


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    backbone, _ = load_backbone()
    print(json.dumps(measure("efficientnet_lite0", TransferNet(backbone, 1, 2), 64)))
    print(json.dumps(measure("small_cnn", SmallCNN(1, 2), 28)))


if __name__ == "__main__":
    main()
