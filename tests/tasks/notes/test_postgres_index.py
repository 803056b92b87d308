"""The notes index in PostgreSQL against the SQLite file it is copied from.

The index holds the chunks of shipyard's docs snapshot with seeded random unit vectors (no
encoder needed): dense hits must be the same in both backends, keyword hits must find the file
a docs question names, a second open must reuse the tables, and edited tables must be copied
again from the file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, text

from shipyard.config import load_config_dict
from shipyard.data.sources import read_table
from shipyard.datasets.shipyard_docs import docs_folder, questions_path
from shipyard.errors import ConfigError
from shipyard.tasks.base import task_for_config
from shipyard.tasks.notes.evaluation import expected_files
from shipyard.tasks.notes.index import NotesIndex, write_index
from shipyard.tasks.notes.ingest import chunk_document, file_sha256, notes_files, read_document
from shipyard.tasks.notes.postgres_index import PostgresNotesIndex, table_prefix
from shipyard.tasks.notes.retrieval import open_retriever

DIMENSIONS = 384


@pytest.fixture(scope="module")
def index_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chunks = []
    for path in notes_files(docs_folder()):
        chunks += chunk_document(read_document(path, path.name), 800)
    vectors = np.random.default_rng(7).normal(size=(len(chunks), DIMENSIONS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    path = tmp_path_factory.mktemp("notes-index") / "index.sqlite"
    write_index(path, chunks, vectors, {"docs": ("0" * 64, len(chunks))}, {"probes": []})
    return path


@pytest.fixture
def sqlite_index(index_file: Path) -> Iterator[NotesIndex]:
    opened = NotesIndex(index_file)
    yield opened
    opened.close()


def open_postgres(index_file: Path, url: str) -> PostgresNotesIndex:
    opened = open_retriever(index_file, "postgresql", url)
    assert isinstance(opened, PostgresNotesIndex)
    return opened


def run_sql(url: str, statement: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(statement))
    engine.dispose()


@pytest.mark.postgres
def test_dense_hits_and_chunks_are_the_same_in_both_backends(
    index_file: Path, sqlite_index: NotesIndex, postgres_url: str
):
    postgres = open_postgres(index_file, postgres_url)
    try:
        assert postgres.chunks == sqlite_index.chunks
        assert np.array_equal(postgres.vectors, sqlite_index.vectors)
        assert postgres.meta == sqlite_index.meta
        assert postgres.files == sqlite_index.files
        queries = np.random.default_rng(11).normal(size=(20, DIMENSIONS)).astype(np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        for query in queries:
            assert postgres.dense(query, 10) == sqlite_index.dense(query, 10)
            dense_only = postgres.search("how do I serve a model", query, 5, weight=1.0)
            expected = sqlite_index.search("how do I serve a model", query, 5, weight=1.0)
            assert [hit.row for hit in dense_only] == [hit.row for hit in expected]
    finally:
        postgres.close()


@pytest.mark.postgres
def test_keyword_search_finds_the_file_a_docs_question_names(
    index_file: Path, sqlite_index: NotesIndex, postgres_url: str
):
    questions = read_table(str(questions_path()))
    postgres = open_postgres(index_file, postgres_url)
    try:
        found = []
        for question, source in zip(questions["question"], questions["source"], strict=True):
            hits = postgres.keyword(question, 5)
            assert all(score > 0 for _, score in hits)
            assert [score for _, score in hits] == sorted((s for _, s in hits), reverse=True)
            found.append(
                bool({postgres.chunks[row].file for row, _ in hits} & expected_files(source))
            )
        recall = float(np.mean(found))
        baseline = float(
            np.mean(
                [
                    bool(
                        {sqlite_index.chunks[row].file for row, _ in sqlite_index.keyword(q, 5)}
                        & expected_files(source)
                    )
                    for q, source in zip(questions["question"], questions["source"], strict=True)
                ]
            )
        )
        # ts_rank_cd is not BM25: close to the SQLite file's recall, not necessarily equal.
        assert recall >= 0.85, (recall, baseline)
        assert recall >= baseline - 0.1, (recall, baseline)
        assert postgres.keyword("the and of to", 5) == []  # stop words only: no query
        postgres.keyword(f"'); DROP TABLE {postgres.prefix}_chunks; --", 5)  # a parameter
        assert postgres.keyword(questions["question"][0], 5)  # the table is still there
    finally:
        postgres.close()


@pytest.mark.postgres
def test_a_second_open_of_the_same_file_reuses_its_tables(index_file: Path, postgres_url: str):
    first = open_postgres(index_file, postgres_url)
    first.close()
    second = open_postgres(index_file, postgres_url)
    second.close()
    assert (first.reused, second.reused) == (False, True)
    prefix = table_prefix(file_sha256(index_file))
    assert first.prefix == second.prefix == prefix
    engine = create_engine(postgres_url)
    with engine.connect() as connection:
        tables = connection.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        ).scalars()
        assert sorted(tables) == [f"{prefix}_chunks", f"{prefix}_index"]
        stamp = connection.execute(text(f"SELECT sha256, chunks FROM {prefix}_index")).one()
    engine.dispose()
    assert tuple(stamp) == (file_sha256(index_file), len(second.chunks))


@pytest.mark.postgres
@pytest.mark.parametrize(
    "edit",
    [
        "UPDATE {prefix}_chunks SET text = 'tampered' WHERE id = 3",
        "UPDATE {prefix}_chunks SET vector = vector || '\\x00'::bytea WHERE id = 0",
        "DELETE FROM {prefix}_chunks WHERE id = 5",
        "UPDATE {prefix}_index SET sha256 = repeat('0', 64)",
    ],
    ids=["text", "vector", "deleted row", "another file's stamp"],
)
def test_edited_tables_are_copied_again_from_the_file(
    index_file: Path,
    sqlite_index: NotesIndex,
    postgres_url: str,
    edit: str,
    caplog: pytest.LogCaptureFixture,
):
    open_postgres(index_file, postgres_url).close()
    run_sql(postgres_url, edit.format(prefix=table_prefix(file_sha256(index_file))))
    with caplog.at_level(logging.WARNING, logger="shipyard.notes"):
        again = open_postgres(index_file, postgres_url)
    again.close()
    assert not again.reused
    assert "copying the file again" in caplog.text
    assert again.chunks == sqlite_index.chunks
    assert np.array_equal(again.vectors, sqlite_index.vectors)
    third = open_postgres(index_file, postgres_url)
    third.close()
    assert third.reused  # the copy is whole again


def test_postgresql_without_a_postgresql_registry_is_refused(index_file: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match=r"set registry\.url to a PostgreSQL URL"):
        open_retriever(index_file, "postgresql", f"sqlite:///{tmp_path / 'registry.db'}")
    with pytest.raises(ConfigError, match="one of sqlite, postgresql"):
        open_retriever(index_file, "faiss", None)
    config = load_config_dict(
        {
            "name": "handbook",
            "task": "retrieval_qa",
            "data": {"source": "questions.csv", "target": "source"},
            "notes": {"folder": "notes", "index_backend": "postgresql"},
            "registry": {"home": str(tmp_path)},
        }
    )
    with pytest.raises(ConfigError, match=r"notes\.index_backend is 'postgresql'"):
        task_for_config(config)
