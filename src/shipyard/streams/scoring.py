"""Scoring a micro-batch of events through the serving path, and logging the answers.

The records of a batch go through the slot the serving state routes to (the primary version,
or the canary for its share), in one ``score_records`` call: the compiled path the HTTP
server uses, so an event gets the answer a ``POST .../predict`` of the same record gets. A
record that breaks the contract is set apart with its reason and the rest are scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from shipyard.errors import PredictionLogError
from shipyard.runtime.validate import RecordValidationError
from shipyard.serving.context import RequestError, Scored, ServingContext
from shipyard.serving.state import ModelSlot
from shipyard.streams.events import DeadLetter, Event, Published

__all__ = ["ScoredBatch", "StreamScorer"]


@dataclass
class ScoredBatch:
    """What one micro-batch became: answers to publish and log, and dead letters."""

    answers: list[Published] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    scored: Scored | None = None
    events: list[Event] = field(default_factory=list)
    records: list[Any] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)


def _reasons(error: RecordValidationError, count: int) -> dict[int, str]:
    """Map each offending record's position to its problems, from the error's violations."""
    reasons: dict[int, list[str]] = {}
    for violation in error.violations:
        position = violation.get("record", 0 if count == 1 else None)
        if isinstance(position, int) and 0 <= position < count:
            reasons.setdefault(position, []).append(
                f"field '{violation.get('field')}': {violation.get('error')}"
            )
    return {position: "; ".join(found) for position, found in reasons.items()}


class StreamScorer:
    """Score micro-batches on the serving state of ``context``, and log them durably."""

    def __init__(self, context: ServingContext) -> None:
        self.context = context

    def choose(self) -> ModelSlot:
        """Return the slot that scores the next micro-batch (the canary's share goes to it)."""
        return self.context.state.choose()

    def score(
        self, slot: ModelSlot, events: Sequence[Event], records: Sequence[Any]
    ) -> ScoredBatch:
        """Score ``records`` (one per event) on ``slot``; set apart those breaking the contract."""
        batch = ScoredBatch()
        events, records = list(events), list(records)
        while records:
            try:
                outputs = slot.score_valid(records)
                groups = slot.path.groups(records)
            except RecordValidationError as error:
                reasons = _reasons(error, len(records))
                if not reasons:  # no position named: find the offenders one by one
                    reasons = self._one_by_one(slot, records)
                for position, reason in reasons.items():
                    batch.dead.append(DeadLetter(events[position], reason, "validation_error"))
                kept = [position for position in range(len(records)) if position not in reasons]
                events = [events[position] for position in kept]
                records = [records[position] for position in kept]
                continue
            self._answer(batch, slot, Scored(slot, outputs, groups), events, records)
            break
        return batch

    def _one_by_one(self, slot: ModelSlot, records: list[Any]) -> dict[int, str]:
        reasons = {}
        for position, record in enumerate(records):
            try:
                slot.score_valid([record])
                slot.path.groups([record])
            except RecordValidationError as error:
                reasons[position] = str(error)
        return reasons or dict.fromkeys(range(len(records)), "the records break the contract")

    def _answer(
        self,
        batch: ScoredBatch,
        slot: ModelSlot,
        scored: Scored,
        events: list[Event],
        records: list[Any],
    ) -> None:
        summaries = [
            slot.summary(row, scored.group(position))
            for position, row in enumerate(scored.outputs)
        ]
        metrics = self.context.metrics
        metrics.observe_predictions(
            slot.model.version, [label for label, _ in summaries], [s for _, s in summaries]
        )
        metrics.batch_size.observe(len(records))
        outputs = self.context.answers(scored, records)
        head = {"model": slot.model.name, "version": slot.model.version}
        batch.scored, batch.events, batch.records, batch.outputs = scored, events, records, outputs
        batch.answers = [
            Published(
                event,
                orjson.dumps(
                    {"id": event.id, **head, **output}, option=orjson.OPT_SERIALIZE_NUMPY
                ),
            )
            for event, output in zip(events, outputs, strict=True)
        ]

    async def log(self, batch: ScoredBatch, started: float) -> None:
        """Log the batch's answers under their event ids; durably, return after the commit.

        Raises
        ------
        PredictionLogError
            When the log did not commit them (the events are retried, not acknowledged).
        """
        if batch.scored is None:
            return
        try:
            await self.context.log_answers(
                batch.scored,
                batch.records,
                batch.outputs,
                [event.id for event in batch.events],
                started,
            )
        except RequestError as error:
            raise PredictionLogError(error.message) from None

    def log_failure(self, slot: ModelSlot, error: Exception) -> None:
        """Count a batch the model failed (the live error rate of the slot's version)."""
        log = self.context.prediction_log
        if log is None:
            return
        from shipyard.monitoring.log import PredictionFailure

        model = slot.model
        log.log(PredictionFailure(model.name, model.version, error.__class__.__name__))
