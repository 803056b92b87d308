"""Drift gauges in ``/metrics``: per column PSI and verdict, and prediction drift.

A :class:`DriftRefresher` thread advances the served version's drift windows every few seconds
(incrementally: only the predictions logged since the last refresh are read) and copies the
latest window's numbers into gauges. A scrape only renders the gauges, so scraping often costs
nothing, and the log is never rescanned. The windows live in the database, so ``shipyard
watch`` and the server advance the same windows (they take turns; see
:meth:`~shipyard.monitoring.windows.DriftMonitor.update`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge

from shipyard.monitoring.reference import PREDICTION_COLUMN
from shipyard.serving.logs import log_event

if TYPE_CHECKING:
    from shipyard.monitoring.windows import DriftMonitor, DriftWindow
    from shipyard.serving.state import ServingState

__all__ = ["DriftGauges", "DriftRefresher"]

logger = logging.getLogger("shipyard.serving")


class DriftGauges:
    """The drift gauges of one server, in its Prometheus registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.psi = Gauge(
            "shipyard_drift_psi",
            "Population stability index of each input column in the latest drift window.",
            ["version", "column"],
            registry=registry,
        )
        self.drifted = Gauge(
            "shipyard_drift_detected",
            "1 when the column drifted in the latest window (test and PSI agree), else 0; "
            "absent while the window is too small for a verdict.",
            ["version", "column"],
            registry=registry,
        )
        self.prediction_psi = Gauge(
            "shipyard_prediction_drift_psi",
            "PSI of the model's outputs in the latest window against its training outputs.",
            ["version"],
            registry=registry,
        )
        self.prediction_drifted = Gauge(
            "shipyard_prediction_drift_detected",
            "1 when the model's outputs drifted in the latest window, else 0.",
            ["version"],
            registry=registry,
        )
        self.window_predictions = Gauge(
            "shipyard_drift_window_predictions",
            "Predictions in the window the drift gauges describe.",
            ["version"],
            registry=registry,
        )
        self.window_closed = Gauge(
            "shipyard_drift_window_closed",
            "1 when the described window is complete, 0 while it is still filling.",
            ["version"],
            registry=registry,
        )
        self.refreshed = Gauge(
            "shipyard_drift_refreshed_seconds",
            "Unix time of the last successful drift refresh.",
            registry=registry,
        )

    def show(self, version: int, window: DriftWindow | None) -> None:
        """Replace every gauge with the numbers of ``window`` (of ``version``)."""
        for gauge in (
            self.psi,
            self.drifted,
            self.prediction_psi,
            self.prediction_drifted,
            self.window_predictions,
            self.window_closed,
        ):
            gauge.clear()
        self.refreshed.set(time.time())
        if window is None:
            return
        label = str(version)
        self.window_predictions.labels(label).set(window.count)
        self.window_closed.labels(label).set(int(window.closed))
        for row in window.report:
            column, verdict = str(row["column"]), row["drifted"]
            if column == PREDICTION_COLUMN:
                self.prediction_psi.labels(label).set(float(row["psi"]))
                if verdict is not None:
                    self.prediction_drifted.labels(label).set(int(verdict))
                continue
            self.psi.labels(label, column).set(float(row["psi"]))
            if verdict is not None:
                self.drifted.labels(label, column).set(int(verdict))


class DriftRefresher:
    """Advance the primary version's drift windows in the background and refresh the gauges.

    Parameters
    ----------
    state
        The server's state; the refresher follows its primary version across hot swaps.
    gauges
        Where the numbers go.
    open_monitor
        Opens the drift monitor of a version number.
    interval
        Seconds between refreshes.
    """

    def __init__(
        self,
        state: ServingState,
        gauges: DriftGauges,
        open_monitor: Callable[[int], DriftMonitor],
        interval: float,
    ) -> None:
        self.state = state
        self.gauges = gauges
        self.open_monitor = open_monitor
        self.interval = interval
        self._monitor: DriftMonitor | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Refresh on a daemon thread (the first refresh right away)."""
        self._thread = threading.Thread(target=self._run, name="shipyard-drift", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop refreshing and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def refresh(self) -> DriftWindow | None:
        """Advance the windows once and show the latest one; return it."""
        version = self.state.primary.model.version
        if self._monitor is None or self._monitor.version != version:
            self._monitor = self.open_monitor(version)
        self._monitor.update()
        window = self._monitor.latest()
        self.gauges.show(version, window)
        return window

    def _run(self) -> None:
        while True:
            try:
                self.refresh()
            except Exception as error:  # gauges must never take the server down
                log_event(
                    logger,
                    "drift refresh failed; the gauges keep their last values",
                    logging.WARNING,
                    event="drift_failed",
                    error=f"{error.__class__.__name__}: {error}",
                )
            if self._stop.wait(self.interval):
                return
