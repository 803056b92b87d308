"""Extractive answers: the best supporting sentences of the retrieved chunks, with citations.

No generator is needed, so this works offline. The sentences of the top chunks are embedded
and ranked by cosine to the question; the best one, and a second one nearly as good, form the
answer, each cited by file, heading and character span. Below the refusal threshold (the best
chunk's cosine) the answer is a refusal that says why. Text from the notes is only ever copied
into the answer, never followed: an instruction planted in a note is just another sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from shipyard.tasks.notes.encoder import Encoder
from shipyard.tasks.notes.ingest import sentence_spans
from shipyard.tasks.notes.retrieval import Hit, Retriever

__all__ = ["REFUSAL", "citation", "extractive_answer", "refusal"]

REFUSAL = "I don't know: the notes hold nothing close enough to this question."
SENTENCE_CHUNKS = 3
"""How many of the top chunks the answer's sentences are drawn from."""
SECOND_SENTENCE_MARGIN = 0.05
"""A second sentence joins the answer when its cosine is within this of the best one's."""


def citation(
    index: Retriever, hit: Hit, rank: int, span: tuple[int, int] | None = None
) -> dict[str, Any]:
    """Where a retrieved chunk (or a sentence of it, ``span``) comes from, JSON-ready."""
    chunk = index.chunks[hit.row]
    start, end = span or (chunk.start, chunk.end)
    return {
        "source": rank,
        "file": chunk.file,
        "heading": chunk.heading,
        "start": start,
        "end": end,
        "score": round(hit.dense, 6),
    }


def refusal(best: float, threshold: float) -> dict[str, Any]:
    """Return the answer given when the best chunk scores below the threshold."""
    return {
        "answered": False,
        "answer": REFUSAL,
        "citations": [],
        "reason": f"the best passage scores {best:.3f}, below the threshold {threshold:.3f}",
    }


def extractive_answer(
    question_vector: npt.NDArray[np.float32],
    hits: Sequence[Hit],
    index: Retriever,
    encoder: Encoder,
    threshold: float,
) -> dict[str, Any]:
    """Answer with the best sentences of the top chunks, or refuse below ``threshold``."""
    best = max((hit.dense for hit in hits), default=0.0)
    if best < threshold:
        return refusal(best, threshold)
    spans: list[tuple[int, tuple[int, int]]] = []
    for rank, hit in enumerate(hits[:SENTENCE_CHUNKS], start=1):
        chunk = index.chunks[hit.row]
        spans += [(rank, span) for span in sentence_spans(chunk.text)]
    texts = [index.chunks[hits[rank - 1].row].text[low:high] for rank, (low, high) in spans]
    scores = encoder.encode(texts) @ np.asarray(question_vector, dtype=np.float32)
    order = np.argsort(-scores, kind="stable")
    chosen = [int(order[0])]
    if len(order) > 1 and scores[order[1]] >= scores[order[0]] - SECOND_SENTENCE_MARGIN:
        chosen.append(int(order[1]))
    chosen.sort()  # in reading order: by chunk rank, then position
    parts, citations = [], []
    for number, position in enumerate(chosen, start=1):
        rank, (low, high) = spans[position]
        hit = hits[rank - 1]
        offset = index.chunks[hit.row].start
        parts.append(f"{texts[position]} [{number}]")
        entry = citation(index, hit, rank, (offset + low, offset + high))
        citations.append({**entry, "sentence_score": round(float(scores[position]), 6)})
    return {"answered": True, "answer": " ".join(parts), "citations": citations}
