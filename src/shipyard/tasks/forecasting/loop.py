"""The loop's forecasting steps: actuals extend the series; the gate scores the newest actuals.

- :func:`extend_series`: every actual stored against a served forecast (its label,
  :mod:`shipyard.tasks.forecasting.monitoring`) becomes a row of the champion's table (series,
  stamp, value, and the covariates the forecast request gave for that stamp); a stamp the table
  already holds keeps the newer value. The newest :data:`GATE_SHARE` of each series' new stamps
  (at least one, at most the horizon) are kept out: they are the gate's backtest.
- :func:`newest_data_gate`: a backtest over the newest data. The held-out actuals (the most
  recent, which the challenger did not train on) are forecast by both versions: the champion's
  logged forecasts, and the challenger's own forecast from the end of its data. Their scaled
  absolute errors, paired over actuals, go to
  :func:`~shipyard.monitoring.gate.compare_paired_values` (negated: greater is better).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shipyard.errors import DataError
from shipyard.monitoring.gate import GateResult, compare_paired_values
from shipyard.tasks.base import RetrainSteps

if TYPE_CHECKING:
    from shipyard.config import PipelineConfig
    from shipyard.manifest import Manifest

__all__ = ["FORECASTING_STEPS", "GATE_SHARE", "extend_series", "newest_data_gate"]

GATE_SHARE = 0.3
"""Share of each series' newest actual stamps kept out of the challenger's training data.

An actual joins every served forecast that covered its stamp, so the held-out forecasts the
loop hands the gate carry older actuals too: only stamps after the challenger's data ends are
scored, and these are the ones kept out here."""


def _actuals(rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str, float]]:
    """``(row, stamp, value)`` for every actual stored against a logged forecast."""
    found = []
    for row in rows:
        label = row.get("label")
        if not isinstance(label, dict) or not isinstance(label.get("actuals"), dict):
            raise DataError(
                f"Feedback for request {row['request_id']} is not a set of actuals; send "
                "actuals to /v1/models/NAME/actuals."
            )
        found += [(row, stamp, float(value)) for stamp, value in label["actuals"].items()]
    return found


def extend_series(
    config: PipelineConfig, learn: list[dict[str, Any]], path: Path
) -> tuple[int, int]:
    """Append the actuals of ``learn`` to the champion's table, at ``path`` (Parquet).

    Returns the number of rows written and of new rows.
    """
    from shipyard.data.sources import ReadOptions, read_table

    settings = config.forecasting
    assert settings is not None  # the task refuses a config without it
    frame = read_table(config.data.source, ReadOptions(config.data.encoding, config.data.header))
    records = []
    for row, stamp, value in _actuals(learn):
        output = row["output"]
        record: dict[str, Any] = {
            settings.time: pd.Timestamp(stamp),
            config.data.target_column: value,
        }
        if settings.series is not None:
            record[settings.series] = output["series"]
        step = output["timestamps"].index(stamp)
        for name in settings.covariates:
            given = (row["inputs"].get("covariates") or {}).get(name)
            if given is None or step >= len(given):
                raise DataError(
                    f"The forecast {row['request_id']} gave no value of covariate '{name}' "
                    f"for {stamp}; its actual cannot join the training data."
                )
            record[name] = given[step]
        records.append(record)
    new = _without_newest(
        pd.DataFrame.from_records(records), settings.time, settings.series, settings.horizon
    )
    frame = frame.assign(**{settings.time: pd.to_datetime(frame[settings.time])})
    keys = [settings.time, *([settings.series] if settings.series else [])]
    if settings.series:
        new[settings.series] = new[settings.series].astype(frame[settings.series].dtype)
    combined = (
        pd.concat([frame, new], ignore_index=True)
        .drop_duplicates(subset=keys, keep="last")
        .sort_values(keys, kind="stable")
    )
    combined.to_parquet(path, index=False)
    return len(combined), len(combined) - len(frame)


def _without_newest(
    new: pd.DataFrame, time: str, series: str | None, horizon: int
) -> pd.DataFrame:
    """Drop each series' newest new stamps, which the gate scores both versions on."""
    if new.empty:
        return new
    kept = []
    groups = [new] if series is None else [part for _, part in new.groupby(series, sort=False)]
    for part in groups:
        stamps = part[time].drop_duplicates().sort_values()
        held = min(max(1, round(GATE_SHARE * len(stamps))), horizon)
        kept.append(part[part[time] < stamps.iloc[-held]] if len(stamps) > held else part.iloc[:0])
    return pd.concat(kept, ignore_index=True)


def newest_data_gate(
    champion: Any,
    challenger: Any,
    manifest: Manifest,
    rows: list[dict[str, Any]],
    min_rows: int,
    min_improvement: float,
) -> GateResult:
    """Compare both versions' scaled errors on the held-out actuals, paired over actuals."""
    champion_errors, challenger_errors = [], []
    for row, stamp, value in _actuals(rows):
        output = row["output"]
        series = challenger.series_id(output["series"])
        stamps = [item.isoformat() for item in challenger.stamps(series, challenger.horizon)]
        if stamp not in stamps:
            continue  # before the challenger's data ends, or beyond its horizon
        steps = stamps.index(stamp) + 1
        offset = output["timestamps"].index(stamp)
        given = row["inputs"].get("covariates") or {}
        if given and offset - steps + 1 < 0:
            continue  # the request gave no covariates for the challenger's first steps
        covariates = {
            name: list(values)[offset - steps + 1 : offset + 1] for name, values in given.items()
        }
        forecast = challenger.forecast(series, steps, covariates)["forecast"][-1]
        scale = float(challenger.document["series"][series]["scale"])
        challenger_errors.append(-abs(value - forecast) / scale)
        champion_errors.append(-abs(value - float(output["forecast"][offset])) / scale)
    return compare_paired_values(
        np.asarray(challenger_errors),
        np.asarray(champion_errors),
        "negative scaled absolute error",
        min_samples=min_rows,
        min_improvement=min_improvement,
    )


FORECASTING_STEPS = RetrainSteps(extend_series, newest_data_gate)
