"""How a served anomaly model is monitored: input and score drift, and the anomaly rate.

The drift reference sketches each numeric column of the training rows and their anomaly
scores, so every drift window tests the logged scores against the training ones. Each window's
signals add the share of answers flagged as anomalies, beside the training share (the
contamination the threshold was set for, as measured on the training rows).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shipyard.monitoring.reference import PREDICTION_COLUMN

__all__ = ["anomaly_signals", "anomaly_values"]


def anomaly_values(columns: Sequence[str]) -> Any:
    """Return how logged rows become sketched values: the inputs and the served score."""

    def values(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
        found = {name: [row["inputs"].get(name) for row in rows] for name in columns}
        found[PREDICTION_COLUMN] = [row["output"]["score"] for row in rows]
        return found

    return values


def anomaly_signals(reference_rate: float | None) -> Any:
    """Return how a window's logged rows become its anomaly rate, beside the training rate."""

    def signals(logged: list[dict[str, Any]], labelled: list[dict[str, Any]]) -> dict[str, Any]:
        flagged = sum(bool(row["output"]["anomaly"]) for row in logged)
        return {
            "anomaly_rate": round(flagged / len(logged), 6),
            "anomalies": flagged,
            "reference_anomaly_rate": reference_rate,
        }

    return signals
