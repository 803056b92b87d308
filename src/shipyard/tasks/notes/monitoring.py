"""Monitoring a notes model from its log: retrieval scores, question drift, feedback hit rate.

Each served answer logs its best chunk's cosine (``retrieval_score``), whether it answered or
refused (``answered``), and its question's cosine to the centroid of the question set the
version was evaluated on (``question_similarity``). The drift windows sketch the three against
the references computed at training time (``drift_reference.json``): more refusals or lower
retrieval scores mean questions the notes do not cover; lower question similarity means people
ask about something else than the question set did, so recall measured on it no longer says
much. Feedback (``{"helpful": true|false, "source": "file.md"}``) gives each window its hit
rate: the share of rated answers that helped, and of named sources that were retrieved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from shipyard.errors import DataError
from shipyard.monitoring.adapters import TaskMonitoring
from shipyard.monitoring.sketch import sketch_from_json

__all__ = ["MIN_FEEDBACK", "check_feedback", "feedback_hits", "notes_monitoring"]

MIN_FEEDBACK = 10
"""Windows with fewer rated answers report no hit rate."""


def check_feedback(label: Any) -> None:
    """Refuse a label that is not ``{"helpful": bool}`` and/or ``{"source": "file"}``.

    Raises
    ------
    DataError
        Saying which shape is expected.
    """
    if not isinstance(label, Mapping) or not ({"helpful", "source"} & set(label)):
        raise DataError(
            'A notes feedback label is {"helpful": true|false} and/or {"source": "file.md"} '
            f"(the file that answers the question); got {label!r}."
        )
    if "helpful" in label and not isinstance(label["helpful"], bool):
        raise DataError(f"'helpful' must be true or false, got {label['helpful']!r}.")
    if "source" in label and not (isinstance(label["source"], str) and label["source"]):
        raise DataError(f"'source' must name a file, got {label['source']!r}.")


def feedback_hits(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Hit rates of labelled answers: ``helpful`` share, and named sources retrieved."""
    helpful = [row["label"]["helpful"] for row in rows if "helpful" in row["label"]]
    retrieved = []
    for row in rows:
        source = row["label"].get("source")
        if source:
            files = {chunk.get("file") for chunk in row["output"].get("chunks", [])}
            retrieved.append(source in files)
    return {
        "rated": len(helpful),
        "helpful_rate": float(np.mean(helpful)) if helpful else None,
        "sources": len(retrieved),
        "source_hit_rate": float(np.mean(retrieved)) if retrieved else None,
    }


def notes_monitoring(manifest: Mapping[str, Any], reference: Mapping[str, Any]) -> TaskMonitoring:
    """Describe how a notes model's logged answers and feedback are monitored."""
    sketches = {name: sketch_from_json(value) for name, value in reference.items()}

    def values(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
        scores, similarity, answered = [], [], []
        for row in rows:
            output = row["output"]
            scores.append(output.get("retrieval_score"))
            similarity.append(output.get("question_similarity"))
            answered.append("true" if output.get("answered") else "false")
        return {
            "retrieval_score": scores,
            "question_similarity": similarity,
            "answered": answered,
        }

    def performance(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
        hits = feedback_hits(rows)
        if hits["rated"] + hits["sources"] < MIN_FEEDBACK:
            return None
        value = (
            hits["helpful_rate"] if hits["helpful_rate"] is not None else hits["source_hit_rate"]
        )
        return {"metric": "hit_rate", "labels": len(rows), "value": value, **hits}

    def signals(logged: list[dict[str, Any]], labelled: list[dict[str, Any]]) -> dict[str, Any]:
        refused = [not row["output"].get("answered") for row in logged]
        return {
            "questions": len(logged),
            "refused_share": float(np.mean(refused)) if refused else 0.0,
            **feedback_hits(labelled),
        }

    return TaskMonitoring(
        sketches, "retrieval_qa", [], values=values, performance=performance, signals=signals
    )
