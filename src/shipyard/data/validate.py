"""Validating a data file against a contract, a chunk at a time, with a policy for bad rows.

Policies
--------
``fail``
    Report every violation and raise :class:`~shipyard.errors.DataValidationError` if any.
``warn``
    Report every violation and return normally.
``quarantine``
    Write each row that breaks a rule, with a ``_violations`` column giving the reasons, to a
    side file (CSV), and the rows that pass to an optional clean file. No row is dropped
    silently: the counts of both files are reported.

Files are read in chunks (CSV, JSON lines, Parquet row groups), so a file larger than memory is
validated in bounded memory. A ``unique`` rule is checked within each chunk only.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from shipyard.data.contract import MAX_STORED_VIOLATIONS, Contract, ValidationReport, Violation
from shipyard.data.sources import DATASET_PREFIX, SQL_URL, file_kind, read_table, sniff_text
from shipyard.errors import DataError, DataValidationError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FileValidation", "iter_chunks", "validate_file"]

Policy = Literal["fail", "warn", "quarantine"]
POLICIES = ("fail", "warn", "quarantine")


@dataclass
class FileValidation:
    """The result of validating a file."""

    source: str
    policy: str
    report: ValidationReport
    bad_rows: int = 0
    quarantine_path: str | None = None
    clean_path: str | None = None
    clean_rows: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``shipyard validate --json`` prints)."""
        return {
            "source": self.source,
            "policy": self.policy,
            "ok": self.report.ok,
            "rows": self.report.n_rows,
            "bad_rows": self.bad_rows,
            "counts": self.report.counts,
            "violations": [v.model_dump(mode="json") for v in self.report.violations],
            "quarantine_path": self.quarantine_path,
            "clean_path": self.clean_path,
            "clean_rows": self.clean_rows,
        }


def iter_chunks(source: str | Path, chunk_size: int = 100_000) -> Iterator[pd.DataFrame]:
    """Yield a source in chunks of at most ``chunk_size`` rows (SQL and datasets: one chunk)."""
    import pandas as pd

    text = str(source)
    if text.startswith(DATASET_PREFIX) or SQL_URL.match(text):
        yield read_table(text)
        return
    path = Path(text)
    if not path.is_file():
        read_table(path)  # raises the usual "does not exist" error
    kind = file_kind(path)
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_size):
                yield batch.to_pandas()
        elif kind == "json":
            yield from pd.read_json(path, lines=True, chunksize=chunk_size)
        else:
            found = sniff_text(path)
            yield from pd.read_csv(
                path,
                sep=found.delimiter,
                encoding=found.encoding,
                skipinitialspace=True,
                chunksize=chunk_size,
                low_memory=False,
            )
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise DataError(f"Cannot read '{path}': {error}") from error


def validate_file(
    source: str | Path,
    contract: Contract,
    *,
    policy: str = "fail",
    quarantine_path: str | Path | None = None,
    clean_path: str | Path | None = None,
    with_target: bool = False,
    chunk_size: int = 100_000,
) -> FileValidation:
    """Check every row of a file against a contract and apply a policy to the rows that fail.

    Parameters
    ----------
    source
        A file, SQL source or dataset reference.
    contract
        The data contract.
    policy
        ``fail``, ``warn`` or ``quarantine`` (see the module docstring).
    quarantine_path
        Where bad rows go under ``quarantine``; defaults to ``<source>.quarantine.csv``.
    clean_path
        Under ``quarantine``, where the rows that pass go (CSV); not written when None.
    with_target
        Also check the target column.
    chunk_size
        Rows read at a time.

    Raises
    ------
    DataValidationError
        Under ``fail``, when any rule is broken.
    DataError
        When the policy is unknown or the file cannot be read.
    """
    if policy not in POLICIES:
        raise DataError(f"Unknown validation policy '{policy}'; use one of {', '.join(POLICIES)}.")
    quarantine = (
        Path(quarantine_path or f"{source}.quarantine.csv") if policy == "quarantine" else None
    )
    clean = Path(clean_path) if clean_path and policy == "quarantine" else None
    for path in (quarantine, clean):
        if path is not None:
            path.unlink(missing_ok=True)
    counts: Counter[str] = Counter()
    violations: list[Violation] = []
    rows = bad = good = 0
    for chunk in iter_chunks(source, chunk_size):
        import pandas as pd

        chunk.index = pd.RangeIndex(rows, rows + len(chunk))
        report = contract.validate_frame(chunk, with_target=with_target)
        counts.update(report.counts)
        violations.extend(report.violations[: MAX_STORED_VIOLATIONS - len(violations)])
        if "missing_column" in report.counts and policy == "quarantine":
            raise DataError(
                f"'{source}' lacks columns the contract requires: "
                + ", ".join(v.column for v in report.violations if v.rule == "missing_column")
                + "; every row would be quarantined. Fix the file or the contract."
            )
        if quarantine is not None and not report.ok:
            problems = contract.row_problems(chunk, with_target=with_target)
            failing = chunk.loc[sorted(problems)].assign(
                _row=sorted(problems),
                _violations=[json.dumps(problems[row]) for row in sorted(problems)],
            )
            failing.to_csv(quarantine, mode="a", header=not bad, index=False)
            bad += len(failing)
            if clean is not None:
                passing = chunk.drop(index=list(problems))
                passing.to_csv(clean, mode="a", header=not good, index=False)
                good += len(passing)
        elif clean is not None:
            chunk.to_csv(clean, mode="a", header=not good, index=False)
            good += len(chunk)
        rows += len(chunk)
    report = ValidationReport(n_rows=rows, violations=violations, counts=dict(counts))
    result = FileValidation(
        source=str(source),
        policy=policy,
        report=report,
        bad_rows=bad,
        quarantine_path=str(quarantine) if quarantine is not None and bad else None,
        clean_path=str(clean) if clean is not None else None,
        clean_rows=good,
    )
    if policy == "fail" and not report.ok:
        raise DataValidationError(
            f"'{source}' does not satisfy the data contract: {report.summary()}\n"
            "Fix the data or edit the contract; or run with --policy warn or quarantine.",
            [violation.model_dump() for violation in violations],
        )
    return result
