"""The consumer loop: read micro-batches, score, publish and log, then acknowledge.

Events are read in micro-batches of at most ``max_batch_size``: a read returns what the broker
has at once, and waits ``max_batch_wait_ms`` more for company only when the batch is not full.
At most ``max_in_flight`` events are read and not yet acknowledged; while one batch waits for
its publish and log commit, the next is read and scored. An event is acknowledged only after
its answer (or dead letter) is published and its log row committed; when either fails, the
events are handed back and delivered again, and the broker drops the duplicate publish.

:meth:`StreamConsumer.stop` (SIGTERM) stops reading and lets the batches in flight finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from shipyard.serving.logs import log_event
from shipyard.streams.events import DeadLetter, Event, decode_record
from shipyard.streams.scoring import ScoredBatch

if TYPE_CHECKING:
    from shipyard.config import StreamConfig
    from shipyard.streams.brokers import Broker
    from shipyard.streams.metrics import StreamMetrics
    from shipyard.streams.scoring import StreamScorer

__all__ = ["StreamConsumer"]

logger = logging.getLogger("shipyard.streams")

# How long one read waits for a first event before checking whether to stop.
_POLL_SECONDS = 0.5
_LAG_SECONDS = 1.0
_RETRY_SECONDS = 1.0


class StreamConsumer:
    """Consume one broker's events with one scorer until stopped.

    Parameters
    ----------
    broker
        Where events come from and answers go.
    scorer
        Scores micro-batches and logs their answers.
    settings
        Batch size and wait, events in flight, drain timeout.
    metrics
        The consumer's counters (lag, throughput, dead letters).

    ``metrics_port`` is the port of ``/metrics`` once the runner serves it (else ``None``).
    """

    def __init__(
        self,
        broker: Broker,
        scorer: StreamScorer,
        settings: StreamConfig,
        metrics: StreamMetrics,
    ) -> None:
        self.broker = broker
        self.scorer = scorer
        self.settings = settings
        self.metrics = metrics
        self.answered = 0
        self.dead_letters = 0
        self.metrics_port: int | None = None
        self._in_flight = 0
        self._room = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def stop(self) -> None:
        """Stop reading; :meth:`run` returns once the events in flight are acknowledged."""
        self._stopping.set()
        self._room.set()

    async def run(self) -> None:
        """Read, score, publish, log and acknowledge until :meth:`stop`, then drain."""
        lag = asyncio.create_task(self._watch_lag())
        try:
            while not self._stopping.is_set():
                room = self.settings.max_in_flight - self._in_flight
                if room <= 0:
                    self._room.clear()
                    await self._room.wait()
                    continue
                try:
                    events = await self._read(room)
                except Exception as error:  # the broker is away: keep trying, never exit
                    self._broker_failed("reading events failed; retrying in a second", error)
                    await asyncio.sleep(_RETRY_SECONDS)
                    continue
                if events:
                    self._start(events)
            await self._drain()
        finally:
            lag.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lag
        await self._update_lag()  # the last value, after the drain

    async def _read(self, room: int) -> list[Event]:
        """Read one micro-batch: what is there at once, then up to the wait for more."""
        size = min(room, self.settings.max_batch_size)
        events = await self.broker.fetch(size, _POLL_SECONDS)
        wait = self.settings.max_batch_wait_ms / 1000
        if events and len(events) < size and wait > 0:
            events += await self.broker.fetch(size - len(events), wait)
        return events

    def _start(self, events: list[Event]) -> None:
        self._in_flight += len(events)
        self.metrics.in_flight.set(self._in_flight)
        task = asyncio.create_task(self._handle(events))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self) -> None:
        if not self._tasks:
            return
        log_event(logger, "draining", event="drain", in_flight=self._in_flight)
        _, pending = await asyncio.wait(self._tasks, timeout=self.settings.drain_timeout)
        for task in pending:  # not acknowledged: the broker delivers them again
            task.cancel()

    async def _handle(self, events: list[Event]) -> None:
        started = time.perf_counter()
        try:
            await self._process(events, started)
        finally:
            self._in_flight -= len(events)
            self.metrics.in_flight.set(self._in_flight)
            self._room.set()

    async def _process(self, events: list[Event], started: float) -> None:
        dead: list[DeadLetter] = []
        valid: list[Event] = []
        records: list[Any] = []
        slot = self.scorer.choose()
        # A model whose record is one file takes an event's raw bytes as that file.
        file_field = getattr(slot.model.predictor, "file_field", None)
        for event in events:
            decoded = decode_record(event, file_field)
            if isinstance(decoded, DeadLetter):
                dead.append(decoded)
            else:
                valid.append(event)
                records.append(decoded)
        try:
            batch = self.scorer.score(slot, valid, records)
        except Exception as error:
            # The model failed on valid records: say so in the dead letters, never drop them.
            logger.exception("scoring a batch of %d events failed", len(valid))
            self.scorer.log_failure(slot, error)
            reason = f"the model failed to score this event ({error.__class__.__name__})"
            dead += [DeadLetter(event, reason, "model_error") for event in valid]
            batch = ScoredBatch()
        dead += batch.dead
        try:
            await asyncio.gather(
                self.broker.publish(batch.answers, dead), self.scorer.log(batch, started)
            )
        except Exception as error:
            await self._hand_back(events, error)
            return
        try:
            await self.broker.ack(events)
        except Exception as error:
            # Published and logged: delivered again, the duplicate publish is dropped and the
            # log keeps one row, so nothing is lost or repeated.
            self._broker_failed("acknowledging events failed; they will come again", error)
            return
        self.answered += len(batch.answers)
        self.dead_letters += len(dead)
        self.metrics.events.labels("answered").inc(len(batch.answers))
        if dead:
            self.metrics.events.labels("dead_letter").inc(len(dead))
            for letter in dead:
                self.metrics.dead_letters.labels(letter.kind).inc()
        self.metrics.batch_seconds.observe(time.perf_counter() - started)

    def _broker_failed(self, message: str, error: Exception) -> None:
        log_event(
            logger,
            message,
            logging.WARNING,
            event="broker_error",
            error=f"{error.__class__.__name__}: {error}",
        )

    async def _hand_back(self, events: Sequence[Event], error: Exception) -> None:
        log_event(
            logger,
            "answers not published or not logged; the events will be delivered again",
            logging.WARNING,
            event="retry",
            events=len(events),
            error=f"{error.__class__.__name__}: {error}",
        )
        self.metrics.retries.inc(len(events))
        with contextlib.suppress(Exception):
            await self.broker.retry(events)

    async def _update_lag(self) -> None:
        try:
            lag = await self.broker.lag()
        except Exception:  # a metric must never stop the consumer
            return
        if lag is not None:
            self.metrics.lag.set(lag)

    async def _watch_lag(self) -> None:
        while True:
            await self._update_lag()
            await asyncio.sleep(_LAG_SECONDS)
