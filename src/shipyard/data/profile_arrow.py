"""Reading a delimited text file for profiling with PyArrow's multithreaded CSV reader.

Profiling makes several passes over a table, so a text file is parsed once into memory first.
PyArrow's reader parses on every core and hands DuckDB an Arrow table it scans without a copy;
loading the file into DuckDB's own store parses it too, then writes every value a second time.

The result must be the table DuckDB's reader would give, so DuckDB still decides the dialect
and the column types (:func:`duckdb_dialect`, a sample of the file, as for any DuckDB scan)
and PyArrow only parses with them. Files it cannot read the same way go back to DuckDB's
loader: a dialect or a type PyArrow would read differently (dates, booleans, another quote
character), a value that does not parse as the sampled type, or a file too large to hold in
memory beside DuckDB's own memory limit (DuckDB spills to disk; an Arrow table cannot).

Text is cleaned as DuckDB's loader cleans it: surrounding spaces trimmed (spaces only, as
DuckDB's ``trim``), and the missing placeholders (``?``, ``NA`` ...) made null.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from shipyard.data.sniff import TextFormat

__all__ = ["ARROW_TYPES", "clean_text", "duckdb_dialect", "memory_bytes", "read_csv_arrow"]

# DuckDB's sniffed types that PyArrow parses to the same values.
ARROW_TYPES = ("BIGINT", "DOUBLE", "VARCHAR", "BOOLEAN")
# Words both read as booleans (DuckDB takes any case; another spelling fails in PyArrow, and
# the file goes back to DuckDB).
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_UNITS |= {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def memory_bytes(limit: str) -> int | None:
    """Return a DuckDB memory limit such as ``3GB`` or ``512MiB`` in bytes; None if unclear."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]I?B|B)?\s*", limit.upper())
    if match is None:
        return None
    return int(float(match.group(1)) * _UNITS[match.group(2) or ""])


def _spellings(words: tuple[str, ...]) -> list[str]:
    return [spelt for word in words for spelt in {word, word.title(), word.upper()}]


def duckdb_dialect(path: Path, found: TextFormat, connection: Any) -> dict[str, Any] | None:
    """Return DuckDB's sniffed quote, names, types and rows to skip, when PyArrow reads alike."""
    (sniffed,) = connection.execute(
        "SELECT Quote, Escape, Comment, SkipRows, HasHeader, Columns "
        "FROM sniff_csv(?, sep = ?, header = true)",
        [str(path), found.delimiter],
    ).fetchall()
    quote, escape, comment, skip, header, columns = sniffed
    unset = {"", "(empty)"}
    # No quote sniffed: quotes are plain characters to DuckDB, and so to PyArrow.
    quoting = None if quote in unset else quote
    if quoting not in {None, '"'} or escape not in {'"', *unset}:
        return None
    if comment not in unset or not header:
        return None
    names = [str(column["name"]) for column in columns]
    types = [str(column["type"]) for column in columns]
    if any(kind not in ARROW_TYPES for kind in types):
        return None
    return {"names": names, "types": types, "skip": int(skip), "quote": quoting}


def read_csv_arrow(
    path: Path,
    found: TextFormat,
    connection: Any,
    budget: int,
    missing_tokens: tuple[str, ...],
) -> Any | None:
    """Read a text file into an Arrow table typed as DuckDB types it, text cleaned; or None.

    None means the file goes through DuckDB's loader instead (see the module docstring).
    ``budget`` is the most bytes of file read this way; ``missing_tokens`` become null.
    """
    import pyarrow as pa
    from pyarrow import csv

    # A compressed file's size says little about the table's: it stays with DuckDB's loader.
    if found.compressed or path.stat().st_size > budget:
        return None
    dialect = duckdb_dialect(path, found, connection)
    if dialect is None:
        return None
    arrow_type = {
        "BIGINT": pa.int64(),
        "DOUBLE": pa.float64(),
        # Text is dictionary-encoded (one dictionary per block of the file): parsing is no
        # slower, the table takes about half the memory, grouping reads the small codes, and
        # cleaning touches each distinct value of a block once instead of every row.
        "VARCHAR": pa.dictionary(pa.int32(), pa.string()),
        "BOOLEAN": pa.bool_(),
    }
    try:
        table = csv.read_csv(
            path,
            read_options=csv.ReadOptions(
                column_names=dialect["names"], skip_rows=dialect["skip"] + 1
            ),
            parse_options=csv.ParseOptions(
                delimiter=found.delimiter, quote_char=dialect["quote"] or False
            ),
            convert_options=csv.ConvertOptions(
                column_types={
                    name: arrow_type[kind]
                    for name, kind in zip(dialect["names"], dialect["types"], strict=True)
                },
                # DuckDB reads an empty field as NULL and nothing else: "NA" or "nan" in a
                # number column made DuckDB sniff it as text, and stays text here.
                null_values=[""],
                true_values=_spellings(_TRUE),
                false_values=_spellings(_FALSE),
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return clean_text(table, missing_tokens)


def clean_text(table: Any, missing_tokens: tuple[str, ...]) -> Any:
    """Trim the spaces around text values and make the missing placeholders null."""
    import pyarrow as pa

    tokens = pa.array(missing_tokens, pa.string())
    for index, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type) and pa.types.is_string(field.type.value_type):
            chunks = [_clean_dictionary(chunk, tokens) for chunk in table.column(index).chunks]
            table = table.set_column(index, field, pa.chunked_array(chunks, field.type))
        elif pa.types.is_string(field.type):
            table = table.set_column(index, field, _clean_strings(table.column(index), tokens))
    return table


def _clean_strings(values: Any, tokens: Any) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    trimmed = pc.utf8_trim(values, characters=" ")
    return pc.if_else(pc.is_in(trimmed, value_set=tokens), pa.scalar(None, pa.string()), trimmed)


def _clean_dictionary(chunk: Any, tokens: Any) -> Any:
    """Clean the dictionary of one chunk; rows whose value is a placeholder become null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    dictionary = pc.utf8_trim(chunk.dictionary, characters=" ")
    missing = pc.is_in(dictionary, value_set=tokens)
    indices = chunk.indices
    if pc.any(missing).as_py():
        dropped = pc.take(missing, indices)
        indices = pc.if_else(dropped, pa.scalar(None, indices.type), indices)
    # Placeholders stay in the dictionary, unreferenced, so the codes keep their meaning.
    return pa.DictionaryArray.from_arrays(indices, dictionary)
