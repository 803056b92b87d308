"""The notes index in PostgreSQL (``notes.index_backend: postgresql``): full-text search there.

The bundle's SQLite file stays the source of truth (it is what the bundle hashes); this backend
copies it, once, into two tables of the registry's PostgreSQL database, named by the file's
SHA-256 (``notes_<first 12 hex digits>``):

- ``notes_<hash>_chunks(id, file, heading, start, "end", text, vector, search)``: the chunks,
  each unit embedding as little-endian float32 ``bytea``, and ``search``, a generated
  ``tsvector`` (English stemming; the heading weighted ``A``, the text ``B``) with a GIN index;
- ``notes_<hash>_index(sha256, chunks, content_sha256, created_at)``: the file's full SHA-256
  and the digest of the rows copied.

Every open reads the rows back and compares their digest with the file's: a second open of the
same file reuses the tables, and tables that differ (edited rows, another file under the same
prefix) are dropped and copied again, with a warning. Two processes opening the same file at
once (serving workers) take turns on an advisory lock, so the copy happens once.

Keyword search is ``websearch_to_tsquery('english', ...)`` over the question's content words
joined by ``or``, ranked by ``ts_rank_cd`` (cover density, heading weighted twice the text,
divided by 1 + the log of the chunk's length): not BM25, so its scores and ranking differ
from the SQLite backend's. Dense search has no pgvector here: the vectors are read from
PostgreSQL once, when the index is opened, and scored exactly in this process, as the SQLite
backend does.
"""

from __future__ import annotations

import logging
import sqlite3
import weakref
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from shipyard.errors import DataError, RegistryError, require
from shipyard.tasks.notes.index import (
    ROWS,
    chunks_and_vectors,
    content_words,
    open_index_file,
)
from shipyard.tasks.notes.ingest import Chunk, file_sha256
from shipyard.tasks.notes.retrieval import (
    CANDIDATES,
    Hit,
    content_digest,
    dense_search,
    hybrid_search,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

__all__ = ["RANK_NORMALISATION", "RANK_WEIGHTS", "PostgresNotesIndex", "table_prefix"]

logger = logging.getLogger("shipyard.notes")

RANK_WEIGHTS = "{0.1, 0.2, 0.5, 1.0}"
"""``ts_rank_cd`` weights of the D, C, B, A labels: the heading (A) counts twice the text (B),
as the SQLite backend's BM25 weights them."""

RANK_NORMALISATION = 1
"""``ts_rank_cd``'s normalisation: the rank divided by 1 + the log of the chunk's length, as
BM25 discounts long documents. Recall@5 of keyword search alone on the 68 docs questions, over
the 425 docs chunks and over 10,000 chunks (with short distractors): 0.90 and 0.90 with 0,
0.91 and 0.91 with 1, 0.97 and 0.51 with 2 (the length itself: short chunks win)."""

_COLUMNS = 'id, file, heading, start, "end", text, vector'


def table_prefix(sha256: str) -> str:
    """Return the tables' prefix for an index file: ``notes_`` and 12 hex digits of its hash.

    Raises
    ------
    DataError
        When ``sha256`` is not a SHA-256 in hex (the prefix goes into SQL as a name).
    """
    digest = sha256.lower()
    if len(digest) != 64 or any(character not in "0123456789abcdef" for character in digest):
        raise DataError(f"{sha256!r} is not a SHA-256 in hex.")
    return f"notes_{digest[:12]}"


class PostgresNotesIndex:
    """An index file copied into PostgreSQL: full-text search there, chunks and vectors here.

    Open one with :meth:`load`; it follows the
    :class:`~shipyard.tasks.notes.retrieval.Retriever` protocol.

    Parameters
    ----------
    engine
        The SQLAlchemy engine of the PostgreSQL database holding the tables.
    prefix
        The tables' prefix (:func:`table_prefix`).
    rows
        The chunk rows read back from PostgreSQL, in order.
    meta, files
        The index file's settings and indexed files.
    reused
        Whether the tables were there already (``False``: copied by this open).
    """

    def __init__(
        self,
        engine: Engine,
        prefix: str,
        rows: Sequence[Sequence[Any]],
        meta: dict[str, Any],
        files: dict[str, tuple[str, int]],
        reused: bool,
    ) -> None:
        self.engine = engine
        # A predictor dropped without close() must still close its pooled connections
        # (psycopg warns when a connection is collected open).
        self._release = weakref.finalize(self, engine.dispose)
        self.prefix = prefix
        self.meta = meta
        self.files = files
        self.reused = reused
        self.chunks: list[Chunk]
        self.vectors: npt.NDArray[np.float32]
        self.chunks, self.vectors = chunks_and_vectors(rows)

    @classmethod
    def load(cls, path: Path, url: str, sha256: str | None = None) -> PostgresNotesIndex:
        """Open the index file at ``path`` in the PostgreSQL database at ``url``.

        The tables are created and filled from the file unless they hold its rows already.

        Parameters
        ----------
        path
            The index file (the bundle's, already verified).
        url
            A SQLAlchemy PostgreSQL URL (the registry's).
        sha256
            The file's SHA-256 as the bundle's manifest records it; computed when ``None``.

        Raises
        ------
        MissingDependencyError
            When psycopg is not installed (``pip install 'shipyard[postgres]'``).
        RegistryError
            When the database cannot be reached.
        DataError
            When the file is not a notes index, or its copy does not read back the same.
        """
        require("psycopg", "postgres")
        from sqlalchemy import create_engine
        from sqlalchemy.exc import OperationalError

        digest = sha256 or file_sha256(path)
        prefix = table_prefix(digest)
        source, meta, files = open_index_file(path)
        try:
            source_rows = source.execute(ROWS).fetchall()
        except sqlite3.DatabaseError as error:
            raise DataError(f"'{path}' is not a notes index ({error}).") from error
        finally:
            source.close()
        expected = content_digest(source_rows)
        engine = create_engine(url)
        try:
            with engine.begin() as connection:
                rows, reused = _load_rows(connection, prefix, digest, source_rows, expected)
        except OperationalError as error:
            engine.dispose()
            safe = engine.url.render_as_string(hide_password=True)
            raise RegistryError(
                f"Cannot load the notes index into PostgreSQL at {safe}: "
                f"{str(error).splitlines()[0]}. Check registry.url and that the server is "
                "running."
            ) from error
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, prefix, rows, meta, files, reused)

    def close(self) -> None:
        """Release the database connections."""
        self._release()

    def __len__(self) -> int:
        return len(self.chunks)

    def keyword(self, question: str, k: int = CANDIDATES) -> list[tuple[int, float]]:
        """Return the ``k`` best chunks by ``ts_rank_cd``, as ``(row, score)``.

        The question's content words are joined by ``or`` (any of them matches, as the SQLite
        backend's FTS5 query does) and parsed by ``websearch_to_tsquery``, which never fails
        on user text.
        """
        from sqlalchemy import text

        words = content_words(question)
        if not words:
            return []
        statement = text(
            f"SELECT id, ts_rank_cd('{RANK_WEIGHTS}', search, query, {RANK_NORMALISATION}) "
            "AS score "
            f"FROM {self.prefix}_chunks, websearch_to_tsquery('english', :words) AS query "
            "WHERE search @@ query ORDER BY score DESC, id LIMIT :k"
        )
        with self.engine.connect() as connection:
            found = connection.execute(statement, {"words": " or ".join(words), "k": k})
            return [(int(row), float(score)) for row, score in found]

    def dense(
        self, vector: npt.NDArray[np.float32], k: int = CANDIDATES
    ) -> list[tuple[int, float]]:
        """Return the ``k`` chunks closest to ``vector`` by cosine (in this process)."""
        return dense_search(self.vectors, vector, k)

    def search(
        self,
        question: str,
        vector: npt.NDArray[np.float32],
        k: int = 5,
        weight: float = 0.5,
        candidates: int = CANDIDATES,
    ) -> list[Hit]:
        """Rank chunks by the hybrid score; ``weight`` 1 is dense only, 0 keyword only."""
        return hybrid_search(self, question, vector, k, weight, candidates)


def _load_rows(
    connection: Connection,
    prefix: str,
    sha256: str,
    source_rows: Sequence[Sequence[Any]],
    expected: str,
) -> tuple[list[Sequence[Any]], bool]:
    """Read the rows of ``prefix``'s tables, copying the file's rows in first when needed.

    Runs in one transaction, under an advisory lock on the prefix, so that concurrent opens
    of the same file wait for the first one's copy instead of copying it too.
    """
    from sqlalchemy import text

    lock = zlib.crc32(f"shipyard-notes-index:{prefix}".encode())
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock})
    problem = _stamp_problem(connection, prefix, sha256, expected)
    if problem is None:
        rows = _read_rows(connection, prefix)
        found = content_digest(rows)
        if found == expected:
            return rows, True
        problem = f"its rows differ from the index file's (digest {found[:12]})"
    if problem != "absent":
        logger.warning("notes index tables %s_*: %s; copying the file again", prefix, problem)
    _create_tables(connection, prefix)
    _copy_rows(connection, prefix, source_rows)
    # Built after the copy: one pass over the rows rather than an update per row.
    connection.execute(text(f"CREATE INDEX {prefix}_search ON {prefix}_chunks USING gin (search)"))
    connection.execute(
        text(
            f"INSERT INTO {prefix}_index (sha256, chunks, content_sha256) "
            "VALUES (:sha256, :chunks, :content)"
        ),
        {"sha256": sha256, "chunks": len(source_rows), "content": expected},
    )
    rows = _read_rows(connection, prefix)
    if content_digest(rows) != expected:
        raise DataError(
            f"The notes index copied into PostgreSQL ({prefix}_chunks) does not read back as "
            "the index file; check the database's encoding (UTF8 expected)."
        )
    return rows, False


def _stamp_problem(connection: Connection, prefix: str, sha256: str, expected: str) -> str | None:
    """Say why the tables cannot be reused as they are (``"absent"``), or ``None``."""
    from sqlalchemy import text

    present = connection.execute(
        text("SELECT to_regclass(:chunks) IS NOT NULL AND to_regclass(:stamp) IS NOT NULL"),
        {"chunks": f"{prefix}_chunks", "stamp": f"{prefix}_index"},
    ).scalar()
    if not present:
        return "absent"
    stamps = connection.execute(
        text(f"SELECT sha256, content_sha256 FROM {prefix}_index")
    ).fetchall()
    if [tuple(stamp) for stamp in stamps] != [(sha256, expected)]:
        return f"they were written for another file ({len(stamps)} stamp(s), none matching)"
    return None


def _create_tables(connection: Connection, prefix: str) -> None:
    from sqlalchemy import text

    for statement in (
        f"DROP TABLE IF EXISTS {prefix}_chunks",
        f"DROP TABLE IF EXISTS {prefix}_index",
        f"""CREATE TABLE {prefix}_chunks (
            id integer PRIMARY KEY, file text NOT NULL, heading text NOT NULL,
            start integer NOT NULL, "end" integer NOT NULL, text text NOT NULL,
            vector bytea NOT NULL,
            search tsvector GENERATED ALWAYS AS (
                setweight(to_tsvector('english', heading), 'A')
                || setweight(to_tsvector('english', text), 'B')
            ) STORED
        )""",
        f"""CREATE TABLE {prefix}_index (
            sha256 text PRIMARY KEY, chunks integer NOT NULL, content_sha256 text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        )""",
    ):
        connection.execute(text(statement))


def _copy_rows(connection: Connection, prefix: str, rows: Sequence[Sequence[Any]]) -> None:
    """Copy the rows in with ``COPY`` (psycopg's), in the connection's transaction."""
    driver = connection.connection.driver_connection
    statement = f"COPY {prefix}_chunks ({_COLUMNS}) FROM STDIN"
    with driver.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
        for row in rows:
            copy.write_row(row)


def _read_rows(connection: Connection, prefix: str) -> list[Sequence[Any]]:
    from sqlalchemy import text

    found = connection.execute(text(f"SELECT {_COLUMNS} FROM {prefix}_chunks ORDER BY id"))
    return [tuple(row) for row in found]
