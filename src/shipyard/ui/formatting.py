"""Jinja2 filters of the UI: numbers, metrics with intervals, times, JSON for the charts."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from markupsafe import Markup

__all__ = ["FILTERS", "b64", "chart_json", "interval", "number", "when"]


def number(value: Any, digits: int = 4) -> str:
    """``0.9123`` for a float, the value itself otherwise, ``-`` for nothing.

    >>> number(0.912345), number(None), number(12)
    ('0.9123', '-', '12')
    """
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}g}" if abs(value) >= 10**digits else f"{value:.{digits}f}"


def interval(metric: Mapping[str, Any] | None) -> str:
    """``0.9123 [0.9011, 0.9230]``: a value with its confidence interval.

    >>> interval({"value": 0.5, "low": 0.4, "high": 0.6})
    '0.5000 [0.4000, 0.6000]'
    """
    if not metric or metric.get("value") is None:
        return "-"
    if metric.get("low") is None or metric.get("high") is None:
        return number(metric["value"])
    return f"{number(metric['value'])} [{number(metric['low'])}, {number(metric['high'])}]"


def when(value: Any) -> str:
    """Write a time as ``2026-05-01 14:03`` UTC (from ISO text or a datetime)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return "-" if value is None else str(value)


def chart_json(value: Any) -> Markup:
    r"""Return JSON for a ``<script type="application/json">``: ``<`` escaped, so no tag ends.

    >>> str(chart_json({"a": "</script>"}))
    '{"a": "\\u003c/script>"}'
    """
    return Markup(json.dumps(value, default=str).replace("<", "\\u003c"))


def b64(data: bytes) -> str:
    """Base64 text of bytes (an embedded PNG)."""
    return base64.b64encode(data).decode("ascii")


FILTERS: dict[str, Callable[..., Any]] = {
    "number": number,
    "interval": interval,
    "when": when,
    "chart_json": chart_json,
    "b64": b64,
}
