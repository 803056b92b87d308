"""Live training progress on a terminal: each scored setting, the best so far, the time left.

:func:`training_reporter` returns a reporter for :func:`shipyard.pipeline.train`: on a
terminal a live table (Rich) under the timestamped steps; otherwise (a pipe, a CI log,
``--json``) the plain timestamped lines of :func:`shipyard.cli.output.reporter`. The table is
drawn from the progress events (:mod:`shipyard.progress`) the Python API's reporter receives
too.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from shipyard.cli import output
from shipyard.progress import Event

__all__ = ["LiveTraining", "process_started_at", "training_reporter"]

SHOWN_SETTINGS = 8


def process_started_at() -> float:
    """Return ``time.time()`` when this process started (Linux), else now.

    A training budget counts from the moment ``shipyard train`` was started: interpreter
    start-up and imports are part of what the user waits for.
    """
    try:
        stat = Path("/proc/self/stat").read_text(encoding="ascii")
        started_ticks = int(stat.rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text(encoding="ascii").split()[0])
        age = uptime - started_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.time()
    return time.time() - max(age, 0.0)


class LiveTraining:
    """The live part of the display: the last scored settings and a status line."""

    def __init__(self, started: float | None = None) -> None:
        self.started = time.perf_counter() if started is None else started
        self.settings: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self.deadline: float | None = None
        self.budget: float | None = None
        self.stage = "preparing the data"

    def update(self, message: str) -> None:
        """Take in one progress event (other messages are ignored here)."""
        if not isinstance(message, Event):
            return
        fields = message.fields
        if message.kind == "budget":
            self.deadline, self.budget = fields["deadline"], fields["budget_s"]
        elif message.kind == "setting":
            self.settings.append(fields)
            self.best = {"score": fields["best"], "family": fields["best_family"]}
            self.stage = "search"
        elif message.kind == "stage":
            self.stage = fields["stage"]

    def status(self) -> str:
        """One line: the best score so far, settings scored, the step, the time left."""
        parts = []
        if self.best is not None:
            parts.append(f"best {self.best['score']:.4f} ({self.best['family']})")
        parts.append(f"{len(self.settings)} settings scored")
        parts.append(self.stage)
        if self.deadline is not None:
            left = self.deadline - time.time()
            parts.append(
                f"{left:.0f}s left of {self.budget:g}s"
                if left >= 0
                else f"{-left:.0f}s over the {self.budget:g}s budget"
            )
        return " · ".join(parts)

    def __rich__(self) -> Group:
        table = Table(box=None, pad_edge=False, show_edge=False)
        table.add_column("setting")
        table.add_column("CV score", justify="right")
        table.add_column("best so far", justify="right")
        table.add_column("note")
        for row in self.settings[-SHOWN_SETTINGS:]:
            table.add_row(row["label"], f"{row['score']:.4f}", f"{row['best']:.4f}", row["note"])
        items: list[Any] = [table] if self.settings else []
        return Group(*items, Text(self.status(), style="bold"))


@contextmanager
def training_reporter(plain: bool = False) -> Iterator[Callable[[str], None]]:
    """Yield a reporter: a live display on a terminal, plain lines otherwise (or ``plain``)."""
    console: Console = output.error_console
    if plain or not console.is_terminal:
        yield output.reporter()
        return
    started = time.perf_counter()
    view = LiveTraining(started)
    with Live(view, console=console, refresh_per_second=4, transient=True) as live:

        def report(message: str) -> None:
            view.update(message)
            live.console.print(
                f"[dim]{time.perf_counter() - started:6.1f}s[/dim] {message}", highlight=False
            )

        yield report
