"""What the server serves right now: the primary version, canary and shadow, and hot swaps.

A :class:`ModelSlot` holds one loaded version with its fast single-record path and its micro-
batcher. :class:`ServingState` routes each request to a slot (canary by share) and replaces the
primary slot when the alias moves: a :class:`AliasWatcher` thread polls the registry, loads and
verifies the new version off the event loop, then swaps one attribute. Requests that already
hold the old slot finish on it, new ones get the new slot, so none fails during the swap.
"""

from __future__ import annotations

import gc
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.runtime.fast import SingleRecordPath
from shipyard.serving.batching import MicroBatcher
from shipyard.serving.logs import log_event

if TYPE_CHECKING:
    from shipyard.config import ServingConfig
    from shipyard.serving.app import ServedModel
    from shipyard.serving.metrics import ServingMetrics

__all__ = ["AliasWatcher", "ModelSlot", "ServingState", "batching_helps"]

logger = logging.getLogger("shipyard.serving")

# Model families whose one-row path costs microseconds: waiting for a batch never helps them.
_FAST_FAMILIES = frozenset({"lightgbm", "linear"})


def batching_helps(model: ServedModel, setting: str) -> bool:
    """Decide whether to micro-batch ``model`` under ``setting`` (``auto``, ``on``, ``off``)."""
    if setting != "auto":
        return setting == "on"
    family = model.manifest.get("model", {}).get("family")
    return family not in _FAST_FAMILIES


@dataclass
class ModelSlot:
    """One loaded version, ready to answer."""

    model: ServedModel
    path: SingleRecordPath
    batcher: MicroBatcher | None = None
    labels: list[str] = field(default_factory=list)

    @classmethod
    def build(
        cls, model: ServedModel, settings: ServingConfig, metrics: ServingMetrics
    ) -> ModelSlot:
        """Wrap ``model`` with its fast path, and a batcher when batching helps."""
        if hasattr(model.predictor, "unknown_seen"):  # tabular models score unknown categories
            model.predictor.unknown_seen = metrics.unknown_categories_observer(
                model.name, model.version
            )
        path = SingleRecordPath(model.predictor)
        slot = cls(model, path, labels=[str(label) for label in model.predictor.classes])
        if batching_helps(model, settings.batching):
            slot.batcher = MicroBatcher(
                slot.score_valid,
                settings.max_batch_size,
                settings.max_batch_wait_ms / 1000,
                observe=metrics.batch_size.observe,
            )
        return slot

    def score_valid(self, records: list[Any]) -> list[list[float]]:
        """Score records together; return one output list per record."""
        outputs = self.model.predictor.score_records(records)
        if outputs.ndim == 1:
            return [[value] for value in outputs.tolist()]
        rows: list[list[float]] = outputs.tolist()
        return rows

    async def outputs(self, records: list[Any]) -> list[list[float]]:
        """Validate ``records`` and return their raw outputs (one list per record).

        Raises
        ------
        RecordValidationError
            When a record breaks the contract (nothing is scored then).
        """
        if self.batcher is not None:
            self.model.predictor.validator.check_records(records)
            return await self.batcher.submit(records)
        if len(records) == 1:
            return [self.path.outputs(records[0])]
        return self.score_valid(records)

    def summary(self, row: list[float], group: str | None = None) -> tuple[str, float]:
        """Return the served label and the score (for metrics) of one output row."""
        if not self.labels:
            return "value", row[0]
        best = self.path.class_index(row, group)
        return self.labels[best], row[-1] if len(row) == 2 else row[best]


def _refreeze() -> None:
    """Collect a replaced model and freeze the new one, in a server that froze its models.

    See ``shipyard.serving.server.freeze_loaded_objects``: one full collection per model
    change, rather than full collections over the new model for as long as it serves.
    """
    if gc.get_freeze_count():
        gc.unfreeze()
        gc.collect()
        gc.freeze()


class ServingState:
    """The slots being served and the routing between them.

    Parameters
    ----------
    primary
        The version that answers by default.
    settings
        Serving settings (batching, canary share).
    metrics
        Where model changes are recorded.
    canary
        A version that answers ``canary_share`` of requests.
    shadow
        A version that gets a copy of each request; its answers are logged, never returned.
    """

    def __init__(
        self,
        primary: ServedModel,
        settings: ServingConfig,
        metrics: ServingMetrics,
        canary: ServedModel | None = None,
        shadow: ServedModel | None = None,
        canary_share: float | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.primary = ModelSlot.build(primary, settings, metrics)
        self.canary = ModelSlot.build(canary, settings, metrics) if canary else None
        self.canary_share = settings.canary_share if canary_share is None else canary_share
        self.shadow = ModelSlot.build(shadow, settings, metrics) if shadow else None
        self._random = random.Random()
        for role, slot in (("primary", self.primary), ("canary", self.canary)):
            if slot is not None:
                metrics.set_model(slot.model.name, slot.model.version, role)
        if self.shadow is not None:
            metrics.set_model(self.shadow.model.name, self.shadow.model.version, "shadow")

    def choose(self) -> ModelSlot:
        """Return the slot that answers the next request."""
        canary = self.canary
        if canary is not None and self._random.random() < self.canary_share:
            return canary
        return self.primary

    def set_canary(self, model: ServedModel | None, share: float) -> None:
        """Route ``share`` of requests to ``model`` from the next request on (None: no canary)."""
        old = self.canary.model.version if self.canary is not None else None
        slot = ModelSlot.build(model, self.settings, self.metrics) if model else None
        # Share first: a request routed between the two assignments still gets a valid slot.
        self.canary_share = share
        self.canary = slot
        _refreeze()
        if model is None:
            self.metrics.clear_role("canary")
        else:
            self.metrics.set_model(model.name, model.version, "canary")
        log_event(
            logger,
            "canary changed",
            event="canary",
            old_version=old,
            new_version=model.version if model else None,
            share=share,
        )

    def swap(self, model: ServedModel) -> None:
        """Serve ``model`` as the primary version from the next request on."""
        old = self.primary.model
        self.primary = ModelSlot.build(model, self.settings, self.metrics)
        self.metrics.set_model(model.name, model.version, "primary")
        self.metrics.swaps.inc()
        _refreeze()
        log_event(
            logger,
            "hot swap",
            event="swap",
            model=model.name,
            old_version=old.version,
            new_version=model.version,
        )


class AliasWatcher:
    """Poll the registry: hot-swap the primary slot when the reference moves, follow the canary.

    Parameters
    ----------
    state
        The state whose primary slot is swapped.
    resolve
        Returns the version number the reference points at now.
    load
        Loads (and verifies) a version by number.
    interval
        Seconds between polls.
    resolve_canary
        Returns the version the ``canary`` alias points at now, or None when it points nowhere;
        None leaves the canary slot alone (a fixed canary from the settings, or none).
    canary_share
        Share of requests for a canary found through ``resolve_canary``.
    """

    def __init__(
        self,
        state: ServingState,
        resolve: Callable[[], int],
        load: Callable[[int], ServedModel],
        interval: float,
        resolve_canary: Callable[[], int | None] | None = None,
        canary_share: float = 0.0,
    ) -> None:
        self.state = state
        self.resolve = resolve
        self.load = load
        self.interval = interval
        self.resolve_canary = resolve_canary
        self.canary_share = canary_share
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start polling on a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="shipyard-alias-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def check(self) -> bool:
        """Poll once; swap and return True when the reference points at a new version."""
        version = self.resolve()
        swapped = version != self.state.primary.model.version
        if swapped:
            self.state.swap(self.load(version))
        if self.resolve_canary is not None:
            self._follow_canary()
        return swapped

    def _follow_canary(self) -> None:
        assert self.resolve_canary is not None
        wanted = self.resolve_canary()
        if wanted == self.state.primary.model.version:
            wanted = None  # promoted: the champion serves it, a canary slot would be a copy
        current = self.state.canary.model.version if self.state.canary is not None else None
        if wanted != current:
            model = self.load(wanted) if wanted is not None else None
            self.state.set_canary(model, self.canary_share)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception as error:
                # Keep serving the current version; a broken new one must not take us down.
                log_event(
                    logger,
                    "hot swap check failed; still serving the current version",
                    logging.WARNING,
                    event="swap_failed",
                    error=f"{error.__class__.__name__}: {error}",
                )
