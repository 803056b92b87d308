"""Building an index from a folder of notes, re-embedding only the files that changed.

The embeddings of each file's chunks are kept in a cache (a SQLite file, keyed by the file's
SHA-256, the chunking settings and the encoder), so re-indexing a folder after an edit embeds
the edited and new files only; removed files simply drop out. The cache is an accelerator,
never a source of truth: a cached file is used only when its SHA-256 and settings match.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from shipyard.tasks.notes.encoder import (
    DIMENSIONS,
    Encoder,
    embedding_package_version,
    reference_probes,
)
from shipyard.tasks.notes.index import write_index
from shipyard.tasks.notes.ingest import (
    Chunk,
    chunk_document,
    deduplicate,
    file_sha256,
    notes_files,
    read_document,
)

__all__ = ["BuiltIndex", "EmbeddingCache", "build_index"]


@dataclass
class BuiltIndex:
    """What :func:`build_index` wrote and how much of it was new work."""

    path: Path
    chunks: list[Chunk]
    vectors: npt.NDArray[np.float32]
    files: dict[str, tuple[str, int]]
    embedded_files: list[str] = field(default_factory=list)
    reused_files: list[str] = field(default_factory=list)
    duplicates: int = 0
    meta: dict[str, Any] = field(default_factory=dict)


class EmbeddingCache:
    """Chunks and embeddings of files seen before, keyed by content and settings.

    Parameters
    ----------
    path
        The cache's SQLite file (created when missing); ``None`` keeps nothing.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=30)
        connection.execute(
            "CREATE TABLE IF NOT EXISTS files (key TEXT PRIMARY KEY, chunks TEXT, vectors BLOB)"
        )
        return connection

    def get(self, key: str) -> tuple[list[Chunk], npt.NDArray[np.float32]] | None:
        """Return the cached chunks and vectors of a file, or ``None``."""
        if self.path is None or not self.path.exists():
            return None
        connection = self._connect()
        try:
            row = connection.execute(
                "SELECT chunks, vectors FROM files WHERE key = ?", (key,)
            ).fetchone()
        finally:
            connection.close()
        if row is None:
            return None
        chunks = [Chunk(**entry) for entry in json.loads(row[0])]
        vectors = np.frombuffer(row[1], dtype="<f4").reshape(len(chunks), DIMENSIONS)
        return chunks, vectors.astype(np.float32)

    def put(self, key: str, chunks: list[Chunk], vectors: npt.NDArray[np.float32]) -> None:
        """Keep a file's chunks and vectors."""
        if self.path is None:
            return
        entries = [chunk.__dict__ for chunk in chunks]
        connection = self._connect()
        try:
            with connection:
                connection.execute(
                    "INSERT OR REPLACE INTO files VALUES (?, ?, ?)",
                    (key, json.dumps(entries), np.asarray(vectors, dtype="<f4").tobytes()),
                )
        finally:
            connection.close()


def build_index(
    folder: Path,
    target: Path,
    encoder: Encoder,
    *,
    max_chars: int = 800,
    cache: EmbeddingCache | None = None,
    report: Callable[[str], None] = lambda message: None,
) -> BuiltIndex:
    """Read, chunk, deduplicate and embed the notes under ``folder``; write the index file.

    Raises
    ------
    DataError
        When the folder holds no note, or a note cannot be read.
    """
    cache = cache or EmbeddingCache(None)
    version = embedding_package_version()
    chunks: list[Chunk] = []
    vectors: list[npt.NDArray[np.float32]] = []
    built = BuiltIndex(target, [], np.zeros((0, DIMENSIONS), np.float32), {})
    for path in notes_files(folder):
        relative = path.relative_to(folder).as_posix()
        sha = file_sha256(path)
        key = f"{sha}:{max_chars}:{version}:{relative}"
        cached = cache.get(key)
        if cached is None:
            file_chunks = chunk_document(read_document(path, relative), max_chars)
            file_vectors = encoder.encode([chunk.embedded_text for chunk in file_chunks])
            cache.put(key, file_chunks, file_vectors)
            built.embedded_files.append(relative)
        else:
            file_chunks, file_vectors = cached
            built.reused_files.append(relative)
        built.files[relative] = (sha, len(file_chunks))
        chunks += file_chunks
        vectors.append(file_vectors.reshape(len(file_chunks), DIMENSIONS))
    report(
        f"embedded {len(built.embedded_files)} files, reused {len(built.reused_files)} "
        "unchanged ones"
    )
    everything = np.concatenate(vectors) if vectors else built.vectors
    kept, built.duplicates = deduplicate(chunks)
    position = {id(chunk): row for row, chunk in enumerate(chunks)}
    built.chunks = kept
    built.vectors = everything[[position[id(chunk)] for chunk in kept]]
    built.meta = {
        "embedding_package": version,
        "encoder": encoder.backend,
        "max_chars": max_chars,
        "probes": np.round(reference_probes().astype(np.float64), 7).tolist(),
    }
    write_index(target, built.chunks, built.vectors, built.files, built.meta)
    return built
