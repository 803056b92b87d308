"""A directory of Parquet files in, a directory of Parquet files out, complete or not at all.

Outputs are written into a hidden staging directory beside the output and renamed into place
in one step once every partition succeeded, with a ``_SUCCESS`` file that records what was
done. A failed or interrupted job removes its staging directory, so the output directory
either does not exist or holds the whole result.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.data.sources import PARQUET_SUFFIXES
from shipyard.engines.base import Engine, PartitionFunction, Progress
from shipyard.errors import DataError

__all__ = ["DirectoryResult", "list_partitions", "transform_directory"]

SUCCESS_FILE = "_SUCCESS"


@dataclass
class DirectoryResult:
    """What a directory job wrote."""

    output: Path
    files: list[str]
    rows: list[int]
    seconds: float
    engine: str

    @property
    def total_rows(self) -> int:
        """Rows written over all files."""
        return sum(self.rows)


def list_partitions(source: str | Path) -> list[Path]:
    """Return the Parquet files of a directory (sorted by name), or ``[source]`` for a file.

    Raises
    ------
    DataError
        When the path does not exist or the directory holds no Parquet file.
    """
    path = Path(source)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"'{path}' does not exist; pass a Parquet file or a directory of them.")
    files = sorted(
        child
        for child in path.iterdir()
        if child.is_file()
        and child.name.lower().endswith(PARQUET_SUFFIXES)
        and not child.name.startswith((".", "_"))
    )
    if not files:
        raise DataError(f"'{path}' holds no .parquet files to read.")
    return files


def count_partition_rows(sources: list[Path]) -> int:
    """Rows in all files, from their Parquet metadata."""
    import pyarrow.parquet as pq

    return sum(int(pq.ParquetFile(source).metadata.num_rows) for source in sources)


def transform_directory(
    engine: Engine,
    function: PartitionFunction,
    source: str | Path,
    output: str | Path,
    *,
    progress: Progress | None = None,
    record: dict[str, Any] | None = None,
) -> DirectoryResult:
    """Write ``function(file)`` for every Parquet file of ``source`` to ``output``.

    Each output file has its input file's name. ``record`` is added to ``_SUCCESS``.

    Raises
    ------
    DataError
        When the input has no Parquet file, or ``output`` exists and is not empty.
    PartitionError
        When a partition fails; nothing is left in ``output``.
    EngineError
        When the engine loses the work; nothing is left in ``output``.
    """
    started = time.perf_counter()
    sources = list_partitions(source)
    output = Path(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise DataError(
            f"Output '{output}' already exists and is not an empty directory; choose a new "
            "directory, or remove it first."
        )
    staging = output.parent / f".{output.name}.partial-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    try:
        targets = [staging / path.name for path in sources]
        rows = engine.transform_files(function, sources, targets, progress)
        seconds = time.perf_counter() - started
        summary = {
            "files": [path.name for path in sources],
            "rows": rows,
            "total_rows": sum(rows),
            "engine": engine.describe(),
            "seconds": round(seconds, 3),
            **(record or {}),
        }
        (staging / SUCCESS_FILE).write_text(json.dumps(summary, indent=1), encoding="utf-8")
        if output.exists():
            output.rmdir()
        staging.rename(output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return DirectoryResult(output, [path.name for path in sources], rows, seconds, engine.name)
