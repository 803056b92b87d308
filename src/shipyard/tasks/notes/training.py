"""Tuning, parity and evaluation of a built index: the retrieval_qa task's training steps."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from shipyard.evaluation.metrics import MetricValue
from shipyard.monitoring.reference import reference_to_json
from shipyard.monitoring.sketch import CategoricalSketch, NumericSketch, Sketch
from shipyard.tasks.base import EvaluatedModel, FittedModel, SplitData
from shipyard.tasks.notes.build import BuiltIndex
from shipyard.tasks.notes.encoder import PROBES, Encoder
from shipyard.tasks.notes.evaluation import (
    WEIGHTS,
    compare,
    expected_files,
    question_scores,
    summarise,
    tune_weight,
)
from shipyard.tasks.notes.index import NotesIndex
from shipyard.tasks.notes.retrieval import CANDIDATES, Retriever, open_retriever
from shipyard.training.trainer import CandidateResult

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.config import NotesConfig, PipelineConfig

__all__ = ["Tuning", "evaluate_index", "index_parity", "leaderboard", "rank_files", "tune"]


@dataclass
class Tuning:
    """The validation questions' embeddings and the weight chosen on them.

    ``index`` is the built index opened with the configured backend, so that the weight is
    tuned and the test questions scored on the keyword ranking that will serve.
    """

    index: Retriever
    vectors: npt.NDArray[np.float32]
    weight: float
    table: list[dict[str, float]] = field(default_factory=list)


def rank_files(
    index: Retriever, questions: list[str], vectors: npt.NDArray[np.float32], weight: float
) -> Callable[[int, float], list[str]]:
    """``(position, weight) -> files of the ranked chunks`` for :func:`tune_weight`."""

    def rank(position: int, chosen: float = weight) -> list[str]:
        hits = index.search(questions[position], vectors[position], CANDIDATES, chosen)
        return [index.chunks[hit.row].file for hit in hits]

    return rank


def _sizes(index: Retriever) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for chunk in index.chunks:
        sizes[chunk.file] = sizes.get(chunk.file, 0) + 1
    return sizes


def tune(
    built: BuiltIndex,
    encoder: Encoder,
    validation: pd.DataFrame,
    config: PipelineConfig,
    settings: NotesConfig,
) -> Tuning:
    """Embed the validation questions; choose the hybrid weight unless the config fixes it."""
    index = open_retriever(built.path, settings.index_backend, config.registry.resolved_url())
    questions = validation[settings.question_column].tolist()
    vectors = encoder.encode(questions)
    expected = [expected_files(source) for source in validation[config.data.target]]
    weights = WEIGHTS if settings.weight is None else (settings.weight,)
    rank = rank_files(index, questions, vectors, 0.5)
    weight, table = tune_weight(rank, expected, _sizes(index), settings.k, weights)
    return Tuning(index, vectors, weight, table)


def leaderboard(tuning: Tuning, k: int, seconds: float) -> list[CandidateResult]:
    """One row per weight tried, best MRR first (validation questions)."""
    rows = sorted(tuning.table, key=lambda row: -row["mrr"])
    return [
        CandidateResult(
            name=f"hybrid weight {row['weight']:.1f}",
            status="ok",
            cv_scores=[row["mrr"]],
            cv_mean=row["mrr"],
            fit_seconds=seconds if row["weight"] == tuning.weight else 0.0,
            params={"weight": row["weight"], f"recall@{k}": row[f"recall@{k}"]},
            message="shipped" if row["weight"] == tuning.weight else "",
        )
        for row in rows
    ]


def index_parity(
    payload: dict[str, Any], validation: pd.DataFrame, column: str
) -> dict[str, float]:
    """Compare the index file as bundled with the index as built, on the validation questions.

    ``dense``: the largest cosine gap between the built vectors and the file's; ``hybrid``:
    the largest hybrid-score gap between the built index and a copy read back from the
    bundle's bytes (which must also rank the same chunks); ``encoder``: the question
    encoder's largest gap to torch's embeddings of the probe sentences.
    """
    from shipyard.errors import ExportError

    built: BuiltIndex = payload["built"]
    tuning: Tuning = payload["tuning"]
    encoder: Encoder = payload["encoder"]
    questions = validation[column].tolist()
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "index.sqlite"
        copy.write_bytes(payload["index"])
        # Both read as SQLite files: the check is on the file's bytes, whatever the backend.
        original = NotesIndex(built.path)
        reloaded = NotesIndex(copy)
        try:
            dense = (
                float(
                    np.abs(
                        built.vectors @ tuning.vectors.T - reloaded.vectors @ tuning.vectors.T
                    ).max()
                )
                if len(built.chunks)
                else 0.0
            )
            hybrid = 0.0
            for question, vector in zip(questions, tuning.vectors, strict=True):
                first = original.search(question, vector, CANDIDATES, tuning.weight)
                second = reloaded.search(question, vector, CANDIDATES, tuning.weight)
                if [hit.row for hit in first] != [hit.row for hit in second]:
                    raise ExportError(
                        f"The bundled index ranks '{question}' differently from the built one."
                    )
                apart = [abs(a.score - b.score) for a, b in zip(first, second, strict=True)]
                hybrid = max([hybrid, *apart])
        finally:
            original.close()
            reloaded.close()
    probes = np.asarray(reloaded.meta["probes"], dtype=np.float32)
    encoded = float(np.abs(encoder.encode(PROBES) - probes).max())
    gaps = {"rows": float(len(questions)), "dense": dense, "hybrid": hybrid, "encoder": encoded}
    if max(dense, hybrid, encoded) > 1e-6:
        raise ExportError(f"The bundled index answers apart from the built one: {gaps}.")
    return gaps


def _scores(
    index: Retriever,
    questions: list[str],
    vectors: npt.NDArray[np.float32],
    expected: list[set[str]],
    weight: float,
    k: int,
) -> tuple[Any, list[float]]:
    """Per-question metrics at ``weight``, and each question's best cosine."""
    ranked, best = [], []
    for question, vector in zip(questions, vectors, strict=True):
        hits = index.search(question, vector, CANDIDATES, weight)
        ranked.append([index.chunks[hit.row].file for hit in hits])
        best.append(max((hit.dense for hit in hits), default=0.0))
    return question_scores(ranked, expected, _sizes(index), k), best


def evaluate_index(
    fitted: FittedModel,
    data: SplitData,
    config: PipelineConfig,
    settings: NotesConfig,
    report: Callable[[str], None],
    index_file: str,
) -> EvaluatedModel:
    """Score the test questions: hybrid, keyword only, dense only; build the bundle entries."""
    tuning: Tuning = fitted.payload["tuning"]
    built: BuiltIndex = fitted.payload["built"]
    encoder: Encoder = fitted.payload["encoder"]
    index, k = tuning.index, settings.k
    test = data.test
    questions = test[settings.question_column].tolist()
    vectors = encoder.encode(questions)
    expected = [expected_files(source) for source in test[config.data.target]]
    missing = sorted({name for names in expected for name in names} - set(built.files))
    if missing:
        data.prepared.notes.append(
            f"the question set names files that are not in the notes: {', '.join(missing[:5])}"
        )
    samples, confidence = config.evaluation.bootstrap_samples, config.evaluation.confidence

    def summary(scores: Any) -> dict[str, MetricValue]:
        return summarise(scores, n_samples=samples, confidence=confidence, seed=config.seed)

    hybrid, best = _scores(index, questions, vectors, expected, tuning.weight, k)
    keyword, _ = _scores(index, questions, vectors, expected, 0.0, k)
    dense, _ = _scores(index, questions, vectors, expected, 1.0, k)
    metrics = summary(hybrid)
    report(f"test recall@{k} {metrics[f'recall@{k}']} on {len(questions)} questions")
    versus = {
        name: compare(
            hybrid.values[name],
            keyword.values[name],
            n_samples=samples,
            confidence=confidence,
            seed=config.seed,
        )
        for name in (f"recall@{k}", "mrr")
    }
    answered = [score >= settings.threshold for score in best]
    everything = np.concatenate([tuning.vectors, vectors]) if len(questions) else tuning.vectors
    centroid = everything.mean(axis=0)
    centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
    similarity = (everything @ centroid).tolist()
    validation_best = [
        max((hit.dense for hit in index.search(q, v, k, tuning.weight)), default=0.0)
        for q, v in zip(
            data.validation[settings.question_column].tolist(), tuning.vectors, strict=True
        )
    ]
    answered_sketch = CategoricalSketch(categories=["false", "true"], counts=[0, 0, 0])
    answered_sketch.update(
        ["true" if score >= settings.threshold else "false" for score in best + validation_best]
    )
    reference: dict[str, Sketch] = {
        "retrieval_score": NumericSketch.from_values(best + validation_best, bins=10),
        "question_similarity": NumericSketch.from_values(similarity, bins=10),
        "answered": answered_sketch,
    }
    generator = settings.generator.model_dump(mode="json") if settings.generator else None
    manifest: dict[str, Any] = {
        "task": "retrieval_qa",
        "target": config.data.target,
        "classes": [],
        "model": {
            "format": "shipyard-notes-sqlite",
            "family": "hybrid",
            "path": index_file,
            "chunks": len(built.chunks),
        },
        "qa": {
            "k": k,
            "weight": tuning.weight,
            "threshold": settings.threshold,
            "generator": generator,
            "question_column": settings.question_column,
            "question_centroid": np.round(centroid.astype(np.float64), 7).tolist(),
            "encoder": encoder.backend,
            "index_backend": settings.index_backend,
            "embedding_package": built.meta["embedding_package"],
            "max_chars": settings.max_chars,
            "files": {
                name: {"sha256": sha, "chunks": count}
                for name, (sha, count) in built.files.items()
            },
            "embedded_files": built.embedded_files,
            "duplicates": built.duplicates,
        },
        "retrieval": {
            "test_questions": len(questions),
            "hybrid": {name: value.as_dict() for name, value in metrics.items()},
            "keyword": {name: value.as_dict() for name, value in summary(keyword).items()},
            "dense": {name: value.as_dict() for name, value in summary(dense).items()},
            "hybrid_vs_keyword": versus,
            "tuning": tuning.table,
            "answered_share": float(np.mean(answered)) if answered else float("nan"),
        },
        "drift_reference": "drift_reference.json",
        "sensitive": [],
        "personal_data": {"columns": [], "log_policy": config.monitoring.personal_data},
        "evaluation": {
            "intended_use": config.evaluation.intended_use,
            "out_of_scope_use": config.evaluation.out_of_scope_use,
            "data": {"source": config.data.source, "notes": settings.folder},
        },
    }
    files = {
        index_file: fitted.payload["index"],
        "drift_reference.json": json.dumps(reference_to_json(reference), allow_nan=False).encode(),
        "questions.json": json.dumps(
            data.prepared.frame.astype(str).values.tolist(), ensure_ascii=False
        ).encode(),
    }
    tuning.index.close()
    shutil.rmtree(built.path.parent, ignore_errors=True)
    return EvaluatedModel(metrics, manifest, files)
