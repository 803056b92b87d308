"""The image classification task: labelled images in, an ONNX classifier with saliency out.

Images come from class folders, a CSV/Parquet table of paths (or encoded bytes) and labels, or
a NumPy ``.npz`` file (:mod:`shipyard.tasks.image.sources`). The image contract is inferred
from the training images and enforced on them and on every request. Three candidates
(:mod:`shipyard.tasks.image.training`) are trained under the time budget and compared on the
validation images; the chosen one is exported to ONNX, checked for parity with PyTorch and
served by ONNX Runtime, with a decision threshold tuned on the validation images.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.errors import ConfigError, DataError
from shipyard.runtime.bundle_files import bundle_file
from shipyard.tasks.base import (
    TABLE_ONLY_KEYS,
    Capabilities,
    EvaluatedModel,
    FittedModel,
    PreparedData,
    RetrainSteps,
    RunContext,
    SplitData,
    Task,
)

if TYPE_CHECKING:
    from shipyard.config import ImageConfig, PipelineConfig
    from shipyard.data.contract import Contract
    from shipyard.evaluation.report import DocumentSections
    from shipyard.manifest import Manifest
    from shipyard.monitoring.adapters import TaskMonitoring
    from shipyard.tasks.image.sources import ImageSet
    from shipyard.tasks.try_it import TryItForm

__all__ = ["ImageClassificationTask"]

CLASSIFICATION_METRICS = ("roc_auc", "accuracy", "f1", "log_loss")
PARITY_IMAGES = 64
ERROR_GRID_IMAGES = 8
INTENDED_USE = (
    "Decision support for trained readers of images like the training images; every answer "
    "is to be checked by a qualified person. Not a medical device: it is not approved, "
    "certified or validated for diagnosis, and must not be used as the sole basis of a "
    "clinical decision."
)


def _settings(config: PipelineConfig) -> ImageConfig:
    from shipyard.config import ImageConfig

    return config.image or ImageConfig()


class ImageClassificationTask(Task):
    """Binary or multiclass classification of images, with transfer learning."""

    name = "image_classification"
    summary = "binary or multiclass classification of images (transfer learning, ONNX)"
    capabilities = Capabilities(
        config_tasks=("image_classification",),
        manifest_tasks=("image_classification",),
        unsupported_keys=TABLE_ONLY_KEYS,
        explanations=True,
    )
    default_target = "label"

    def try_it(self, manifest: Manifest, contract: Contract | None, predictor: Any) -> TryItForm:
        """Offer an upload of one PNG or JPEG image (sent as base64, as the API takes it)."""
        from shipyard.tasks.try_it import TryItField, TryItForm

        column = contract.columns[0].name if contract is not None else "image"
        upload = TryItField(column, "Image", "image", help="a PNG or JPEG file")
        return TryItForm((upload,), submit_label="Classify")

    def small_config(self, folder: Path) -> dict[str, Any]:
        """Use 160 PneumoniaMNIST X-rays as a table of base64 PNGs; the linear model alone."""
        import base64

        import pandas as pd

        from shipyard.datasets.pneumoniamnist import load_pneumoniamnist
        from shipyard.tasks.image.sources import encode_png

        data = load_pneumoniamnist()
        rows = np.random.default_rng(0).choice(len(data.train_images), 160, replace=False)
        frame = pd.DataFrame(
            {
                "image": [
                    base64.b64encode(encode_png(data.train_images[row][:, :, None])).decode()
                    for row in rows
                ],
                "label": ["pneumonia" if data.train_labels[row] else "normal" for row in rows],
            }
        )
        frame.to_parquet(folder / "xrays.parquet")
        return {
            "name": "xrays",
            "task": "image_classification",
            "positive_class": "pneumonia",
            "data": {"source": str(folder / "xrays.parquet"), "target": "label"},
            "training": {"time_budget": 900},
            "image": {"candidates": ["linear_pixels"], "epochs": 3, "size": 16},
            "evaluation": {"bootstrap_samples": 100, "report": False},
        }

    # Training --------------------------------------------------------------------------------

    def read(self, config: PipelineConfig, context: RunContext) -> PreparedData:
        """Read the labelled images (and the source's own test part, if it has one)."""
        import pandas as pd

        from shipyard.tasks.image.sources import read_images

        settings = _settings(config)
        context.report(f"reading images from {config.data.source}")
        images, test = read_images(config.data.source, config.data.target_column, settings.column)
        frame = pd.DataFrame({"source": images.names, config.data.target_column: images.labels})
        digest = hashlib.sha256()
        for pixels, label in zip(images.images, images.labels, strict=True):
            digest.update(f"{pixels.shape}:{label}\n".encode())
            digest.update(pixels.tobytes())
        notes = [f"{len(images)} training images read from {config.data.source}"]
        if test is not None:
            notes.append(f"the source's own test part ({len(test)} images) is the test set")
        return PreparedData(
            frame,
            notes=notes,
            fingerprint=digest.hexdigest(),
            payload={"images": images, "test": test},
        )

    def contract(
        self, data: PreparedData, config: PipelineConfig, context: RunContext
    ) -> PreparedData:
        """Infer the image contract from the training images; check the test images."""
        from shipyard.data.contract import ColumnContract, Contract
        from shipyard.tasks.image.contract import infer_image_contract

        settings = _settings(config)
        images: ImageSet = data.payload["images"]
        image = infer_image_contract(
            images.images, images.formats, settings.column, settings.max_bytes
        )
        for part in (images, data.payload["test"]):
            if part is None:
                continue
            for pixels, kind, name, size in zip(
                part.images, part.formats, part.names, part.sizes, strict=True
            ):
                image.check_bytes(size, name)
                problem = image.check(pixels, kind, name)
                if problem is not None:
                    raise DataError(f"{problem}; remove or convert it.")
        numeric = all(isinstance(label, int | np.integer) for label in images.labels)
        data.contract = Contract(
            target=ColumnContract(
                name=config.data.target, type="integer" if numeric else "string"
            ),
            columns=(ColumnContract(name=settings.column, type="string"),),
        )
        data.payload["image_contract"] = image
        context.report(f"image contract: {image.describe()}")
        data.data_section = {"image_contract": image.model_dump(mode="json")}
        return data

    def split(self, data: PreparedData, config: PipelineConfig, context: RunContext) -> SplitData:
        """Order the classes; hold out validation and test images, stratified."""
        import pandas as pd
        from sklearn.model_selection import train_test_split

        from shipyard.evaluation.metrics import default_metric
        from shipyard.tasks.detect import class_order

        images: ImageSet = data.payload["images"]
        classes = class_order(pd.Series(images.labels), config.positive_class)
        if len(classes) < 2:
            raise DataError("The images have a single class; a classifier needs two or more.")
        kind = "binary" if len(classes) == 2 else "multiclass"
        metric = default_metric(kind) if config.metric == "auto" else config.metric
        if metric not in CLASSIFICATION_METRICS:
            raise ConfigError(
                f"metric '{metric}' does not suit image classification; use one of "
                f"{', '.join(CLASSIFICATION_METRICS)}."
            )
        rows = np.arange(len(images))
        labels = [str(label) for label in images.labels]
        test: ImageSet | None = data.payload["test"]
        if test is None:
            rows, test_rows = train_test_split(
                rows,
                test_size=config.split.test_size,
                random_state=config.seed,
                stratify=labels,
            )
            test = images.subset(test_rows.tolist())
        share = config.split.validation_size / max(1e-9, 1.0 - config.split.test_size)
        train_rows, validation_rows = train_test_split(
            rows,
            test_size=min(0.5, share),
            random_state=config.seed,
            stratify=[labels[row] for row in rows],
        )
        train = images.subset(sorted(train_rows.tolist()))
        validation = images.subset(sorted(validation_rows.tolist()))
        counts = {"train": len(train), "validation": len(validation), "test": len(test)}
        context.report(f"image {kind} task, metric {metric}; images: {counts}")
        return SplitData(data, train, validation, test, kind, metric, classes, counts)

    def fit(self, data: SplitData, config: PipelineConfig, context: RunContext) -> FittedModel:
        """Train the candidates under the budget, choose one, export it to ONNX."""
        from shipyard.errors import require

        require("torch", "vision")
        import torch

        from shipyard.evaluation.metrics import GREATER_IS_BETTER
        from shipyard.evaluation.metrics import score as metric_score
        from shipyard.tasks.image.evaluation import tune_threshold
        from shipyard.tasks.image.export import export_onnx
        from shipyard.tasks.image.pixels import model_input
        from shipyard.tasks.image.predictor import ImagePredictor
        from shipyard.tasks.image.training import COMPLEXITY, select, train_candidate
        from shipyard.tasks.labels import encode_target

        settings = _settings(config)
        y_train = np.asarray(encode_target(data.train.labels, data.kind, data.classes), np.int64)
        y_validation = np.asarray(
            encode_target(data.validation.labels, data.kind, data.classes), np.int64
        )
        greater = GREATER_IS_BETTER[data.metric]

        def judge(outputs: Any) -> float:
            value = float(metric_score(data.metric, y_validation, outputs))
            return value if greater else -value

        def resize(side: int) -> tuple[Any, Any]:
            return model_input(data.train.images, side), model_input(data.validation.images, side)

        train_pixels, validation_pixels = resize(settings.size)
        threads = torch.get_num_threads()
        # One thread: on a small, busy machine more threads were several times slower.
        torch.set_num_threads(1)
        trained = []
        try:
            started = time.monotonic()
            budget = config.training.time_budget
            # Cheapest first: what a quick candidate leaves of its share goes to the next ones.
            order = sorted(settings.candidates, key=COMPLEXITY.__getitem__)
            for position, name in enumerate(order):
                left = budget - (time.monotonic() - started)
                share = left / (len(order) - position)
                context.report(f"training {name} ({share:.0f}s of the budget)")
                trained.append(
                    train_candidate(
                        name,
                        (train_pixels, y_train),
                        validation_pixels,
                        settings,
                        len(data.classes),
                        config.seed,
                        time.monotonic() + share,
                        context.report,
                        resize,
                        judge,
                    )
                )
        finally:
            torch.set_num_threads(threads)
        leaderboard, verdict, chosen = select(
            trained, y_validation, data.kind, data.metric, config.seed
        )
        context.report(verdict["summary"])
        threshold: dict[str, Any] | None = None
        if data.kind == "binary":
            value = tune_threshold(y_validation, chosen.validation[:, 1])
            threshold = {"value": value, "metric": "sensitivity + specificity"}
        context.report(f"exporting {chosen.name} to ONNX and checking parity")
        channels = int(train_pixels.shape[1])
        model = export_onnx(chosen.network, channels, chosen.size)
        assert data.prepared.contract is not None  # set by the contract step
        predictor = ImagePredictor(
            data.prepared.contract,
            data.prepared.payload["image_contract"],
            model,
            chosen.size,
            data.kind,
            data.classes,
            None if threshold is None else float(threshold["value"]),
        )
        return FittedModel(
            predictor,
            chosen.name,
            leaderboard,
            {"family": chosen.name, **chosen.params},
            verdict=verdict,
            threshold=threshold,
            payload={"network": chosen.network, "onnx": model, "size": chosen.size},
        )

    def check_parity(self, fitted: FittedModel, data: SplitData) -> dict[str, float]:
        """Compare ONNX Runtime with PyTorch on held-out images, batched and one by one."""
        from shipyard.tasks.image.export import check_image_parity
        from shipyard.tasks.image.pixels import model_input

        images = list(data.test.images[:PARITY_IMAGES])
        pixels = model_input(images, fitted.payload["size"])
        return check_image_parity(fitted.payload["network"], fitted.predictor, pixels)

    def evaluate(
        self, fitted: FittedModel, data: SplitData, config: PipelineConfig, context: RunContext
    ) -> EvaluatedModel:
        """Test metrics with intervals; decisions, calibration, robustness; the references."""
        from shipyard.evaluation.metrics import DEFAULT_METRICS, bootstrap_metrics
        from shipyard.tasks.labels import encode_target

        context.report(
            f"evaluating on {len(data.test)} test images with bootstrap confidence intervals"
        )
        predictor = fitted.predictor
        y_test = np.asarray(encode_target(data.test.labels, data.kind, data.classes))
        outputs = predictor.score_images(data.test.images)
        threshold = predictor.threshold
        test_metrics = bootstrap_metrics(
            y_test,
            outputs,
            DEFAULT_METRICS[data.kind],
            n_samples=config.evaluation.bootstrap_samples,
            confidence=config.evaluation.confidence,
            seed=config.seed,
            threshold=threshold,
        )
        evaluation = self._evaluation(fitted, data, config, y_test, outputs)
        image_reference, drift_reference = self._references(fitted, data, outputs)
        image_contract = data.prepared.payload["image_contract"]
        manifest: dict[str, Any] = {
            "task": "image_classification",
            "classification": data.kind,
            "model": {"format": "onnx", "path": "model.onnx", "family": fitted.best},
            "contract": "contract.yaml",
            "image_contract": "image_contract.json",
            "input_size": fitted.payload["size"],
            "decision_threshold": fitted.threshold,
            "image_reference": "image_reference.json",
            "drift_reference": "drift_reference.json",
            "evaluation": evaluation,
            "intended_use": INTENDED_USE,
        }
        weights = fitted.params.get("weights")
        if weights:
            manifest["pretrained_weights"] = weights
        assert data.prepared.contract is not None  # set by the contract step
        files = {
            "contract.yaml": data.prepared.contract.to_yaml().encode(),
            "image_contract.json": image_contract.model_dump_json(indent=2).encode(),
            "model.onnx": fitted.payload["onnx"],
            "image_reference.json": json.dumps(image_reference, allow_nan=False).encode(),
            "drift_reference.json": json.dumps(drift_reference, allow_nan=False).encode(),
        }
        plots = {}
        if config.evaluation.report:
            plots["confident_errors"] = self._error_grid(fitted, data, y_test, outputs)
        return EvaluatedModel(test_metrics, manifest, files, outputs, plots)

    @staticmethod
    def _error_grid(fitted: FittedModel, data: SplitData, y_test: Any, outputs: Any) -> bytes:
        """Return the most confident test errors with their saliency maps, as one PNG."""
        from shipyard.tasks.image.pixels import model_input
        from shipyard.tasks.image.saliency import error_grid

        predictor = fitted.predictor
        predicted = np.array([predictor.class_index(row) for row in outputs.tolist()])
        wrong = np.flatnonzero(predicted != y_test)
        worst = wrong[np.argsort(-outputs[wrong, predicted[wrong]])][:ERROR_GRID_IMAGES]
        images = [data.test.images[row] for row in worst]
        saliencies = (
            list(predictor.run(model_input(images, predictor.size))["saliency"]) if images else []
        )
        captions = [
            f"{data.classes[predicted[row]]} {outputs[row, predicted[row]]:.2f} "
            f"(is {data.classes[y_test[row]]})"
            for row in worst
        ]
        return error_grid(images, saliencies, captions)

    @staticmethod
    def _evaluation(
        fitted: FittedModel,
        data: SplitData,
        config: PipelineConfig,
        y_test: Any,
        outputs: Any,
    ) -> dict[str, Any]:
        from shipyard.tasks.image.evaluation import calibration, decision_metrics, robustness

        predictor = fitted.predictor
        found: dict[str, Any] = {
            "robustness_flips": robustness(
                predictor.score_images,
                lambda scores: np.array([predictor.class_index(row) for row in scores.tolist()]),
                data.test.images,
                config.seed,
            )
        }
        if data.kind == "binary":
            found["at_threshold"] = decision_metrics(
                y_test,
                outputs[:, 1],
                float(predictor.threshold),
                config.evaluation.bootstrap_samples,
                config.evaluation.confidence,
                config.seed,
            )
            found["calibration"] = calibration(y_test, outputs[:, 1])
        return found

    @staticmethod
    def _references(
        fitted: FittedModel, data: SplitData, outputs: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Image and embedding references, from the held-out test images."""
        from shipyard.monitoring.reference import (
            PREDICTION_COLUMN,
            prediction_sketch,
            reference_to_json,
        )
        from shipyard.monitoring.sketch import NumericSketch
        from shipyard.tasks.image.monitoring import EmbeddingReference, image_signals

        predictor = fitted.predictor
        embeddings = predictor.embeddings(data.test.images)
        reference = EmbeddingReference.fit(embeddings)
        signals = image_signals(data.test.images, embeddings, reference)
        sketches: dict[str, Any] = {
            name: NumericSketch.from_values(values) for name, values in signals.items()
        }
        sketches[PREDICTION_COLUMN] = prediction_sketch(outputs, data.kind)
        return reference.to_json(), reference_to_json(sketches)

    # Serving and monitoring ------------------------------------------------------------------

    def load(self, directory: Path, manifest: Manifest, unknown_fields: str) -> Any:
        """Build an :class:`~shipyard.tasks.image.predictor.ImagePredictor` from the bundle."""
        from shipyard.data.contract import Contract
        from shipyard.tasks.image.contract import ImageContract
        from shipyard.tasks.image.predictor import ImagePredictor

        contract_path = bundle_file(directory, manifest.contract)
        contract = Contract.from_yaml(
            contract_path.read_text(encoding="utf-8"), source=str(contract_path)
        )
        image = ImageContract.model_validate_json(
            bundle_file(directory, str(manifest.section("image_contract"))).read_bytes()
        )
        threshold = manifest.section("decision_threshold")
        return ImagePredictor(
            contract,
            image,
            bundle_file(directory, manifest.model.path).read_bytes(),
            int(manifest.section("input_size")),
            str(manifest.section("classification")),
            manifest.classes,
            None if not threshold else float(threshold["value"]),
            unknown_fields,
        )

    def monitoring(self, directory: Path, manifest: Manifest, reference: str) -> TaskMonitoring:
        """Sketch image statistics and embedding drift of logged requests, and the outputs."""
        from shipyard.monitoring.adapters import read_reference
        from shipyard.tasks.image.monitoring import image_monitoring

        return image_monitoring(
            directory,
            manifest.to_document(),
            read_reference(directory, manifest.drift_reference, reference),
            self.load(directory, manifest, "ignore"),
        )

    def retrain_steps(self) -> RetrainSteps:
        """Labelled requests join the images; the gate compares the model's metric."""
        from shipyard.tasks.image.retrain import IMAGE_STEPS

        return IMAGE_STEPS

    def label_kind(self, manifest: Manifest) -> str | None:
        """``binary`` or ``multiclass``: an answer carries class probabilities."""
        return str(manifest.section("classification"))

    def encode_labels(self, labels: Sequence[Any], manifest: Manifest) -> Any:
        """Class indices."""
        from shipyard.tasks.labels import encode_target

        return encode_target(labels, self.label_kind(manifest) or "", manifest.classes)

    def document_sections(self) -> DocumentSections:
        """Intended use and limits, decisions at the threshold, robustness, the leaderboard."""
        from shipyard.tasks.image.documents import IMAGE_SECTIONS

        return IMAGE_SECTIONS
