"""Reading tables: delimited text, Parquet, JSON lines, SQL, and the bundled datasets.

A *source* is a string (or path):

- ``dataset:NAME[:SPLIT]``: a dataset bundled with shipyard (``dataset:adult:test``);
- a file: ``.csv``/``.tsv``/``.txt``/``.data`` (optionally ``.gz``), ``.parquet``/``.pq``,
  ``.jsonl``/``.ndjson``/``.json``. For delimited text the encoding, the delimiter and the
  header are sniffed, and malformed files refused, by :mod:`shipyard.data.sniff`
  (:class:`ReadOptions` overrides the encoding and the header);
- a SQLAlchemy URL followed by ``#`` and a table name or a ``SELECT`` query:
  ``sqlite:///shop.db#orders``, ``postgresql+psycopg://user@host/db#SELECT * FROM orders``.

:func:`read_table` loads a whole table into pandas; :func:`read_chunks` yields it a chunk at a
time (batch scoring and validation); :func:`scan_table` opens a file lazily as a DuckDB
relation, so profiling can run on files larger than memory. All three refuse, with one line
saying why, an empty file, a header without rows, and a column named twice.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from shipyard.data.sniff import WHITESPACE, ReadOptions, TextFormat, sniff_text
from shipyard.errors import DataError, ShipyardError, require

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ReadOptions",
    "TextFormat",
    "fingerprint",
    "read_chunks",
    "read_sql",
    "read_table",
    "scan_table",
    "sniff_text",
]

DATASET_PREFIX = "dataset:"
CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".data", ".csv.gz", ".tsv.gz", ".txt.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
JSON_SUFFIXES = (".jsonl", ".ndjson", ".json", ".jsonl.gz", ".ndjson.gz")
SQL_URL = re.compile(r"^[a-z][a-z0-9+]*://", re.IGNORECASE)
FILE_KINDS = {"csv": CSV_SUFFIXES, "parquet": PARQUET_SUFFIXES, "json": JSON_SUFFIXES}


def file_kind(path: Path) -> str:
    """Return ``csv``, ``parquet`` or ``json`` from a file name.

    Raises
    ------
    DataError
        When the suffix is not one shipyard reads.
    """
    name = path.name.lower()
    for kind, suffixes in FILE_KINDS.items():
        if name.endswith(suffixes):
            return kind
    raise DataError(
        f"Cannot tell the format of '{path}': use a .csv, .tsv, .parquet or .jsonl file "
        "(optionally .gz), or a SQLAlchemy URL such as sqlite:///file.db#table."
    )


def _existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise DataError(
            f"Data file '{path}' does not exist. Check the path (relative paths "
            "are read from the current directory)."
        )
    return path


def read_table(source: str | Path, options: ReadOptions | None = None) -> pd.DataFrame:
    """Read a whole table from a file, a SQL source or a bundled dataset reference.

    Parameters
    ----------
    source
        See the module docstring for the forms a source takes.
    options
        The encoding and header of a text file, when sniffing should not decide.

    Raises
    ------
    DataError
        When the file is missing, its format is unknown, it cannot be parsed, or it is
        empty, holds a header but no rows, or names a column twice.
    """
    import pandas as pd

    text = str(source)
    if text.startswith(DATASET_PREFIX):
        from shipyard import datasets

        name, _, split = text.removeprefix(DATASET_PREFIX).partition(":")
        return datasets.load(name).split(split or "train").copy()
    if SQL_URL.match(text):
        url, _, what = text.partition("#")
        return read_sql(url, what)
    path = _existing_file(text)
    kind = file_kind(path)
    try:
        if kind == "parquet":
            frame = pd.read_parquet(path)
        elif kind == "json":
            frame = _read_json(path)
        else:
            frame = pd.read_csv(path, **_csv_options(sniff_text(path, options)))
    except (ValueError, OSError, pd.errors.ParserError) as error:
        if isinstance(error, ShipyardError):  # already says what is wrong
            raise
        raise DataError(f"Cannot read '{path}': {_reason(error)}") from error
    return _checked(frame, path)


def read_chunks(
    source: str | Path, chunk_size: int = 100_000, options: ReadOptions | None = None
) -> Iterator[pd.DataFrame]:
    """Yield a source in chunks of at most ``chunk_size`` rows (SQL and datasets: one chunk).

    Text files are sniffed and checked as :func:`read_table` does, before the first chunk.

    Raises
    ------
    DataError
        As :func:`read_table`.
    """
    import pandas as pd

    text = str(source)
    if text.startswith(DATASET_PREFIX) or SQL_URL.match(text):
        yield read_table(text)
        return
    path = _existing_file(text)
    kind = file_kind(path)
    rows = 0
    try:
        with _chunk_reader(path, kind, chunk_size, options) as chunks:
            for chunk in chunks:
                if not rows:
                    _refuse_duplicate_columns(chunk, path)
                if len(chunk):
                    rows += len(chunk)
                    yield chunk
    except (ValueError, OSError, pd.errors.ParserError) as error:
        if isinstance(error, ShipyardError):  # already says what is wrong
            raise
        raise DataError(f"Cannot read '{path}': {_reason(error)}") from error
    if not rows:
        raise DataError(f"'{path}' has no rows.")


def _chunk_reader(
    path: Path, kind: str, chunk_size: int, options: ReadOptions | None
) -> AbstractContextManager[Iterator[pd.DataFrame]]:
    """Open a file's chunks; leaving the context closes the file, even mid-way."""
    import pandas as pd

    if kind == "parquet":
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        batches = (batch.to_pandas() for batch in parquet.iter_batches(batch_size=chunk_size))
        return _closing(batches, parquet)
    if kind == "json":
        reader: Any = pd.read_json(path, lines=True, chunksize=chunk_size)
        return cast("AbstractContextManager[Iterator[pd.DataFrame]]", reader)
    found = sniff_text(path, options)
    reader = pd.read_csv(path, chunksize=chunk_size, **_csv_options(found))
    return cast("AbstractContextManager[Iterator[pd.DataFrame]]", reader)


@contextmanager
def _closing(chunks: Iterator[pd.DataFrame], handle: Any) -> Iterator[Iterator[pd.DataFrame]]:
    try:
        yield chunks
    finally:
        handle.close()


def _csv_options(found: TextFormat) -> dict[str, Any]:
    # Whitespace runs need no initial-space skipping (the C parser handles them itself).
    extra = {} if found.delimiter == WHITESPACE else {"skipinitialspace": True}
    return {**found.pandas_options, **extra, "low_memory": False}


def _reason(error: Exception) -> str:
    """Return a parser's error as one line."""
    return " ".join(str(error).split()) or type(error).__name__


def _refuse_duplicate_columns(frame: pd.DataFrame, path: Path) -> None:
    repeated = sorted({str(name) for name in frame.columns[frame.columns.duplicated()]})
    if repeated:
        raise DataError(
            f"'{path}' names a column twice: {', '.join(repeated)}. Rename the columns so "
            "each name is unique."
        )


def _checked(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Refuse a table without rows or with a repeated column name."""
    _refuse_duplicate_columns(frame, path)
    if len(frame) == 0:
        columns = ", ".join(map(str, frame.columns))[:200]
        raise DataError(
            f"'{path}' has a header but no rows (columns: {columns})."
            if columns
            else f"'{path}' is empty: it holds no columns and no rows."
        )
    return frame


def _read_json(path: Path) -> pd.DataFrame:
    import pandas as pd

    opener: Any = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig") as handle:
        first = handle.read(4096).lstrip()[:1]
    # A JSON array of records, or (the usual case for data) one object per line.
    if first == "[":
        return pd.read_json(path, orient="records")
    return pd.read_json(path, lines=True)


def read_sql(url: str, what: str) -> pd.DataFrame:
    """Read a table, or the result of a ``SELECT`` query, through a SQLAlchemy URL.

    Parameters
    ----------
    url
        For example ``sqlite:///shop.db`` or ``postgresql+psycopg://user@host/db``.
    what
        A table name (``schema.table`` allowed) or a query starting with ``SELECT``/``WITH``.

    Raises
    ------
    DataError
        When no table or query is given, or the database refuses it.
    """
    import pandas as pd
    import sqlalchemy
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    what = what.strip()
    if not what:
        raise DataError(
            f"SQL source '{url}' names no table or query: add '#TABLE' or '#SELECT ...' to it, "
            "for example sqlite:///shop.db#orders."
        )
    try:
        engine = sqlalchemy.create_engine(url)
    except (ArgumentError, NoSuchModuleError) as error:
        raise DataError(f"Cannot use the database URL '{url}': {error}") from error
    try:
        with engine.connect() as connection:
            if re.match(r"^(select|with)\b", what, re.IGNORECASE):
                return pd.read_sql_query(sqlalchemy.text(what), connection)
            schema, _, table = what.rpartition(".")
            names = sqlalchemy.inspect(connection).get_table_names(schema=schema or None)
            if table not in names:
                raise DataError(
                    f"Table '{what}' is not in {engine.url.render_as_string(hide_password=True)};"
                    f" tables there: {', '.join(sorted(names)) or 'none'}."
                )
            return pd.read_sql_table(table, connection, schema=schema or None)
    except SQLAlchemyError as error:
        raise DataError(f"The database refused to read '{what}': {error}") from error
    finally:
        engine.dispose()


def scan_table(
    source: str | Path, connection: Any | None = None, options: ReadOptions | None = None
) -> Any:
    """Open a file lazily as a DuckDB relation; nothing is loaded until a query runs.

    Parameters
    ----------
    source
        A CSV/TSV, Parquet or JSON-lines file.
    connection
        A DuckDB connection; a new in-memory one by default.
    options
        The encoding and header of a text file, when sniffing should not decide.

    Raises
    ------
    DataError
        When the file is missing, malformed (see :func:`read_table`) or DuckDB cannot
        parse it.
    MissingDependencyError
        When DuckDB (the ``data`` extra) is not installed.
    """
    duckdb = require("duckdb", "data")
    path = _existing_file(str(source))
    kind = file_kind(path)
    connection = connection or duckdb.connect()
    try:
        if kind == "parquet":
            return connection.read_parquet(str(path))
        if kind == "json":
            return connection.read_json(str(path), format="newline_delimited")
        return scan_text(path, sniff_text(path, options), connection, options)
    except duckdb.Error as error:
        raise DataError(f"Cannot read '{path}': {error}") from error


def duckdb_reads(found: TextFormat) -> bool:
    """Whether DuckDB's own reader takes a text file of this format (else pandas reads it)."""
    utf8 = found.encoding in ("utf-8", "utf-8-sig")
    return utf8 and found.header and found.delimiter != WHITESPACE


def scan_text(
    path: Path, found: TextFormat, connection: Any, options: ReadOptions | None = None
) -> Any:
    """Open a text file already sniffed as ``found`` as a DuckDB relation (see scan_table)."""
    if duckdb_reads(found):
        return connection.read_csv(str(path), sep=found.delimiter, header=True)
    # DuckDB reads UTF-8 with a header and one delimiter character only: other text
    # files go through pandas in memory.
    return connection.from_df(read_table(path, options))


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
