"""Micro-batching: records of concurrent requests scored in one call of the model.

A request's records wait at most ``max_wait`` seconds for company, then everything queued (up
to ``max_size`` records) is scored together and each request gets its own rows back. This pays
off for models whose per-call cost dwarfs the per-row cost; LightGBM's one-row C API and linear
models are cheaper than any wait, so ``batching: auto`` leaves it off for them. Answers never
depend on batching: every supported model scores each row on its own (tests assert equality).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["MicroBatcher"]

ScoreBatch = Callable[[list[Any]], list[list[float]]]


class MicroBatcher:
    """Queue records from concurrent requests and score them together.

    Parameters
    ----------
    score
        Scores a list of (already validated) records; returns one output list per record.
    max_size
        Records per model call, at most.
    max_wait
        Seconds the first record of a batch waits for more.
    observe
        Called with each batch's size (for the batch size histogram).
    """

    def __init__(
        self,
        score: ScoreBatch,
        max_size: int = 64,
        max_wait: float = 0.002,
        observe: Callable[[int], None] | None = None,
    ) -> None:
        self.score = score
        self.max_size = max_size
        self.max_wait = max_wait
        self.observe = observe
        self._pending: list[tuple[Sequence[Any], asyncio.Future[list[list[float]]]]] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None

    async def submit(self, records: Sequence[Any]) -> list[list[float]]:
        """Queue ``records`` and return their outputs once their batch is scored."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[list[float]]] = loop.create_future()
        self._pending.append((records, future))
        self._size += len(records)
        if self._size >= self.max_size:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.max_wait, self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending, self._size = self._pending, [], 0
        if not pending:
            return
        records = [record for group, _ in pending for record in group]
        try:
            outputs = self.score(records)
        except Exception as error:
            for _, future in pending:
                if not future.done():
                    future.set_exception(error)
            return
        if self.observe is not None:
            self.observe(len(records))
        start = 0
        for group, future in pending:
            if not future.done():  # a request that timed out no longer waits
                future.set_result(outputs[start : start + len(group)])
            start += len(group)
