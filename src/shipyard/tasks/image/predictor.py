"""Serving an image classifier from its ONNX export with ONNX Runtime: no torch, no pickle.

A request record holds the image, base64-encoded, under the contract's field (the own JSON
API, the Open Inference Protocol's ``BYTES`` tensor, ``/invocations``; the own API's
multipart upload is turned into such records by the server). Each image is decoded, checked
against the image contract, resized as at training time and scored; the answer carries the
class probabilities, the predicted class at the tuned decision threshold and the threshold.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from shipyard.errors import DataError
from shipyard.runtime.validate import (
    RecordTooLargeError,
    RecordValidationError,
    RecordValidator,
)
from shipyard.tasks.image.contract import ImageContract, ImageTooLargeError
from shipyard.tasks.image.pixels import model_input
from shipyard.tasks.image.sources import decode_image, image_bytes

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.data.contract import Contract

__all__ = ["ImagePredictor", "ImageValidator", "onnx_session"]

FloatArray = npt.NDArray[np.float64]
# Scored together at most; larger requests are scored in chunks (bounded memory).
CHUNK = 256


def onnx_session(model: bytes, threads: int = 1) -> Any:
    """Open an ONNX Runtime session on the CPU (one thread: one server process per core)."""
    from shipyard.errors import require

    runtime = require("onnxruntime", "vision")
    options = runtime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return runtime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


class ImageValidator:
    """Check request records: the fields (as for any record), then each image's contract.

    ``check_records`` decodes every image, so a corrupt, wrongly sized or oversized one is
    refused before anything is scored.
    """

    def __init__(self, contract: Contract, image: ImageContract, unknown_fields: str) -> None:
        self.fields = RecordValidator(contract, unknown_fields)
        self.image = image

    def decode(self, records: Sequence[Any]) -> list[npt.NDArray[np.uint8]]:
        """Validate records and return their decoded images.

        Raises
        ------
        RecordValidationError
            Listing each broken rule (a corrupt or wrongly sized image, a missing field).
        RecordTooLargeError
            When an image is over the contract's ``max_bytes``.
        """
        self.fields.check_records(list(records))
        images, violations = [], []
        for index, record in enumerate(records):
            name = f"record {index}, field '{self.image.field}'"
            try:
                data = image_bytes(record[self.image.field], name)
                self.image.check_bytes(len(data), name)
                pixels, kind = decode_image(data, name)
            except ImageTooLargeError as error:
                raise RecordTooLargeError(
                    str(error),
                    [{"record": index, "field": self.image.field, "error": str(error)}],
                ) from None
            except DataError as error:
                violations.append(
                    {"record": index, "field": self.image.field, "error": str(error)}
                )
                continue
            problem = self.image.check(pixels, kind, name)
            if problem is not None:
                violations.append({"record": index, "field": self.image.field, "error": problem})
            images.append(pixels)
        if violations:
            raise RecordValidationError(
                f"{len(violations)} problem(s) in the request; first: {violations[0]['error']}",
                violations,
            )
        return images

    def check_records(self, records: list[Any]) -> None:
        """Raise when a record breaks the contract (see :meth:`decode`)."""
        self.decode(records)


class ImagePredictor:
    """Answer records holding images with class probabilities.

    Parameters
    ----------
    contract
        The record contract: one field holding the image.
    image
        The image contract.
    model
        The ONNX model's bytes (inputs ``pixels``; outputs ``probabilities``, ``embedding``,
        ``saliency``).
    size
        The side the model's input is resized to.
    task
        ``binary`` or ``multiclass``.
    classes
        Class labels in output order (for binary, the positive class last).
    threshold
        The decision threshold on the positive class's probability (binary only).
    unknown_fields
        Passed to the record validator.
    """

    def __init__(
        self,
        contract: Contract,
        image: ImageContract,
        model: bytes,
        size: int,
        task: str,
        classes: Sequence[Any],
        threshold: float | None = None,
        unknown_fields: str = "reject",
    ) -> None:
        self.contract = contract
        self.image_contract = image
        self.size = size
        self.task = task
        self.classes = list(classes)
        self.threshold = threshold if task == "binary" else None
        self.validator = ImageValidator(contract, image, unknown_fields)
        self.session = onnx_session(model)
        self.file_field = contract.columns[0].name
        """The record field holding the image (base64): where a stream event's raw bytes go."""

    def run(self, pixels: npt.NDArray[np.float32]) -> dict[str, npt.NDArray[np.float32]]:
        """Run the ONNX model on model inputs; return every output by name."""
        names = [output.name for output in self.session.get_outputs()]
        parts: list[list[Any]] = [[] for _ in names]
        for start in range(0, len(pixels), CHUNK):
            outputs = self.session.run(None, {"pixels": pixels[start : start + CHUNK]})
            for part, output in zip(parts, outputs, strict=True):
                part.append(output)
        return {name: np.concatenate(part) for name, part in zip(names, parts, strict=True)}

    def score_images(self, images: Sequence[npt.NDArray[np.uint8]]) -> FloatArray:
        """Class probabilities of decoded images (no validation)."""
        if not images:
            return np.zeros((0, len(self.classes)), dtype=np.float64)
        probabilities = self.run(model_input(images, self.size))["probabilities"]
        return np.asarray(probabilities, dtype=np.float64)

    def score_records(self, records: Sequence[Mapping[str, Any]]) -> FloatArray:
        """Validate records and return class probabilities."""
        return self.score_images(self.validator.decode(list(records)))

    def class_index(self, row: Sequence[float]) -> int:
        """Return the predicted class of one row of probabilities, at the decision threshold."""
        if self.threshold is not None:
            return int(row[1] >= self.threshold)
        return max(range(len(row)), key=row.__getitem__)

    def predict_records(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Validate and predict; each answer has the class, probabilities and threshold."""
        labels = [str(label) for label in self.classes]
        answers = []
        for row in self.score_records(records).tolist():
            answer: dict[str, Any] = {
                "prediction": self.classes[self.class_index(row)],
                "probabilities": dict(zip(labels, row, strict=True)),
            }
            if self.threshold is not None:
                answer["threshold"] = self.threshold
            answers.append(answer)
        return answers

    def answer_extras(
        self, record: Mapping[str, Any], answer: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Add the decision threshold to a served answer (the server formats the rest)."""
        return {} if self.threshold is None else {"threshold": self.threshold}

    def explain_image(self, record: Mapping[str, Any]) -> bytes:
        """Return a PNG: the image with the saliency map of the positive class over it.

        Raises
        ------
        RecordValidationError
            When the record breaks the contract.
        """
        from shipyard.tasks.image.saliency import overlay

        (pixels,) = self.validator.decode([record])
        saliency = self.run(model_input([pixels], self.size))["saliency"][0]
        buffer = io.BytesIO()
        overlay(pixels, saliency).save(buffer, format="PNG")
        return buffer.getvalue()

    def embeddings(self, images: Sequence[npt.NDArray[np.uint8]]) -> FloatArray:
        """Return the penultimate activations of decoded images (monitoring sketches them)."""
        return np.asarray(self.run(model_input(images, self.size))["embedding"], np.float64)

    def clean_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return ``frame`` unchanged: an image model has no fitted cleaning."""
        return frame

    def score_frame(self, frame: pd.DataFrame) -> FloatArray:
        """Score a frame whose image field holds base64 images."""
        field = self.image_contract.field
        return self.score_records([{field: value} for value in frame[field].tolist()])

    def labels_from_outputs(self, outputs: FloatArray) -> list[Any]:
        """Return the predicted label of each row of probabilities."""
        return [self.classes[self.class_index(row)] for row in outputs.tolist()]
