"""Saliency overlays a clinician can look at: the image in gray, the map in red over it."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["overlay"]

# At most this much red over the brightest part of the map, so the image stays visible.
OPACITY = 0.6


def overlay(pixels: npt.NDArray[np.uint8], saliency: npt.NDArray[Any], scale: int = 0) -> Any:
    """Return a Pillow RGB image: ``pixels`` with ``saliency`` (values in [0, 1]) in red.

    The map is resized to the image (bilinear); small images are enlarged ``scale`` times
    (default: to about 224 pixels) so that the overlay can be read.
    """
    from PIL import Image

    height, width = pixels.shape[:2]
    factor = scale or max(1, 224 // max(height, width))
    gray = pixels.mean(axis=2) if pixels.shape[2] == 3 else pixels[:, :, 0].astype(np.float64)
    base = Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8)).resize(
        (width * factor, height * factor), Image.Resampling.NEAREST
    )
    heat = np.clip(np.asarray(saliency, dtype=np.float64), 0.0, 1.0)
    heat_image = Image.fromarray((heat * 255).astype(np.uint8)).resize(
        base.size, Image.Resampling.BILINEAR
    )
    alpha = np.asarray(heat_image, dtype=np.float64)[:, :, None] / 255.0 * OPACITY
    gray_rgb = np.repeat(np.asarray(base, dtype=np.float64)[:, :, None], 3, axis=2)
    red = np.zeros_like(gray_rgb)
    red[:, :, 0] = 255.0
    blended = gray_rgb * (1.0 - alpha) + red * alpha
    return Image.fromarray(np.clip(blended, 0, 255).astype(np.uint8), mode="RGB")


def error_grid(
    images: list[npt.NDArray[np.uint8]], saliencies: list[npt.NDArray[Any]], captions: list[str]
) -> bytes:
    """Return a PNG: each image's saliency overlay (112 pixels) with its caption, in a row."""
    import io

    from PIL import Image, ImageDraw

    side, caption_height = 112, 14
    grid = Image.new("RGB", (side * max(1, len(images)), side + caption_height), "white")
    draw = ImageDraw.Draw(grid)
    for position, (pixels, saliency, caption) in enumerate(
        zip(images, saliencies, captions, strict=True)
    ):
        tile = overlay(pixels, saliency).resize((side, side), Image.Resampling.NEAREST)
        grid.paste(tile, (position * side, 0))
        draw.text((position * side + 2, side + 1), caption, fill="black")
    buffer = io.BytesIO()
    grid.save(buffer, format="PNG")
    return buffer.getvalue()
