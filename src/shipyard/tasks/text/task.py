"""The text classification task: free-text columns in, a class with token explanations out.

Text columns come from ``text.columns`` or are detected by the contract; the other columns are
not used. The families go through the shared search (:mod:`shipyard.tasks.text.search`); the
chosen one is exported to JSON, checked for parity and evaluated on the held-out test part with
bootstrap intervals. The bundle carries the text drift references (length, words,
out-of-vocabulary rate, centroid cosine) beside the output sketch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    from shipyard.config import PipelineConfig
    from shipyard.data.contract import Contract
    from shipyard.evaluation.report import DocumentSections
    from shipyard.manifest import Manifest
    from shipyard.monitoring.adapters import TaskMonitoring
    from shipyard.tasks.try_it import TryItForm

__all__ = ["TextClassificationTask"]

CLASSIFICATION_METRICS = ("roc_auc", "f1", "accuracy", "log_loss")
PARITY_ROWS = 2000


class TextClassificationTask(Task):
    """Binary or multiclass classification of free text."""

    name = "text_classification"
    summary = "binary or multiclass classification of free-text columns"
    capabilities = Capabilities(
        config_tasks=("text_classification",),
        manifest_tasks=("text_classification",),
        unsupported_keys=TABLE_ONLY_KEYS,
    )

    def small_config(self, folder: Path) -> dict[str, Any]:
        """Use 600 messages of the SMS Spam Collection and the word TF-IDF family."""
        from shipyard import datasets

        sample = datasets.load("sms_spam").train.sample(600, random_state=0)
        sample.to_parquet(folder / "sms.parquet")
        return {
            "name": "spam",
            "task": "text_classification",
            "metric": "f1",
            "positive_class": "spam",
            "data": {"source": str(folder / "sms.parquet"), "target": "label"},
            "training": {"cv_folds": 2, "cv_repeats": 1, "n_trials": 1},
            "text": {"candidates": ["tfidf_word"], "regularization": [10.0]},
            "evaluation": {"bootstrap_samples": 100, "report": False},
        }

    def read(self, config: PipelineConfig, context: RunContext) -> PreparedData:
        """Read the source; drop rows whose label is missing."""
        from shipyard.data.sources import ReadOptions, fingerprint, read_table
        from shipyard.data.split import labelled_rows, minimum_rows

        data, split = config.data, config.split
        context.report(f"reading {data.source}")
        frame, notes = labelled_rows(
            read_table(data.source, ReadOptions(data.encoding, data.header)),
            data.target_column,
            data.source,
            minimum_rows(split.validation_size, split.test_size),
        )
        return PreparedData(frame, notes=notes, fingerprint=fingerprint(frame))

    def contract(
        self, data: PreparedData, config: PipelineConfig, context: RunContext
    ) -> PreparedData:
        """Find the text columns; the contract holds them alone."""
        from shipyard.config import TextConfig
        from shipyard.data.contract import infer_contract

        settings = config.text or TextConfig()
        contract = infer_contract(
            data.frame,
            config.data.target_column,
            drop=config.data.drop,
            detect_text=not settings.columns,
            text_columns=settings.columns,
        )
        text_columns = [column.name for column in contract.columns if column.type == "text"]
        if not text_columns:
            raise DataError(
                "No text column was found: free text needs many distinct values of several "
                "words. Name the column in text.columns."
            )
        unused = [name for name in contract.feature_names if name not in text_columns]
        if unused:
            data.notes.append(f"text model: not used as features: {', '.join(unused)}")
        contract = contract.model_copy(
            update={
                "columns": tuple(c for c in contract.columns if c.type == "text"),
                "ignored": (*contract.ignored, *unused),
            }
        )
        contract.validate_frame(data.frame, with_target=True).raise_if_failed("The training data")
        data.contract = contract
        data.payload["text_columns"] = text_columns
        return data

    def split(self, data: PreparedData, config: PipelineConfig, context: RunContext) -> SplitData:
        """Order the classes and hold out the test part; CV replaces the validation part."""
        import pandas as pd

        from shipyard.data.split import split_frame
        from shipyard.evaluation.metrics import default_metric
        from shipyard.tasks.detect import class_order

        target = config.data.target_column
        classes = class_order(data.frame[target], config.positive_class)
        if len(classes) < 2:
            raise DataError(
                f"Target '{target}' has a single class; a classifier needs two or more."
            )
        kind = "binary" if len(classes) == 2 else "multiclass"
        metric = default_metric(kind) if config.metric == "auto" else config.metric
        if metric not in CLASSIFICATION_METRICS:
            raise ConfigError(
                f"metric '{metric}' does not suit text classification; use one of "
                f"{', '.join(CLASSIFICATION_METRICS)}."
            )
        train_part, validation, held_out = split_frame(
            data.frame,
            target,
            classification=True,
            seed=config.seed,
            test_size=config.split.test_size,
            validation_size=config.split.validation_size,
            stratify=config.split.stratify,
        )
        assert held_out is not None  # split_frame holds rows out when test_size is given
        # Cross-validation replaces the validation part, so it joins the training rows.
        learn = pd.concat([train_part, validation], ignore_index=True)
        rows = {"train": len(learn), "validation": 0, "test": len(held_out)}
        columns = data.payload["text_columns"]
        context.report(f"text {kind} task on {', '.join(columns)}, metric {metric}; rows: {rows}")
        return SplitData(data, learn, learn.iloc[:0], held_out, kind, metric, classes, rows)

    def fit(self, data: SplitData, config: PipelineConfig, context: RunContext) -> FittedModel:
        """Search the text families; export the winner to JSON."""
        from shipyard.config import TextConfig
        from shipyard.runtime.text import TextPredictor
        from shipyard.tasks.labels import encode_target
        from shipyard.tasks.text.candidates import EMBEDDING_CANDIDATE
        from shipyard.tasks.text.export import export_embedding_classifier, export_text_pipeline
        from shipyard.tasks.text.search import (
            EmbeddingPipeline,
            documents,
            search_text_families,
        )

        settings = config.text or TextConfig()
        columns = data.prepared.payload["text_columns"]
        y = encode_target(data.train[config.data.target], data.kind, data.classes)
        texts = documents(data.train, columns)
        result, embeddings = search_text_families(
            texts, y, settings, data.kind, data.metric, config, context.report
        )
        fitted, best = result.pipeline.members[0][0], result.best
        context.report(f"exporting {best} and checking parity with the trained model")
        if best == EMBEDDING_CANDIDATE:
            classifier = fitted.named_steps["model"]
            parity_model: Any = EmbeddingPipeline(classifier)
            spec = export_embedding_classifier(classifier, columns)
        else:
            parity_model = fitted[1:]  # without the step that reads documents from the frame
            spec = export_text_pipeline(fitted, columns)
        assert data.prepared.contract is not None  # set by the contract step
        predictor = TextPredictor(
            data.prepared.contract,
            spec,
            data.kind,
            data.classes,
            explain_tokens=settings.explain_tokens,
        )
        winner = next(row for row in result.leaderboard if row.name == best)
        return FittedModel(
            predictor,
            best,
            result.leaderboard,
            {"family": best, **winner.params},
            verdict=result.verdict,
            payload={
                "spec": spec,
                "parity_model": parity_model,
                "texts": texts,
                "embeddings": embeddings,
            },
        )

    def check_parity(self, fitted: FittedModel, data: SplitData) -> dict[str, float]:
        """Compare the JSON model with the trained pipeline on held-out documents."""
        from shipyard.tasks.text.export import check_text_parity
        from shipyard.tasks.text.search import documents

        columns = data.prepared.payload["text_columns"]
        rows = data.test.head(PARITY_ROWS)
        return check_text_parity(
            fitted.payload["parity_model"],
            fitted.predictor,
            list(documents(rows, columns)),
            rows[columns].to_dict("records"),
        )

    def evaluate(
        self, fitted: FittedModel, data: SplitData, config: PipelineConfig, context: RunContext
    ) -> EvaluatedModel:
        """Test metrics, top tokens and confusion, and the text drift references."""
        from shipyard.config import TextConfig
        from shipyard.evaluation.metrics import DEFAULT_METRICS, bootstrap_metrics
        from shipyard.tasks.labels import encode_target
        from shipyard.tasks.text.evaluation import text_evaluation

        settings = config.text or TextConfig()
        context.report(
            f"evaluating on {len(data.test)} test rows with bootstrap confidence intervals"
        )
        y_test = encode_target(data.test[config.data.target], data.kind, data.classes)
        outputs = fitted.predictor.score_frame(data.test)
        test_metrics = bootstrap_metrics(
            y_test,
            outputs,
            DEFAULT_METRICS[data.kind],
            n_samples=config.evaluation.bootstrap_samples,
            confidence=config.evaluation.confidence,
            seed=config.seed,
        )
        spec = fitted.payload["spec"]
        text_reference, drift_reference = self._references(fitted, data, outputs, settings)
        manifest: dict[str, Any] = {
            "task": "text_classification",
            "classification": data.kind,
            "model": {"format": spec["format"], "path": "text_model.json", "family": fitted.best},
            "contract": "contract.yaml",
            "explain_tokens": settings.explain_tokens,
            "text_reference": "text_reference.json",
            "drift_reference": "drift_reference.json",
            "evaluation": text_evaluation(config, spec, data.classes, y_test, outputs),
        }
        assert data.prepared.contract is not None  # set by the contract step
        files = {
            "contract.yaml": data.prepared.contract.to_yaml().encode(),
            "text_model.json": json.dumps(spec, allow_nan=False, ensure_ascii=False).encode(),
            "text_reference.json": json.dumps(text_reference, allow_nan=False).encode(),
            "drift_reference.json": json.dumps(drift_reference, allow_nan=False).encode(),
        }
        return EvaluatedModel(test_metrics, manifest, files, outputs)

    @staticmethod
    def _references(
        fitted: FittedModel, data: SplitData, outputs: Any, settings: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Build the text reference and the drift reference, as JSON documents.

        The sketches come from held-out texts: on training texts the out-of-vocabulary rate
        is biased low (the vocabulary was learnt from them), and the outputs overconfident.
        The centroids come from the training texts, so that no sketched text helped build
        them.
        """
        from shipyard.monitoring.reference import (
            PREDICTION_COLUMN,
            prediction_sketch,
            reference_to_json,
        )
        from shipyard.tasks.text.candidates import EMBEDDING_CANDIDATE
        from shipyard.tasks.text.drift import TextDriftReference
        from shipyard.tasks.text.monitoring import word_featurizer
        from shipyard.tasks.text.search import documents, vocabulary

        spec, texts = fitted.payload["spec"], fitted.payload["texts"]
        test_texts = list(documents(data.test, data.prepared.payload["text_columns"]))
        test_embeddings = None
        if fitted.best == EMBEDDING_CANDIDATE:
            from shipyard.runtime.embedding import SentenceEmbedder

            test_embeddings = SentenceEmbedder().encode(test_texts)
        text_reference = TextDriftReference.from_texts(
            test_texts,
            vocabulary(spec, texts, settings.min_df),
            test_embeddings,
            featurizer=word_featurizer(spec),
            centroid_texts=list(texts),
            centroid_embeddings=fitted.payload["embeddings"],
        )
        drift_reference = {
            **text_reference.sketches,
            PREDICTION_COLUMN: prediction_sketch(outputs, data.kind),
        }
        return text_reference.to_json(), reference_to_json(drift_reference)

    def load(self, directory: Path, manifest: Manifest, unknown_fields: str) -> Any:
        """Build a :class:`~shipyard.runtime.text.TextPredictor` from the bundle's JSON."""
        from shipyard.data.contract import Contract
        from shipyard.runtime.text import TextPredictor

        contract_path = bundle_file(directory, manifest.contract)
        contract = Contract.from_yaml(
            contract_path.read_text(encoding="utf-8"), source=str(contract_path)
        )
        spec = json.loads(bundle_file(directory, manifest.model.path).read_bytes())
        return TextPredictor(
            contract,
            spec,
            str(manifest.section("classification")),
            manifest.classes,
            unknown_fields,
            int(manifest.section("explain_tokens", 5)),
        )

    def try_it(self, manifest: Manifest, contract: Contract | None, predictor: Any) -> TryItForm:
        """Draw a text box per text column the model reads (the others are not used)."""
        from shipyard.tasks.try_it import form_from_contract

        form = form_from_contract(contract, columns=list(predictor.text_columns))
        return replace(form, submit_label="Classify")

    def monitoring(self, directory: Path, manifest: Manifest, reference: str) -> TaskMonitoring:
        """Sketch text signals of the logged requests and the answers' outputs."""
        from shipyard.monitoring.adapters import read_reference
        from shipyard.tasks.text.monitoring import text_monitoring

        return text_monitoring(
            directory,
            manifest.to_document(),
            read_reference(directory, manifest.drift_reference, reference),
        )

    def retrain_steps(self) -> RetrainSteps:
        """Labelled requests join the table as rows; the gate compares the model's metric."""
        from shipyard.tasks.labelled_rows import RECORD_STEPS

        return RECORD_STEPS

    def label_kind(self, manifest: Manifest) -> str | None:
        """``binary`` or ``multiclass``: a text answer carries class probabilities."""
        return str(manifest.section("classification"))

    def encode_labels(self, labels: Sequence[Any], manifest: Manifest) -> Any:
        """Class indices."""
        from shipyard.tasks.labels import encode_target

        return encode_target(labels, self.label_kind(manifest) or "", manifest.classes)

    def document_sections(self) -> DocumentSections:
        """Top tokens, the confusion matrix and the leaderboard."""
        from shipyard.tasks.text.documents import TEXT_SECTIONS

        return TEXT_SECTIONS
