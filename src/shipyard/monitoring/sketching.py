"""Turning logged rows into sketch counts, the one way every reader and writer does it.

The count windows (:class:`~shipyard.monitoring.windows.DriftMonitor`, reading the log) and the
log-time sketches (:class:`~shipyard.monitoring.buckets.SketchBook`, written by the server's
log thread) both sketch logged requests after the bundle's fitted cleaning, and logged answers
reduced as the reference reduced the model's outputs. :class:`RowSketcher` is that reduction,
so both give the same counts for the same rows.

Examples
--------
>>> from shipyard.monitoring.sketch import CategoricalSketch, NumericSketch
>>> reference = {"age": NumericSketch([30.0, 50.0], [1, 1, 1]),
...              "__prediction__": NumericSketch([0.5], [1, 1])}
>>> sketcher = RowSketcher(reference, "binary", ["no", "yes"])
>>> sketches = sketcher.empty()
>>> sketcher.add(sketches, [{"age": 25}, {"age": 61}],
...              [{"probabilities": {"no": 0.9, "yes": 0.1}},
...               {"probabilities": {"no": 0.2, "yes": 0.8}}])
>>> sketches["age"].counts, sketches["__prediction__"].counts
([1, 0, 1], [1, 1])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shipyard.monitoring.reference import PREDICTION_COLUMN
from shipyard.monitoring.sketch import Sketch

if TYPE_CHECKING:
    from shipyard.monitoring.columns import ColumnCleaner

__all__ = ["RowSketcher", "output_value"]

RowsFactory = Callable[[], list[dict[str, Any]]]
"""Builds the logged rows (``id``, ``version``, ``at``, ``inputs``, ``output``) when asked."""


def output_value(output: Mapping[str, Any], task: str, classes: Sequence[Any]) -> Any:
    """Reduce a logged output the way reference sketches reduce model outputs."""
    if task == "binary":
        return output["probabilities"][str(classes[-1])]
    if task == "multiclass":
        labels = [str(label) for label in classes]
        return str(labels.index(str(output["prediction"])))
    return output["prediction"]


class RowSketcher:
    """Add logged requests and answers to sketches with a version's reference bins.

    Parameters
    ----------
    reference
        Name -> reference sketch (its bins are the window's bins).
    task, classes
        How logged outputs are reduced (:func:`output_value`).
    prepare
        Turns logged request records into what the reference was computed on.
    values
        Turns logged rows into ``{sketch name: values}`` directly (any number per row);
        replaces the column-by-column reading.
    clean_column
        ``prepare`` one column at a time (same values, much faster); used instead of it.
    """

    def __init__(
        self,
        reference: Mapping[str, Sketch],
        task: str,
        classes: Sequence[Any] = (),
        prepare: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
        values: Callable[[Sequence[Mapping[str, Any]]], Mapping[str, Sequence[Any]]] | None = None,
        clean_column: ColumnCleaner | None = None,
    ) -> None:
        self.reference = dict(reference)
        self.task = task
        self.classes = list(classes)
        self.prepare = prepare
        self.values = values
        self.clean_column = clean_column

    def empty(self) -> dict[str, Sketch]:
        """Return sketches with the reference's bins and no counts."""
        return {name: sketch.empty() for name, sketch in self.reference.items()}

    def add(
        self,
        sketches: Mapping[str, Sketch],
        inputs: list[Any],
        outputs: Sequence[Mapping[str, Any]],
        rows: RowsFactory | None = None,
    ) -> None:
        """Add the logged requests ``inputs`` and their answers ``outputs`` to ``sketches``.

        ``rows`` builds the full logged rows; only a ``values`` function needs them (a
        recommender's listed items), so they are built only then.
        """
        if self.values is not None:
            if rows is None:
                raise ValueError("This task sketches whole logged rows: pass rows.")
            found = self.values(rows())
            for name, sketch in sketches.items():
                sketch.update(found.get(name, ()))
            return
        if self.prepare is not None and self.clean_column is None:
            inputs = self.prepare(inputs)
        for name, sketch in sketches.items():
            if name == PREDICTION_COLUMN:
                sketch.update(
                    [output_value(output, self.task, self.classes) for output in outputs]
                )
                continue
            column = [record.get(name) for record in inputs]
            sketch.update(column if self.clean_column is None else self.clean_column(name, column))
