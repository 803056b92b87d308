"""Profiling: what each column holds, computed by DuckDB in a few passes over the data.

For each column the profile gives the storage type and a *semantic* type (``numeric``,
``categorical``, ``boolean``, ``datetime``, ``text``, ``identifier`` or ``constant``), the share
of missing values (placeholders such as ``?``, ``NA`` or an empty string count as missing),
the number of distinct values, the most frequent values, quantiles, a histogram, the number of
outliers (outside 1.5 interquartile ranges of the quartiles) and, when a target is named, how
strongly the column is associated with it (absolute correlation for numbers, the correlation
ratio or Cramér's V otherwise; 0 = none, 1 = determines it).

Text columns are also checked for likely personal data (emails, phone numbers, payment cards,
IBANs, IP addresses; :mod:`shipyard.data.personal`) on a sample of
:data:`PERSONAL_SAMPLE` rows, so the cost stays bounded on large files; column names that
suggest personal data are reported as hints.

Files are scanned by DuckDB, which spills to disk rather than running out of memory, so a file
larger than memory can be profiled; pandas frames are profiled in place without a copy. A CSV
file up to :data:`ARROW_SHARE` of the memory limit is parsed by PyArrow's multithreaded reader
instead (:mod:`shipyard.data.profile_arrow`), which is faster than loading it into DuckDB.

Examples
--------
>>> import pandas as pd
>>> frame = pd.DataFrame({"size": [1.0, 2.0, 2.5, None], "city": ["a", "b", "a", "?"]})
>>> found = profile_table(frame)
>>> [(column.name, column.semantic, column.missing) for column in found.columns]
[('size', 'numeric', 1), ('city', 'categorical', 1)]
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import DataError, require

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.data.sniff import ReadOptions

__all__ = ["ColumnProfile", "Profile", "profile_table"]

MISSING_TOKENS = ("", "?", "NA", "N/A", "n/a", "na", "null", "NULL", "None", "none", "NaN", "nan")
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
EXACT_ROWS = 100_000
# Above EXACT_ROWS rows, quantiles come from a seeded sample of this many rows.
QUANTILE_SAMPLE = 100_000
NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE")
INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT")
BOOLEAN_WORDS = frozenset({"0", "1", "true", "false", "yes", "no", "y", "n", "t", "f"})
PERSONAL_SAMPLE = 2000
# A text file up to this share of the memory limit is parsed by PyArrow into an Arrow table
# (which lives beside DuckDB's limit, not under it); larger files go through DuckDB's loader,
# which spills to disk.
ARROW_SHARE = 0.5


@dataclass
class ColumnProfile:
    """What one column holds."""

    name: str
    storage_type: str
    semantic: str
    count: int
    missing: int
    missing_share: float
    distinct: int
    top_values: list[tuple[Any, int]] = field(default_factory=list)
    minimum: float | None = None
    maximum: float | None = None
    mean: float | None = None
    std: float | None = None
    quantiles: dict[str, float] = field(default_factory=dict)
    histogram: dict[str, list[float]] = field(default_factory=dict)
    outliers: int = 0
    text_length: dict[str, float] = field(default_factory=dict)
    association: float | None = None
    association_method: str | None = None
    # Likely personal data: kind (email, phone, card, iban, ip) -> share of sampled values.
    personal: dict[str, float] = field(default_factory=dict)
    personal_hint: str | None = None

    @property
    def looks_personal(self) -> bool:
        """Whether the values or the name suggest personal data."""
        return bool(self.personal) or self.personal_hint is not None


@dataclass
class Profile:
    """The profile of a whole table."""

    source: str
    n_rows: int
    n_columns: int
    duplicate_rows: int
    target: str | None
    columns: list[ColumnProfile]
    warnings: list[str]
    seconds: float = 0.0

    def column(self, name: str) -> ColumnProfile:
        """Return a column's profile by name."""
        for column in self.columns:
            if column.name == name:
                return column
        raise DataError(f"The profile has no column '{name}'.")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``shipyard profile --json`` prints)."""
        result: dict[str, Any] = _finite(asdict(self))
        result["personal"] = self.personal()
        result["personal_config"] = self.personal_config()
        return result

    def personal_config(self) -> str | None:
        """Return the config lines that tag the columns that look personal, or None."""
        from shipyard.data.personal import suggested_config

        names = [column.name for column in self.columns if column.looks_personal]
        return suggested_config(names) if names else None

    def summary(self) -> dict[str, Any]:
        """Summarise for the training report: counts, semantic types and warnings."""
        kinds: dict[str, list[str]] = {}
        for column in self.columns:
            kinds.setdefault(column.semantic, []).append(column.name)
        return {
            "rows": self.n_rows,
            "columns": self.n_columns,
            "duplicate_rows": self.duplicate_rows,
            "semantic_types": kinds,
            "missing": {c.name: round(c.missing_share, 4) for c in self.columns if c.missing},
            "personal": self.personal(),
            "warnings": list(self.warnings),
        }

    def personal(self) -> dict[str, dict[str, Any]]:
        """Columns that look personal: ``{column: {"values": {kind: share}, "hint": word}}``."""
        return {
            column.name: {"values": dict(column.personal), "hint": column.personal_hint}
            for column in self.columns
            if column.looks_personal
        }


def _finite(value: Any) -> Any:
    """Replace NaN and infinities by None, so the result is valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def quote(name: str) -> str:
    """Quote a column name for DuckDB SQL."""
    return '"' + name.replace('"', '""') + '"'


def _missing_tokens() -> str:
    return ", ".join("'" + token.replace("'", "''") + "'" for token in MISSING_TOKENS)


def _cleaned_text(name: str) -> str:
    """Return SQL for a text column, trimmed, with missing placeholders as NULL."""
    q = quote(name)
    return f"(CASE WHEN trim({q}) IN ({_missing_tokens()}) THEN NULL ELSE trim({q}) END)"


def _open(
    source: str | Path | pd.DataFrame,
    connection: Any,
    options: ReadOptions | None = None,
    memory_limit: str = "3GB",
) -> tuple[str, bool]:
    """Make ``source`` queryable as ``data``; return its description and whether text is clean."""
    import pandas as pd

    from shipyard.data.sources import DATASET_PREFIX, SQL_URL, file_kind, scan_table

    if isinstance(source, pd.DataFrame):
        connection.register("data", source)
        return "data frame", False
    text = str(source)
    if text.startswith(DATASET_PREFIX) or SQL_URL.match(text):
        from shipyard.data.sources import read_table

        connection.register("data", read_table(text))
        return text, False
    path = Path(text)
    if path.is_file() and file_kind(path) == "csv":
        relation = _open_text(path, connection, options, memory_limit)
        if relation is None:
            return text, True
    else:
        relation = scan_table(text, connection, options)
        if file_kind(path) == "parquet":
            # Every pass scans the file: DuckDB decodes Parquet columns faster than PyArrow
            # reads them into a table to scan (measured; see docs/benchmarks.md).
            relation.create_view("data")
            return text, False
    # Text is parsed once into DuckDB's columnar store (spilling to disk when it is larger than
    # the memory limit) instead of once per query; text columns are trimmed and placeholders
    # made NULL on the way, so no later pass repeats that work.
    relation.create_view("raw")
    columns = [
        f"{_cleaned_text(str(name))} AS {quote(str(name))}"
        if str(kind) == "VARCHAR"
        else quote(str(name))
        for name, kind in zip(relation.columns, relation.types, strict=True)
    ]
    connection.execute(f"CREATE TEMP TABLE data AS SELECT {', '.join(columns)} FROM raw")
    return text, True


def _open_text(
    path: Path, connection: Any, options: ReadOptions | None, memory_limit: str
) -> Any | None:
    """Read a text file into an Arrow table registered as ``data`` (None), else a relation."""
    from shipyard.data.profile_arrow import memory_bytes, read_csv_arrow
    from shipyard.data.sources import duckdb_reads, scan_text, sniff_text

    found = sniff_text(path, options)
    budget = memory_bytes(memory_limit)
    if duckdb_reads(found) and budget is not None:
        share = int(budget * ARROW_SHARE)
        arrow = read_csv_arrow(path, found, connection, share, MISSING_TOKENS)
        if arrow is not None:
            connection.register("data", arrow)
            return None
    return scan_text(path, found, connection, options)


def profile_table(
    source: str | Path | pd.DataFrame,
    target: str | None = None,
    *,
    top: int = 10,
    bins: int = 20,
    max_categories: int = 100,
    memory_limit: str = "3GB",
    options: ReadOptions | None = None,
) -> Profile:
    """Profile a file, SQL source, bundled dataset or data frame.

    Parameters
    ----------
    source
        A source as :func:`shipyard.data.sources.read_table` takes it, or a data frame.
    target
        The column to predict; when given, each column's association with it is measured.
    top
        How many most frequent values to keep per column.
    bins
        Histogram bins for numeric columns.
    max_categories
        Text columns with at most this many distinct values are categorical.
    memory_limit
        DuckDB's memory limit; beyond it DuckDB spills to a temporary folder.
    options
        The encoding and header of a text file, when sniffing should not decide.

    Raises
    ------
    DataError
        When the source cannot be read or the target is not one of its columns.
    """
    import time

    duckdb = require("duckdb", "data")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="shipyard-profile-") as spill:
        connection = duckdb.connect(config={"memory_limit": memory_limit, "temp_directory": spill})
        try:
            connection.execute("SET enable_progress_bar = false")
            where, text_is_clean = _open(source, connection, options, memory_limit)
            profile = _profile(connection, where, target, top, bins, max_categories, text_is_clean)
        except duckdb.Error as error:
            raise DataError(f"Cannot profile {source!s:.200}: {error}") from error
        finally:
            connection.close()
    profile.seconds = time.perf_counter() - started
    return profile


def _one(connection: Any, query: str) -> tuple[Any, ...]:
    rows = connection.sql(query).fetchall()
    return tuple(rows[0])


def _profile(
    connection: Any,
    where: str,
    target: str | None,
    top: int,
    bins: int,
    max_categories: int,
    text_is_clean: bool = False,
) -> Profile:
    described = connection.sql("SELECT * FROM data LIMIT 0")
    names = [str(name) for name in described.columns]
    types = {name: str(kind) for name, kind in zip(names, described.types, strict=True)}
    if target is not None and target not in names:
        raise DataError(f"Target column '{target}' is not in {where}; columns: {', '.join(names)}")
    (n_rows,) = _one(connection, "SELECT count(*) FROM data")
    exact = n_rows <= EXACT_ROWS
    numeric = [name for name in names if types[name].startswith((*NUMERIC_TYPES, "DECIMAL"))]
    texts = [name for name in names if types[name] == "VARCHAR"]

    # Pass 1: counts, missing, distinct, moments and quantiles of every column, and the number
    # of distinct rows, at once.
    cleaned = {
        name: _cleaned_text(name) if name in texts and not text_is_clean else quote(name)
        for name in names
    }
    levels = f"[{', '.join(map(str, QUANTILES))}]"
    parts: list[str] = []
    for name in names:
        q = cleaned[name]
        distinct_count = f"count(DISTINCT {q})" if exact else f"approx_count_distinct({q})"
        parts += [f"count(*) - count({q})", distinct_count]
        if name in numeric:
            parts += [
                f"min({q})::DOUBLE",
                f"max({q})::DOUBLE",
                f"avg({q})::DOUBLE",
                f"stddev_samp({q})::DOUBLE",
            ]
            if exact:
                parts.append(f"quantile_cont({q}, {levels})")
        elif name in texts:
            parts += [f"min(length({q}))", f"max(length({q}))", f"avg(length({q}))"]
    # Rows are compared by a hash of all their values: two rows count as duplicates when every
    # value is the same (a 64-bit hash collision, about 1 in 10^19 per pair, aside).
    parts.append(f"count(DISTINCT hash({', '.join(quote(name) for name in names)}))")
    values = list(_one(connection, f"SELECT {', '.join(parts)} FROM data"))
    duplicates = n_rows - int(values.pop())
    sampled = {} if exact else _sampled_quantiles(connection, numeric, levels)

    columns: list[ColumnProfile] = []
    for name in names:
        missing, distinct = int(values.pop(0)), int(values.pop(0))
        count = n_rows - missing
        column = ColumnProfile(
            name=name,
            storage_type=types[name],
            semantic="",
            count=count,
            missing=missing,
            missing_share=missing / n_rows if n_rows else 0.0,
            distinct=distinct,
        )
        if name in numeric:
            column.minimum, column.maximum, column.mean, column.std = (
                values.pop(0) for _ in range(4)
            )
            quantiles = values.pop(0) if exact else sampled[name]
            if quantiles is not None:
                column.quantiles = {
                    f"{int(level * 100)}%": float(value)
                    for level, value in zip(QUANTILES, quantiles, strict=True)
                }
        elif name in texts:
            shortest, longest, average = (values.pop(0) for _ in range(3))
            if shortest is not None:
                column.text_length = {
                    "min": float(shortest),
                    "max": float(longest),
                    "mean": float(average),
                }
        columns.append(column)

    target_value = _target_value(target, columns, numeric)
    # Pass 2: value counts (and the target's mean per value) of every column with few enough
    # distinct values, all in one scan through GROUPING SETS.
    groups = _value_groups(connection, columns, cleaned, target_value, n_rows)
    for column in columns:
        counted = groups.get(column.name, [])
        column.top_values = [(value, n) for value, n, _, _ in counted[:top]]
        column.semantic = _semantic(column, max_categories)

    # Pass 3: histograms, outliers and correlations with the target of numeric columns.
    _histograms(
        connection, [c for c in columns if c.name in numeric and c.count], bins, target_value
    )
    if target is not None:
        _associations(connection, columns, target, numeric, target_value, groups)

    _personal(connection, columns, texts, cleaned)

    return Profile(
        source=where,
        n_rows=int(n_rows),
        n_columns=len(names),
        duplicate_rows=duplicates,
        target=target,
        columns=columns,
        warnings=_warnings(columns, duplicates, n_rows, target),
    )


def _sampled_quantiles(connection: Any, numeric: list[str], levels: str) -> dict[str, Any]:
    """Quantiles of every numeric column from one seeded sample of QUANTILE_SAMPLE rows.

    A quantile from n sampled values is off by about sqrt(p (1 - p) / n) in rank: 0.16
    percentage points for the median at 100,000 rows (tested in tests/data). One row sample
    for all the columns costs a fraction of one reservoir per column.
    """
    if not numeric:
        return {}
    selected = ", ".join(quote(name) for name in numeric)
    quantiles = ", ".join(f"quantile_cont({quote(name)}, {levels})" for name in numeric)
    values = _one(
        connection,
        f"SELECT {quantiles} FROM (SELECT {selected} FROM data "
        f"USING SAMPLE reservoir({QUANTILE_SAMPLE} ROWS) REPEATABLE (7))",
    )
    return dict(zip(numeric, values, strict=True))


GROUPED_DISTINCT = 10_000
Group = tuple[Any, int, int, float | None]


def _target_value(
    target: str | None, columns: list[ColumnProfile], numeric: list[str]
) -> str | None:
    """Return SQL for the target as a number: itself, or 1.0 for the first of two classes."""
    if target is None:
        return None
    t = quote(target)
    if target in numeric:
        return f"{t}::DOUBLE"
    profile = next(column for column in columns if column.name == target)
    if profile.distinct == 2:
        return f"(trim({t}::VARCHAR) = (SELECT min(trim({t}::VARCHAR)) FROM data))::DOUBLE"
    return None


def _value_groups(
    connection: Any,
    columns: list[ColumnProfile],
    cleaned: dict[str, str],
    target_value: str | None,
    n_rows: int,
) -> dict[str, list[Group]]:
    """Per column: (value, rows, rows with a target, mean target), most frequent first."""
    chosen = [
        column
        for column in columns
        if column.count
        and 0 < column.distinct <= GROUPED_DISTINCT
        and not column.storage_type.startswith(("FLOAT", "DOUBLE"))
    ]
    if not chosen:
        return {}
    keys = [f"{cleaned[column.name]} AS g{index}" for index, column in enumerate(chosen)]
    flags = [f"grouping(g{index})" for index in range(len(chosen))]
    target_parts = (
        f"count({target_value}), avg({target_value})" if target_value else "0, NULL::DOUBLE"
    )
    sets = ", ".join(f"(g{index})" for index in range(len(chosen)))
    rows = connection.sql(
        f"SELECT {', '.join(keys)}, {', '.join(flags)}, count(*), {target_parts} "
        f"FROM data GROUP BY GROUPING SETS ({sets})"
    ).fetchall()
    width = len(chosen)
    found: dict[str, list[Group]] = {column.name: [] for column in chosen}
    for row in rows:
        active = row[width : 2 * width].index(0)
        value = row[active]
        if value is None:
            continue
        n, with_target, mean = row[2 * width :]
        found[chosen[active].name].append((_plain(value), int(n), int(with_target), mean))
    for counted in found.values():
        counted.sort(key=lambda group: (-group[1], str(group[0])))
    return found


def _plain(value: Any) -> Any:
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)


def _semantic(column: ColumnProfile, max_categories: int) -> str:
    kind = column.storage_type
    if column.distinct <= 1:
        return "constant"
    if kind == "BOOLEAN":
        return "boolean"
    if kind.startswith(("DATE", "TIMESTAMP", "TIME")):
        return "datetime"
    words = {str(value).strip().lower() for value, _ in column.top_values}
    if column.distinct == 2 and len(column.top_values) == 2 and words <= BOOLEAN_WORDS:
        return "boolean"
    unique = column.count >= 50 and column.distinct >= 0.95 * column.count
    if kind.startswith(INTEGER_TYPES):
        # Integers are identifiers only when (nearly) every value differs: counts such as
        # Adult's fnlwgt repeat a little, row numbers never do.
        return "identifier" if column.distinct >= 0.99 * column.count >= 50 else "numeric"
    if kind.startswith(("FLOAT", "DOUBLE", "DECIMAL")):
        return "numeric"
    mean_length = column.text_length.get("mean", 0.0)
    if unique:
        return "text" if mean_length > 30 else "identifier"
    if column.distinct <= max_categories:
        return "categorical"
    return "text" if mean_length > 30 else "categorical"


def _histograms(
    connection: Any, columns: list[ColumnProfile], bins: int, target_value: str | None
) -> None:
    if not columns:
        return
    keys, parts = [], []
    shapes = []
    for index, column in enumerate(columns):
        q = quote(column.name)
        low, high = float(column.minimum or 0.0), float(column.maximum or 0.0)
        n_bins = bins if high > low else 1
        width = (high - low) / n_bins if high > low else 1.0
        shapes.append((low, width, n_bins))
        keys.append(f"floor(({q}::DOUBLE - {low!r}) / {width!r})::INTEGER AS b{index}")
        first, third = column.quantiles.get("25%", low), column.quantiles.get("75%", high)
        spread = 1.5 * (third - first)
        parts.append(f"count_if({q} < {first - spread!r} OR {q} > {third + spread!r})")
        parts.append(f"abs(corr({q}::DOUBLE, {target_value}))" if target_value else "NULL")
    # Bin counts of every column in one hash aggregation (GROUPING SETS).
    width_of_key = len(columns)
    flags = ", ".join(f"grouping(b{index})" for index in range(width_of_key))
    sets = ", ".join(f"(b{index})" for index in range(width_of_key))
    counts = [[0.0] * n_bins for _, _, n_bins in shapes]
    for row in connection.sql(
        f"SELECT {', '.join(keys)}, {flags}, count(*) FROM data GROUP BY GROUPING SETS ({sets})"
    ).fetchall():
        active = row[width_of_key : 2 * width_of_key].index(0)
        key = row[active]
        if key is not None:
            n_bins = shapes[active][2]
            counts[active][min(max(int(key), 0), n_bins - 1)] += row[-1]
    results = list(_one(connection, f"SELECT {', '.join(parts)} FROM data"))
    for index, column in enumerate(columns):
        outliers, correlation = results.pop(0), results.pop(0)
        if correlation is not None:
            column.association, column.association_method = _rounded(correlation), "correlation"
        low, width, n_bins = shapes[index]
        column.histogram = {
            "edges": [low + width * step for step in range(n_bins + 1)],
            "counts": counts[index],
        }
        column.outliers = int(outliers)


def _associations(
    connection: Any,
    columns: list[ColumnProfile],
    target: str,
    numeric: list[str],
    target_value: str | None,
    groups: dict[str, list[Group]],
) -> None:
    """Measure each column's association with the target (0 none, 1 determines it)."""
    t = quote(target)
    if target_value is not None:
        (mean, variance) = _one(
            connection, f"SELECT avg({target_value}), var_pop({target_value}) FROM data"
        )
    for column in columns:
        if column.name == target or column.count == 0 or column.semantic == "constant":
            continue
        q = quote(column.name)
        categorical = column.semantic in ("categorical", "boolean")
        if target_value is not None and categorical and column.name in groups and variance:
            # The correlation ratio from the per-value target means of pass 2.
            counted = groups[column.name]
            total = sum(with_target for _, _, with_target, _ in counted)
            between = sum(
                with_target * (group_mean - mean) ** 2
                for _, _, with_target, group_mean in counted
                if group_mean is not None
            )
            if total:
                column.association = _rounded(min(1.0, math.sqrt(between / (total * variance))))
                column.association_method = "correlation ratio"
        elif target_value is None and categorical:
            column.association = _rounded(_cramers_v(connection, q, t))
            column.association_method = "Cramér's V"
        elif target_value is None and column.name in numeric:
            column.association = _rounded(_correlation_ratio(connection, t, f"{q}::DOUBLE"))
            column.association_method = "correlation ratio"


def _rounded(value: Any) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 4)


def _correlation_ratio(connection: Any, group: str, value: str) -> float | None:
    """Share of the variance of ``value`` explained by the groups of ``group``, as a root."""
    (ratio,) = _one(
        connection,
        f"""
        WITH rows AS (SELECT {group} AS g, {value} AS v FROM data WHERE {value} IS NOT NULL),
        overall AS (SELECT avg(v) AS mean, var_pop(v) * count(*) AS total FROM rows),
        groups AS (SELECT count(*) AS n, avg(v) AS mean FROM rows GROUP BY g)
        SELECT sqrt(sum(groups.n * power(groups.mean - overall.mean, 2)) / any_value(total))
        FROM groups, overall WHERE total > 0
        """,
    )
    return None if ratio is None else float(ratio)


def _cramers_v(connection: Any, first: str, second: str) -> float | None:
    (value,) = _one(
        connection,
        f"""
        WITH cells AS (SELECT {first} AS a, {second} AS b, count(*) AS n FROM data
                       WHERE {first} IS NOT NULL AND {second} IS NOT NULL GROUP BY ALL),
        total AS (SELECT sum(n) AS n, count(DISTINCT a) AS ka, count(DISTINCT b) AS kb
                  FROM cells),
        rows_a AS (SELECT a, sum(n) AS n FROM cells GROUP BY a),
        rows_b AS (SELECT b, sum(n) AS n FROM cells GROUP BY b),
        expected AS (SELECT rows_a.n * rows_b.n / total.n AS e, coalesce(cells.n, 0) AS o
                     FROM rows_a CROSS JOIN rows_b CROSS JOIN total
                     LEFT JOIN cells ON cells.a = rows_a.a AND cells.b = rows_b.b)
        SELECT sqrt(sum(power(o - e, 2) / e) / (any_value(total.n) *
               (least(any_value(total.ka), any_value(total.kb)) - 1)))
        FROM expected, total WHERE total.ka > 1 AND total.kb > 1
        """,
    )
    return None if value is None else float(value)


def _personal(
    connection: Any, columns: list[ColumnProfile], texts: list[str], cleaned: dict[str, str]
) -> None:
    """Check a seeded sample of each text column for personal data; hint from every name."""
    from shipyard.data.personal import column_name_hint, detect_values

    for column in columns:
        column.personal_hint = column_name_hint(column.name)
    # Integers of 13 digits or more may be card numbers read as numbers from a CSV file.
    chosen = [
        column
        for column in columns
        if column.count
        and (
            column.name in texts
            or (
                column.storage_type in ("BIGINT", "HUGEINT", "UBIGINT", "UHUGEINT")
                and max(abs(column.minimum or 0), abs(column.maximum or 0)) >= 1e12
            )
        )
    ]
    if not chosen:
        return
    selected = ", ".join(f"{cleaned[column.name]}::VARCHAR" for column in chosen)
    rows = connection.sql(
        f"SELECT {selected} FROM data USING SAMPLE reservoir({PERSONAL_SAMPLE} ROWS) "
        "REPEATABLE (7)"
    ).fetchall()
    for position, column in enumerate(chosen):
        column.personal = detect_values(row[position] for row in rows)


def _warnings(
    columns: list[ColumnProfile], duplicates: int, n_rows: int, target: str | None
) -> list[str]:
    found = []
    if duplicates:
        found.append(f"{duplicates} duplicate rows ({duplicates / n_rows:.1%})")
    for column in columns:
        if column.semantic in ("constant", "identifier"):
            found.append(f"'{column.name}' is {column.semantic}: it cannot help a model")
        if column.missing_share > 0.2:
            found.append(f"'{column.name}' is {column.missing_share:.0%} missing")
        if column.name != target and (column.association or 0.0) >= 0.98:
            found.append(
                f"'{column.name}' alone almost determines the target "
                f"({column.association_method} {column.association}): check for leakage"
            )
    personal = [column for column in columns if column.personal]
    if personal:
        details = "; ".join(
            f"'{column.name}' "
            + ", ".join(f"{kind} {share:.0%}" for kind, share in column.personal.items())
            for column in personal
        )
        names = ", ".join(column.name for column in personal)
        found.append(
            f"likely personal data ({details}): tag it with data.personal: [{names}] so the "
            "prediction log hashes it"
        )
    return found
