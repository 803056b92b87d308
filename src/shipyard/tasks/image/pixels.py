"""Turning decoded images into the model's input, the same way at training and serving time.

Each image is resized to ``size x size`` with Pillow's bilinear filter and scaled to [0, 1]:
one function for both sides, so the served model sees exactly what the trained one saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["model_input", "resize"]


def resize(pixels: npt.NDArray[np.uint8], size: int) -> npt.NDArray[np.uint8]:
    """Resize ``height x width x channels`` pixels to ``size x size`` (bilinear)."""
    from PIL import Image

    if pixels.shape[0] == size and pixels.shape[1] == size:
        return pixels
    channels = pixels.shape[2]
    image = Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels)
    resized = np.asarray(image.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)
    return resized[:, :, None] if resized.ndim == 2 else resized


def model_input(images: Sequence[npt.NDArray[np.uint8]], size: int) -> npt.NDArray[np.float32]:
    """Stack images as ``N x C x size x size`` float32 in [0, 1], the networks' input."""
    stacked: Any = np.stack([resize(image, size) for image in images])
    return np.ascontiguousarray(stacked.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(
        255.0
    )
