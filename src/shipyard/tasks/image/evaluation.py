"""The image task's evaluation: decisions at the threshold, calibration, robustness.

Sensitivity and specificity at the tuned threshold carry bootstrap intervals like every other
metric; calibration is the reliability table (ten bins) and its expected calibration error;
robustness is how often the decision flips when each test image is perturbed a little (noise,
brightness, contrast, blur, a small rotation).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["calibration", "decision_metrics", "robustness", "tune_threshold"]

Images = Sequence[npt.NDArray[np.uint8]]


def tune_threshold(y: npt.NDArray[Any], positive: npt.NDArray[Any]) -> float:
    """Return the positive-class threshold that maximises sensitivity + specificity."""
    candidates = np.unique(np.concatenate([positive, [0.5]]))
    best, best_score = 0.5, -1.0
    for threshold in candidates:
        predicted = positive >= threshold
        sensitivity = predicted[y == 1].mean() if np.any(y == 1) else 0.0
        specificity = (~predicted[y == 0]).mean() if np.any(y == 0) else 0.0
        score = float(sensitivity + specificity)
        if score > best_score + 1e-12:
            best, best_score = float(threshold), score
    return best


def decision_metrics(
    y: npt.NDArray[Any],
    positive: npt.NDArray[Any],
    threshold: float,
    n_samples: int,
    confidence: float,
    seed: int,
) -> dict[str, dict[str, float]]:
    """Sensitivity and specificity at ``threshold``, each with a bootstrap interval."""
    from shipyard.stats import bootstrap

    predicted = positive >= threshold
    found = {}
    for name, which, wanted in (("sensitivity", 1, True), ("specificity", 0, False)):
        rows = np.flatnonzero(y == which)
        if len(rows) == 0:
            continue

        def share(resample: Any, rows: Any = rows, wanted: bool = wanted) -> float:
            return float(np.mean(predicted[rows[resample]] == wanted))

        estimate = bootstrap(
            share, len(rows), n_samples=n_samples, confidence=confidence, seed=seed
        )
        found[name] = {
            "value": share(np.arange(len(rows))),
            "low": estimate.low,
            "high": estimate.high,
            "confidence": confidence,
        }
    return found


def calibration(y: npt.NDArray[Any], positive: npt.NDArray[Any], bins: int = 10) -> dict[str, Any]:
    """Reliability table (predicted vs observed positive share per bin) and its ECE."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(positive, edges[1:-1]), 0, bins - 1)
    table, error = [], 0.0
    for position in range(bins):
        members = index == position
        if not np.any(members):
            continue
        predicted, observed = float(positive[members].mean()), float(y[members].mean())
        table.append(
            {
                "bin": position,
                "count": int(members.sum()),
                "predicted": predicted,
                "observed": observed,
            }
        )
        error += members.mean() * abs(predicted - observed)
    return {"bins": table, "expected_calibration_error": float(error)}


def _perturbations(
    seed: int,
) -> dict[str, Callable[[npt.NDArray[np.uint8]], npt.NDArray[np.uint8]]]:
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(seed)

    def as_image(pixels: npt.NDArray[np.uint8]) -> Any:
        return Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)

    def back(image: Any, like: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        array = np.asarray(image, dtype=np.uint8)
        return array.reshape(like.shape)

    def clip(values: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
        clipped: npt.NDArray[np.uint8] = np.clip(values, 0, 255).astype(np.uint8)
        return clipped

    return {
        "noise": lambda p: clip(p + rng.normal(0.0, 8.0, p.shape)),
        "brightness": lambda p: clip(p.astype(np.float64) + 20.0),
        "contrast": lambda p: clip((p - p.mean()) * 1.2 + p.mean()),
        "blur": lambda p: back(as_image(p).filter(ImageFilter.GaussianBlur(0.8)), p),
        "rotation": lambda p: back(as_image(p).rotate(5.0, resample=Image.Resampling.BILINEAR), p),
    }


def robustness(
    score: Callable[[Images], npt.NDArray[np.float64]],
    decide: Callable[[npt.NDArray[np.float64]], npt.NDArray[Any]],
    images: Images,
    seed: int,
) -> dict[str, float]:
    """Share of test images whose decision flips under each perturbation."""
    base = decide(score(images))
    return {
        name: float(np.mean(decide(score([change(image) for image in images])) != base))
        for name, change in _perturbations(seed).items()
    }
