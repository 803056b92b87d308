"""The CLI's live training view, fed the progress events the Python API sends."""

from __future__ import annotations

import io
import os
import time

from rich.console import Console

from shipyard.cli.progress import LiveTraining, process_started_at, training_reporter
from shipyard.progress import event


def _render(view: LiveTraining) -> str:
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(view)
    return console.file.getvalue()  # type: ignore[attr-defined]


def _setting(label: str, score: float, best: float, family: str) -> str:
    return event(
        "setting",
        f"{label}: CV roc_auc {score:.4f}",
        family=label.split()[0],
        label=label,
        metric="roc_auc",
        score=score,
        best=best,
        best_family=family,
        scored=1,
        search_left_s=10.0,
        note="",
    )


def test_the_view_shows_each_setting_the_best_so_far_and_the_time_left() -> None:
    view = LiveTraining()
    view.update("reading the data")  # plain messages change nothing
    assert view.settings == []
    view.update(
        event(
            "budget",
            "time budget 60s",
            budget_s=60.0,
            development_s=40.0,
            evaluation_s=15.0,
            deadline=time.time() + 50.0,
        )
    )
    view.update(_setting("linear portfolio #1", 0.9012, 0.9012, "linear"))
    view.update(_setting("lightgbm portfolio #1", 0.9234, 0.9234, "lightgbm"))
    text = _render(view)
    assert "linear portfolio #1" in text
    assert "lightgbm portfolio #1" in text
    assert "best 0.9234 (lightgbm)" in text
    assert "2 settings scored" in text
    assert "left of 60s" in text
    view.update(event("stage", "evaluation", stage="evaluation"))
    assert "evaluation" in view.status()


def test_past_the_deadline_the_view_says_by_how_much() -> None:
    view = LiveTraining()
    view.update(
        event(
            "budget",
            "b",
            budget_s=20.0,
            development_s=1.0,
            evaluation_s=1.0,
            deadline=time.time() - 5.0,
        )
    )
    assert "over the 20s budget" in view.status()


def test_off_a_terminal_the_reporter_prints_plain_lines() -> None:
    # Under pytest stderr is not a terminal: the reporter is the plain one.
    with training_reporter() as report:
        report("a plain line")
    with training_reporter(plain=True) as report:
        report(event("stage", "evaluation", stage="evaluation"))


def test_the_process_start_is_in_the_past() -> None:
    started = process_started_at()
    assert started <= time.time()
    if os.path.exists("/proc/self/stat"):
        # This test process started before the test did, and not before the boot.
        assert time.time() - started > 0.0
