"""Reading tables: CSV and Parquet files, and the bundled datasets (``dataset:NAME[:SPLIT]``)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["fingerprint", "read_table"]

DATASET_PREFIX = "dataset:"
CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".data", ".csv.gz", ".tsv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")


def read_table(source: str | Path) -> pd.DataFrame:
    """Read a whole table from a file path or a bundled dataset reference.

    Parameters
    ----------
    source
        A ``.csv``/``.tsv`` (optionally gzipped) or ``.parquet`` path, or ``dataset:adult``
        (the train split) / ``dataset:adult:test``.

    Raises
    ------
    DataError
        When the file is missing, its format is unknown, or it cannot be parsed.
    """
    import pandas as pd

    text = str(source)
    if text.startswith(DATASET_PREFIX):
        from shipyard import datasets

        name, _, split = text.removeprefix(DATASET_PREFIX).partition(":")
        return datasets.load(name).split(split or "train").copy()
    path = Path(text)
    if not path.is_file():
        raise DataError(
            f"Data file '{path}' does not exist. Check the path (relative paths "
            "are read from the current directory)."
        )
    name = path.name.lower()
    try:
        if name.endswith(PARQUET_SUFFIXES):
            return pd.read_parquet(path)
        if name.endswith(CSV_SUFFIXES):
            separator = "\t" if ".tsv" in name else ","
            return pd.read_csv(path, sep=separator, skipinitialspace=True)
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise DataError(f"Cannot read '{path}': {error}") from error
    raise DataError(f"Cannot tell the format of '{path}': use a .csv, .tsv or .parquet file.")


def fingerprint(frame: pd.DataFrame) -> str:
    """Return a SHA-256 of a frame's content, column names and dtypes (not its row labels).

    The same data read from CSV or Parquet gives the same fingerprint when the dtypes agree.
    """
    import pandas as pd

    digest = hashlib.sha256()
    for name, dtype in frame.dtypes.items():
        digest.update(f"{name}:{dtype}\n".encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()
