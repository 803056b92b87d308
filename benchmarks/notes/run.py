"""Notes index at 10,000 chunks: indexing time, query latency, recall@5 against plain FAISS.

The corpus is shipyard's docs (the question set's files, chunked as the task does) plus real
distractor chunks from bundled data: every SMS Spam Collection message and Adult census rows
written out as sentences, up to ``--chunks``. All chunks are embedded once with the task's
encoder (cached in ``--cache`` so a rerun does not pay it again). Then, side by side on the same
embeddings:

- indexing: writing the SQLite index (chunks, vectors, FTS5) for all chunks; with
  ``--postgres-url``, loading that file into PostgreSQL (tables, COPY, GIN index, read back
  and verified), and opening it again (the tables reused);
- query latency (embedding excluded, the 68 docs questions, repeated): the SQLite hybrid
  (FTS5 BM25 + exact numpy cosine), keyword only (FTS5), and FAISS ``IndexFlatIP`` (exact
  inner product) for the dense part; with ``--postgres-url``, the PostgreSQL hybrid and
  keyword only (``ts_rank_cd``);
- recall@5 on the 68 hand-written docs questions: hybrid (weight 0.5 and the tuned one),
  keyword only, dense through our index, dense through FAISS.

    python benchmarks/notes/run.py --chunks 10000 --cache .notes-bench \
        --postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/test

The PostgreSQL tables go in the URL's schema (``options=-csearch_path=...`` picks one); those
of this run's index file are dropped first, so that the first load is measured.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from shipyard import datasets
from shipyard.data.sources import read_table
from shipyard.datasets.shipyard_docs import docs_folder, questions_path
from shipyard.tasks.notes.encoder import default_encoder
from shipyard.tasks.notes.evaluation import expected_files
from shipyard.tasks.notes.index import NotesIndex, write_index
from shipyard.tasks.notes.ingest import (
    Chunk,
    chunk_document,
    file_sha256,
    notes_files,
    read_document,
)
from shipyard.tasks.notes.postgres_index import PostgresNotesIndex, table_prefix


def corpus(size: int) -> list[Chunk]:
    chunks = []
    for path in notes_files(docs_folder()):
        chunks += chunk_document(read_document(path, path.name), 800)
    for row, text in enumerate(datasets.load("sms_spam").train["text"]):
        chunks.append(Chunk("sms.txt", "SMS", row, row + len(text), text))
    adult = datasets.load("adult").train
    for row in adult.itertuples(index=False):
        if len(chunks) >= size:
            break
        text = (
            f"A {row.age}-year-old {row.sex.lower()} working in {row.occupation} for "
            f"{row.workclass}, with {row.education} education, {row[12]} hours a week."
        )
        chunks.append(Chunk("adult.txt", "Census", len(chunks), len(chunks) + len(text), text))
    return chunks[:size]


BLOCK = 500


def embed(
    chunks: list[Chunk],
    encoder: object,
    cache: Path,
    known: dict[tuple[str, int, int], np.ndarray],
) -> tuple[np.ndarray, float]:
    """Embed in blocks saved as they finish, so that a long run can be resumed.

    Chunks found in ``known`` (from an index built with the same encoder) are not embedded
    again; the seconds reported are for the others.
    """
    blocks, seconds = [], 0.0
    for low in range(0, len(chunks), BLOCK):
        stored = cache / f"block-{low}.npy"  # the corpus of a smaller run is a prefix
        timing = stored.with_suffix(".seconds")
        if not stored.exists():
            part = chunks[low : low + BLOCK]
            fresh = [c for c in part if (c.file, c.start, c.end) not in known]
            started = time.perf_counter()
            encoded = iter(encoder.encode([c.embedded_text for c in fresh]))  # type: ignore[attr-defined]
            timing.write_text(str(time.perf_counter() - started))
            block = np.stack(
                [
                    known.get((c.file, c.start, c.end))
                    if (c.file, c.start, c.end) in known
                    else next(encoded)
                    for c in part
                ]
            )
            np.save(stored, block)
        blocks.append(np.load(stored))
        seconds += float(timing.read_text())
    return np.concatenate(blocks), seconds


def percentiles(samples: list[float]) -> dict[str, float]:
    values = np.array(samples) * 1000
    return {"p50_ms": float(np.percentile(values, 50)), "p95_ms": float(np.percentile(values, 95))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--cache", type=Path, default=Path(".notes-bench"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--reuse-index", type=Path, help="An index of the docs (shipyard demo notes) to reuse."
    )
    parser.add_argument(
        "--postgres-url", help="Also measure the PostgreSQL backend in this database."
    )
    arguments = parser.parse_args()
    arguments.cache.mkdir(parents=True, exist_ok=True)
    chunks = corpus(arguments.chunks)
    encoder = default_encoder()
    known = {}
    if arguments.reuse_index is not None:
        reused = NotesIndex(arguments.reuse_index)
        known = {
            (c.file, c.start, c.end): reused.vectors[row] for row, c in enumerate(reused.chunks)
        }
    vectors, embed_seconds = embed(chunks, encoder, arguments.cache, known)
    questions = read_table(str(questions_path()))
    texts = questions["question"].tolist()
    wanted = [expected_files(source) for source in questions["source"]]
    question_vectors = encoder.encode(texts)

    target = arguments.cache / "index.sqlite"
    started = time.perf_counter()
    write_index(target, chunks, vectors, {}, {"probes": []})
    index_seconds = time.perf_counter() - started
    started = time.perf_counter()
    index = NotesIndex(target)
    open_seconds = time.perf_counter() - started
    postgres, postgres_timings = (
        open_postgres(target, arguments.postgres_url) if arguments.postgres_url else (None, {})
    )

    import faiss

    started = time.perf_counter()
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(np.ascontiguousarray(vectors, dtype=np.float32))
    faiss_build = time.perf_counter() - started

    def timed(search: object) -> tuple[list[list[str]], list[float]]:
        files, seconds = [], []
        for _ in range(arguments.repeat):
            files = []
            for text, vector in zip(texts, question_vectors, strict=True):
                started = time.perf_counter()
                rows = search(text, vector)  # type: ignore[operator]
                seconds.append(time.perf_counter() - started)
                files.append([index.chunks[row].file for row in rows])
        return files, seconds

    def recall(files: list[list[str]]) -> float:
        return float(
            np.mean([any(f in w for f in row[:5]) for row, w in zip(files, wanted, strict=True)])
        )

    results = {}
    for weight in (0.5, 0.6, 0.8):
        files, seconds = timed(lambda t, v, w=weight: [h.row for h in index.search(t, v, 5, w)])
        results[f"sqlite hybrid w={weight}"] = {"recall@5": recall(files), **percentiles(seconds)}
    files, seconds = timed(lambda t, v: [row for row, _ in index.keyword(t, 5)])
    results["sqlite keyword (FTS5)"] = {"recall@5": recall(files), **percentiles(seconds)}
    files, seconds = timed(lambda t, v: [row for row, _ in index.dense(v, 5)])
    results["sqlite dense (numpy)"] = {"recall@5": recall(files), **percentiles(seconds)}
    files, seconds = timed(
        lambda t, v: flat.search(v[None, :].astype(np.float32), 5)[1][0].tolist()
    )
    results["faiss IndexFlatIP"] = {"recall@5": recall(files), **percentiles(seconds)}
    if postgres is not None:
        for weight in (0.5, 0.6, 0.8):
            files, seconds = timed(
                lambda t, v, w=weight: [h.row for h in postgres.search(t, v, 5, w)]
            )
            results[f"postgresql hybrid w={weight}"] = {
                "recall@5": recall(files),
                **percentiles(seconds),
            }
        files, seconds = timed(lambda t, v: [row for row, _ in postgres.keyword(t, 5)])
        results["postgresql keyword (ts_rank_cd)"] = {
            "recall@5": recall(files),
            **percentiles(seconds),
        }
        postgres_timings["same_dense_top10_as_sqlite"] = all(
            postgres.dense(v, 10) == index.dense(v, 10) for v in question_vectors
        )
        postgres.close()
    print(
        json.dumps(
            {
                "chunks": len(chunks),
                "encoder": encoder.backend,
                "embed_seconds": embed_seconds,
                "reused_embeddings": sum((c.file, c.start, c.end) in known for c in chunks),
                "sqlite_index_seconds": index_seconds,
                "sqlite_index_bytes": target.stat().st_size,
                "sqlite_open_seconds": open_seconds,
                **postgres_timings,
                "faiss_build_seconds": faiss_build,
                "questions": len(texts),
                "results": results,
            },
            indent=2,
        )
    )


def open_postgres(target: Path, url: str) -> tuple[PostgresNotesIndex, dict[str, object]]:
    """Load the index file into PostgreSQL from scratch, then open it again (tables reused)."""
    from sqlalchemy import create_engine, text

    sha256 = file_sha256(target)
    prefix = table_prefix(sha256)
    engine = create_engine(url)
    with engine.begin() as connection:
        for table in ("chunks", "index"):
            connection.execute(text(f"DROP TABLE IF EXISTS {prefix}_{table}"))
        server = connection.execute(text("SHOW server_version")).scalar()
    engine.dispose()
    started = time.perf_counter()
    first = PostgresNotesIndex.load(target, url, sha256)
    load_seconds = time.perf_counter() - started
    first.close()
    started = time.perf_counter()
    again = PostgresNotesIndex.load(target, url, sha256)
    reopen_seconds = time.perf_counter() - started
    assert again.reused
    assert not first.reused
    timings = {
        "postgresql_server": server,
        "postgresql_load_seconds": load_seconds,
        "postgresql_reopen_seconds": reopen_seconds,
    }
    return again, timings


if __name__ == "__main__":
    main()
