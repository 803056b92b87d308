"""The forecaster's sections of the model card and the evaluation report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shipyard.evaluation.report import Document, DocumentSections
from shipyard.tasks.forecasting.evaluation import backtest_table

__all__ = ["FORECASTING_SECTIONS", "forecasting_blocks", "forecasting_data_items"]


def forecasting_blocks(document: Document, manifest: Mapping[str, Any]) -> None:
    """Add the backtest table with intervals, the verdict and the intervals' coverage."""
    section = manifest.get("forecasting") or {}
    if "backtest" not in section:
        document.paragraph("No backtest was recorded.")
        return
    backtest = section["backtest"]
    document.heading("Backtest")
    document.paragraph(
        f"Rolling origin: {backtest['windows']} windows of {backtest['horizon']} steps, "
        f"{backtest['step']} steps apart ({backtest['units']} series-windows); means over "
        "series-windows with bootstrap intervals; the last column is the MASE difference to "
        "the seasonal naive baseline, paired over series-windows."
    )
    header, rows = backtest_table(dict(section))
    document.table(header, rows)
    verdict = section.get("verdict", {})
    document.paragraph(f"Chosen: {section['chosen']}; {verdict.get('verdict', '')}.")
    intervals = section.get("intervals", {})
    if intervals:
        document.heading("Prediction intervals")
        document.paragraph(
            f"{intervals['method']}: nominal {intervals['level']:.0%}, measured "
            f"{intervals['coverage']:.1%} on {int(intervals['points'])} backtest actuals "
            "(each window calibrated on the others)."
        )


def forecasting_data_items(manifest: Mapping[str, Any]) -> list[str]:
    """Return the horizon and the data window, for the card's training-data section."""
    section = manifest.get("forecasting") or {}
    window = section.get("data_window") or {}
    if not window:
        return []
    return [
        f"Horizon: {section.get('horizon')} steps at frequency {window.get('frequency')} "
        f"(season {window.get('season_length')} steps).",
        f"Data window: {window.get('first')} to {window.get('last')}, {window.get('series')} "
        f"series, {window.get('steps')} steps.",
    ]


def forecasting_limitations(manifest: Mapping[str, Any]) -> list[str]:
    """Return what the forecaster cannot do, from what training measured."""
    section = manifest.get("forecasting") or {}
    found = [
        f"Forecasts at most {section.get('horizon')} steps ahead of the data window's end; "
        "retrain as actuals arrive to move the origin forward.",
    ]
    intervals = section.get("intervals") or {}
    if intervals and abs(intervals["coverage"] - intervals["level"]) > 0.05:
        found.append(
            f"The intervals covered {intervals['coverage']:.1%} of backtest actuals against a "
            f"nominal {intervals['level']:.0%}."
        )
    return found


FORECASTING_SECTIONS = DocumentSections(
    blocks=forecasting_blocks,
    limitations=forecasting_limitations,
    data_items=forecasting_data_items,
)
