"""Reading labelled images: class folders, a CSV/Parquet of paths and labels, NumPy ``.npz``.

Every source becomes an :class:`ImageSet`: one decoded array per image (height x width x
channels, ``uint8``), its label, where it came from (a file path, ``table.csv row 12`` or
``data.npz train_images[3]``) and, for files, its encoded size and format, which the image
contract is inferred from. A file that cannot be decoded stops the run with an error naming it.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from shipyard.errors import DataError

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageSet",
    "decode_image",
    "encode_png",
    "image_bytes",
    "read_images",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
UInt8Array = npt.NDArray[np.uint8]


@dataclass
class ImageSet:
    """Decoded images with their labels and origins (parallel lists).

    ``formats`` and ``sizes`` hold the encoded format (``PNG``, ``JPEG``) and byte count of
    images read from encoded files; arrays from ``.npz`` have ``RAW`` and their pixel bytes.
    """

    images: list[UInt8Array]
    labels: list[Any]
    names: list[str]
    formats: list[str] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, rows: Sequence[int]) -> ImageSet:
        """Return the images at ``rows``, in that order."""
        return ImageSet(
            [self.images[row] for row in rows],
            [self.labels[row] for row in rows],
            [self.names[row] for row in rows],
            [self.formats[row] for row in rows],
            [self.sizes[row] for row in rows],
        )


def decode_image(data: bytes, name: str) -> tuple[UInt8Array, str]:
    """Decode PNG or JPEG bytes into ``height x width x channels`` and the format's name.

    Raises
    ------
    DataError
        When the bytes are not a readable image, naming ``name``.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = str(image.format or "unknown")
            image.load()
            if image.mode in ("I;16", "I;16B", "I", "F"):
                raise DataError(
                    f"{name}: {image.mode} images (more than 8 bits per channel) are not "
                    "supported; save it as an 8-bit PNG or JPEG."
                )
            converted = image.convert("L" if image.mode in ("L", "1", "LA") else "RGB")
            pixels = np.asarray(converted, dtype=np.uint8)
    except DataError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise DataError(
            f"{name}: cannot be read as an image ({error.__class__.__name__}: {error}); "
            "send a PNG or JPEG file."
        ) from None
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return pixels, kind


def encode_png(pixels: UInt8Array) -> bytes:
    """Encode ``height x width x channels`` (1 or 3) ``uint8`` pixels as PNG."""
    from PIL import Image

    array = pixels[:, :, 0] if pixels.shape[2] == 1 else pixels
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG")
    return buffer.getvalue()


def image_bytes(value: Any, name: str) -> bytes:
    """Return the encoded bytes of a request or table value: bytes, or a base64 string.

    Raises
    ------
    DataError
        When the value is neither, or not valid base64.
    """
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if not isinstance(value, str):
        raise DataError(
            f"{name}: expected an image as a base64 string, got {type(value).__name__}."
        )
    text = value.split(",", 1)[1] if value.startswith("data:") else value  # a data URL
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise DataError(
            f"{name}: is not valid base64; encode the PNG or JPEG file's bytes with base64."
        ) from None


def read_images(source: str, target: str, column: str) -> tuple[ImageSet, ImageSet | None]:
    """Read a labelled image source; return the images and the source's own test part.

    ``source`` is a folder of class folders, a ``.npz`` file, or a CSV/Parquet table whose
    ``column`` holds image paths (relative to the table) or encoded bytes (base64 in CSV).
    Only MedMNIST-style ``.npz`` files (``test_images``) have their own test part.

    Raises
    ------
    DataError
        When the source is missing, empty, or an image cannot be read (naming the file).
    """
    path = Path(source)
    if not path.exists():
        raise DataError(f"data.source '{source}' does not exist.")
    if path.is_dir():
        return _read_folder(path, target), None
    if path.suffix.lower() == ".npz":
        return _read_npz(path)
    return _read_table(path, target, column), None


def _read_folder(folder: Path, target: str) -> ImageSet:
    classes = sorted(entry for entry in folder.iterdir() if entry.is_dir())
    if not classes:
        raise DataError(
            f"{folder} has no class folders; put each class's images in a sub-folder named "
            "after the class (for example normal/ and pneumonia/)."
        )
    images = ImageSet([], [], [], [], [])
    for class_folder in classes:
        files = sorted(
            entry
            for entry in class_folder.rglob("*")
            if entry.is_file() and entry.suffix.lower() in IMAGE_SUFFIXES
        )
        for file in files:
            data = file.read_bytes()
            pixels, kind = decode_image(data, str(file))
            _append(images, pixels, class_folder.name, str(file), kind, len(data))
    if not images.images:
        raise DataError(f"{folder} holds no PNG or JPEG files in its class folders.")
    return images


def _read_npz(path: Path) -> tuple[ImageSet, ImageSet | None]:
    with np.load(path, allow_pickle=False) as arrays:
        keys = set(arrays.files)
        if {"images", "labels"} <= keys:
            return _from_arrays(arrays, path, ["images"], "labels"), None
        parts = [part for part in ("train", "val") if f"{part}_images" in keys]
        if not parts:
            raise DataError(
                f"{path} needs arrays 'images' and 'labels', or MedMNIST's "
                "'train_images'/'train_labels' (with 'val_' and 'test_' parts); it has "
                f"{', '.join(sorted(keys))}."
            )
        train = _from_arrays(arrays, path, [f"{part}_images" for part in parts], "")
        test = None
        if "test_images" in keys:
            test = _from_arrays(arrays, path, ["test_images"], "")
        return train, test


def _from_arrays(arrays: Any, path: Path, image_keys: list[str], label_key: str) -> ImageSet:
    images = ImageSet([], [], [], [], [])
    for key in image_keys:
        stack = np.asarray(arrays[key])
        labels = np.asarray(arrays[label_key or key.replace("_images", "_labels")]).reshape(-1)
        if stack.dtype != np.uint8 or stack.ndim not in (3, 4) or len(stack) != len(labels):
            raise DataError(
                f"{path} {key}: expected uint8 images (n x height x width[, channels]) with "
                f"one label each; got {stack.dtype} {stack.shape} and {len(labels)} labels."
            )
        for index, pixels in enumerate(stack):
            array = pixels[:, :, None] if pixels.ndim == 2 else pixels
            label = labels[index].item()
            _append(images, array, label, f"{path.name} {key}[{index}]", "RAW", array.nbytes)
    return images


def _read_table(path: Path, target: str, column: str) -> ImageSet:
    from shipyard.data.sources import read_table

    frame = read_table(str(path))
    for needed in (column, target):
        if needed not in frame.columns:
            raise DataError(
                f"{path} has no column '{needed}' (its columns: {', '.join(frame.columns)}); "
                "set image.column and data.target."
            )
    images = ImageSet([], [], [], [], [])
    for row, (value, label) in enumerate(zip(frame[column], frame[target], strict=True)):
        if label is None or (isinstance(label, float) and np.isnan(label)):
            continue  # a row without its label cannot be learnt from
        name = f"{path.name} row {row}"
        if isinstance(value, str) and Path(value).suffix.lower() in IMAGE_SUFFIXES:
            file = Path(value) if Path(value).is_absolute() else path.parent / value
            name = str(file)
            if not file.is_file():
                raise DataError(f"{path.name} row {row}: image file {file} does not exist.")
            data = file.read_bytes()
        else:
            data = image_bytes(value, name)
        pixels, kind = decode_image(data, name)
        _append(images, pixels, label, name, kind, len(data))
    if not images.images:
        raise DataError(f"{path} has no labelled images.")
    return images


def _append(
    images: ImageSet, pixels: UInt8Array, label: Any, name: str, kind: str, size: int
) -> None:
    images.images.append(pixels)
    images.labels.append(label)
    images.names.append(name)
    images.formats.append(kind)
    images.sizes.append(size)
