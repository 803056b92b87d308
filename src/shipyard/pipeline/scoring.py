"""Batch scoring: stream a CSV or Parquet file through the served path into a new file.

Files are read in chunks, so their size is bounded by disk, not memory. Each chunk is checked
against the contract (nothing is scored from rows that break it) and scored through the same
compiled preprocessing and model runtime as the server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.data.sources import CSV_SUFFIXES, PARQUET_SUFFIXES
from shipyard.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.runtime.predictor import Predictor

__all__ = ["COMPILE_MIN_ROWS", "count_rows", "score_chunk", "score_file"]

Progress = Callable[[int], None]

COMPILE_MIN_ROWS = 100_000
"""Files with at least this many rows are scored with compiled trees (when the model has some)."""


def _kind(path: Path, role: str) -> str:
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    raise DataError(f"Cannot tell the format of the {role} file '{path}': use .csv or .parquet.")


def count_rows(source: Path) -> int | None:
    """Rows in a file, cheaply: Parquet metadata, or CSV line count minus the header."""
    if _kind(source, "input") == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(source).metadata.num_rows)
    if source.name.lower().endswith(".gz"):
        return None
    with source.open("rb") as handle:
        return max(
            sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b"")) - 1, 0
        )


def _chunks(source: Path, chunk_size: int) -> Iterator[pd.DataFrame]:
    import pandas as pd

    if _kind(source, "input") == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(source).iter_batches(batch_size=chunk_size):
            yield batch.to_pandas()
    else:
        separator = "\t" if ".tsv" in source.name.lower() else ","
        yield from pd.read_csv(source, sep=separator, chunksize=chunk_size, skipinitialspace=True)


def _with_predictions(
    chunk: pd.DataFrame, predictor: Predictor, outputs: Any, groups: list[str] | None = None
) -> pd.DataFrame:
    import numpy as np

    # The chunk is ours alone: add the columns in place rather than copying it.
    if predictor.task == "regression":
        chunk["prediction"] = outputs
        return chunk
    labels = np.empty(len(predictor.classes), dtype=object)
    labels[:] = predictor.classes
    chunk["prediction"] = labels[predictor.class_indices(outputs, groups)]
    for index, label in enumerate(predictor.classes):
        chunk[f"probability_{label}"] = outputs[:, index]
    rule = getattr(predictor, "group_thresholds", None)
    if rule is not None and groups is not None:  # which threshold decided, as the server says
        chunk["threshold"] = rule.cuts(groups)
    return chunk


def score_chunk(predictor: Predictor, chunk: pd.DataFrame, what: str) -> pd.DataFrame:
    """Clean, check and score one chunk; return it with the prediction columns added.

    This is the pure ``DataFrame -> DataFrame`` step of batch scoring: :func:`score_file` runs
    it per chunk of a file, and a cluster engine runs it per partition. ``chunk`` gains the
    columns in place.

    Raises
    ------
    DataValidationError
        When a row breaks the contract (``what`` names the data in the message).
    """
    from shipyard.runtime.frames import frame_passes

    cleaned = predictor.clean_frame(chunk)
    # The vectorised check proves the common case; anything it cannot prove gets the full
    # check, which gives the detailed report.
    if not frame_passes(predictor.contract, cleaned):
        predictor.contract.validate_frame(cleaned).raise_if_failed(what)
    groups = predictor.groups_of_frame(cleaned) if hasattr(predictor, "groups_of_frame") else None
    outputs = predictor.score_frame(cleaned)
    return _with_predictions(chunk, predictor, outputs, groups)


class _Sink:
    """Append scored chunks to the partial output file, CSV or Parquet, in order."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path = path
        self.kind = kind
        self.writer: Any = None
        self.started = False

    def write(self, result: pd.DataFrame) -> None:
        if self.kind == "csv":
            result.to_csv(
                self.path, mode="a" if self.started else "w", header=not self.started, index=False
            )
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(result, preserve_index=False)
            if self.writer is None:
                self.writer = pq.ParquetWriter(self.path, table.schema)
            self.writer.write_table(table.cast(self.writer.schema))
        self.started = True

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def score_file(
    predictor: Predictor,
    source: str | Path,
    output: str | Path,
    *,
    chunk_size: int = 100_000,
    progress: Progress | None = None,
    compile_trees: bool | None = None,
) -> int:
    """Score every row of ``source`` and write it, with predictions, to ``output``.

    The output keeps the input columns and adds ``prediction`` (and one
    ``probability_<class>`` column per class). It is written to a temporary file first and
    moved into place only when every chunk succeeded, so a failure leaves no partial output.

    ``compile_trees`` scores LightGBM models on the compiled tree kernel
    (:mod:`shipyard.runtime.compiled`: the same answers to the last bit, several times
    faster); ``None`` does so for files of at least :data:`COMPILE_MIN_ROWS` rows. The kernel
    is built once per machine (about a second, then cached). Without a C compiler, or for a
    model the kernel does not support, LightGBM's own predict scores the file (a log line
    says why).

    Returns
    -------
    int
        The number of rows scored.

    Raises
    ------
    DataError
        When the input is missing or unreadable, or a chunk breaks the contract (the message
        gives the rows, counted from the start of the file).
    """
    import pandas as pd

    source, output = Path(source), Path(output)
    if not source.is_file():
        raise DataError(f"Input file '{source}' does not exist.")
    out_kind = _kind(output, "output")
    partial = output.with_name(f".{output.name}.partial")
    if compile_trees is None:
        rows = count_rows(source)
        compile_trees = rows is None or rows >= COMPILE_MIN_ROWS
    if compile_trees:
        from shipyard.runtime.compiled import compile_scorer

        compile_scorer(getattr(predictor, "scorer", None))
    sink = _Sink(partial, out_kind)
    scored = 0
    # Reading the next chunk and writing the last one run on two helper threads while this
    # one checks, encodes and scores (Parquet and Arrow release the GIL); chunks stay in order.
    try:
        with ThreadPoolExecutor(1) as reader, ThreadPoolExecutor(1) as writer:
            chunks = _chunks(source, chunk_size)
            upcoming = reader.submit(next, chunks, None)
            written: Future[None] | None = None
            while (chunk := upcoming.result()) is not None:
                upcoming = reader.submit(next, chunks, None)
                chunk.index = pd.RangeIndex(scored, scored + len(chunk))
                result = score_chunk(predictor, chunk, f"'{source}'")
                if written is not None:
                    written.result()
                written = writer.submit(sink.write, result)
                scored += len(chunk)
                if progress is not None:
                    progress(len(chunk))
            if written is not None:
                written.result()
        sink.close()
        if scored == 0:
            raise DataError(f"'{source}' has no rows to score.")
        partial.replace(output)
    finally:
        sink.close()
        partial.unlink(missing_ok=True)
    return scored
