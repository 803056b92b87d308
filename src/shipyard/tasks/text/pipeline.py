"""The text classification task through the shared loop: read, search, export, check, register.

:func:`train_text_classifier` is what :func:`shipyard.lifecycle.train` runs for
``task: text_classification``. Text columns come from ``text.columns`` or are detected by the
contract; the other columns are not used. The text families (:mod:`shipyard.tasks.text.
candidates`) go through the same search as tabular families (portfolio, Optuna, shared folds,
leaderboard with corrected CV intervals, significance verdict); the chosen one is exported to
JSON, checked for parity and evaluated on the held-out test part with bootstrap intervals.
The bundle carries the drift references, the model card and the report.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shipyard.config import PipelineConfig, TextConfig, dump_config
from shipyard.data.contract import infer_contract
from shipyard.data.sources import fingerprint, read_table
from shipyard.data.split import split_frame
from shipyard.errors import ConfigError, DataError
from shipyard.evaluation.card import bundle_documents
from shipyard.evaluation.metrics import DEFAULT_METRICS, bootstrap_metrics
from shipyard.evaluation.metrics import default_metric as task_default_metric
from shipyard.monitoring.reference import PREDICTION_COLUMN, prediction_sketch, reference_to_json
from shipyard.registry.store import DEFAULT_ALIAS, Registry
from shipyard.runtime.text import TextPredictor
from shipyard.tasks.detect import class_order
from shipyard.tasks.families import candidate_class
from shipyard.tasks.tabular import FeatureSet
from shipyard.tasks.text.candidates import (
    DOCUMENT_COLUMN,
    EMBEDDING_CANDIDATE,
    EMBEDDING_PREFIX,
    family_settings,
)
from shipyard.tasks.text.drift import TOKEN_PATTERN, TextDriftReference
from shipyard.tasks.text.evaluation import text_evaluation
from shipyard.tasks.text.export import (
    check_text_parity,
    export_embedding_classifier,
    export_text_pipeline,
)
from shipyard.tasks.text.monitoring import word_featurizer
from shipyard.training.search import SearchSettings
from shipyard.training.trainer import SelectionSettings, TrainingResult, train_candidates

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.lifecycle import TrainRun

__all__ = ["documents", "train_text_classifier"]

CLASSIFICATION_METRICS = ("roc_auc", "f1", "accuracy", "log_loss")


def documents(frame: pd.DataFrame, columns: list[str]) -> Any:
    """One document per row: the text columns joined by a newline (missing text is empty)."""
    parts = [
        frame[name].where(frame[name].map(lambda v: isinstance(v, str)), "") for name in columns
    ]
    joined = parts[0].astype(str)
    for part in parts[1:]:
        joined = joined + "\n" + part.astype(str)
    return joined.to_numpy(dtype=object)


def search_frame(texts: Any, embeddings: Any = None) -> pd.DataFrame:
    """Build the frame the shared search hands to text candidates: documents (and embeddings)."""
    import pandas as pd

    frame = pd.DataFrame({DOCUMENT_COLUMN: texts})
    if embeddings is not None:
        names = [f"{EMBEDDING_PREFIX}{index}" for index in range(embeddings.shape[1])]
        frame = pd.concat([frame, pd.DataFrame(embeddings, columns=names)], axis=1)
    return frame


def _search(
    texts: Any,
    y: Any,
    settings: TextConfig,
    task: str,
    metric: str,
    config: PipelineConfig,
    report: Callable[[str], None],
) -> tuple[TrainingResult, Any]:
    """Run the text families through the shared search; return its result and embeddings."""
    families = list(dict.fromkeys(settings.candidates))
    embeddings = None
    if EMBEDDING_CANDIDATE in families and candidate_class(EMBEDDING_CANDIDATE).available():
        from shipyard.runtime.embedding import SentenceEmbedder

        report(f"embedding {len(texts)} texts with all-MiniLM-L6-v2")
        embeddings = SentenceEmbedder().encode(list(texts))
    x = search_frame(texts, embeddings)
    fixed, portfolio = family_settings(settings)
    training = config.training
    result = train_candidates(
        x,
        y,
        x.iloc[:0],
        y[:0],
        features=FeatureSet(numeric=[], categorical=[DOCUMENT_COLUMN]),
        task=task,
        metric=metric,
        models=families,
        cv_folds=training.cv_folds,
        time_budget=training.time_budget,
        seed=config.seed,
        report=report,
        search=SearchSettings(
            models=families,
            time_budget=training.time_budget,
            search_share=training.search_share,
            n_trials=training.n_trials,
            cv_folds=training.cv_folds,
            cv_repeats=training.cv_repeats,
            seed=config.seed,
            backend=training.backend,
            n_jobs=training.n_jobs,
            class_weight=None if training.class_weight == "none" else training.class_weight,
            fixed_params=dict.fromkeys(families, fixed),
            portfolios=dict.fromkeys(families, portfolio),
        ),
        # One linear model is exported per bundle, so no ensemble, calibration or threshold.
        selection=SelectionSettings(
            ensemble=False,
            prefer_simpler=training.prefer_simpler,
            final_fit=training.final_fit,
            alpha=training.alpha,
            confidence=config.evaluation.confidence,
        ),
    )
    return result, embeddings


def train_text_classifier(
    config: PipelineConfig,
    report: Callable[[str], None] | None = None,
    registry: Registry | None = None,
) -> TrainRun:
    """Train, evaluate, export and register a text classifier as a config describes.

    Raises
    ------
    DataError
        When no text column is found or the labels are unusable.
    ExportError
        When the exported model disagrees with the trained one.
    """
    from shipyard.lifecycle import TrainRun, _encode_target, _latest_version, package_versions

    report = report or (lambda message: None)
    started = time.perf_counter()
    settings = config.text or TextConfig()
    target, notes = config.data.target, []
    report(f"reading {config.data.source}")
    frame = read_table(config.data.source)
    if target in frame.columns and frame[target].isna().any():
        missing = int(frame[target].isna().sum())
        frame = frame[frame[target].notna()].reset_index(drop=True)
        notes.append(f"dropped {missing} rows whose target '{target}' is missing")
    contract = infer_contract(
        frame,
        target,
        drop=config.data.drop,
        detect_text=not settings.columns,
        text_columns=settings.columns,
    )
    text_columns = [column.name for column in contract.columns if column.type == "text"]
    if not text_columns:
        raise DataError(
            "No text column was found: free text needs many distinct values of several words. "
            "Name the column in text.columns."
        )
    unused = [name for name in contract.feature_names if name not in text_columns]
    if unused:
        notes.append(f"text model: not used as features: {', '.join(unused)}")
    contract = contract.model_copy(
        update={
            "columns": tuple(c for c in contract.columns if c.type == "text"),
            "ignored": (*contract.ignored, *unused),
        }
    )
    contract.validate_frame(frame, with_target=True).raise_if_failed("The training data")
    classes = class_order(frame[target], config.positive_class)
    task = "binary" if len(classes) == 2 else "multiclass"
    if len(classes) < 2:
        raise DataError(f"Target '{target}' has a single class; a classifier needs two or more.")
    metric = task_default_metric(task) if config.metric == "auto" else config.metric
    if metric not in CLASSIFICATION_METRICS:
        raise ConfigError(
            f"metric '{metric}' does not suit text classification; use one of "
            f"{', '.join(CLASSIFICATION_METRICS)}."
        )

    train_part, validation, held_out = split_frame(
        frame,
        target,
        classification=True,
        seed=config.seed,
        test_size=config.split.test_size,
        validation_size=config.split.validation_size,
        stratify=config.split.stratify,
    )
    assert held_out is not None
    # Cross-validation replaces the validation part, so it joins the training rows.
    learn = train_part if validation is None else _concat([train_part, validation])
    test = held_out
    rows = {"train": len(learn), "validation": 0, "test": len(test)}
    report(f"text {task} task on {', '.join(text_columns)}, metric {metric}; rows: {rows}")
    y_learn = _encode_target(learn[target], task, classes)
    texts = documents(learn, text_columns)
    result, embeddings = _search(texts, y_learn, settings, task, metric, config, report)
    fitted = result.pipeline.members[0][0]
    best = result.best
    report(f"exporting {best} and checking parity with the trained model")
    parity_model: Any
    if best == EMBEDDING_CANDIDATE:
        classifier = fitted.named_steps["model"]
        parity_model = _EmbeddingPipeline(classifier)
        spec = export_embedding_classifier(classifier, text_columns)
    else:
        parity_model = fitted[1:]  # without the step that reads documents from the search frame
        spec = export_text_pipeline(fitted, text_columns)
    predictor = TextPredictor(
        contract, spec, task, classes, explain_tokens=settings.explain_tokens
    )
    parity_rows = test.head(2000)
    parity = check_text_parity(
        parity_model,
        predictor,
        list(documents(parity_rows, text_columns)),
        parity_rows[text_columns].to_dict("records"),
    )
    report(f"evaluating on {len(test)} test rows with bootstrap confidence intervals")
    y_test = _encode_target(test[target], task, classes)
    test_outputs = predictor.score_frame(test)
    test_metrics = bootstrap_metrics(
        y_test,
        test_outputs,
        DEFAULT_METRICS[task],
        n_samples=config.evaluation.bootstrap_samples,
        confidence=config.evaluation.confidence,
        seed=config.seed,
    )
    # The drift sketches come from held-out texts: on training texts the out-of-vocabulary
    # rate is biased low (the vocabulary was learnt from them), and the outputs overconfident.
    # The centroids come from the training texts, so that no sketched text helped build them.
    test_texts = list(documents(test, text_columns))
    test_embeddings = None
    if best == EMBEDDING_CANDIDATE:
        from shipyard.runtime.embedding import SentenceEmbedder

        test_embeddings = SentenceEmbedder().encode(test_texts)
    text_reference = TextDriftReference.from_texts(
        test_texts,
        _vocabulary(spec, texts, settings.min_df),
        test_embeddings,
        featurizer=word_featurizer(spec),
        centroid_texts=list(texts),
        centroid_embeddings=embeddings,
    )
    drift_reference = {
        **text_reference.sketches,
        PREDICTION_COLUMN: prediction_sketch(test_outputs, task),
    }
    winner = next(row for row in result.leaderboard if row.name == best)
    manifest: dict[str, Any] = {
        "task": "text_classification",
        "classification": task,
        "target": target,
        "classes": classes,
        "metric": metric,
        "model": {"format": spec["format"], "path": "text_model.json", "family": best},
        "contract": "contract.yaml",
        "config": "config.yaml",
        "explain_tokens": settings.explain_tokens,
        "text_reference": "text_reference.json",
        "drift_reference": "drift_reference.json",
        "metrics": {
            "test": {name: value.as_dict() for name, value in test_metrics.items()},
            "cv": {row.name: row.as_dict() for row in result.leaderboard},
        },
        "leaderboard": [row.as_dict() for row in result.leaderboard],
        "verdict": result.verdict,
        "parity": parity,
        "rows": rows,
        "notes": notes,
        "sensitive": list(config.sensitive),
        "evaluation": text_evaluation(config, spec, classes, y_test, test_outputs),
    }
    files = {
        "contract.yaml": contract.to_yaml().encode(),
        "text_model.json": json.dumps(spec, allow_nan=False, ensure_ascii=False).encode(),
        "config.yaml": dump_config(config).encode(),
        "text_reference.json": json.dumps(text_reference.to_json(), allow_nan=False).encode(),
        "drift_reference.json": json.dumps(
            reference_to_json(drift_reference), allow_nan=False
        ).encode(),
    }
    registry = registry or Registry.from_config(config.registry)
    parent = _latest_version(registry, config.name)
    if config.evaluation.report:
        files.update(
            bundle_documents(
                {
                    **manifest,
                    "name": config.name,
                    "parent_version": parent,
                    "package_versions": package_versions(),
                },
                files,
                contract.model_dump(mode="json", exclude_none=True),
            )
        )
    version = registry.register(
        config.name,
        files,
        manifest,
        params={"family": best, **winner.params},
        config=dump_config(config),
        data_fingerprint=fingerprint(frame),
        package_versions=package_versions(),
        parent_version=parent,
    )
    promoted = False
    if parent is None:
        version = registry.promote(
            config.name, version.version, DEFAULT_ALIAS, reason="first version of the model"
        )
        promoted = True
    report(f"registered {version.reference}" + (" as champion" if promoted else ""))
    return TrainRun(
        version,
        "text_classification",
        metric,
        best,
        result.leaderboard,
        test_metrics,
        parity,
        rows,
        notes,
        promoted,
        time.perf_counter() - started,
        verdict=result.verdict,
    )


def _vocabulary(spec: dict[str, Any], texts: Any, min_df: int) -> list[str]:
    """Words the model knows: its word unigrams, or (embeddings) frequent training words."""
    for vectorizer in spec.get("vectorizers", []):
        if vectorizer["analyzer"] == "word":
            return [term for term in vectorizer["terms"] if " " not in term]
    from collections import Counter

    counts = Counter(
        token for text in texts for token in set(TOKEN_PATTERN.findall(str(text).lower()))
    )
    return sorted(token for token, count in counts.items() if count >= min_df)


class _EmbeddingPipeline:
    """The trained side of the parity check: embed with the packaged model, then classify."""

    def __init__(self, classifier: Any) -> None:
        self.classifier = classifier

    def predict_proba(self, texts: Any) -> Any:
        from shipyard.runtime.embedding import SentenceEmbedder

        return self.classifier.predict_proba(SentenceEmbedder().encode(list(texts)))


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    import pandas as pd

    return pd.concat(frames, ignore_index=True)
