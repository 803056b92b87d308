"""The image classifier's sections of the model card and the evaluation report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shipyard.evaluation.report import Document, DocumentSections
from shipyard.evaluation.sections import leaderboard_blocks

__all__ = ["IMAGE_SECTIONS", "image_blocks", "image_limitations"]


def _interval(entry: Mapping[str, Any]) -> str:
    share = f"{entry['confidence']:.0%}"
    return f"{entry['value']:.3f} ({share} CI {entry['low']:.3f} to {entry['high']:.3f})"


def image_blocks(document: Document, manifest: Mapping[str, Any]) -> None:
    """Intended use, decisions at the threshold, calibration, robustness and the leaderboard."""
    document.heading("Intended use")
    document.paragraph(str(manifest.get("intended_use", "")))
    evaluation = manifest.get("evaluation", {})
    decisions = evaluation.get("at_threshold")
    threshold = manifest.get("decision_threshold") or {}
    if decisions:
        document.heading("Decisions at the threshold (test split)")
        document.paragraph(
            f"Threshold {threshold.get('value', 0.5):.3f} on the positive class's probability, "
            f"tuned on the validation images for {threshold.get('metric', '')}."
        )
        document.table(
            ["measure", "value"], [[name, _interval(entry)] for name, entry in decisions.items()]
        )
    calibration = evaluation.get("calibration")
    if calibration:
        document.heading("Calibration (test split)")
        document.paragraph(
            "Expected calibration error "
            f"{calibration['expected_calibration_error']:.3f} over ten probability bins."
        )
        document.table(
            ["bin", "images", "mean predicted", "observed share"],
            [
                [row["bin"], row["count"], f"{row['predicted']:.3f}", f"{row['observed']:.3f}"]
                for row in calibration["bins"]
            ],
        )
    flips = evaluation.get("robustness_flips")
    if flips:
        document.heading("Robustness (share of test decisions that flip)")
        document.table(
            ["perturbation", "flipped"], [[name, f"{share:.1%}"] for name, share in flips.items()]
        )
    weights = manifest.get("pretrained_weights")
    if weights:
        document.heading("Pretrained weights")
        document.items([f"{key}: {value}" for key, value in weights.items()])
    leaderboard_blocks(document, manifest)


def image_limitations(manifest: Mapping[str, Any]) -> list[str]:
    """Limitations of an image classifier, from what training measured."""
    found = [
        "Not a medical device: not approved or validated for diagnosis; every answer needs "
        "review by a qualified reader.",
        "Trained on images of one collection: other scanners, sites, resolutions or patient "
        "groups change the images, which monitoring tracks (brightness, contrast, size and "
        "embedding drift).",
    ]
    flips = manifest.get("evaluation", {}).get("robustness_flips") or {}
    for name, share in flips.items():
        if share >= 0.05:
            found.append(f"{share:.0%} of test decisions flip under a small {name} change.")
    return found


IMAGE_SECTIONS = DocumentSections(blocks=image_blocks, limitations=image_limitations)
