"""The notes index: one SQLite file with the chunks, their FTS5 keyword index and embeddings.

The file is the model: it goes into the hashed bundle as it is, and is opened read-only when
served. Tables:

- ``files(path, sha256, chunks)``: what was indexed, to tell changed files apart;
- ``chunks(id, file, heading, start, end, text, vector)``: the passages, each with its unit
  embedding as little-endian float32 bytes;
- ``chunks_fts``: an FTS5 index over heading and text (Porter stemming), ranked by BM25;
- ``meta(key, value)``: the encoder, the chunking settings and the probe embeddings.

Dense search is exact (every vector is scored, on one thread: a few milliseconds for 10,000
chunks, and nothing to tune); keyword search is FTS5's BM25; the hybrid ranking
(:func:`~shipyard.tasks.notes.retrieval.hybrid_search`) is shared with the PostgreSQL backend.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from shipyard.errors import DataError
from shipyard.tasks.notes.ingest import Chunk
from shipyard.tasks.notes.retrieval import CANDIDATES, Hit, dense_search, hybrid_search

__all__ = [
    "CANDIDATES",
    "Hit",
    "NotesIndex",
    "chunks_and_vectors",
    "content_words",
    "fts_query",
    "open_index_file",
    "write_index",
]

ROWS = 'SELECT id, file, heading, start, "end", text, vector FROM chunks ORDER BY id'
"""The chunk rows in order: ``(id, file, heading, start, end, text, vector bytes)``."""

_WORD = re.compile(r"[A-Za-z0-9_]+")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "how",
        "i",
        "if",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "this",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
    ]
)


def content_words(question: str) -> list[str]:
    """Return a question's words, lowercased, without stop words or repeats, in order.

    Examples
    --------
    >>> content_words('How do I rotate an "API key"?')
    ['rotate', 'api', 'key']
    """
    words = [word.lower() for word in _WORD.findall(question)]
    return list(dict.fromkeys(word for word in words if word not in _STOPWORDS))


def fts_query(question: str) -> str:
    """Turn a question into an FTS5 query: its content words, quoted, joined by OR.

    Examples
    --------
    >>> fts_query('How do I rotate an "API key"?')
    '"rotate" OR "api" OR "key"'
    """
    return " OR ".join(f'"{word}"' for word in content_words(question))


def write_index(
    path: Path,
    chunks: Sequence[Chunk],
    vectors: npt.NDArray[np.float32],
    files: dict[str, tuple[str, int]],
    meta: dict[str, Any],
) -> None:
    """Write the index file at ``path`` (replaced if present), byte for byte reproducibly.

    Parameters
    ----------
    files
        ``path -> (sha256, chunks)`` of every indexed file.
    meta
        JSON-ready settings (encoder, chunking, probes) kept in the ``meta`` table.
    """
    if len(chunks) != len(vectors):
        raise DataError(f"{len(chunks)} chunks but {len(vectors)} embeddings.")
    path.unlink(missing_ok=True)
    connection = sqlite3.connect(path)
    try:
        connection.executescript(
            """
            PRAGMA page_size = 4096;
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE files (path TEXT PRIMARY KEY, sha256 TEXT NOT NULL, chunks INTEGER);
            CREATE TABLE chunks (
                id INTEGER PRIMARY KEY, file TEXT NOT NULL, heading TEXT NOT NULL,
                start INTEGER NOT NULL, "end" INTEGER NOT NULL, text TEXT NOT NULL,
                vector BLOB NOT NULL
            );
            CREATE VIRTUAL TABLE chunks_fts USING fts5(
                heading, text, content='chunks', content_rowid='id',
                tokenize='porter unicode61'
            );
            """
        )
        connection.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [(key, json.dumps(value, sort_keys=True)) for key, value in sorted(meta.items())],
        )
        connection.executemany(
            "INSERT INTO files VALUES (?, ?, ?)",
            [(name, sha, count) for name, (sha, count) in sorted(files.items())],
        )
        little = np.asarray(vectors, dtype="<f4")
        connection.executemany(
            "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (row, chunk.file, chunk.heading, chunk.start, chunk.end, chunk.text, little[row])
                for row, chunk in enumerate(chunks)
            ],
        )
        connection.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild')")
        connection.commit()
        connection.execute("VACUUM")
    finally:
        connection.close()


def open_index_file(
    path: Path,
) -> tuple[sqlite3.Connection, dict[str, Any], dict[str, tuple[str, int]]]:
    """Open an index file read-only; return the connection, its ``meta`` and its ``files``.

    Raises
    ------
    DataError
        When the file is not a notes index.
    """
    try:
        connection = sqlite3.connect(
            f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False
        )
        meta_rows = connection.execute("SELECT key, value FROM meta").fetchall()
        file_rows = connection.execute("SELECT path, sha256, chunks FROM files").fetchall()
    except sqlite3.DatabaseError as error:
        raise DataError(f"'{path}' is not a notes index ({error}).") from error
    meta = {key: json.loads(value) for key, value in meta_rows}
    files = {name: (sha, count) for name, sha, count in file_rows}
    return connection, meta, files


def chunks_and_vectors(
    rows: Sequence[Sequence[Any]],
) -> tuple[list[Chunk], npt.NDArray[np.float32]]:
    """Turn chunk rows (:data:`ROWS`' shape, from any backend) into chunks and a vector matrix."""
    chunks = [
        Chunk(file, heading, start, end, text) for _, file, heading, start, end, text, _ in rows
    ]
    vectors = (
        np.frombuffer(b"".join(bytes(row[6]) for row in rows), dtype="<f4")
        .reshape(len(rows), -1)
        .astype(np.float32)
        if rows
        else np.zeros((0, 0), dtype=np.float32)
    )
    return chunks, vectors


class NotesIndex:
    """An index file opened read-only: chunks and vectors in memory, FTS5 on disk.

    This is the default backend (``notes.index_backend: sqlite``) of the
    :class:`~shipyard.tasks.notes.retrieval.Retriever` protocol.

    Parameters
    ----------
    path
        The SQLite file written by :func:`write_index`.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection, self.meta, self.files = open_index_file(path)
        try:
            rows = self._connection.execute(ROWS).fetchall()
        except sqlite3.DatabaseError as error:
            self._connection.close()
            raise DataError(f"'{path}' is not a notes index ({error}).") from error
        self._lock = threading.Lock()
        self.chunks, self.vectors = chunks_and_vectors(rows)

    def close(self) -> None:
        """Close the SQLite connection."""
        self._connection.close()

    def __len__(self) -> int:
        return len(self.chunks)

    def keyword(self, question: str, k: int = CANDIDATES) -> list[tuple[int, float]]:
        """Return the ``k`` best chunks by BM25 (heading weighted twice), as ``(row, score)``."""
        query = fts_query(question)
        if not query:
            return []
        with self._lock:
            found = self._connection.execute(
                "SELECT rowid, -bm25(chunks_fts, 2.0, 1.0) AS score FROM chunks_fts "
                "WHERE chunks_fts MATCH ? ORDER BY score DESC, rowid LIMIT ?",
                (query, k),
            ).fetchall()
        return [(int(row), float(score)) for row, score in found]

    def dense(
        self, vector: npt.NDArray[np.float32], k: int = CANDIDATES
    ) -> list[tuple[int, float]]:
        """Return the ``k`` chunks closest to ``vector`` by cosine, as ``(row, score)``."""
        return dense_search(self.vectors, vector, k)

    def search(
        self,
        question: str,
        vector: npt.NDArray[np.float32],
        k: int = 5,
        weight: float = 0.5,
        candidates: int = CANDIDATES,
    ) -> list[Hit]:
        """Rank chunks by the hybrid score; ``weight`` 1 is dense only, 0 keyword only.

        Every hit carries its cosine (``dense``) whatever the weight, since the refusal
        threshold reads it.
        """
        return hybrid_search(self, question, vector, k, weight, candidates)
