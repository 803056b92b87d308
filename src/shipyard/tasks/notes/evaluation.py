"""Retrieval quality on a question set: recall@k, MRR and nDCG@k with bootstrap intervals.

A question set is the notes' labels: each question names the file that answers it (several
may be given, separated by ``|``). A retrieved chunk is relevant when it comes from an
expected file. Per question:

- ``recall@k``: 1 when a relevant chunk is among the first ``k``;
- ``mrr``: one over the rank of the first relevant chunk (0 beyond the candidates);
- ``ndcg@k``: discounted gain of the relevant chunks in the first ``k``, over the best gain
  possible (as many relevant chunks first as the expected files hold, up to ``k``).

Means over questions get percentile-bootstrap intervals (questions resampled,
:mod:`shipyard.stats`); two retrievers are compared with the paired bootstrap of the
difference per question, which is what the gate between index versions uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from shipyard.evaluation.metrics import MetricValue
from shipyard.stats import bootstrap, paired_difference

__all__ = [
    "WEIGHTS",
    "QuestionScores",
    "compare",
    "expected_files",
    "question_scores",
    "summarise",
    "tune_weight",
]

WEIGHTS = tuple(round(step / 10, 1) for step in range(11))
"""The hybrid weights tried (0 is keyword only, 1 dense only)."""

Ranker = Callable[[int, float], list[str]]
"""``(question position, weight) -> files of the ranked chunks``."""


@dataclass
class QuestionScores:
    """Per-question values of each metric, in question order."""

    values: dict[str, npt.NDArray[np.float64]]

    def mean(self, metric: str) -> float:
        """Return the metric's mean over questions."""
        return float(self.values[metric].mean()) if len(self.values[metric]) else float("nan")


def expected_files(source: Any) -> set[str]:
    """Return the files a question set's ``source`` names (``a.md|b.md``)."""
    return {part.strip().lstrip("./") for part in str(source).split("|") if part.strip()}


def question_scores(
    ranked: Sequence[Sequence[str]], expected: Sequence[set[str]], sizes: dict[str, int], k: int
) -> QuestionScores:
    """Score ranked chunk files against the expected files of each question.

    Parameters
    ----------
    ranked
        For each question, the file of each retrieved chunk, best first.
    expected
        For each question, the files that answer it.
    sizes
        Chunks per file (the best nDCG possible depends on it).
    k
        The cut-off of recall and nDCG.
    """
    recall, reciprocal, ndcg = [], [], []
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    for files, wanted in zip(ranked, expected, strict=True):
        relevant = np.array([file in wanted for file in files], dtype=np.float64)
        first = int(np.argmax(relevant)) if relevant.any() else -1
        recall.append(float(relevant[:k].any()))
        reciprocal.append(0.0 if first < 0 else 1.0 / (first + 1))
        ideal_count = min(k, sum(sizes.get(file, 0) for file in wanted))
        ideal = float(discounts[:ideal_count].sum())
        gain = float((relevant[:k] * discounts[: len(relevant[:k])]).sum())
        ndcg.append(gain / ideal if ideal > 0 else 0.0)
    return QuestionScores(
        {
            f"recall@{k}": np.array(recall),
            "mrr": np.array(reciprocal),
            f"ndcg@{k}": np.array(ndcg),
        }
    )


def summarise(
    scores: QuestionScores, *, n_samples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> dict[str, MetricValue]:
    """Each metric's mean with its percentile-bootstrap interval over questions."""
    found = {}
    for name, values in scores.values.items():

        def mean(rows: npt.NDArray[np.int64], values: npt.NDArray[np.float64] = values) -> float:
            return float(values[rows].mean())

        estimate = bootstrap(
            mean,
            len(values),
            n_samples=n_samples,
            confidence=confidence,
            seed=seed,
        )
        found[name] = MetricValue(estimate.value, estimate.low, estimate.high, confidence)
    return found


def compare(
    new: npt.NDArray[np.float64],
    old: npt.NDArray[np.float64],
    *,
    n_samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Paired bootstrap of ``mean(new - old)`` over the same questions.

    ``better`` is true when the whole interval is above zero, ``worse`` when it is below.
    """
    if len(new) < 2:
        return {
            "difference": float("nan"),
            "low": float("nan"),
            "high": float("nan"),
            "better": False,
            "worse": False,
            "questions": len(new),
        }
    estimate = paired_difference(
        lambda rows: float(new[rows].mean()),
        lambda rows: float(old[rows].mean()),
        len(new),
        n_samples=n_samples,
        confidence=confidence,
        seed=seed,
    )
    return {
        "difference": estimate.value,
        "low": estimate.low,
        "high": estimate.high,
        "better": bool(estimate.low > 0),
        "worse": bool(estimate.high < 0),
        "questions": len(new),
        "method": estimate.method,
    }


def tune_weight(
    rank: Ranker,
    expected: Sequence[set[str]],
    sizes: dict[str, int],
    k: int,
    weights: Sequence[float] = WEIGHTS,
) -> tuple[float, list[dict[str, float]]]:
    """Choose the hybrid weight with the best mean MRR (ties: the higher recall@k, then 0.5).

    Returns the weight and one row per weight tried (``weight``, ``mrr``, ``recall@k``).
    """
    table = []
    for weight in weights:
        ranked = [rank(position, weight) for position in range(len(expected))]
        scores = question_scores(ranked, expected, sizes, k)
        table.append(
            {
                "weight": weight,
                "mrr": scores.mean("mrr"),
                f"recall@{k}": scores.mean(f"recall@{k}"),
            }
        )
    best = max(
        table,
        key=lambda row: (
            round(row["mrr"], 9),
            round(row[f"recall@{k}"], 9),
            -abs(row["weight"] - 0.5),
        ),
    )
    return float(best["weight"]), table
