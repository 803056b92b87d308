"""The profile as a self-contained HTML page: inline CSS and SVG plots, no scripts, no network.

The page opens offline in any browser; everything it shows is also in the JSON version.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from shipyard.data.profile import ColumnProfile, Profile

__all__ = ["render_html", "write_reports"]

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1100px}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin:0 0 .4rem}
.column{border:1px solid #ddd;border-radius:6px;padding:1rem;margin:1rem 0;display:flex;gap:2rem}
.facts{min-width:330px}table{border-collapse:collapse;font-size:.85rem}
td,th{padding:2px 8px;text-align:left;border-bottom:1px solid #eee}
.tag{display:inline-block;background:#eef;border-radius:4px;padding:0 6px;font-size:.8rem}
.warn{color:#a40}svg text{font-size:10px;fill:#444}
"""


def _number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return html.escape(str(value))


def _bars(labels: list[str], counts: list[float], width: int = 480, height: int = 160) -> str:
    """Draw a bar chart as inline SVG."""
    if not counts:
        return ""
    tallest = max(counts) or 1.0
    step = width / len(counts)
    bars = []
    for index, (label, count) in enumerate(zip(labels, counts, strict=True)):
        bar = (height - 20) * count / tallest
        bars.append(
            f'<rect x="{index * step + 1:.1f}" y="{height - 20 - bar:.1f}" '
            f'width="{max(step - 2, 1):.1f}" height="{bar:.1f}" fill="#4a7ab5">'
            f"<title>{html.escape(label)}: {count:,.0f}</title></rect>"
        )
    first, last = html.escape(labels[0]), html.escape(labels[-1])
    return (
        f'<svg width="{width}" height="{height}" role="img">{"".join(bars)}'
        f'<text x="0" y="{height - 5}">{first}</text>'
        f'<text x="{width}" y="{height - 5}" text-anchor="end">{last}</text></svg>'
    )


def _plot(column: ColumnProfile) -> str:
    if column.histogram.get("counts"):
        edges = column.histogram["edges"]
        labels = [f"{edges[i]:.4g} to {edges[i + 1]:.4g}" for i in range(len(edges) - 1)]
        return _bars(labels, column.histogram["counts"])
    if column.top_values:
        labels = [str(value) for value, _ in column.top_values]
        return _bars(labels, [float(count) for _, count in column.top_values])
    return ""


def _column_section(column: ColumnProfile) -> str:
    facts = [
        ("type", f"{column.storage_type} <span class=tag>{column.semantic}</span>"),
        ("present", _number(column.count)),
        ("missing", f"{_number(column.missing)} ({column.missing_share:.1%})"),
        ("distinct", _number(column.distinct)),
    ]
    if column.mean is not None:
        facts += [
            ("min / max", f"{_number(column.minimum)} / {_number(column.maximum)}"),
            ("mean / std", f"{_number(column.mean)} / {_number(column.std)}"),
            (
                "quantiles",
                ", ".join(f"{k} {_number(v)}" for k, v in column.quantiles.items()),
            ),
            ("outliers (1.5 IQR)", _number(column.outliers)),
        ]
    if column.text_length:
        facts.append(
            (
                "text length",
                f"{_number(column.text_length['min'])} to {_number(column.text_length['max'])}"
                f" (mean {_number(column.text_length['mean'])})",
            )
        )
    if column.association is not None:
        facts.append(
            ("association with target", f"{column.association:.3f} ({column.association_method})")
        )
    if column.personal:
        found = ", ".join(
            f"{kind} ({share:.0%} of sampled values)" for kind, share in column.personal.items()
        )
        facts.append(("likely personal data", f"<span class=warn>{html.escape(found)}</span>"))
    if column.personal_hint:
        facts.append(("name suggests", f"personal data ({html.escape(column.personal_hint)})"))
    if column.top_values and not column.histogram:
        facts.append(
            (
                "top values",
                "<br>".join(
                    f"{html.escape(str(v))}: {_number(n)}" for v, n in column.top_values[:5]
                ),
            )
        )
    rows = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in facts)
    return (
        f'<div class="column"><div class="facts"><h2>{html.escape(column.name)}</h2>'
        f"<table>{rows}</table></div><div>{_plot(column)}</div></div>"
    )


def render_html(profile: Profile) -> str:
    """Render a profile as one self-contained HTML page."""
    warnings = "".join(f"<li class=warn>{html.escape(item)}</li>" for item in profile.warnings)
    target = f", target <b>{html.escape(profile.target)}</b>" if profile.target else ""
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Profile of {html.escape(profile.source)}</title><style>{STYLE}</style></head>"
        f"<body><h1>Profile of {html.escape(profile.source)}</h1>"
        f"<p>{profile.n_rows:,} rows, {profile.n_columns} columns, "
        f"{profile.duplicate_rows:,} duplicate rows{target}; "
        f"profiled in {profile.seconds:.1f} s.</p>"
        + (f"<h2>Warnings</h2><ul>{warnings}</ul>" if warnings else "")
        + _personal_section(profile)
        + "".join(_column_section(column) for column in profile.columns)
        + "</body></html>\n"
    )


def _personal_section(profile: Profile) -> str:
    """Render the columns that look personal and the config that tags them."""
    suggestion = profile.personal_config()
    if suggestion is None:
        return ""
    return (
        "<h2>Personal data</h2><p>These columns look personal (by their values or names); "
        "tag them so the prediction log does not keep them in clear:</p>"
        f"<pre>{html.escape(suggestion)}</pre>"
    )


def write_reports(profile: Profile, html_path: Path, json_path: Path) -> None:
    """Write the HTML report and its JSON version."""
    html_path.write_text(render_html(profile), encoding="utf-8")
    json_path.write_text(
        json.dumps(profile.as_dict(), indent=1, allow_nan=False) + "\n", encoding="utf-8"
    )
