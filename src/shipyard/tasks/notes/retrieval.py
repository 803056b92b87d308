"""What every notes index backend offers, and the hybrid ranking they share.

A backend (the SQLite file, :class:`~shipyard.tasks.notes.index.NotesIndex`; PostgreSQL,
:class:`~shipyard.tasks.notes.postgres_index.PostgresNotesIndex`) holds the chunks and their
unit vectors in memory and answers keyword queries its own way. Dense search is exact and runs
in this process for both (every vector scored on one thread); the hybrid ranks the union of
both candidate lists by ``weight * dense + (1 - weight) * keyword``, each min-max scaled over
the candidates, whichever backend found the keyword candidates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from shipyard.errors import ConfigError
from shipyard.tasks.notes.ingest import Chunk

__all__ = [
    "CANDIDATES",
    "INDEX_BACKENDS",
    "Hit",
    "Retriever",
    "check_backend",
    "content_digest",
    "dense_search",
    "hybrid_search",
    "open_retriever",
]

CANDIDATES = 50
"""Candidates each retriever hands to the hybrid ranking."""

INDEX_BACKENDS = ("sqlite", "postgresql")
"""Where a served index answers keyword queries (``notes.index_backend``)."""


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk: its row, the hybrid score, and the dense and keyword scores."""

    row: int
    score: float
    dense: float
    keyword: float


class Retriever(Protocol):
    """An opened index: its chunks and vectors (row ``i`` is chunk ``i``), and three searches.

    ``meta`` holds the index file's settings (encoder, chunking, probe embeddings) and
    ``files`` maps each indexed file to ``(sha256, chunks)``.
    """

    chunks: list[Chunk]
    vectors: npt.NDArray[np.float32]
    meta: dict[str, Any]
    files: dict[str, tuple[str, int]]

    def __len__(self) -> int: ...

    def keyword(self, question: str, k: int = CANDIDATES) -> list[tuple[int, float]]:
        """Return the ``k`` best chunks by the backend's keyword ranking, as ``(row, score)``."""
        ...

    def dense(
        self, vector: npt.NDArray[np.float32], k: int = CANDIDATES
    ) -> list[tuple[int, float]]:
        """Return the ``k`` chunks closest to ``vector`` by cosine, as ``(row, score)``."""
        ...

    def search(
        self,
        question: str,
        vector: npt.NDArray[np.float32],
        k: int = 5,
        weight: float = 0.5,
        candidates: int = CANDIDATES,
    ) -> list[Hit]:
        """Rank chunks by the hybrid score; ``weight`` 1 is dense only, 0 keyword only."""
        ...

    def close(self) -> None:
        """Release the backend's connections."""
        ...


def dense_search(
    vectors: npt.NDArray[np.float32], vector: npt.NDArray[np.float32], k: int
) -> list[tuple[int, float]]:
    """Return the ``k`` rows of ``vectors`` closest to ``vector`` by cosine, ties by row."""
    if not len(vectors):
        return []
    scores = cosine(vectors, vector)
    k = min(k, len(scores))
    best = np.argpartition(-scores, k - 1)[:k]
    best = best[np.lexsort((best, -scores[best]))]
    return [(int(row), float(scores[row])) for row in best]


def hybrid_search(
    retriever: Retriever,
    question: str,
    vector: npt.NDArray[np.float32],
    k: int = 5,
    weight: float = 0.5,
    candidates: int = CANDIDATES,
) -> list[Hit]:
    """Rank the union of the dense and keyword candidates by the hybrid score.

    Every hit carries its cosine (``dense``) whatever the weight, since the refusal
    threshold reads it.
    """
    keyword = dict(retriever.keyword(question, candidates))
    rows = {row for row, _ in retriever.dense(vector, candidates)} | set(keyword)
    if not rows:
        return []
    ordered = sorted(rows)
    cosines = cosine(retriever.vectors[ordered], vector)
    keyword_scores = np.array([keyword.get(row, 0.0) for row in ordered])
    combined = weight * _scaled(cosines) + (1.0 - weight) * _scaled(keyword_scores)
    # Ties (keyword-only ranking of chunks without a keyword match) fall to the cosine.
    order = np.lexsort((np.array(ordered), -cosines, -combined))[:k]
    return [
        Hit(ordered[i], float(combined[i]), float(cosines[i]), float(keyword_scores[i]))
        for i in order
    ]


def cosine(vectors: npt.NDArray[np.float32], vector: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """Dot products of unit vectors with one query, on this thread.

    ``einsum`` rather than ``@``: a matrix-vector product through BLAS starts its thread pool,
    which on a busy 2-core machine took 23 ms for 10,000 chunks against 5 ms on one thread.
    """
    scores: npt.NDArray[np.float32] = np.einsum(
        "ij,j->i", vectors, np.asarray(vector, dtype=np.float32)
    )
    return scores


def _scaled(values: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """Min-max scale to [0, 1] (all zeros when the values are equal)."""
    values = np.asarray(values, dtype=np.float64)
    spread = float(values.max() - values.min()) if len(values) else 0.0
    return (values - values.min()) / spread if spread > 0 else np.zeros_like(values)


def content_digest(rows: Iterable[Iterable[Any]]) -> str:
    """SHA-256 of chunk rows ``(id, file, heading, start, end, text, vector bytes)`` in order.

    Each value is length-prefixed, so no edit can move text from one field to the next
    unnoticed. The SQLite file's rows and a copy's rows (PostgreSQL) give the same digest
    exactly when they hold the same chunks and vectors.
    """
    digest = hashlib.sha256()
    for row in rows:
        for value in row:
            data = bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
    return digest.hexdigest()


def check_backend(backend: str, store_url: str | None) -> None:
    """Refuse an unknown backend, or ``postgresql`` without a PostgreSQL store URL.

    Raises
    ------
    ConfigError
        Naming the backend, the store URL's kind and how to fix it.
    """
    if backend not in INDEX_BACKENDS:
        raise ConfigError(
            f"notes.index_backend must be one of {', '.join(INDEX_BACKENDS)}, got {backend!r}."
        )
    if backend != "postgresql":
        return
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        kind = make_url(store_url).get_backend_name() if store_url else None
    except ArgumentError:
        kind = "an unreadable URL"
    if kind != "postgresql":
        raise ConfigError(
            "notes.index_backend is 'postgresql', but the registry is "
            f"{'not set' if kind is None else f'a {kind} database'}; the index is loaded "
            "into the registry's database, so set registry.url to a PostgreSQL URL "
            "(postgresql+psycopg://user@host/db), or set notes.index_backend to 'sqlite'."
        )


def open_retriever(
    path: Path, backend: str = "sqlite", store_url: str | None = None, sha256: str | None = None
) -> Retriever:
    """Open the index file at ``path`` with the backend named (its SHA-256 given if known).

    ``sqlite`` reads the file itself; ``postgresql`` loads it into tables of the PostgreSQL
    database at ``store_url`` named by the file's SHA-256 (once: a later open reuses them).

    Raises
    ------
    ConfigError
        When the backend is unknown, or ``postgresql`` without a PostgreSQL ``store_url``.
    MissingDependencyError
        When ``postgresql`` is chosen and psycopg is not installed (``shipyard[postgres]``).
    """
    check_backend(backend, store_url)
    if backend == "postgresql" and store_url is not None:
        from shipyard.tasks.notes.postgres_index import PostgresNotesIndex

        return PostgresNotesIndex.load(path, store_url, sha256)
    from shipyard.tasks.notes.index import NotesIndex

    return NotesIndex(path)
