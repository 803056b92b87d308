"""Rendering results for people (Rich tables on the terminal) and scripts (JSON)."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["error_console", "events_table", "metrics_table", "print_json", "reporter"]

# Rich falls back to 80 columns when the output is not a terminal (CI logs, `make demo | tee`),
# which squeezes the leaderboard; COLUMNS still wins when set.
_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 132
console = Console(width=_WIDTH)
error_console = Console(stderr=True, width=_WIDTH)


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


def _rate(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f}"


def leaderboard_table(metric: str, rows: list[dict[str, Any]]) -> Table:
    """Build the training leaderboard: CV mean and CI, paired p-value, serving cost."""
    table = Table(title=f"Leaderboard (cross-validated {metric})", title_justify="left")
    columns = (
        "rank",
        "model",
        "CV mean",
        "95% CI",
        "p vs best",
        "trials",
        "fit s",
        "1 record/s",
        "batch rows/s",
        "status",
    )
    for column in columns:
        table.add_column(column, justify="right" if column not in ("model", "status") else "left")
    rank = 0
    for row in rows:
        ok = row["status"] == "ok"
        scored = row.get("cv_mean") is not None
        rank += ok
        p_value = row.get("p_value_vs_best")
        table.add_row(
            str(rank) if ok else "-",
            row["name"],
            f"{row['cv_mean']:.4f}" if scored else "",
            f"[{row['cv_low']:.4f}, {row['cv_high']:.4f}]"
            if scored and row.get("cv_low") is not None
            else "",
            "" if p_value is None else f"{p_value:.3g}",
            str(row.get("trials", "")) if scored else "",
            f"{row['fit_seconds']:.1f}" if scored else "",
            _rate(row.get("single_per_second")),
            _rate(row.get("batch_per_second")),
            f"{row['status']}: {row['message']}" if row.get("message") else row["status"],
        )
    return table


def _maybe(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def print_train_run(data: dict[str, Any]) -> None:
    """Summarise a training run for people."""
    console.print(leaderboard_table(data["metric"], data["leaderboard"]))
    verdict = data.get("verdict") or {}
    if verdict.get("summary"):
        console.print(f"Significance: {verdict['summary']}.")
    if verdict.get("chosen"):
        console.print(f"Shipping [bold]{verdict['chosen']}[/bold].")
    threshold = data.get("decision_threshold")
    if threshold:
        console.print(
            f"Decision threshold {threshold['value']:.3f} (tuned for {threshold['metric']})."
        )
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
    mitigation = data.get("mitigation")
    if mitigation:
        test = mitigation["test"]
        parity = test["demographic_parity_difference"]
        cuts = ", ".join(
            f"{group} {value:.3f}" for group, value in mitigation["thresholds"].items()
        )
        console.print(
            f"Fairness mitigation (child of version {mitigation['base_version']}): thresholds "
            f"{cuts}; on {test['rows']} test rows demographic parity difference "
            f"{_maybe(parity['before'])} -> {_maybe(parity['after'])}, accuracy "
            f"{test['accuracy']['before']:.4f} -> {test['accuracy']['after']:.4f}.",
            highlight=False,
        )
    timings = data.get("timings") or {}
    if timings:
        console.print(_timings_line(timings), highlight=False)
    alias = " (champion)" if "champion" in data["aliases"] else ""
    console.print(f"Registered [bold]{data['reference']}[/bold]{alias} in {data['bundle']}")


def _timings_line(timings: dict[str, float]) -> str:
    """Say where the time went: preparing, model development (search), evaluation."""
    parts = []
    for key, label in (
        ("prepare_s", "preparing the data"),
        ("development_s", "model development"),
        ("evaluation_s", "evaluation"),
    ):
        if key in timings:
            searched = (
                f" (search {timings['search_s']:.1f}s)"
                if key == "development_s" and "search_s" in timings
                else ""
            )
            parts.append(f"{label} {timings[key]:.1f}s{searched}")
    budget = timings.get("budget_s")
    of_budget = f" of the {budget:g}s budget" if budget else ""
    return f"Time: {timings['total_s']:.1f}s{of_budget}: " + ", ".join(parts) + "."


def _event_summary(detail: dict[str, Any]) -> str:
    """Say in one line why: the alias moved, a verdict, a reason, a message."""
    parts = []
    if detail.get("alias"):
        moved = f"{detail['alias']}"
        if detail.get("previous") is not None:
            moved += f" (was {detail['previous']})"
        parts.append(moved)
    for key in ("verdict", "stage", "reason", "message", "error"):
        if detail.get(key):
            parts.append(str(detail[key]))
    if "passed" in detail and "improvement" in detail:
        parts.append(
            f"{detail['metric']} {detail['improvement']:+.4f} [{detail['low']:+.4f}, "
            f"{detail['high']:+.4f}] on {detail['samples']} rows: "
            f"{'passed' if detail['passed'] else 'failed'}"
        )
    if detail.get("reasons"):
        parts.append("; ".join(map(str, detail["reasons"])))
    return " | ".join(parts)


def events_table(name: str, events: list[dict[str, Any]]) -> Table:
    """Build the audit-log table of a model, oldest first."""
    table = Table(title=f"Audit log of {name}", title_justify="left")
    for column in ("at", "version", "action", "detail"):
        table.add_column(column, justify="right" if column == "version" else "left")
    for event in events:
        table.add_row(
            str(event["at"])[:19],
            "" if event["version"] is None else str(event["version"]),
            event["action"],
            _event_summary(event["detail"]),
        )
    return table
