"""Choosing, refitting and exporting a forecaster; checking the export against the trained one.

:func:`train_forecaster` backtests every candidate family, chooses the one with the lowest mean
MASE, refits it on each whole series, calibrates the conformal intervals on its backtest
errors and exports it (:func:`export_forecaster`). :func:`check_forecast_parity` forecasts with
the exported files, through the served code, and with the training-time objects, and returns
the largest gap.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.errors import ExportError, TrainingError
from shipyard.tasks.forecasting.backtest import BASELINE, Backtest, mase_scale, run_backtest
from shipyard.tasks.forecasting.conformal import (
    conformal_quantiles,
    leave_one_window_out_coverage,
)
from shipyard.tasks.forecasting.models import make_model
from shipyard.tasks.forecasting.series import Series
from shipyard.tasks.forecasting.served import MODEL_FILE, ServedForecaster

__all__ = ["ForecastRun", "check_forecast_parity", "export_forecaster", "train_forecaster"]


@dataclass
class ForecastRun:
    """What training found: the backtest, the chosen family and its refitted models."""

    backtest: Backtest
    family: str
    models: dict[str, Any]
    series: list[Series]
    frequency: str
    season: int
    horizon: int
    level: float
    covariates: list[str]
    quantiles: np.ndarray
    coverage: dict[str, float]
    notes: list[str] = field(default_factory=list)


def _choose(backtest: Backtest) -> str:
    scored = {
        family: float(np.mean(scores.values("mase")))
        for family, scores in backtest.families.items()
        if scores.error is None
    }
    if not scored:
        failures = "; ".join(
            f"{family}: {scores.error}" for family, scores in backtest.families.items()
        )
        raise TrainingError(f"No forecasting family could be backtested ({failures}).")
    return min(scored, key=lambda family: (scored[family], family != BASELINE))


def train_forecaster(
    series_list: Sequence[Series],
    *,
    frequency: str,
    season: int,
    horizon: int,
    windows: int,
    step: int,
    families: Sequence[str],
    level: float,
    rounds: int,
    covariates: Sequence[str],
    report: Callable[[str], None],
) -> ForecastRun:
    """Backtest, choose, refit on the whole series, calibrate the intervals."""
    candidates = list(dict.fromkeys([BASELINE, *families]))  # the baseline is always scored
    backtest = run_backtest(
        series_list,
        candidates,
        horizon=horizon,
        windows=windows,
        step=step,
        season=season,
        rounds=rounds,
        covariates=covariates,
        report=report,
    )
    family = _choose(backtest)
    chosen = backtest.families[family]
    errors = np.vstack(chosen.scaled_errors)
    quantiles = conformal_quantiles(errors, level)
    coverage = leave_one_window_out_coverage(errors, chosen.windows, level)
    report(f"chosen {family}; refitting it on every series")
    used = list(covariates) if family == "lightgbm" else []
    models = {
        series.id: make_model(family, season, rounds, used).fit(series) for series in series_list
    }
    notes = [
        f"series {series.id}: {series.filled} missing stamps filled"
        for series in series_list
        if series.filled
    ]
    return ForecastRun(
        backtest,
        family,
        models,
        list(series_list),
        frequency,
        season,
        horizon,
        level,
        used,
        quantiles,
        coverage,
        notes,
    )


def export_forecaster(run: ForecastRun) -> tuple[dict[str, bytes], dict[str, Any]]:
    """Return the bundle files (JSON parameters, LightGBM text) and the ``model`` entry."""
    files: dict[str, bytes] = {}
    entries: dict[str, Any] = {}
    for index, series in enumerate(run.series):
        model = run.models[series.id]
        entry = {
            **model.parameters(),
            "scale": mase_scale(series.values, run.season),
            "last_stamp": series.stamps[-1].isoformat(),
        }
        if run.family == "lightgbm":
            entry["model_file"] = f"lightgbm/series_{index}.txt"
            files[entry["model_file"]] = model.model_text()
        entries[series.id] = entry
    document = {
        "format": 1,
        "family": run.family,
        "frequency": run.frequency,
        "season_length": run.season,
        "horizon": run.horizon,
        "level": run.level,
        "covariates_used": run.covariates,
        # Counts and other series never below zero get intervals clipped at zero.
        "non_negative": all(bool((series.values >= 0).all()) for series in run.series),
        "quantiles": run.quantiles.tolist(),
        "series": entries,
    }
    files[MODEL_FILE] = json.dumps(document, allow_nan=False, sort_keys=True).encode()
    model_entry = {
        "family": run.family,
        "format": "json",
        "files": {
            "parameters": MODEL_FILE,
            **{
                f"lightgbm_{index}": name
                for index, name in enumerate(sorted(name for name in files if name != MODEL_FILE))
            },
        },
    }
    return files, model_entry


def check_forecast_parity(
    run: ForecastRun, files: dict[str, bytes], model_entry: dict[str, Any]
) -> float:
    """Largest gap between the exported and the training-time forecasts over every series.

    Raises
    ------
    ExportError
        When any forecast differs by more than 1e-6 (relative to the series' scale).
    """
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for name, content in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(content)
        served = ServedForecaster.from_directory(root, model_entry["files"])
        gap = 0.0
        for series in run.series:
            stamps = served.stamps(series.id, run.horizon)
            # Any future covariates exercise the same path: reuse the last known ones.
            known = [series.covariates[name][-run.horizon :] for name in run.covariates]
            future = np.column_stack(known) if known else np.zeros((run.horizon, 0))
            trained = run.models[series.id].forecast(run.horizon, stamps, future)
            exported = served.point_forecast(series.id, run.horizon, future)
            scale = max(1.0, float(np.max(np.abs(trained))))
            gap = max(gap, float(np.max(np.abs(trained - exported))) / scale)
    if gap > 1e-6:
        raise ExportError(
            f"The exported {run.family} forecasts differ from the trained model's by {gap:.3g} "
            "(relative); the export is refused."
        )
    return gap
