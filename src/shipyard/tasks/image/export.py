"""ONNX export of a trained network, and the parity check before a bundle is written.

The network is exported with TorchScript tracing (``dynamo=False``: no onnxscript needed), a
dynamic batch axis, three outputs (``probabilities``, ``embedding``, ``saliency``). The export
is then run by ONNX Runtime on held-out images, one at a time and in one batch, and must agree
with the PyTorch model within :data:`PARITY_TOLERANCE` on every output probability.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import numpy.typing as npt

from shipyard.errors import ExportError

__all__ = ["PARITY_TOLERANCE", "check_image_parity", "export_onnx", "torch_probabilities"]

PARITY_TOLERANCE = 1e-4
OPSET = 17


def export_onnx(
    network: Any,
    channels: int,
    size: int,
    outputs: tuple[str, ...] = ("probabilities", "embedding", "saliency"),
) -> bytes:
    """Export ``network`` (on the CPU, evaluation mode) to ONNX bytes with named outputs."""
    import warnings

    import torch

    network = network.cpu().eval()
    example = torch.zeros(2, channels, size, size)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about Python values in the graph
        torch.onnx.export(  # a binary stream is accepted too
            network,
            (example,),
            buffer,  # type: ignore[arg-type]
            dynamo=False,
            input_names=["pixels"],
            output_names=list(outputs),
            dynamic_axes={name: {0: "batch"} for name in ("pixels", *outputs)},
            opset_version=OPSET,
        )
    return buffer.getvalue()


def torch_probabilities(network: Any, pixels: npt.NDArray[np.float32]) -> npt.NDArray[Any]:
    """Return the trained network's class probabilities (CPU, evaluation mode, batches of 256)."""
    import torch

    network = network.cpu().eval()
    parts = []
    with torch.no_grad():
        for start in range(0, len(pixels), 256):
            parts.append(network(torch.from_numpy(pixels[start : start + 256]))[0].numpy())
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


def check_image_parity(
    network: Any, predictor: Any, pixels: npt.NDArray[np.float32]
) -> dict[str, float]:
    """Compare the ONNX model with the network on ``pixels``, batched and one at a time.

    Raises
    ------
    ExportError
        When a probability differs by more than :data:`PARITY_TOLERANCE`.
    """
    expected = torch_probabilities(network, pixels)
    batched = predictor.run(pixels)["probabilities"]
    single = np.concatenate(
        [predictor.run(pixels[i : i + 1])["probabilities"] for i in range(len(pixels))]
    )
    gaps = {
        "batched": float(np.max(np.abs(batched - expected))) if len(pixels) else 0.0,
        "single": float(np.max(np.abs(single - expected))) if len(pixels) else 0.0,
    }
    worst = max(gaps.values())
    if worst > PARITY_TOLERANCE:
        raise ExportError(
            f"The ONNX export differs from the trained network by {worst:.3g} (over "
            f"{PARITY_TOLERANCE:g}) on held-out images; the bundle was not written."
        )
    return {**gaps, "rows": float(len(pixels))}
