"""The retrieval_qa task: a folder of notes in, cited answers to questions out.

``data.source`` is the question set, the task's labels: one row per question with the file
that answers it (``data.target``). Training builds the index of ``notes.folder`` (the model),
tunes the hybrid weight on the validation questions, and measures recall@k, MRR and nDCG@k on
the test questions against keyword search alone. The bundle holds the index as one SQLite
file and the drift references; serving answers ``POST /v1/models/{name}/ask``.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.errors import ConfigError, DataError
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
    from shipyard.config import NotesConfig, PipelineConfig
    from shipyard.data.contract import Contract
    from shipyard.evaluation.report import DocumentSections
    from shipyard.manifest import Manifest
    from shipyard.monitoring.adapters import TaskMonitoring
    from shipyard.tasks.try_it import TryItAnswer, TryItForm

__all__ = ["RetrievalQATask"]

INDEX_FILE = "index.sqlite"


def _settings(config: PipelineConfig) -> NotesConfig:
    if config.notes is None:
        raise ConfigError(
            "task is 'retrieval_qa' but the 'notes' section is missing; add it with at least "
            "'folder' (the notes) (see docs/notes.md)"
        )
    return config.notes


def cache_path(config: PipelineConfig) -> Path:
    """Return the embedding cache that makes re-indexing incremental."""
    settings = _settings(config)
    return (
        Path(settings.cache)
        if settings.cache
        else Path(config.registry.home) / "notes-cache.sqlite"
    )


class RetrievalQATask(Task):
    """Cited answers from a folder of notes: hybrid retrieval, extractive or generated."""

    name = "retrieval_qa"
    summary = "answers with citations from a folder of notes (hybrid retrieval, SQLite index)"
    capabilities = Capabilities(
        config_tasks=("retrieval_qa",),
        manifest_tasks=("retrieval_qa",),
        unsupported_keys=(*TABLE_ONLY_KEYS, "serving.canary", "serving.shadow"),
        live_metrics=False,
        traffic_split=False,
        feedback_unit="questions",
        protocols=("ask",),
    )

    def small_config(self, folder: Path) -> dict[str, Any]:
        """Write a few real notes (shipyard's own docs) and a question set for them."""
        from shipyard.tasks.notes.samples import write_small_notes

        notes, questions = write_small_notes(folder)
        return {
            "name": "notes",
            "task": "retrieval_qa",
            "data": {"source": str(questions), "target": "source"},
            "notes": {"folder": str(notes), "cache": str(folder / "cache.sqlite")},
            "evaluation": {"bootstrap_samples": 200, "report": False},
        }

    def check_config(self, config: PipelineConfig) -> None:
        """Refuse unsupported keys, a missing ``notes`` section, PostgreSQL without its URL."""
        from shipyard.tasks.notes.retrieval import check_backend

        super().check_config(config)
        settings = _settings(config)
        check_backend(settings.index_backend, config.registry.resolved_url())

    def read(self, config: PipelineConfig, context: RunContext) -> PreparedData:
        """Read the question set; fingerprint it together with the notes' files."""
        from shipyard.data.sources import ReadOptions, fingerprint, read_table
        from shipyard.tasks.notes.ingest import file_sha256, notes_files

        settings = _settings(config)
        context.report(f"reading the question set {config.data.source}")
        frame = read_table(
            config.data.source, ReadOptions(config.data.encoding, config.data.header)
        )
        folder = Path(settings.folder)
        digest = hashlib.sha256(fingerprint(frame).encode())
        for path in notes_files(folder):
            digest.update(f"{path.relative_to(folder).as_posix()}:{file_sha256(path)}".encode())
        return PreparedData(frame, fingerprint=digest.hexdigest())

    def contract(
        self, data: PreparedData, config: PipelineConfig, context: RunContext
    ) -> PreparedData:
        """Keep the question and source columns; drop rows missing either (noted)."""
        settings = _settings(config)
        frame = data.frame
        for column in (settings.question_column, config.data.target):
            if column not in frame.columns:
                raise DataError(
                    f"The question set '{config.data.source}' has no column '{column}' "
                    f"(columns: {', '.join(map(str, frame.columns))}); set "
                    "notes.question_column and data.target."
                )
        kept = frame[[settings.question_column, config.data.target]].dropna()
        kept = kept[kept[settings.question_column].astype(str).str.strip() != ""]
        if len(kept) < len(frame):
            data.notes.append(f"{len(frame) - len(kept)} questions without text or source dropped")
        if len(kept) < 2:
            raise DataError(
                f"The question set '{config.data.source}' has {len(kept)} usable questions; "
                "write at least 2 (10 or more to tune and test apart)."
            )
        data.frame = kept.astype(str).reset_index(drop=True)
        return data

    def split(self, data: PreparedData, config: PipelineConfig, context: RunContext) -> SplitData:
        """Set aside validation questions (to tune the weight) and test questions."""
        settings = _settings(config)
        frame = data.frame
        order = np.random.default_rng(config.seed).permutation(len(frame))
        if len(frame) < 10:
            data.notes.append(
                f"only {len(frame)} questions: the weight is tuned and tested on all of them"
            )
            validation = test = frame
        else:
            cut = max(1, round(len(frame) * settings.validation_share))
            validation = frame.iloc[np.sort(order[:cut])].reset_index(drop=True)
            test = frame.iloc[np.sort(order[cut:])].reset_index(drop=True)
        return SplitData(
            data,
            frame,
            validation,
            test,
            "retrieval",
            f"recall@{settings.k}",
            rows={"train": 0, "validation": len(validation), "test": len(test)},
        )

    def fit(self, data: SplitData, config: PipelineConfig, context: RunContext) -> FittedModel:
        """Index the notes, tune the hybrid weight on the validation questions."""
        from shipyard.tasks.notes.build import EmbeddingCache, build_index
        from shipyard.tasks.notes.encoder import default_encoder
        from shipyard.tasks.notes.training import leaderboard, rank_files, tune

        settings = _settings(config)
        started = time.perf_counter()
        encoder = default_encoder()
        context.report(f"indexing {settings.folder} ({encoder.backend} embeddings)")
        scratch = Path(tempfile.mkdtemp(prefix="shipyard-notes-"))
        built = build_index(
            Path(settings.folder),
            scratch / INDEX_FILE,
            encoder,
            max_chars=settings.max_chars,
            cache=EmbeddingCache(cache_path(config)),
            report=context.report,
        )
        if built.duplicates:
            data.prepared.notes.append(f"{built.duplicates} duplicate chunks dropped")
        context.report(f"{len(built.chunks)} chunks from {len(built.files)} files")
        tuning = tune(built, encoder, data.validation, config, settings)
        index_bytes = built.path.read_bytes()  # the scratch folder goes once evaluated
        seconds = time.perf_counter() - started
        data.rows["chunks"] = len(built.chunks)
        return FittedModel(
            None,
            "hybrid",
            leaderboard(tuning, settings.k, seconds),
            {"weight": tuning.weight, "k": settings.k, "max_chars": settings.max_chars},
            payload={
                "built": built,
                "encoder": encoder,
                "tuning": tuning,
                "index": index_bytes,
                "rank_files": rank_files,
            },
        )

    def check_parity(self, fitted: FittedModel, data: SplitData) -> dict[str, float]:
        """Check that the bundled index scores the validation questions as the built one."""
        from shipyard.tasks.notes.training import index_parity

        return index_parity(fitted.payload, data.validation, _question_column(data))

    def evaluate(
        self, fitted: FittedModel, data: SplitData, config: PipelineConfig, context: RunContext
    ) -> EvaluatedModel:
        """Recall@k, MRR and nDCG@k on the test questions, against keyword search alone."""
        from shipyard.tasks.notes.training import evaluate_index

        return evaluate_index(fitted, data, config, _settings(config), context.report, INDEX_FILE)

    def load(self, directory: Path, manifest: Manifest, unknown_fields: str) -> Any:
        """Open the bundle's index as a :class:`~shipyard.tasks.notes.predictor.NotesPredictor`."""
        from shipyard.tasks.notes.predictor import NotesPredictor

        return NotesPredictor.from_bundle(directory, manifest.to_document())

    def load_with_store(
        self, directory: Path, manifest: Manifest, unknown_fields: str, store_url: str
    ) -> Any:
        """Open the index with the manifest's backend (PostgreSQL: in the registry's database)."""
        from shipyard.tasks.notes.predictor import NotesPredictor

        return NotesPredictor.from_bundle(directory, manifest.to_document(), store_url)

    def try_it(self, manifest: Manifest, contract: Contract | None, predictor: Any) -> TryItForm:
        """Offer a question box and how many chunks to retrieve."""
        from shipyard.tasks.try_it import TryItField, TryItForm

        return TryItForm(
            (
                TryItField(
                    "question",
                    "Question",
                    "textarea",
                    help="a question about the notes; answered from them, with citations",
                ),
                TryItField("k", "Chunks", "integer", minimum=1, maximum=50, default="5"),
            ),
            submit_label="Ask",
        )

    def try_it_answer(
        self, predictor: Any, manifest: Manifest, record: dict[str, Any]
    ) -> TryItAnswer:
        """Answer the question as ``/ask`` does: the answer, its citations and the chunks."""
        from shipyard.tasks.try_it import TryItAnswer

        answer = predictor.ask(record["question"], int(record.get("k") or 5))
        citations = [
            {key: citation[key] for key in ("source", "file", "heading", "start", "end")}
            for citation in answer["citations"]
        ]
        notes = [
            f"{answer['mode']} answer; best retrieval score {answer['retrieval_score']:.3f}"
            + ("" if answer["answered"] else " (below the threshold: no answer)")
        ]
        return TryItAnswer(prediction=answer["answer"], items=citations, notes=notes)

    def monitoring(self, directory: Path, manifest: Manifest, reference: str) -> TaskMonitoring:
        """Sketch retrieval scores, question similarity and refusals; feedback hit rate."""
        from shipyard.monitoring.adapters import read_reference
        from shipyard.tasks.notes.monitoring import notes_monitoring

        return notes_monitoring(
            manifest.to_document(), read_reference(directory, manifest.drift_reference, reference)
        )

    def retrain_steps(self) -> RetrainSteps:
        """Feedback naming the right source joins the question set; the gate compares recall."""
        from shipyard.tasks.notes.loop import NOTES_STEPS

        return NOTES_STEPS

    def document_sections(self) -> DocumentSections:
        """Return the card's blocks: retrieval quality against keyword search, the index."""
        from shipyard.tasks.notes.documents import NOTES_SECTIONS

        return NOTES_SECTIONS


def _question_column(data: SplitData) -> str:
    return str(data.train.columns[0])
