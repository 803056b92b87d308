"""Retraining steps shared by tasks whose requests are records and labels classes or numbers.

Tabular prediction and text classification use them.

A labelled request joins the training table as one row (its inputs plus the target); the gate
scores champion and challenger on the held-out labelled requests with the model's metric and
compares them paired (:func:`~shipyard.monitoring.gate.compare_models`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.tasks.base import RetrainSteps
from shipyard.tasks.labels import encode_feedback

if TYPE_CHECKING:
    from shipyard.config import PipelineConfig
    from shipyard.manifest import Manifest
    from shipyard.monitoring.gate import GateResult

__all__ = ["RECORD_STEPS", "extend_table", "gate_records"]


def extend_table(
    config: PipelineConfig, learn: list[dict[str, Any]], path: Path
) -> tuple[int, int]:
    """Append each labelled request as a row (its inputs plus the target) to the source."""
    import pandas as pd

    from shipyard.data.sources import ReadOptions, read_table

    target = config.data.target
    new_rows = pd.DataFrame([{**row["inputs"], target: row["label"]} for row in learn])
    table = read_table(config.data.source, ReadOptions(config.data.encoding, config.data.header))
    combined = pd.concat([table, new_rows], ignore_index=True)
    combined.to_parquet(path, index=False)
    return len(combined), len(new_rows)


def gate_records(
    champion: Any,
    challenger: Any,
    manifest: Manifest,
    rows: list[dict[str, Any]],
    min_rows: int,
    min_improvement: float,
) -> GateResult:
    """Score both predictors on the held-out labelled requests and compare them, paired."""
    from shipyard.monitoring.gate import compare_models

    records = [row["inputs"] for row in rows]
    y = encode_feedback(rows, champion.task, champion.classes)
    return compare_models(
        y,
        challenger.score_records(records),
        champion.score_records(records),
        manifest.metric,
        min_samples=min_rows,
        min_improvement=min_improvement,
    )


RECORD_STEPS = RetrainSteps(extend_table, gate_records)
