"""The monitoring report: one self-contained HTML page with drift and performance over time.

Charts are inline SVG drawn here (no plotting library, no script, no network), so the page opens
offline in any browser and stays small.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from shipyard.monitoring.reference import PREDICTION_COLUMN
from shipyard.monitoring.windows import DriftWindow

__all__ = ["render_report", "svg_line_chart"]

_COLORS = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def svg_line_chart(
    series: Mapping[str, Sequence[float | None]],
    *,
    title: str,
    threshold: float | None = None,
    width: int = 720,
    height: int = 260,
    zero_based: bool = False,
) -> str:
    """Draw named series over window indices as an SVG line chart (None leaves a gap)."""
    left, right, top, bottom = 48, 150, 28, 30
    values = [v for points in series.values() for v in points if v is not None]
    if zero_based:
        values.append(0.0)
    if threshold is not None:
        values.append(threshold)
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if high == low:
        high = low + 1.0
    length = max((len(points) for points in series.values()), default=1)

    def x(index: int) -> float:
        return left + (width - left - right) * (index / max(length - 1, 1))

    def y(value: float) -> float:
        return top + (height - top - bottom) * (1 - (value - low) / (high - low))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{html.escape(title)}">',
        f'<text x="{left}" y="18" font-size="14" font-weight="bold">{html.escape(title)}</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" '
        f'y2="{height - bottom}" stroke="#999"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#999"/>',
        f'<text x="4" y="{top + 4}" font-size="11">{high:.3g}</text>',
        f'<text x="4" y="{height - bottom}" font-size="11">{low:.3g}</text>',
        f'<text x="{(width - right) / 2}" y="{height - 8}" font-size="11">window</text>',
    ]
    if threshold is not None:
        parts.append(
            f'<line x1="{left}" y1="{y(threshold):.1f}" x2="{width - right}" '
            f'y2="{y(threshold):.1f}" stroke="#d62728" stroke-dasharray="4 3"/>'
        )
    for number, (name, points) in enumerate(series.items()):
        color = _COLORS[number % len(_COLORS)]
        segment: list[str] = []
        segments = [segment]
        for index, value in enumerate(points):
            if value is None:
                segment = []
                segments.append(segment)
            else:
                segment.append(f"{x(index):.1f},{y(value):.1f}")
        for points_text in segments:
            if len(points_text) == 1:
                cx, cy = points_text[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{color}"/>')
            elif points_text:
                parts.append(
                    f'<polyline fill="none" stroke="{color}" stroke-width="2" '
                    f'points="{" ".join(points_text)}"/>'
                )
        parts.append(
            f'<text x="{width - right + 8}" y="{top + 14 * number + 10}" '
            f'font-size="11" fill="{color}">{html.escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(rows: Sequence[Mapping[str, Any]]) -> str:
    header = (
        "column",
        "test",
        "statistic",
        "p-value",
        "PSI",
        "JS distance",
        "samples",
        "missing",
        "drifted",
    )
    body = []
    for row in rows:
        verdict = {True: "yes", False: "no", None: "too few rows"}[row["drifted"]]
        style = ' style="background:#fde2e1"' if row["drifted"] else ""
        cells = (
            row["column"],
            row["test"],
            f"{row['statistic']:.4f}",
            f"{row['p_value']:.2g}",
            f"{row['psi']:.4f}",
            f"{row['js_distance']:.4f}",
            str(row["samples"]),
            f"{row['missing_share']:.1%}",
            verdict,
        )
        body.append(
            f"<tr{style}>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>"
        )
    return (
        "<table><tr>"
        + "".join(f"<th>{h}</th>" for h in header)
        + "</tr>"
        + "".join(body)
        + "</table>"
    )


def _signal_list(signals: Mapping[str, Any]) -> str:
    items = []
    for name, value in signals.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        items.append(f"<li>{html.escape(name)}: {html.escape(shown)}</li>")
    return "<h2>Task signals in the latest window</h2><ul>" + "".join(items) + "</ul>"


def render_report(
    model: str,
    version: int,
    windows: Sequence[DriftWindow],
    *,
    psi_threshold: float = 0.1,
    performance: Sequence[Mapping[str, Any] | None] = (),
    signals: Sequence[Mapping[str, Any]] = (),
) -> str:
    """Render the monitoring page for one model version.

    Parameters
    ----------
    windows
        Drift windows, oldest first (the last may still be open).
    performance
        Optional realised metric per window: ``{"metric", "value", "low", "high"}`` or None.
    signals
        Optional task-specific numbers per window (a recommender's coverage); floats are drawn
        over the windows, and the latest window's are listed.
    """
    # An open window with no predictions yet has nothing to draw.
    kept = [index for index, window in enumerate(windows) if window.count > 0]
    windows = [windows[index] for index in kept]
    performance = [performance[index] for index in kept if index < len(performance)]
    signals = [signals[index] for index in kept if index < len(signals)]
    columns = [row["column"] for row in windows[-1].report] if windows else []
    psi_series = {
        ("prediction" if column == PREDICTION_COLUMN else column): [
            next((row["psi"] for row in window.report if row["column"] == column), None)
            for window in windows
        ]
        for column in columns
    }
    features = {name: points for name, points in psi_series.items() if name != "prediction"}
    ranked = sorted(features, key=lambda name: -max((v or 0.0) for v in features[name]))
    charts = [
        svg_line_chart(
            {name: features[name] for name in ranked[:8]},
            title="Input drift: PSI per window (top 8 columns)",
            threshold=psi_threshold,
            zero_based=True,
        )
    ]
    if "prediction" in psi_series:
        charts.append(
            svg_line_chart(
                {"prediction": psi_series["prediction"]},
                title="Prediction drift: PSI per window",
                threshold=psi_threshold,
                zero_based=True,
            )
        )
    if performance and any(item for item in performance):
        metric = next(item["metric"] for item in performance if item)
        charts.append(
            svg_line_chart(
                {
                    "realised": [item["value"] if item else None for item in performance],
                    "CI low": [item["low"] if item else None for item in performance],
                    "CI high": [item["high"] if item else None for item in performance],
                },
                title=f"Realised {metric} per window (with 95% CI)",
            )
        )
    numeric = sorted(
        {
            name
            for item in signals
            for name, value in item.items()
            if isinstance(value, float)  # shares and effect sizes; counts are only listed
        }
    )
    if numeric:
        charts.append(
            svg_line_chart(
                {name: [item.get(name) for item in signals] for name in numeric},
                title="Task signals per window",
                zero_based=True,
            )
        )
    latest = windows[-1] if windows else None
    latest_signals = signals[-1] if signals else {}
    summary = (
        "No predictions logged yet."
        if latest is None
        else f"{len(windows)} window(s); the latest holds {latest.count} predictions"
        f"{'' if latest.closed else ' (still open)'}; drifted: "
        f"{', '.join(latest.drifted) or 'none'}."
    )
    title = f"shipyard monitoring: {model}:{version}"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;margin:24px;"
        "max-width:1000px}table{border-collapse:collapse;font-size:13px}td,th{border:1px "
        "solid #ccc;padding:3px 8px;text-align:right}svg{display:block;margin:16px 0}"
        "</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(summary)}</p>"
        + "".join(charts)
        + ("<h2>Latest window</h2>" + _table(latest.report) if latest else "")
        + (_signal_list(latest_signals) if latest_signals else "")
        + "</body></html>"
    )
