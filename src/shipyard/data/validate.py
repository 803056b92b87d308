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

Against a model
---------------
:func:`validate_file` checks the file's values as they are, against a bare contract.
:func:`validate_records_file` checks each row the way the server checks a request: the row
becomes a record, the model's fitted cleaning runs on it (``?`` becomes missing, ``1,234`` a
number, a category rare in training ``__rare__``), and the record validator compiled from the
contract decides. A value the server accepts is never reported, and one it refuses always is.

Files are read in chunks (CSV, JSON lines, Parquet row groups), so a file larger than memory is
validated in bounded memory. A ``unique`` rule is checked within each chunk only.
"""

from __future__ import annotations

import gzip
import json
import math
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from shipyard.data.contract import MAX_STORED_VIOLATIONS, Contract, ValidationReport, Violation
from shipyard.data.sources import ReadOptions, file_kind, read_chunks
from shipyard.errors import DataError, DataValidationError

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.runtime.clean import Cleaner
    from shipyard.runtime.validate import RecordValidator

__all__ = [
    "FileValidation",
    "iter_chunks",
    "quarantined_rows",
    "validate_file",
    "validate_records_file",
]

# Checks one chunk (its rows numbered through the file, and its rows as records when the
# check needs them): the chunk's report, and each failing row's reasons (only when asked).
ChunkCheck = Callable[
    ["pd.DataFrame", "list[Any] | None", bool], tuple[ValidationReport, dict[Any, list[str]]]
]

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
            "notes": self.notes,
        }


def iter_chunks(
    source: str | Path, chunk_size: int = 100_000, options: ReadOptions | None = None
) -> Iterator[pd.DataFrame]:
    """Yield a source in chunks of at most ``chunk_size`` rows (SQL and datasets: one chunk).

    The one reader, :func:`shipyard.data.sources.read_chunks`: a file that is empty, holds a
    header but no rows, or names a column twice is refused, never reported as valid.
    """
    return read_chunks(source, chunk_size, options)


def validate_file(
    source: str | Path,
    contract: Contract,
    *,
    policy: str = "fail",
    quarantine_path: str | Path | None = None,
    clean_path: str | Path | None = None,
    with_target: bool = False,
    chunk_size: int = 100_000,
    options: ReadOptions | None = None,
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
    options
        The encoding and header of a text file, when sniffing should not decide.

    Raises
    ------
    DataValidationError
        Under ``fail``, when any rule is broken.
    DataError
        When the policy is unknown or the file cannot be read.
    """

    def check(
        chunk: pd.DataFrame, records: list[Any] | None, reasons: bool
    ) -> tuple[ValidationReport, dict[Any, list[str]]]:
        report = contract.validate_frame(chunk, with_target=with_target)
        if "missing_column" in report.counts and policy == "quarantine":
            raise DataError(
                f"'{source}' lacks columns the contract requires: "
                + ", ".join(v.column for v in report.violations if v.rule == "missing_column")
                + "; every row would be quarantined. Fix the file or the contract."
            )
        if not reasons or report.ok:
            return report, {}
        return report, contract.row_problems(chunk, with_target=with_target)

    chunks = ((chunk, None) for chunk in iter_chunks(source, chunk_size, options))
    return _validate(source, chunks, check, policy, quarantine_path, clean_path)


def validate_records_file(
    source: str | Path,
    validator: RecordValidator,
    cleaner: Cleaner | None = None,
    *,
    policy: str = "fail",
    quarantine_path: str | Path | None = None,
    clean_path: str | Path | None = None,
    with_target: bool = False,
    chunk_size: int = 100_000,
    options: ReadOptions | None = None,
) -> FileValidation:
    """Check every row of a file as the server checks a request: cleaned, then validated.

    Each row becomes a record (missing values are None; JSON lines are read as the records
    they hold, without type guessing), ``cleaner`` runs on it when given, and ``validator``
    (a served predictor's) reports each broken rule. The violations show the values as the
    file holds them; the quarantine and clean files hold the rows as the file holds them.

    Parameters
    ----------
    source
        A file, SQL source or dataset reference.
    validator
        The record validator of the model (``predictor.validator``).
    cleaner
        The model's fitted cleaning (``predictor.cleaner``), or None when it has none.
    policy, quarantine_path, clean_path, with_target, chunk_size, options
        As for :func:`validate_file`. The model's unknown-categories policy is the
        validator's: a category it scores is not reported.

    Raises
    ------
    DataValidationError
        Under ``fail``, when any record would be refused.
    DataError
        When the policy is unknown or the file cannot be read.
    """

    def check(
        chunk: pd.DataFrame, records: list[Any] | None, reasons: bool
    ) -> tuple[ValidationReport, dict[Any, list[str]]]:
        originals = records if records is not None else _frame_records(chunk)
        cleaned = cleaner.clean_records(originals) if cleaner is not None else originals
        violations: list[Violation] = []
        counts: Counter[str] = Counter()
        problems: dict[Any, list[str]] = {}
        for row, original, record in zip(chunk.index.tolist(), originals, cleaned, strict=True):
            for finding in validator.findings(record, with_target=with_target):
                counts[finding.rule] += 1
                problems.setdefault(row, []).append(f"{finding.field}: {finding.rule}")
                if len(violations) < MAX_STORED_VIOLATIONS:
                    violations.append(_violation(row, original, finding))
        report = ValidationReport(n_rows=len(chunk), violations=violations, counts=dict(counts))
        return report, problems

    return _validate(
        source,
        _record_chunks(source, chunk_size, options),
        check,
        policy,
        quarantine_path,
        clean_path,
    )


def _violation(row: Any, original: Any, finding: Any) -> Violation:
    """Return a finding as a violation, showing the value as the file holds it."""
    value = original.get(finding.field) if isinstance(original, Mapping) else original
    return Violation(
        column=finding.field or "(record)",
        row=row,
        value=_plain(value),
        rule=finding.rule,
        expected=finding.expected or finding.error,
    )


def _record_chunks(
    source: str | Path, chunk_size: int, options: ReadOptions | None
) -> Iterator[tuple[pd.DataFrame, list[Any] | None]]:
    """Chunks of a file with their records: JSON lines as written, other files from frames."""
    text = str(source)
    path = Path(text)
    if path.is_file() and file_kind(path) == "json":
        yield from _json_chunks(path, chunk_size)
        return
    for chunk in iter_chunks(source, chunk_size, options):
        yield chunk, None


def _json_chunks(path: Path, chunk_size: int) -> Iterator[tuple[pd.DataFrame, list[Any]]]:
    """Read JSON lines as the records they hold: a "1,234" stays text, as in a request."""
    import pandas as pd

    def frame(records: list[Any]) -> pd.DataFrame:
        return pd.DataFrame(
            [record if isinstance(record, dict) else {"_record": record} for record in records]
        )

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    records: list[Any] = []
    with opener(path, "rt", encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError as error:
                raise DataError(
                    f"Cannot read '{path}': line {number} is not JSON ({error}). Each line of "
                    "a JSON-lines file must be one JSON object."
                ) from error
            if len(records) == chunk_size:
                yield frame(records), records
                records = []
    if records:
        yield frame(records), records


def _frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Return the rows of a frame as request records: plain Python values, None where missing."""
    names = [str(name) for name in frame.columns]
    columns = [[_request_value(value) for value in frame[name].tolist()] for name in frame.columns]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def _request_value(value: Any) -> Any:
    """Return a value as a JSON request would carry it: None when missing, dates as ISO text."""
    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def _plain(value: Any) -> Any:
    """Numpy scalars as plain Python, for reports and JSON."""
    return value.item() if hasattr(value, "item") else value


def quarantined_rows(chunk: pd.DataFrame, problems: Mapping[Any, list[str]]) -> pd.DataFrame:
    """Return the failing rows of a chunk as a quarantine file holds them.

    The row as read, then ``_row`` (its number in the file, from 0) and ``_violations`` (a
    JSON list of ``"column: rule"``).
    """
    rows = sorted(problems)
    return chunk.loc[rows].assign(
        _row=rows, _violations=[json.dumps(problems[row]) for row in rows]
    )


def _validate(
    source: str | Path,
    chunks: Iterator[tuple[pd.DataFrame, list[Any] | None]],
    check: ChunkCheck,
    policy: str,
    quarantine_path: str | Path | None,
    clean_path: str | Path | None,
) -> FileValidation:
    """Run ``check`` on each chunk, apply the policy, and report the whole file."""
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
    for chunk, records in chunks:
        import pandas as pd

        chunk.index = pd.RangeIndex(rows, rows + len(chunk))
        report, problems = check(chunk, records, quarantine is not None)
        counts.update(report.counts)
        violations.extend(report.violations[: MAX_STORED_VIOLATIONS - len(violations)])
        if quarantine is not None and not report.ok:
            failing = quarantined_rows(chunk, problems)
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
    if rows == 0:  # a reader refuses such files first; this guards other sources
        raise DataError(f"'{source}' has no rows: there is nothing to validate.")
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
