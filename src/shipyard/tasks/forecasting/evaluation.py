"""The backtest as the manifest, the report and the CLI show it: a table with intervals.

Each family's mean MASE, sMAPE and RMSE over the backtest units, with bootstrap intervals; its
MASE difference to the seasonal naive baseline, paired over units, with the verdict; the
chosen family's conformal interval coverage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.tasks.forecasting.backtest import BASELINE, summarise, verdict
from shipyard.training.trainer import CandidateResult

if TYPE_CHECKING:
    from shipyard.evaluation.metrics import MetricValue
    from shipyard.tasks.forecasting.training import ForecastRun

__all__ = ["backtest_section", "backtest_table", "leaderboard"]


def leaderboard(run: ForecastRun) -> list[CandidateResult]:
    """One row per family: per-unit MASE as the scores, best first, failures last."""
    rows = []
    for family, scores in run.backtest.families.items():
        if scores.error is not None:
            rows.append(
                CandidateResult(family, "failed", fit_seconds=scores.seconds, message=scores.error)
            )
            continue
        values = scores.values("mase")
        spread = 1.96 * float(values.std(ddof=1)) / np.sqrt(len(values)) if len(values) > 1 else 0
        rows.append(
            CandidateResult(
                family,
                "ok",
                cv_scores=values.tolist(),
                cv_mean=float(values.mean()),
                cv_low=float(values.mean()) - spread,
                cv_high=float(values.mean()) + spread,
                fit_seconds=round(scores.seconds, 3),
            )
        )
    return sorted(rows, key=lambda row: (row.status != "ok", row.cv_mean))


def backtest_section(
    run: ForecastRun, *, n_samples: int, confidence: float, seed: int
) -> tuple[dict[str, Any], dict[str, MetricValue], dict[str, Any]]:
    """Return the manifest's backtest entries, the chosen family's metrics and its verdict."""
    baseline = run.backtest.families[BASELINE]
    families: dict[str, Any] = {}
    for family, scores in run.backtest.families.items():
        if scores.error is not None:
            families[family] = {"error": scores.error}
            continue
        metrics = summarise(scores, n_samples=n_samples, confidence=confidence, seed=seed)
        entry: dict[str, Any] = {
            "metrics": {name: value.as_dict() for name, value in metrics.items()},
            "seconds": round(scores.seconds, 3),
        }
        if family != BASELINE:
            entry["versus_baseline"] = verdict(
                scores, baseline, n_samples=n_samples, confidence=confidence, seed=seed
            )
        families[family] = entry
    chosen = run.backtest.families[run.family]
    metrics = summarise(chosen, n_samples=n_samples, confidence=confidence, seed=seed)
    said = families[run.family].get("versus_baseline") or {
        "baseline": BASELINE,
        "verdict": "the seasonal naive baseline was chosen",
    }
    section = {
        "chosen": run.family,
        "backtest": {
            "horizon": run.backtest.horizon,
            "windows": run.backtest.windows,
            "step": run.backtest.step,
            "units": run.backtest.units,
            "families": families,
        },
        "verdict": said,
        "intervals": {
            "method": "conformal (scaled backtest errors, per step)",
            "quantiles": [round(float(value), 6) for value in run.quantiles],
            **run.coverage,
        },
    }
    return section, metrics, said


def backtest_table(section: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the backtest table (families, metrics with intervals, verdict)."""
    header = ["family", "MASE [CI]", "sMAPE % [CI]", "RMSE [CI]", "vs seasonal naive"]
    rows = []
    for family, entry in section["backtest"]["families"].items():
        if "error" in entry:
            rows.append([family, "failed", "", "", entry["error"][:60]])
            continue
        cells = [
            f"{item['value']:.3f} [{item['low']:.3f}, {item['high']:.3f}]"
            for item in (entry["metrics"][name] for name in ("mase", "smape", "rmse"))
        ]
        against = entry.get("versus_baseline")
        said = (
            f"{against['difference']:+.3f} [{against['low']:+.3f}, {against['high']:+.3f}]"
            if against
            else "baseline"
        )
        marker = " (chosen)" if family == section["chosen"] else ""
        rows.append([family + marker, *cells, said])
    return header, rows
