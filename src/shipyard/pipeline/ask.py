"""Batch answers: a file of questions put to a registered notes version, without a server."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from shipyard.errors import DataError
from shipyard.registry.store import Registry

__all__ = ["BATCH", "answer_questions"]

BATCH = 32
"""Questions embedded together."""


def answer_questions(
    registry: Registry,
    reference: str,
    questions: Sequence[str],
    k: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield the answer to each question (in order) from the version ``reference`` names.

    Raises
    ------
    DataError
        When the version does not answer questions (it is not a notes model).
    """
    predictor = registry.load_predictor(reference)
    if not hasattr(predictor, "ask_many"):
        raise DataError(
            f"{reference} does not answer questions; 'shipyard ask' needs a model "
            "trained with task: retrieval_qa (use 'shipyard predict' for others)."
        )
    for low in range(0, len(questions), BATCH):
        batch = list(questions[low : low + BATCH])
        yield from predictor.ask_many(batch, k)
        if progress is not None:
            progress(len(batch))
