"""What monitoring needs to know about a task: its reference, how logged rows become values.

:class:`TaskMonitoring` holds the reference sketches of the drift windows and the functions
that turn logged requests, answers and feedback into the values sketched and the numbers
reported per window. Each task builds one from a verified bundle
(:meth:`shipyard.tasks.base.Task.monitoring`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import DataError
from shipyard.monitoring.sketch import Sketch
from shipyard.runtime.bundle_files import bundle_file

if TYPE_CHECKING:
    from shipyard.monitoring.columns import ColumnCleaner

__all__ = ["TaskMonitoring", "read_reference"]

Rows = Sequence[Mapping[str, Any]]


@dataclass
class TaskMonitoring:
    """How one model version is monitored.

    Parameters
    ----------
    reference
        Name -> reference sketch of what the drift windows sketch.
    task, classes
        How logged outputs are reduced and scored (``binary``, ``multiclass``,
        ``regression``, or the task's own name when it is none of these).
    prepare
        Turns logged request records into the records the reference was computed on.
    values
        Turns logged rows into ``{name: values}`` for every sketch (several values per row
        allowed); used instead of ``prepare`` when given.
    performance
        Labelled rows of a window -> the realised metric, or None (the tabular default when
        not given).
    signals
        Logged rows and labelled rows of a window -> task-specific numbers reported beside
        the drift (a recommender's coverage and clicked-item drift), or None.
    clean_column
        ``prepare`` one column of a batch at a time (same values, much faster); used
        instead of ``prepare`` when given.
    """

    reference: dict[str, Sketch]
    task: str
    classes: list[Any]
    prepare: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None
    values: Callable[[Rows], Mapping[str, Sequence[Any]]] | None = None
    performance: Callable[[list[dict[str, Any]]], dict[str, Any] | None] | None = None
    signals: Callable[[list[dict[str, Any]], list[dict[str, Any]]], dict[str, Any]] | None = None
    clean_column: ColumnCleaner | None = None


def read_reference(directory: Path, file_name: str | None, reference: str) -> Any:
    """Read the bundle's drift reference file (JSON).

    Raises
    ------
    DataError
        When the bundle has none (trained before monitoring existed).
    """
    if not file_name:
        raise DataError(
            f"{reference} has no drift reference in its bundle; retrain it with this "
            "shipyard to monitor it."
        )
    return json.loads(bundle_file(directory, file_name).read_bytes())
