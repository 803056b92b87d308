"""The engine contract and the in-process engine.

An :class:`Engine` runs three kinds of work: fan-out through a joblib backend
(:meth:`Engine.fan_out`), a pure ``DataFrame -> DataFrame`` function over files with one
output file per input file (:meth:`Engine.transform_files`), and per-file statistics merged
into one (:meth:`Engine.summarise_files`). Every file is one partition. The helpers that read a
partition, apply a function and write the result live here, so that every engine runs the very
same code on each partition and only the scheduling differs.
"""

from __future__ import annotations

import os
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from shipyard.errors import PartitionError, ShipyardError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Engine",
    "LocalEngine",
    "PartitionFunction",
    "apply_to_file",
    "read_partition",
    "summarise_file",
]

PartitionFunction = Callable[["pd.DataFrame"], "pd.DataFrame"]
Progress = Callable[[int], None]
Summary = TypeVar("Summary")


def read_partition(source: str | Path) -> pd.DataFrame:
    """Read one Parquet file (one partition) into a frame with a fresh row index."""
    import pyarrow.parquet as pq

    return pq.read_table(source).to_pandas()


def _write_partition(frame: pd.DataFrame, target: Path) -> None:
    """Write a frame as Parquet, atomically: a retried or killed attempt leaves no half file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    attempt = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), attempt)
        os.replace(attempt, target)
    finally:
        attempt.unlink(missing_ok=True)


def _failure(index: int, source: str | Path, error: BaseException) -> PartitionError:
    reason = str(error) if isinstance(error, ShipyardError) else f"{type(error).__name__}: {error}"
    return PartitionError(
        f"Partition {index} ('{source}') failed: {reason}", source=str(source), reason=reason
    )


def apply_to_file(
    function: PartitionFunction,
    frame: pd.DataFrame,
    index: int,
    source: str | Path,
    target: str | Path,
) -> int:
    """Apply ``function`` to one partition read from ``source`` and write it to ``target``.

    Returns the rows written.

    Raises
    ------
    PartitionError
        Whatever went wrong, with the partition's number and file and the reason.
    """
    try:
        result = function(frame)
        _write_partition(result, Path(target))
    except Exception as error:
        raise _failure(index, source, error) from error
    return len(result)


def summarise_file(
    summarise: Callable[[pd.DataFrame], Summary], frame: pd.DataFrame, index: int, source: str
) -> Summary:
    """Summarise one partition; failures name the file, as :func:`apply_to_file`'s do."""
    try:
        return summarise(frame)
    except Exception as error:
        raise _failure(index, source, error) from error


class Engine(ABC):
    """Where fan-out, partition and statistics work runs; a context manager."""

    name: ClassVar[str] = ""

    @abstractmethod
    def fan_out(self, backend: str, n_jobs: int) -> tuple[str, int]:
        """Return the joblib backend and job count for fan-out work.

        ``backend`` and ``n_jobs`` are the configured local values (``training.backend``,
        ``training.n_jobs``); a cluster engine replaces them with its own.
        """

    @abstractmethod
    def transform_files(
        self,
        function: PartitionFunction,
        sources: Sequence[Path],
        targets: Sequence[Path],
        progress: Progress | None = None,
    ) -> list[int]:
        """Write ``function(read(source))`` to each target; return the rows of each.

        ``progress`` is called with a partition's rows when it is done.

        Raises
        ------
        PartitionError
            When a partition fails (the first failure stops the job).
        EngineError
            When the engine loses the work.
        """

    @abstractmethod
    def summarise_files(
        self,
        summarise: Callable[[pd.DataFrame], Summary],
        merge: Callable[[Summary, Summary], Summary],
        sources: Sequence[Path],
    ) -> Summary:
        """Summarise every partition and merge the summaries (``merge`` is associative)."""

    def describe(self) -> str:
        """One line for progress reports: what runs the work."""
        return self.name

    def close(self) -> None:  # noqa: B027  (nothing to release in process)
        """Release the engine's resources (a cluster connection)."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class LocalEngine(Engine):
    """Everything in this process, one partition after another; fan-out on local joblib."""

    name = "local"

    def fan_out(self, backend: str, n_jobs: int) -> tuple[str, int]:
        """Keep the configured local backend and job count."""
        return backend, n_jobs

    def transform_files(
        self,
        function: PartitionFunction,
        sources: Sequence[Path],
        targets: Sequence[Path],
        progress: Progress | None = None,
    ) -> list[int]:
        """Transform the files one after another."""
        rows = []
        for index, (source, target) in enumerate(zip(sources, targets, strict=True)):
            try:
                frame = read_partition(source)
            except Exception as error:
                raise _failure(index, source, error) from error
            rows.append(apply_to_file(function, frame, index, source, target))
            if progress is not None:
                progress(rows[-1])
        return rows

    def summarise_files(
        self,
        summarise: Callable[[pd.DataFrame], Summary],
        merge: Callable[[Summary, Summary], Summary],
        sources: Sequence[Path],
    ) -> Summary:
        """Summarise the files one after another, merging as it goes."""
        merged: Any = None
        for index, source in enumerate(sources):
            try:
                frame = read_partition(source)
            except Exception as error:
                raise _failure(index, source, error) from error
            summary = summarise_file(summarise, frame, index, str(source))
            merged = summary if merged is None else merge(merged, summary)
        return merged  # type: ignore[no-any-return]
