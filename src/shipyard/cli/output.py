"""Rendering results for people (Rich tables on the terminal) and scripts (JSON)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["error_console", "metrics_table", "print_json", "reporter"]

console = Console()
error_console = Console(stderr=True)


def print_json(data: Any) -> None:
    """Write ``data`` as indented JSON to stdout, and nothing else."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def reporter(quiet: bool = False) -> Callable[[str], None]:
    """Return a progress callback that writes timestamped steps to stderr."""
    started = time.perf_counter()

    def report(message: str) -> None:
        if not quiet:
            error_console.print(
                f"[dim]{time.perf_counter() - started:6.1f}s[/dim] {message}", highlight=False
            )

    return report


def metrics_table(title: str, metrics: dict[str, dict[str, float]]) -> Table:
    """Build a table of metrics with their confidence intervals."""
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column(
        "95% CI"
        if not metrics
        else f"{round(next(iter(metrics.values()))['confidence'] * 100)}% CI",
        justify="right",
    )
    for name, value in metrics.items():
        table.add_row(name, f"{value['value']:.4f}", f"[{value['low']:.4f}, {value['high']:.4f}]")
    return table


def leaderboard_table(metric: str, rows: list[dict[str, Any]]) -> Table:
    """Build the training leaderboard: CV mean and CI per candidate."""
    table = Table(title=f"Leaderboard (cross-validated {metric})", title_justify="left")
    for column in ("rank", "model", "CV mean", "95% CI", "fit s", "status"):
        table.add_column(column, justify="right" if column not in ("model", "status") else "left")
    for rank, row in enumerate(rows, start=1):
        ok = row["status"] == "ok"
        table.add_row(
            str(rank) if ok else "-",
            row["name"],
            f"{row['cv_mean']:.4f}" if ok else "",
            f"[{row['cv_low']:.4f}, {row['cv_high']:.4f}]" if ok else "",
            f"{row['fit_seconds']:.1f}" if ok else "",
            row["status"] if ok else f"{row['status']}: {row['message']}",
        )
    return table


def print_train_run(data: dict[str, Any]) -> None:
    """Summarise a training run for people."""
    console.print(leaderboard_table(data["metric"], data["leaderboard"]))
    console.print(
        metrics_table(
            f"Test metrics of {data['best']} on {data['rows']['test']} rows", data["test_metrics"]
        )
    )
    parity = data["parity"]
    console.print(
        f"Served path matches the trained model on {int(parity['rows'])} held-out "
        f"rows (max gap: single {parity['single']:.1e}, batched "
        f"{parity['batched']:.1e})."
    )
    for note in data["notes"]:
        console.print(f"Note: {note}")
    if data.get("fairness"):
        console.print(f"Fairness: {data['fairness']}", highlight=False)
    alias = " (champion)" if "champion" in data["aliases"] else ""
    console.print(f"Registered [bold]{data['reference']}[/bold]{alias} in {data['bundle']}")
