"""Batch scoring: stream a CSV or Parquet file through the served path into a new file.

Files are read in chunks (through the one reader, :func:`shipyard.data.sources.read_chunks`),
so their size is bounded by disk, not memory. Each chunk is checked against the contract and
scored through the same compiled preprocessing, unknown-categories policy and model runtime as
the server. Rows that break the contract stop the run, or, with a ``rejected`` file, go there
with their reasons while the other rows are scored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.data.sources import CSV_SUFFIXES, PARQUET_SUFFIXES, ReadOptions, read_chunks
from shipyard.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.runtime.predictor import Predictor

__all__ = ["COMPILE_MIN_ROWS", "ScoredFile", "count_rows", "score_chunk", "score_file"]

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


@dataclass
class ScoredFile:
    """What :func:`score_file` did: rows scored, rows rejected, unknown categories settled."""

    rows: int
    rejected: int = 0
    rejected_path: Path | None = None
    unknown_categories: Counter[str] = field(default_factory=Counter)


@dataclass
class _Checked:
    """One chunk after the contract check: the rows to score, as read and as scored."""

    rows: pd.DataFrame
    cleaned: pd.DataFrame
    rejected: pd.DataFrame | None
    unknown: Counter[str]
    groups: list[str] | None = None  # each row's sensitive group, when labels depend on it


def _with_predictions(
    chunk: pd.DataFrame, predictor: Predictor, outputs: Any, groups: list[str] | None = None
) -> pd.DataFrame:
    import numpy as np

    # The chunk is ours alone: add the columns in place rather than copying it.
    named = getattr(predictor, "output_columns", None)
    if named is not None:  # a cluster and its distance, a score and its decision
        for name, values in named(outputs).items():
            chunk[name] = values
        return chunk
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


def _check(predictor: Predictor, chunk: pd.DataFrame, what: str, quarantine: bool) -> _Checked:
    """Clean and check a chunk; set apart the rows that break the contract when quarantining.

    Raises
    ------
    DataValidationError
        When a row breaks the contract and ``quarantine`` is false, or a column the contract
        requires is absent (every row would be rejected).
    """
    from shipyard.data.validate import quarantined_rows
    from shipyard.runtime.frames import frame_passes

    cleaned = predictor.clean_frame(chunk)
    unknown = getattr(predictor, "unknown", None)  # text models have no categories
    policy = unknown.policy if unknown is not None else "error"
    rejected = None
    # The vectorised check proves the common case; anything it cannot prove gets the full
    # check, which gives the detailed report.
    if not frame_passes(predictor.contract, cleaned, categories=policy == "error"):
        report = predictor.contract.validate_frame(cleaned, unknown_categories=policy)
        if not report.ok:
            if not quarantine or "missing_column" in report.counts:
                report.raise_if_failed(what)
            problems = predictor.contract.row_problems(cleaned, unknown_categories=policy)
            rejected = quarantined_rows(chunk, problems)
            keep = ~chunk.index.isin(list(problems))
            chunk, cleaned = chunk[keep], cleaned[keep]
    # Groups come from the values as cleaned, before unknown categories are settled, as the
    # server takes them from the request.
    groups = predictor.groups_of_frame(cleaned) if hasattr(predictor, "groups_of_frame") else None
    counts: Counter[str] = Counter()
    if unknown is not None and unknown.tolerant:
        cleaned, counts = unknown.settle_frame(cleaned)
    return _Checked(chunk, cleaned, rejected, counts, groups)


def score_chunk(predictor: Predictor, chunk: pd.DataFrame, what: str) -> pd.DataFrame:
    """Clean, check and score one chunk; return it with the prediction columns added.

    This is the pure ``DataFrame -> DataFrame`` step of batch scoring: :func:`score_file` runs
    it per chunk of a file, and a cluster engine runs it per partition. ``chunk`` gains the
    columns in place. Unknown categories are scored as the model's policy says.

    Raises
    ------
    DataValidationError
        When a row breaks the contract (``what`` names the data in the message).
    """
    checked = _check(predictor, chunk, what, quarantine=False)
    outputs = predictor.score_frame(checked.cleaned)
    return _with_predictions(chunk, predictor, outputs, checked.groups)


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
    options: ReadOptions | None = None,
    rejected: str | Path | None = None,
) -> ScoredFile:
    """Score every row of ``source`` and write it, with predictions, to ``output``.

    The output keeps the input columns and adds ``prediction`` (and one
    ``probability_<class>`` column per class). It is written to a temporary file first and
    moved into place only when every chunk succeeded, so a failure leaves no partial output.

    With ``rejected``, rows that break the contract are written there (CSV: the row as read,
    ``_row`` and ``_violations``, as ``shipyard validate --policy quarantine`` writes them) and
    the other rows are scored; without it the first such row stops the run.

    ``compile_trees`` scores LightGBM models on the compiled tree kernel
    (:mod:`shipyard.runtime.compiled`: the same answers to the last bit, several times
    faster); ``None`` does so for files of at least :data:`COMPILE_MIN_ROWS` rows. The kernel
    is built once per machine (about a second, then cached). Without a C compiler, or for a
    model the kernel does not support, LightGBM's own predict scores the file (a log line
    says why).

    Raises
    ------
    DataError
        When the input is missing, unreadable or malformed, a chunk breaks the contract
        (without ``rejected``; the message gives the rows, counted from the start of the
        file), or every row was rejected.
    """
    source, output = Path(source), Path(output)
    if not source.is_file():
        raise DataError(f"Input file '{source}' does not exist.")
    out_kind = _kind(output, "output")
    if compile_trees is None:
        rows = count_rows(source)
        compile_trees = rows is None or rows >= COMPILE_MIN_ROWS
    if compile_trees:
        from shipyard.runtime.compiled import compile_scorer

        compile_scorer(getattr(predictor, "scorer", None))
    result = ScoredFile(0, rejected_path=Path(rejected) if rejected is not None else None)
    if result.rejected_path is not None:
        result.rejected_path.unlink(missing_ok=True)
    partial = output.with_name(f".{output.name}.partial")
    sink = _Sink(partial, out_kind)
    try:
        _score_chunks(predictor, source, sink, chunk_size, progress, options, result)
        sink.close()
        if result.rows == 0 and result.rejected:
            raise DataError(
                f"Every row of '{source}' ({result.rejected}) breaks the model's contract; "
                f"nothing was scored. The reasons are in {result.rejected_path}."
            )
        if result.rows == 0:
            raise DataError(f"'{source}' has no rows to score.")
        partial.replace(output)
    finally:
        sink.close()
        partial.unlink(missing_ok=True)
    return result


def _score_chunks(
    predictor: Predictor,
    source: Path,
    sink: _Sink,
    chunk_size: int,
    progress: Progress | None,
    options: ReadOptions | None,
    result: ScoredFile,
) -> None:
    """Check, score and write each chunk; count into ``result``."""
    import pandas as pd

    start = 0
    # Reading the next chunk and writing the last one run on two helper threads while this
    # one checks, encodes and scores (Parquet and Arrow release the GIL); chunks stay in order.
    with ThreadPoolExecutor(1) as reader, ThreadPoolExecutor(1) as writer:
        chunks = read_chunks(source, chunk_size, options)
        upcoming = reader.submit(next, chunks, None)
        written: Future[None] | None = None
        while (chunk := upcoming.result()) is not None:
            upcoming = reader.submit(next, chunks, None)
            chunk.index = pd.RangeIndex(start, start + len(chunk))
            start += len(chunk)
            checked = _check(predictor, chunk, f"'{source}'", result.rejected_path is not None)
            if checked.rejected is not None and result.rejected_path is not None:
                checked.rejected.to_csv(
                    result.rejected_path, mode="a", header=not result.rejected, index=False
                )
                result.rejected += len(checked.rejected)
            result.unknown_categories.update(checked.unknown)
            if len(checked.rows):
                scored = _with_predictions(
                    checked.rows.copy(deep=False),
                    predictor,
                    predictor.score_frame(checked.cleaned),
                    checked.groups,
                )
                if written is not None:
                    written.result()
                written = writer.submit(sink.write, scored)
                result.rows += len(scored)
            if progress is not None:
                progress(len(chunk))
        if written is not None:
            written.result()
