"""Reading tables: delimited text, Parquet, JSON lines, SQL, and the bundled datasets.

A *source* is a string (or path):

- ``dataset:NAME[:SPLIT]``: a dataset bundled with shipyard (``dataset:adult:test``);
- a file: ``.csv``/``.tsv``/``.txt``/``.data`` (optionally ``.gz``), ``.parquet``/``.pq``,
  ``.jsonl``/``.ndjson``/``.json``. For delimited text the encoding (UTF-8 with or without a
  byte-order mark, UTF-16 with a mark, else Windows-1252) and the delimiter (comma, semicolon,
  tab or pipe) are sniffed from the first 64 KiB;
- a SQLAlchemy URL followed by ``#`` and a table name or a ``SELECT`` query:
  ``sqlite:///shop.db#orders``, ``postgresql+psycopg://user@host/db#SELECT * FROM orders``.

:func:`read_table` loads a whole table into pandas. :func:`scan_table` opens a file lazily as a
DuckDB relation, so profiling and validation can run on files larger than memory.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import DataError, require

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TextFormat", "fingerprint", "read_sql", "read_table", "scan_table", "sniff_text"]

DATASET_PREFIX = "dataset:"
CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".data", ".csv.gz", ".tsv.gz", ".txt.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
JSON_SUFFIXES = (".jsonl", ".ndjson", ".json", ".jsonl.gz", ".ndjson.gz")
SNIFF_BYTES = 65536
DELIMITERS = ",;\t|"
SQL_URL = re.compile(r"^[a-z][a-z0-9+]*://", re.IGNORECASE)
FILE_KINDS = {"csv": CSV_SUFFIXES, "parquet": PARQUET_SUFFIXES, "json": JSON_SUFFIXES}


@dataclass(frozen=True)
class TextFormat:
    """What sniffing found out about a delimited text file."""

    encoding: str
    delimiter: str
    compressed: bool


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


def sniff_text(path: Path) -> TextFormat:
    """Sniff the encoding (byte-order marks included) and the delimiter of a text file."""
    compressed = path.name.lower().endswith(".gz")
    opener: Any = gzip.open if compressed else open
    with opener(path, "rb") as handle:
        head: bytes = handle.read(SNIFF_BYTES)
    if head.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        try:
            # The sample may end inside a multi-byte character: ignore only that tail.
            head.decode("utf-8") if len(head) < SNIFF_BYTES else head[:-4].decode("utf-8")
            encoding = "utf-8"
        except UnicodeDecodeError:
            encoding = "cp1252"
    text = head.decode(encoding, errors="ignore")
    lines = text.splitlines()[:50]
    if ".tsv" in path.name.lower():
        delimiter = "\t"
    else:
        try:
            delimiter = csv.Sniffer().sniff("\n".join(lines), delimiters=DELIMITERS).delimiter
        except csv.Error:
            # One column, or too little text to tell: the delimiter seen most often wins.
            counts = {mark: sum(line.count(mark) for line in lines) for mark in DELIMITERS}
            delimiter = max(counts, key=lambda mark: counts[mark]) if any(counts.values()) else ","
    return TextFormat(encoding=encoding, delimiter=delimiter, compressed=compressed)


def _existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise DataError(
            f"Data file '{path}' does not exist. Check the path (relative paths "
            "are read from the current directory)."
        )
    return path


def read_table(source: str | Path) -> pd.DataFrame:
    """Read a whole table from a file, a SQL source or a bundled dataset reference.

    Parameters
    ----------
    source
        See the module docstring for the forms a source takes.

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
    if SQL_URL.match(text):
        url, _, what = text.partition("#")
        return read_sql(url, what)
    path = _existing_file(text)
    kind = file_kind(path)
    try:
        if kind == "parquet":
            return pd.read_parquet(path)
        if kind == "json":
            return _read_json(path)
        found = sniff_text(path)
        return pd.read_csv(
            path,
            sep=found.delimiter,
            encoding=found.encoding,
            skipinitialspace=True,
            low_memory=False,
        )
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise DataError(f"Cannot read '{path}': {error}") from error


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


def scan_table(source: str | Path, connection: Any | None = None) -> Any:
    """Open a file lazily as a DuckDB relation; nothing is loaded until a query runs.

    Parameters
    ----------
    source
        A CSV/TSV, Parquet or JSON-lines file.
    connection
        A DuckDB connection; a new in-memory one by default.

    Raises
    ------
    DataError
        When the file is missing or DuckDB cannot parse it.
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
        found = sniff_text(path)
        if found.encoding not in ("utf-8", "utf-8-sig"):
            # DuckDB reads UTF-8 only: other encodings go through pandas in memory.
            return connection.from_df(read_table(path))
        return connection.read_csv(str(path), sep=found.delimiter, header=True)
    except duckdb.Error as error:
        raise DataError(f"Cannot read '{path}': {error}") from error


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
