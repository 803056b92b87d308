"""The image contract: what an image must be to be scored, inferred from the training images.

It holds the accepted formats, the channels (grayscale or colour), the range of widths and
heights, the largest encoded size and the pixel value range. Training images are checked
against it when it is inferred (nothing outside it is learnt from), and every request is
checked by :meth:`ImageContract.check` before scoring: a corrupt or wrongly sized image gets an
error that names the field, the record and what was expected.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from shipyard.errors import DataError

__all__ = ["ImageContract", "ImageTooLargeError", "infer_image_contract"]

# A served image may be this many times smaller or larger (per side) than the training
# images: real cameras and scanners vary, but a thumbnail or a poster is another input.
SIZE_SLACK = 4


class ImageTooLargeError(DataError):
    """An encoded image is larger than the contract's ``max_bytes`` (answered with 413)."""


class ImageContract(BaseModel):
    """The rules every image obeys, as the bundle stores them (``image_contract.json``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str
    formats: tuple[str, ...]
    channels: int
    min_width: int
    max_width: int
    min_height: int
    max_height: int
    max_bytes: int
    pixel_min: int = 0
    pixel_max: int = 255

    def describe(self) -> str:
        """Say in words what a valid image is."""
        colour = "grayscale (1 channel)" if self.channels == 1 else "colour (3 channels)"
        return (
            f"a {' or '.join(self.formats)} {colour} image of {self.min_width}-"
            f"{self.max_width} x {self.min_height}-{self.max_height} pixels, at most "
            f"{self.max_bytes} bytes, base64-encoded"
        )

    def check_bytes(self, size: int, name: str) -> None:
        """Refuse an encoded image over ``max_bytes``.

        Raises
        ------
        ImageTooLargeError
            Naming the image, its size and the limit.
        """
        if size > self.max_bytes:
            raise ImageTooLargeError(
                f"{name}: the image has {size} bytes, over the limit of {self.max_bytes}; "
                "send a smaller image (the model sees "
                f"{self.max_width} x {self.max_height} pixels at most)."
            )

    def check(self, pixels: np.ndarray[Any, Any], kind: str, name: str) -> str | None:
        """Return what is wrong with a decoded image, or ``None`` when it obeys the contract."""
        height, width, channels = pixels.shape
        if kind not in self.formats and kind != "RAW":
            return f"{name}: is {kind}; expected {' or '.join(self.formats)}"
        if channels != self.channels:
            expected = "grayscale (1 channel)" if self.channels == 1 else "colour (3 channels)"
            return (
                f"{name}: has {channels} channel(s); expected {expected}: convert the image "
                "before sending it"
            )
        if not (self.min_width <= width <= self.max_width) or not (
            self.min_height <= height <= self.max_height
        ):
            return (
                f"{name}: is {width} x {height} pixels; expected a width of "
                f"{self.min_width}-{self.max_width} and a height of "
                f"{self.min_height}-{self.max_height}"
            )
        return None


def infer_image_contract(
    images: list[np.ndarray[Any, Any]],
    formats: list[str],
    field: str,
    max_bytes: int,
) -> ImageContract:
    """Infer the contract from training images: their channels, formats and sizes.

    Raises
    ------
    DataError
        When the images mix grayscale and colour (convert them to one kind first).
    """
    channels = sorted({int(image.shape[2]) for image in images})
    if len(channels) > 1:
        raise DataError(
            "The training images mix grayscale and colour images; convert them all to one "
            "kind (the model is built for one)."
        )
    widths = [int(image.shape[1]) for image in images]
    heights = [int(image.shape[0]) for image in images]
    # Arrays from .npz have no file format: a served one may be PNG or JPEG.
    kinds = sorted({kind for kind in formats if kind != "RAW"} or {"PNG", "JPEG"})
    return ImageContract(
        field=field,
        formats=tuple(kinds),
        channels=channels[0],
        min_width=max(1, min(widths) // SIZE_SLACK),
        max_width=max(widths) * SIZE_SLACK,
        min_height=max(1, min(heights) // SIZE_SLACK),
        max_height=max(heights) * SIZE_SLACK,
        max_bytes=max_bytes,
    )
