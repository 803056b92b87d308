"""The served notes model: retrieve, then answer extractively or through a generator.

:class:`NotesPredictor` is what :meth:`RetrievalQATask.load` returns from a verified bundle,
and what ``POST /v1/models/{name}/ask`` calls. Each answer carries its citations, the
retrieved chunks with their scores, and two numbers monitoring sketches: the best chunk's
cosine (``retrieval_score``) and the question's cosine to the centroid of the question set
the version was evaluated on (``question_similarity``, the question-embedding drift signal).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from shipyard.errors import DataError
from shipyard.runtime.bundle_files import bundle_file
from shipyard.tasks.notes.answer import citation, extractive_answer
from shipyard.tasks.notes.encoder import Encoder, default_encoder
from shipyard.tasks.notes.generator import GeneratorSettings, generated_answer
from shipyard.tasks.notes.retrieval import Hit, Retriever, open_retriever

__all__ = ["MAX_QUESTION_CHARS", "NotesPredictor", "check_question"]

MAX_QUESTION_CHARS = 2000


def check_question(question: Any) -> str:
    """Return the question, or raise a :class:`DataError` that says what is wrong with it."""
    if not isinstance(question, str):
        raise DataError(
            f"'question' must be a string, got {type(question).__name__}; send "
            '{"question": "How do I ...?"}.'
        )
    if not question.strip():
        raise DataError("'question' is empty; send the question's text.")
    if len(question) > MAX_QUESTION_CHARS:
        raise DataError(
            f"'question' has {len(question)} characters, more than {MAX_QUESTION_CHARS}; "
            "shorten it."
        )
    return question


class NotesPredictor:
    """Answers questions from one index version.

    Parameters
    ----------
    index
        The opened index (the SQLite file, or its copy in PostgreSQL).
    settings
        The manifest's ``notes`` entry: ``k``, ``weight``, ``threshold``, ``generator``,
        ``question_centroid``.
    encoder
        The question encoder (by default the shared one, checked against the index's probes).
    """

    def __init__(
        self, index: Retriever, settings: Mapping[str, Any], encoder: Encoder | None = None
    ) -> None:
        self.index = index
        self.settings = dict(settings)
        reference = np.asarray(index.meta["probes"], dtype=np.float32)
        self.encoder = encoder or default_encoder(reference=reference)
        self.k = int(settings.get("k", 5))
        self.weight = float(settings.get("weight", 0.5))
        self.threshold = float(settings.get("threshold", 0.2))
        generator = settings.get("generator")
        self.generator = GeneratorSettings(**generator) if generator else None
        centroid = settings.get("question_centroid")
        self.centroid = None if centroid is None else np.asarray(centroid, dtype=np.float32)

    @classmethod
    def from_bundle(
        cls, directory: Path, manifest: Mapping[str, Any], store_url: str | None = None
    ) -> NotesPredictor:
        """Open the index of a verified bundle.

        With the registry's database URL (``store_url``) the index opens with the backend
        the manifest names (``qa.index_backend``: PostgreSQL loads the file into tables
        there); without one, as when a bundle folder is opened by itself, it reads the
        SQLite file.

        Raises
        ------
        ConfigError
            When the manifest names PostgreSQL and ``store_url`` is another database.
        """
        relative = manifest["model"]["path"]
        backend = str(manifest["qa"].get("index_backend", "sqlite"))
        index = open_retriever(
            bundle_file(directory, relative),
            backend if store_url is not None else "sqlite",
            store_url,
            (manifest.get("files") or {}).get(relative),
        )
        return cls(index, manifest["qa"])

    def close(self) -> None:
        """Release the index (its file, or its database connections)."""
        self.index.close()

    def retrieve(
        self,
        question: str,
        vector: npt.NDArray[np.float32],
        k: int | None = None,
        weight: float | None = None,
    ) -> list[Hit]:
        """Return the ``k`` best chunks for a question (its embedding given), by hybrid score."""
        return self.index.search(
            question, vector, k or self.k, self.weight if weight is None else weight
        )

    def ask(self, question: Any, k: int | None = None) -> dict[str, Any]:
        """Answer one question: the answer, its citations, the retrieved chunks and scores.

        Raises
        ------
        DataError
            When the question is not a non-empty string of reasonable length, or ``k`` is
            not between 1 and 50.
        """
        return self.ask_many([question], k)[0]

    def ask_many(self, questions: Sequence[Any], k: int | None = None) -> list[dict[str, Any]]:
        """Answer several questions (their embeddings computed in one batch)."""
        if k is not None and (not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 50):
            raise DataError(f"'k' must be an integer from 1 to 50, got {k!r}.")
        texts = [check_question(question) for question in questions]
        vectors = self.encoder.encode(texts)
        return [self._answer(text, vector, k) for text, vector in zip(texts, vectors, strict=True)]

    def _answer(
        self, question: str, vector: npt.NDArray[np.float32], k: int | None
    ) -> dict[str, Any]:
        started = time.perf_counter()
        hits = self.retrieve(question, vector, k)
        best = max((hit.dense for hit in hits), default=0.0)
        if self.generator is not None and best >= self.threshold:
            answer = generated_answer(question, hits, self.index, self.generator)
            mode = "generated"
        else:
            answer = extractive_answer(vector, hits, self.index, self.encoder, self.threshold)
            mode = "extractive"
        chunks = [
            {
                **citation(self.index, hit, rank),
                "hybrid": round(hit.score, 6),
                "keyword": round(hit.keyword, 6),
                "text": self.index.chunks[hit.row].text,
            }
            for rank, hit in enumerate(hits, start=1)
        ]
        similarity = float(vector @ self.centroid) if self.centroid is not None else float("nan")
        return {
            "question": question,
            **answer,
            "mode": mode,
            "retrieval_score": round(best, 6),
            "question_similarity": round(similarity, 6),
            "chunks": chunks,
            "seconds": round(time.perf_counter() - started, 6),
        }
