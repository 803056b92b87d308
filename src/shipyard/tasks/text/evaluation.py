"""The ``evaluation`` section of a text bundle: what the model card and the report show.

Besides the intended use and the data (from the config), it holds the words with the largest
weights towards each class (a global explanation of a linear TF-IDF model) and the confusion
matrix on the test part.

Examples
--------
>>> spec = {"vectorizers": [{"analyzer": "word", "terms": ["cash", "lunch", "win"]}],
...         "coefficients": [[1.5, -2.0, 0.7]]}
>>> tokens = top_tokens(spec, ["ham", "spam"], count=2)
>>> [item["token"] for item in tokens["spam"]], [item["token"] for item in tokens["ham"]]
(['cash', 'win'], ['lunch'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from shipyard.config import PipelineConfig

__all__ = ["TOP_TOKENS", "confusion", "text_evaluation", "top_tokens"]

TOP_TOKENS = 15


def top_tokens(
    spec: Mapping[str, Any], classes: Sequence[Any], count: int = TOP_TOKENS
) -> dict[str, list[dict[str, Any]]]:
    """Word n-grams with the largest positive weight towards each class, largest first.

    A binary model has one coefficient row: positive weights push towards the positive (last)
    class, negative ones towards the other. Embedding models have no word weights, so the
    result is empty.
    """
    vectorizers = spec.get("vectorizers", [])
    if not vectorizers:
        return {}
    coefficients = np.asarray(spec["coefficients"], dtype=np.float64)
    words = [
        (offset, part)
        for offset, part in zip(
            np.cumsum([0] + [len(item["terms"]) for item in vectorizers]).tolist(),
            vectorizers,
            strict=False,
        )
        if part["analyzer"] == "word"
    ]
    if not words:
        return {}
    offset, vectorizer = words[0]
    block = coefficients[:, offset : offset + len(vectorizer["terms"])]
    labels = [str(label) for label in classes]
    rows = (
        {labels[-1]: block[0], labels[0]: -block[0]}
        if block.shape[0] == 1
        else dict(zip(labels, block, strict=True))
    )
    found: dict[str, list[dict[str, Any]]] = {}
    for label, weights in rows.items():
        order = np.argsort(-weights, kind="stable")[:count]
        found[label] = [
            {"token": vectorizer["terms"][index], "weight": round(float(weights[index]), 4)}
            for index in order.tolist()
            if weights[index] > 0
        ]
    return found


def confusion(y: Any, outputs: Any, classes: Sequence[Any]) -> dict[str, Any]:
    """Count (actual class, predicted class) on the test part."""
    predicted = np.argmax(np.asarray(outputs), axis=1)
    size = len(classes)
    counts = np.zeros((size, size), dtype=np.int64)
    np.add.at(counts, (np.asarray(y, dtype=np.int64), predicted), 1)
    return {"labels": [str(label) for label in classes], "counts": counts.tolist()}


def text_evaluation(
    config: PipelineConfig,
    spec: Mapping[str, Any],
    classes: Sequence[Any],
    y_test: Any,
    test_outputs: Any,
) -> dict[str, Any]:
    """Build the manifest's ``evaluation`` section for a text classifier."""
    tokens = top_tokens(spec, classes)
    return {
        "intended_use": config.evaluation.intended_use,
        "out_of_scope_use": config.evaluation.out_of_scope_use,
        "data": {"source": config.data.source, "test_source": config.data.test_source},
        "top_tokens": tokens,
        "top_tokens_note": None
        if tokens
        else "Sentence-embedding models have no per-word weights, so no top tokens are listed.",
        "confusion": confusion(y_test, test_outputs, classes),
    }
