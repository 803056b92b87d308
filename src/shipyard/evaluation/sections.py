"""Card and report blocks that tasks share: the leaderboard of the candidates compared.

A task's own blocks live in its package and reach the card and the report through
:class:`~shipyard.evaluation.report.DocumentSections`, so the two documents always agree.
Every block reads only the bundle manifest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shipyard.evaluation.report import Document

__all__ = ["leaderboard_blocks", "number_text"]


def number_text(value: Any, digits: int = 4) -> str:
    """Format a number with ``digits`` decimals, or a dash when it is missing."""
    return "-" if value is None else f"{float(value):.{digits}f}"


def leaderboard_blocks(
    document: Document,
    manifest: Mapping[str, Any],
    score_label: str | None = None,
    no_verdict: str | None = None,
) -> None:
    """Add the candidates compared during training, with their intervals and the verdict.

    ``score_label`` names the score column (the CV metric by default); ``no_verdict`` is said
    when the manifest records no significance verdict.
    """
    document.heading("Model selection")
    rows = manifest.get("leaderboard", [])
    if not rows:
        document.paragraph("No leaderboard was recorded.")
        return
    score = score_label or f"CV {manifest.get('metric')} [CI]"
    table = []
    for row in rows:
        value = (
            f"{number_text(row['cv_mean'])} "
            f"[{number_text(row['cv_low'])}, {number_text(row['cv_high'])}]"
            if row.get("cv_mean") is not None
            else "-"
        )
        p_value = row.get("p_value_vs_best")
        table.append(
            [
                row["name"],
                row["status"],
                value,
                row.get("trials") or "-",
                "-" if p_value is None else f"{p_value:.3g}",
                row.get("message") or "",
            ]
        )
    document.table(["candidate", "status", score, "trials", "p vs best", "note"], table)
    verdict = manifest.get("verdict") or {}
    if verdict.get("summary"):
        test = verdict.get("test", "paired test")
        document.paragraph(f"Verdict ({test}): {verdict['summary']}.")
    elif no_verdict:
        document.paragraph(no_verdict)
