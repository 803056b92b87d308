"""The anomaly detection sections of the model card and the report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shipyard.evaluation.report import Document, DocumentSections

__all__ = ["ANOMALY_SECTIONS"]


def anomaly_blocks(document: Document, manifest: Mapping[str, Any]) -> None:
    """Add the candidates, the threshold and what the known labels say."""
    details = manifest.get("anomaly", {})
    document.heading("How the detector was chosen")
    if details.get("labelled_rows"):
        document.paragraph(
            f"{details['labelled_rows']} training rows carry known labels (column "
            f"'{manifest.get('target')}'); the candidate with the best average precision on the "
            "validation rows was chosen. Precision at k is the share of known anomalies among "
            f"the {details.get('k')} labelled test rows with the highest scores."
        )
    else:
        document.paragraph(
            "No labels were given, so no candidate can be shown to be better: the first family "
            "of anomaly.methods is served, and the others are listed with how many of its top "
            "validation rows they also rank highest."
        )
    document.table(
        ["candidate", "validation average precision", "top overlap", "note"],
        [
            [
                row["name"],
                "-" if row.get("average_precision") is None else f"{row['average_precision']:.3f}",
                "-" if row.get("overlap") is None else f"{row['overlap']:.3f}",
                "chosen" if row["name"] == details.get("chosen") else "",
            ]
            for row in details.get("candidates", [])
        ],
    )
    document.heading("Threshold")
    document.paragraph(
        f"Contamination {details.get('contamination')}: a row is an anomaly when its score is "
        f"above {details.get('threshold', float('nan')):.4f}. Share of training rows above it: "
        f"{details.get('training_rate', float('nan')):.4f}."
    )


def anomaly_limitations(manifest: Mapping[str, Any]) -> list[str]:
    """Return what the card warns about."""
    found = [
        "An anomaly is a row unlike the training rows' numeric columns, not necessarily an "
        "error or a fraud; the threshold follows the contamination setting, not a cost.",
    ]
    if not manifest.get("anomaly", {}).get("labelled_rows"):
        found.append("No known labels were given: the detector's precision is not measured.")
    return found


ANOMALY_SECTIONS = DocumentSections(blocks=anomaly_blocks, limitations=anomaly_limitations)
