"""The loop's notes steps: feedback that names the right source joins the question set.

- :func:`extend_questions`: every feedback label with a ``source`` (the file that answers the
  logged question) becomes a question-set row; the champion's questions come first.
- :func:`recall_gate`: both index versions answer the held-out questions whose feedback names
  a source; recall@k per question, paired over questions, goes to
  :func:`~shipyard.monitoring.gate.compare_paired_values`.

Re-indexing after the notes changed is a retraining too: ``shipyard retrain`` builds the
challenger from the folder as it is now (only changed files are embedded again) and the gate
decides on the question set.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.errors import DataError
from shipyard.monitoring.gate import GateResult, compare_paired_values
from shipyard.tasks.base import RetrainSteps
from shipyard.tasks.notes.evaluation import expected_files
from shipyard.tasks.notes.monitoring import check_feedback

if TYPE_CHECKING:
    from shipyard.config import PipelineConfig
    from shipyard.manifest import Manifest

__all__ = ["NOTES_STEPS", "extend_questions", "recall_gate"]


def extend_questions(
    config: PipelineConfig, learn: list[dict[str, Any]], path: Path
) -> tuple[int, int]:
    """Write the question set plus the sourced feedback of ``learn`` to ``path`` (Parquet)."""
    import pandas as pd

    from shipyard.data.sources import ReadOptions, read_table

    assert config.notes is not None  # checked when the task was resolved
    column, target = config.notes.question_column, config.data.target
    frame = read_table(config.data.source, ReadOptions(config.data.encoding, config.data.header))
    new = []
    for row in learn:
        try:
            check_feedback(row["label"])
        except DataError as error:
            raise DataError(f"Feedback for request {row['request_id']}: {error}") from None
        if row["label"].get("source"):
            new.append({column: row["inputs"]["question"], target: row["label"]["source"]})
    combined = pd.concat(
        [frame[[column, target]].astype(str), pd.DataFrame(new)], ignore_index=True
    )
    combined.to_parquet(path, index=False)
    return len(combined), len(new)


def recall_gate(
    champion: Any,
    challenger: Any,
    manifest: Manifest,
    rows: list[dict[str, Any]],
    min_rows: int,
    min_improvement: float,
) -> GateResult:
    """Compare recall@k of two index versions on held-out sourced questions."""
    k = int(manifest.section("qa", {}).get("k", 5))
    sourced = [
        row for row in rows if isinstance(row["label"], dict) and row["label"].get("source")
    ]
    questions = [row["inputs"]["question"] for row in sourced]
    wanted = [expected_files(row["label"]["source"]) for row in sourced]
    scores = []
    for predictor in (challenger, champion):
        vectors = predictor.encoder.encode(questions)
        found = []
        for question, vector, files in zip(questions, vectors, wanted, strict=True):
            hits = predictor.retrieve(question, vector, k)
            found.append(float(any(predictor.index.chunks[hit.row].file in files for hit in hits)))
        scores.append(np.array(found))
    return compare_paired_values(
        scores[0], scores[1], f"recall@{k}", min_samples=min_rows, min_improvement=min_improvement
    )


NOTES_STEPS = RetrainSteps(extend_questions, recall_gate)
