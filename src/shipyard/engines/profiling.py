"""Profiling partitioned data: per-partition statistics, merged.

Each partition yields, per column, exact mergeable statistics (rows, missing values, distinct
values up to a limit with their counts, smallest and largest value, and the count, mean and
sum of squared deviations merged with Chan's parallel formula), plus a uniform sample of whole
rows kept by the smallest seeded hash keys (a bottom-k sample, which merges into a bottom-k
sample of the union). The merged sample is profiled by :func:`shipyard.data.profile.profile_table`
for what needs all values at once (quantiles, histograms, outliers, associations with the
target; exact when the data has at most ``sample_rows`` rows, like DuckDB's reservoir
quantiles beyond 100,000 rows), and the exact statistics then replace the sample's counts,
missing shares, extremes, means, standard deviations and most frequent values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.engines.base import Engine

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.data.profile import Profile

__all__ = ["PartitionProfile", "profile_partitions"]

SAMPLE_ROWS = 100_000
DISTINCT_LIMIT = 10_000
_KEY = "__shipyard_key"


@dataclass
class ColumnMoments:
    """Exact, mergeable statistics of one column."""

    missing: int = 0
    count: int = 0
    mean: float = 0.0
    squares: float = 0.0  # sum of squared deviations from the mean
    minimum: float | None = None
    maximum: float | None = None
    values: dict[Any, int] = field(default_factory=dict)
    overflow: bool = False

    def merge(self, other: ColumnMoments) -> ColumnMoments:
        """Combine two partitions' statistics."""
        count = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * other.count / count if count else 0.0
        squares = (
            self.squares + other.squares + delta**2 * self.count * other.count / max(count, 1)
        )
        values = dict(self.values)
        for value, n in other.values.items():
            values[value] = values.get(value, 0) + n
        overflow = self.overflow or other.overflow or len(values) > DISTINCT_LIMIT
        lows = [value for value in (self.minimum, other.minimum) if value is not None]
        highs = [value for value in (self.maximum, other.maximum) if value is not None]
        return ColumnMoments(
            self.missing + other.missing,
            count,
            mean,
            squares,
            min(lows) if lows else None,
            max(highs) if highs else None,
            {} if overflow else values,
            overflow,
        )


@dataclass
class PartitionProfile:
    """The mergeable profile of one or more partitions."""

    rows: int
    columns: dict[str, ColumnMoments]
    sample: pd.DataFrame

    def merge(self, other: PartitionProfile) -> PartitionProfile:
        """Combine two profiles; the sample stays the ``SAMPLE_ROWS`` smallest keys."""
        import pandas as pd

        sample = pd.concat([self.sample, other.sample], ignore_index=True)
        sample = sample.nsmallest(SAMPLE_ROWS, _KEY) if len(sample) > SAMPLE_ROWS else sample
        return PartitionProfile(
            self.rows + other.rows,
            {name: moments.merge(other.columns[name]) for name, moments in self.columns.items()},
            sample,
        )


def _present(series: pd.Series) -> pd.Series:
    """Values that count as present: text placeholders such as '?' and 'NA' are missing."""
    import pandas as pd

    from shipyard.data.profile import MISSING_TOKENS

    present = series.dropna()
    if not pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        text = present.astype(str).str.strip()
        present = text[~text.isin(MISSING_TOKENS)]
    return present


@dataclass(frozen=True)
class ProfilePartition:
    """The partition function of profiling: a frame in, its :class:`PartitionProfile` out."""

    seed: int = 0

    def __call__(self, frame: pd.DataFrame) -> PartitionProfile:
        """Profile one partition."""
        import pandas as pd

        columns = {}
        for name in map(str, frame.columns):
            series = frame[name]
            present = _present(series)
            moments = ColumnMoments(missing=len(series) - len(present), count=len(present))
            numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(
                series
            )
            if numeric and len(present):
                numbers = present.to_numpy(np.float64)
                moments.mean = float(numbers.mean())
                moments.squares = float(((numbers - moments.mean) ** 2).sum())
                moments.minimum, moments.maximum = float(numbers.min()), float(numbers.max())
            if not numeric or not np.issubdtype(series.dtype, np.floating):
                counts = present.value_counts()
                moments.overflow = len(counts) > DISTINCT_LIMIT
                if not moments.overflow:
                    moments.values = {_plain(key): int(n) for key, n in counts.items()}
            columns[name] = moments
        hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy(np.uint64)
        keys = (hashed ^ np.uint64(self.seed)) * np.uint64(0x9E3779B97F4A7C15)
        sample = frame.assign(**{_KEY: keys})
        if len(sample) > SAMPLE_ROWS:
            sample = sample.nsmallest(SAMPLE_ROWS, _KEY)
        return PartitionProfile(len(frame), columns, sample.reset_index(drop=True))

    @staticmethod
    def merge(first: PartitionProfile, second: PartitionProfile) -> PartitionProfile:
        """Merge two partial profiles."""
        return first.merge(second)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def profile_partitions(
    engine: Engine, sources: list[Path], target: str | None = None, top: int = 10
) -> Profile:
    """Profile every partition on ``engine`` and merge the results into one profile."""
    import time

    from shipyard.data.profile import _semantic, _warnings, profile_table

    started = time.perf_counter()
    function = ProfilePartition()
    merged: PartitionProfile = engine.summarise_files(function, function.merge, sources)
    profile = profile_table(merged.sample.drop(columns=[_KEY]), target=target, top=top)
    for column in profile.columns:
        exact = merged.columns[column.name]
        column.count, column.missing = exact.count, exact.missing
        column.missing_share = exact.missing / merged.rows if merged.rows else 0.0
        if not exact.overflow:
            column.distinct = len(exact.values)
            ranked = sorted(exact.values.items(), key=lambda item: (-item[1], str(item[0])))
            column.top_values = [(value, n) for value, n in ranked[:top]]
        if exact.minimum is not None:
            column.minimum, column.maximum, column.mean = exact.minimum, exact.maximum, exact.mean
            column.std = math.sqrt(exact.squares / (exact.count - 1)) if exact.count > 1 else None
        scale = column.count / max(sum(column.histogram.get("counts", [])), 1)
        if column.histogram:
            column.histogram["counts"] = [n * scale for n in column.histogram["counts"]]
            column.outliers = round(column.outliers * scale)
        column.semantic = _semantic(column, 100)
    sampled = len(merged.sample)
    profile.duplicate_rows = round(profile.duplicate_rows * merged.rows / max(sampled, 1))
    profile.n_rows = merged.rows
    profile.source = f"{len(sources)} partitions ({sources[0].parent})"
    profile.warnings = _warnings(profile.columns, profile.duplicate_rows, merged.rows, target)
    if sampled < merged.rows:
        profile.warnings.append(
            f"quantiles, histograms, duplicates and associations estimated from a uniform "
            f"sample of {sampled:,} of {merged.rows:,} rows"
        )
    profile.seconds = time.perf_counter() - started
    return profile
