"""The text classification task through the shared loop: read, search, export, check, register.

:func:`train_text_classifier` is what :func:`shipyard.lifecycle.train` runs for
``task: text_classification``. Text columns come from ``text.columns`` or are detected by the
contract; the other columns are not used. Candidates (TF-IDF variants x regularisation) are
compared by stratified cross-validation on the training part, the best is refitted, exported
to JSON, checked for parity and evaluated on the held-out test part with bootstrap intervals.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.config import PipelineConfig, TextConfig, dump_config
from shipyard.data.contract import infer_contract
from shipyard.data.sources import fingerprint, read_table
from shipyard.data.split import split_frame
from shipyard.errors import ConfigError, DataError
from shipyard.evaluation.metrics import DEFAULT_METRICS, bootstrap_metrics
from shipyard.evaluation.metrics import default_metric as task_default_metric
from shipyard.registry.store import DEFAULT_ALIAS, Registry
from shipyard.runtime.text import TextPredictor
from shipyard.tasks.detect import class_order
from shipyard.tasks.text.candidates import (
    EMBEDDING_CANDIDATE,
    embedding_classifier,
    text_pipeline,
)
from shipyard.tasks.text.drift import TOKEN_PATTERN, TextDriftReference
from shipyard.tasks.text.export import (
    check_text_parity,
    export_embedding_classifier,
    export_text_pipeline,
)
from shipyard.training.trainer import CandidateResult

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.lifecycle import TrainRun

__all__ = ["documents", "train_text_classifier"]

SCORERS = {
    ("binary", "roc_auc"): "roc_auc",
    ("binary", "f1"): "f1",
    ("multiclass", "roc_auc"): "roc_auc_ovr",
    ("multiclass", "f1"): "f1_macro",
    ("binary", "accuracy"): "accuracy",
    ("multiclass", "accuracy"): "accuracy",
    ("binary", "log_loss"): "neg_log_loss",
    ("multiclass", "log_loss"): "neg_log_loss",
}


def documents(frame: pd.DataFrame, columns: list[str]) -> Any:
    """One document per row: the text columns joined by a newline (missing text is empty)."""
    parts = [
        frame[name].where(frame[name].map(lambda v: isinstance(v, str)), "") for name in columns
    ]
    joined = parts[0].astype(str)
    for part in parts[1:]:
        joined = joined + "\n" + part.astype(str)
    return joined.to_numpy(dtype=object)


def _search(
    texts: Any,
    y: Any,
    settings: TextConfig,
    task: str,
    metric: str,
    config: PipelineConfig,
    report: Callable[[str], None],
) -> tuple[list[CandidateResult], tuple[str, float], Any]:
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    scorer = SCORERS[(task, metric)]
    folds = StratifiedKFold(config.training.cv_folds, shuffle=True, random_state=config.seed)
    results: list[CandidateResult] = []
    best: tuple[float, str, float] | None = None
    deadline = time.perf_counter() + config.training.time_budget
    embeddings = None
    for candidate in settings.candidates:
        if candidate == EMBEDDING_CANDIDATE and embeddings is None:
            from shipyard.runtime.embedding import SentenceEmbedder

            report(f"embedding {len(texts)} texts with all-MiniLM-L6-v2")
            embeddings = SentenceEmbedder().encode(list(texts))
        for regularization in settings.regularization:
            name = f"{candidate} C={regularization:g}"
            if best is not None and time.perf_counter() > deadline:
                results.append(CandidateResult(name, "skipped", message="time budget spent"))
                continue
            started = time.perf_counter()
            if candidate == EMBEDDING_CANDIDATE:
                estimator, inputs = embedding_classifier(regularization, config.seed), embeddings
            else:
                estimator = text_pipeline(candidate, settings, regularization, config.seed)
                inputs = texts
            scores = cross_val_score(estimator, inputs, y, cv=folds, scoring=scorer)
            if metric == "log_loss":
                scores = -scores
            mean = float(np.mean(scores))
            spread = 1.96 * float(np.std(scores, ddof=1)) / np.sqrt(len(scores))
            seconds = time.perf_counter() - started
            report(f"{name}: CV {metric} {mean:.4f} ({seconds:.1f} s)")
            results.append(
                CandidateResult(
                    name,
                    "ok",
                    cv_scores=[float(score) for score in scores],
                    cv_mean=mean,
                    cv_low=mean - spread,
                    cv_high=mean + spread,
                    fit_seconds=seconds,
                    params={"candidate": candidate, "C": regularization},
                )
            )
            ranked = -mean if metric == "log_loss" else mean
            if best is None or ranked > best[0]:
                best = (ranked, candidate, regularization)
    assert best is not None
    return results, (best[1], best[2]), embeddings


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
    if metric not in {key[1] for key in SCORERS}:
        raise ConfigError(f"metric '{metric}' does not suit text classification.")

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
    learn = train_part if validation is None else _concat([train_part, validation])
    test = held_out
    rows = {"train": len(learn), "validation": 0, "test": len(test)}
    report(f"text {task} task on {', '.join(text_columns)}, metric {metric}; rows: {rows}")
    y_learn = _encode_target(learn[target], task, classes)
    texts = documents(learn, text_columns)
    leaderboard, (candidate, regularization), embeddings = _search(
        texts, y_learn, settings, task, metric, config, report
    )
    report(f"refitting {candidate} C={regularization:g} on {len(learn)} rows")
    pipeline: Any
    if candidate == EMBEDDING_CANDIDATE:
        classifier = embedding_classifier(regularization, config.seed).fit(embeddings, y_learn)
        pipeline = _EmbeddingPipeline(classifier)
        spec = export_embedding_classifier(classifier, text_columns)
    else:
        pipeline = text_pipeline(candidate, settings, regularization, config.seed)
        pipeline.fit(texts, y_learn)
        spec = export_text_pipeline(pipeline, text_columns)
    predictor = TextPredictor(
        contract, spec, task, classes, explain_tokens=settings.explain_tokens
    )
    parity_rows = test.head(2000)
    parity = check_text_parity(
        pipeline,
        predictor,
        list(documents(parity_rows, text_columns)),
        parity_rows[text_columns].to_dict("records"),
    )
    report(f"evaluating on {len(test)} test rows with bootstrap confidence intervals")
    test_metrics = bootstrap_metrics(
        _encode_target(test[target], task, classes),
        predictor.score_frame(test),
        DEFAULT_METRICS[task],
        n_samples=config.evaluation.bootstrap_samples,
        confidence=config.evaluation.confidence,
        seed=config.seed,
    )
    best_name = f"{candidate} C={regularization:g}"
    # The drift reference comes from held-out texts: on training texts the out-of-vocabulary
    # rate is biased low (the vocabulary was learnt from them).
    test_texts = list(documents(test, text_columns))
    test_embeddings = None
    if candidate == EMBEDDING_CANDIDATE:
        from shipyard.runtime.embedding import SentenceEmbedder

        test_embeddings = SentenceEmbedder().encode(test_texts)
    reference = TextDriftReference.from_texts(
        test_texts, _vocabulary(spec, texts, settings.min_df), test_embeddings
    )
    manifest = {
        "task": "text_classification",
        "classification": task,
        "target": target,
        "classes": classes,
        "metric": metric,
        "model": {"format": spec["format"], "path": "text_model.json", "family": best_name},
        "contract": "contract.yaml",
        "config": "config.yaml",
        "explain_tokens": settings.explain_tokens,
        "text_reference": "text_reference.json",
        "metrics": {
            "test": {name: value.as_dict() for name, value in test_metrics.items()},
            "cv": {row.name: row.as_dict() for row in leaderboard},
        },
        "parity": parity,
        "rows": rows,
        "notes": notes,
        "sensitive": list(config.sensitive),
    }
    files = {
        "contract.yaml": contract.to_yaml().encode(),
        "text_model.json": json.dumps(spec, allow_nan=False, ensure_ascii=False).encode(),
        "config.yaml": dump_config(config).encode(),
        "text_reference.json": json.dumps(reference.to_json(), allow_nan=False).encode(),
    }
    registry = registry or Registry.from_config(config.registry)
    parent = _latest_version(registry, config.name)
    version = registry.register(
        config.name,
        files,
        manifest,
        params={"family": best_name, "candidate": candidate, "C": regularization},
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
        best_name,
        leaderboard,
        test_metrics,
        parity,
        rows,
        notes,
        promoted,
        time.perf_counter() - started,
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
